package filestore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"tote/session"
	"tote/session/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(tb testing.TB) session.Store {
		return openStore(tb, tb.TempDir(), Options{})
	})
}

// openStore opens a store in dir that is closed when tb ends.
func openStore(tb testing.TB, dir string, o Options) *Store {
	tb.Helper()
	s, err := Open(dir, o)
	if err != nil {
		tb.Fatalf("Open(%s): %v", dir, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// reopen closes s and opens its directory again.
func reopen(tb testing.TB, s *Store, o Options) *Store {
	tb.Helper()
	if err := s.Close(); err != nil {
		tb.Fatalf("Close: %v", err)
	}
	return openStore(tb, s.dir, o)
}

// fileSize returns the size of the file at path.
func fileSize(tb testing.TB, path string) int64 {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Size()
}

// mustCAS stores data under id or fails tb.
func mustCAS(tb testing.TB, s *Store, id string, old, next uint64, data []byte, ttl time.Duration) {
	tb.Helper()
	if err := s.CompareAndSwap(context.Background(), id, old, next, data, ttl); err != nil {
		tb.Fatalf("CompareAndSwap(%s, %d->%d): %v", id, old, next, err)
	}
}

// mustGet fails tb unless id holds version and data.
func mustGet(tb testing.TB, s *Store, id string, version uint64, data []byte) {
	tb.Helper()
	rec, found, err := s.Get(context.Background(), id)
	if err != nil || !found {
		tb.Fatalf("Get(%s): found=%v err=%v, want found", id, found, err)
	}
	if rec.Version != version || !bytes.Equal(rec.Data, data) {
		tb.Fatalf("Get(%s) = version %d %q, want version %d %q", id, rec.Version, rec.Data, version, data)
	}
}

// mustNotFind fails tb unless id is not found, without error.
func mustNotFind(tb testing.TB, s *Store, id string) {
	tb.Helper()
	rec, found, err := s.Get(context.Background(), id)
	if err != nil || found || rec.Version != 0 || rec.Data != nil {
		tb.Fatalf("Get(%s) = %+v, %v, %v; want zero record, false, nil", id, rec, found, err)
	}
}

// breakDisk makes every later write to the log fail, as on a failing disk:
// the log's file is swapped for a read-only one. Call it with no write in
// flight; the flusher reads s.f only after a writer's kick, which orders the
// swap before.
func breakDisk(tb testing.TB, s *Store) {
	tb.Helper()
	ro, err := os.Open(s.Path())
	if err != nil {
		tb.Fatal(err)
	}
	rw := s.f
	s.f = ro
	tb.Cleanup(func() { rw.Close() })
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(tb testing.TB, timeout time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met within %v", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOpenCreatesDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "data")
	s := openStore(t, dir, Options{})
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("data directory mode = %v, want no group or other access", perm)
	}
	if want := filepath.Join(dir, FileName); s.Path() != want {
		t.Errorf("Path() = %s, want %s", s.Path(), want)
	}
	fi, err = os.Stat(s.Path())
	if err != nil {
		t.Fatalf("log file: %v", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("log file mode = %v, want no group or other access", perm)
	}
}

func TestSurvivesReopen(t *testing.T) {
	binary := make([]byte, 10000)
	for i := range binary {
		binary[i] = byte(i * 13)
	}
	records := []struct {
		name    string
		id      string
		version uint64
		data    []byte
		ttl     time.Duration
	}{
		{"text", "cart-1", 1, []byte(`{"items":[1,2,3]}`), time.Hour},
		{"binary", "cart-2", 1<<40 + 3, binary, time.Hour},
		{"empty", "cart-3", 7, []byte{}, time.Hour},
		{"no expiry", "cart-4", 2, []byte("forever"), 0},
	}
	s := openStore(t, t.TempDir(), Options{})
	for _, r := range records {
		mustCAS(t, s, r.id, 0, r.version, r.data, r.ttl)
	}
	// A rewrite and an expired record: the last state of each id counts.
	mustCAS(t, s, "cart-1", 1, 2, []byte("rewritten"), time.Hour)
	mustCAS(t, s, "gone", 0, 1, []byte("x"), 50*time.Millisecond)
	records[0].version, records[0].data = 2, []byte("rewritten")
	time.Sleep(100 * time.Millisecond)

	s = reopen(t, s, Options{})
	mustNotFind(t, s, "gone")
	if got := s.Len(); got != len(records) {
		t.Errorf("%d records after reopen, want %d", got, len(records))
	}
	for _, r := range records {
		t.Run(r.name, func(t *testing.T) {
			mustGet(t, s, r.id, r.version, r.data)
			// The record can be swapped from where it was left.
			mustCAS(t, s, r.id, r.version, r.version+1, []byte("next"), time.Hour)
		})
	}
	s = reopen(t, s, Options{})
	for _, r := range records {
		mustGet(t, s, r.id, r.version+1, []byte("next"))
	}
}

func TestTornEnd(t *testing.T) {
	frame := func(body []byte) []byte { // a frame with a wrong checksum
		return append([]byte{0, 0, 0, byte(len(body)), 1, 2, 3, 4}, body...)
	}
	whole, _ := encodeRecord("late", 1, 0, []byte("never acknowledged"))
	tests := []struct {
		name string
		tail []byte
	}{
		{"half a frame", []byte{0, 0}},
		{"frame without body", whole[:frameLen]},
		{"half a body", whole[:len(whole)-3]},
		{"bad checksum", frame(make([]byte, fixedLen+4))},
		{"length too small", []byte{0, 0, 0, 3, 0, 0, 0, 0, 1, 2, 3}},
		{"length too large", []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}},
		{"zeros", make([]byte, 4096)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, t.TempDir(), Options{})
			mustCAS(t, s, "a", 0, 1, []byte("alpha"), time.Hour)
			mustCAS(t, s, "b", 0, 1, []byte("beta"), time.Hour)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			good := fileSize(t, s.Path())
			f, err := os.OpenFile(s.Path(), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(tt.tail)
			f.Close()

			s = openStore(t, s.dir, Options{})
			mustGet(t, s, "a", 1, []byte("alpha"))
			mustGet(t, s, "b", 1, []byte("beta"))
			mustNotFind(t, s, "late")
			if got := fileSize(t, s.Path()); got != good {
				t.Fatalf("log is %d bytes after reopen, want the torn end cut to %d", got, good)
			}
			if got := s.Cut(); got != int64(len(tt.tail)) {
				t.Errorf("Cut() = %d, want %d", got, len(tt.tail))
			}
			// Writes go on after the cut, and survive.
			mustCAS(t, s, "a", 1, 2, []byte("after"), time.Hour)
			s = reopen(t, s, Options{})
			mustGet(t, s, "a", 2, []byte("after"))
			if got := s.Cut(); got != 0 {
				t.Errorf("Cut() = %d after a clean close, want 0", got)
			}
			mustGet(t, s, "b", 1, []byte("beta"))
		})
	}
}

func TestNotALog(t *testing.T) {
	tests := []struct {
		name    string
		content string
		ok      bool // opens, as an empty store
	}{
		{"empty file", "", true},
		{"header cut short", "totel", true},
		{"other data", "SQLite format 3\x00", false},
		{"short other data", "{}", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(dir, Options{})
			if tt.ok {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer s.Close()
				mustCAS(t, s, "id", 0, 1, []byte("x"), time.Hour)
				if s.Len() != 1 {
					t.Fatalf("Len = %d, want 1", s.Len())
				}
				return
			}
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded on a file that is not a log")
			}
			for _, want := range []string{path, "not a tote session log"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if got, _ := os.ReadFile(path); string(got) != tt.content {
				t.Errorf("the file was changed to %q", got)
			}
		})
	}
}

func TestCompaction(t *testing.T) {
	ctx := context.Background()
	const min = 32 << 10
	s := openStore(t, t.TempDir(), Options{CompactMin: min})

	// Many writers rewrite a few sessions while compactions run; a few
	// records expire and must not come back.
	const workers, ids, rounds = 8, 40, 150
	mustCAS(t, s, "short", 0, 1, []byte("x"), 20*time.Millisecond)
	var wg sync.WaitGroup
	var conflicts atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				id := fmt.Sprint("id-", (w*rounds+r)%ids)
				rec, _, err := s.Get(ctx, id)
				if err != nil {
					t.Error(err)
					return
				}
				data := []byte(fmt.Sprintf("%s v%d %s", id, rec.Version+1, strings.Repeat("z", 100)))
				err = s.CompareAndSwap(ctx, id, rec.Version, rec.Version+1, data, time.Hour)
				if errors.Is(err, session.ErrConflict) {
					conflicts.Add(1)
				} else if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if s.Compactions() == 0 {
		t.Fatalf("no compaction after %d writes (log %d bytes, CompactMin %d)", workers*rounds, fileSize(t, s.Path()), min)
	}
	// Every write got in once, as a version of its id.
	var versions uint64
	want := map[string]session.Record{}
	for i := range ids {
		id := fmt.Sprint("id-", i)
		rec, found, err := s.Get(ctx, id)
		if err != nil || !found {
			t.Fatalf("Get(%s): %v %v", id, found, err)
		}
		versions += rec.Version
		want[id] = rec
	}
	if got := uint64(workers*rounds) - uint64(conflicts.Load()); versions != got {
		t.Fatalf("versions add up to %d, want %d writes", versions, got)
	}
	t.Logf("%d compactions, %d conflicts, log %d bytes", s.Compactions(), conflicts.Load(), fileSize(t, s.Path()))
	if size := fileSize(t, s.Path()); size > 4*min {
		t.Errorf("log is %d bytes, want it compacted below %d", size, 4*min)
	}

	s = reopen(t, s, Options{})
	mustNotFind(t, s, "short")
	for id, rec := range want {
		mustGet(t, s, id, rec.Version, rec.Data)
	}
	if _, err := os.Stat(s.Path() + compactN); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a snapshot file is left behind: %v", err)
	}
}

func TestUnfinishedCompaction(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	mustCAS(t, s, "a", 0, 1, []byte("alpha"), time.Hour)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash while a snapshot was written leaves it half done, beside the
	// whole log.
	if err := os.WriteFile(s.Path()+compactN, []byte("totelog1\x00\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, s.dir, Options{})
	mustGet(t, s, "a", 1, []byte("alpha"))
	if _, err := os.Stat(s.Path() + compactN); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the unfinished snapshot is still there: %v", err)
	}
}

// TestCompactionAfterFailedOne checks that a failed compaction is retried
// once the log has doubled, and that after a successful one the log is
// compacted at CompactMin again, not at twice the size of the failure.
func TestCompactionAfterFailedOne(t *testing.T) {
	const min = 32 << 10
	s := openStore(t, t.TempDir(), Options{CompactMin: min})
	data := []byte(strings.Repeat("d", 1000))
	v := uint64(0)
	write := func() { mustCAS(t, s, "x", v, v+1, data, time.Hour); v++ }

	// The snapshot cannot be created: a directory is in its way.
	if err := os.Mkdir(s.Path()+compactN, 0o700); err != nil {
		t.Fatal(err)
	}
	for s.FailedCompactions() == 0 && s.LogSize() < 2*min {
		write()
	}
	waitFor(t, 2*time.Second, func() bool { return s.FailedCompactions() == 1 })
	if s.Compactions() != 0 {
		t.Fatal("compacted despite the directory")
	}
	failedAt := s.LogSize()
	os.Remove(s.Path() + compactN)

	// Retried once the log has doubled: fine.
	for s.Compactions() == 0 && s.LogSize() < 3*failedAt {
		write()
	}
	waitFor(t, 2*time.Second, func() bool { return s.Compactions() == 1 })
	t.Logf("failed at %d, compacted once, log now %d", failedAt, s.LogSize())

	// The log is tiny again; it should compact again once it passes
	// CompactMin (live is ~1 KB), well before it reaches 2*failedAt.
	for s.Compactions() < 2 && s.LogSize() < min+16<<10 {
		write()
	}
	deadline := time.Now().Add(2 * time.Second)
	for s.Compactions() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s.Compactions() < 2 {
		t.Errorf("log %d bytes (CompactMin %d, live ~1 KB): %d compactions, want 2 or more; the next one waits for %d bytes",
			s.LogSize(), min, s.Compactions(), 2*failedAt)
	}
}

// TestCompactionAfterFailedWrite checks that a compaction in flight when a
// write fails does not replace the log: its snapshot of memory may hold the
// failed write, which must not be there after a restart.
func TestCompactionAfterFailedWrite(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), Options{CompactMin: 4 << 10})
	notShard0 := func(prefix string) string {
		for i := 0; ; i++ {
			if id := fmt.Sprint(prefix, i); s.shard(id) != &s.shards[0] {
				return id
			}
		}
	}
	a, victim := notShard0("a"), notShard0("victim")

	// Hold shard 0 so that the snapshot, once started, waits there.
	s.shards[0].mu.Lock()
	unlocked := false
	defer func() {
		if !unlocked {
			s.shards[0].mu.Unlock()
		}
	}()
	data := []byte(strings.Repeat("d", 200))
	for v := uint64(0); ; v++ {
		mustCAS(t, s, a, v, v+1, data, time.Hour)
		if _, err := os.Stat(s.Path() + compactN); err == nil {
			break // a snapshot has started
		}
		if v > 1000 {
			t.Fatal("no compaction started")
		}
	}

	breakDisk(t, s)
	if err := s.CompareAndSwap(ctx, victim, 0, 1, []byte("never written"), time.Hour); err == nil {
		t.Fatal("CompareAndSwap on a failing disk succeeded")
	}

	s.shards[0].mu.Unlock()
	unlocked = true
	waitFor(t, 2*time.Second, func() bool {
		_, err := os.Stat(s.Path() + compactN)
		return errors.Is(err, os.ErrNotExist)
	})
	time.Sleep(50 * time.Millisecond)
	t.Logf("compactions after the failure: %d", s.Compactions())
	s.Close()

	s = openStore(t, s.dir, Options{})
	if rec, found, _ := s.Get(ctx, victim); found {
		t.Errorf("a write that failed (%q) is in the log after a restart", rec.Data)
	}
}

func TestImportBolt(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, boltName)
	db, err := bolt.Open(dbPath, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	value := func(expires time.Time, version uint64, data string) []byte {
		v := make([]byte, 16, 16+len(data))
		var exp int64
		if !expires.IsZero() {
			exp = expires.UnixNano()
		}
		binary.BigEndian.PutUint64(v[0:8], uint64(exp))
		binary.BigEndian.PutUint64(v[8:16], version)
		return append(v, data...)
	}
	hour := time.Now().Add(time.Hour)
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("sessions"))
		if err != nil {
			return err
		}
		for k, v := range map[string][]byte{
			"live":    value(hour, 3, "cart"),
			"forever": value(time.Time{}, 1, "visits"),
			"expired": value(time.Now().Add(-time.Second), 2, "old"),
			"short":   {1, 2, 3},
			"v0":      value(hour, 0, "bad"),
		} {
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s := openStore(t, dir, Options{})
	if s.Imported() != 2 {
		t.Errorf("Imported() = %d, want 2", s.Imported())
	}
	mustGet(t, s, "live", 3, []byte("cart"))
	mustGet(t, s, "forever", 1, []byte("visits"))
	for _, id := range []string{"expired", "short", "v0"} {
		mustNotFind(t, s, id)
	}
	if _, err := os.Stat(dbPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there after the import: %v", dbPath, err)
	}
	if _, err := os.Stat(dbPath + ".imported"); err != nil {
		t.Errorf("the imported database was not kept: %v", err)
	}

	// Imported once: a later open reads the log, and the sessions go on.
	mustCAS(t, s, "live", 3, 4, []byte("cart+1"), time.Hour)
	s = reopen(t, s, Options{})
	if s.Imported() != 0 {
		t.Errorf("second open imported %d sessions", s.Imported())
	}
	mustGet(t, s, "live", 4, []byte("cart+1"))
}

func TestWriteFailure(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), Options{})
	mustCAS(t, s, "kept", 0, 1, []byte("durable"), time.Hour)

	breakDisk(t, s)
	err := s.CompareAndSwap(ctx, "kept", 1, 2, []byte("lost"), time.Hour)
	if err == nil || errors.Is(err, session.ErrConflict) {
		t.Fatalf("CompareAndSwap on a failing disk: err = %v, want a system error", err)
	}
	// The store stops: nothing it holds in memory is served any more.
	if _, _, err := s.Get(ctx, "kept"); err == nil {
		t.Error("Get after a failed write succeeded")
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping after a failed write succeeded")
	}
	if err := s.CompareAndSwap(ctx, "other", 0, 1, []byte("x"), time.Hour); err == nil {
		t.Error("CompareAndSwap after a failed write succeeded")
	}
	if err := s.Close(); err == nil {
		t.Error("Close after a failed write reported no error")
	}

	// A restart serves what was durable.
	s = openStore(t, s.dir, Options{})
	mustGet(t, s, "kept", 1, []byte("durable"))
	mustNotFind(t, s, "other")
}

// helperEnv names the variable that turns TestHelperProcess into the child
// of TestUncleanStop: its value is the data directory.
const helperEnv = "TOTE_FILESTORE_HELPER_DIR"

// helperRecords is how many records the child acknowledges before "ready".
const helperRecords = 200

func helperID(i int) string { return fmt.Sprintf("acked-%04d", i) }

func helperData(i int) []byte { return []byte(fmt.Sprintf("payload %d %s", i, strings.Repeat("x", i))) }

// TestHelperProcess is not a test: it is the child process of
// TestUncleanStop, and returns at once unless started by it.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		return
	}
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "helper: "+format+"\n", args...)
		os.Exit(2)
	}
	// Never outlive a parent that failed to kill us.
	time.AfterFunc(30*time.Second, func() { fail("not killed within 30s") })

	s, err := Open(dir, Options{SweepEvery: 20 * time.Millisecond, CompactMin: 64 << 10})
	if err != nil {
		fail("%v", err)
	}
	ctx := context.Background()
	const workers = 16
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < helperRecords; i += workers {
				if err := s.CompareAndSwap(ctx, helperID(i), 0, uint64(i+1), helperData(i), time.Hour); err != nil {
					fail("write %d: %v", i, err)
				}
			}
		}()
	}
	wg.Wait()
	fmt.Println("ready")
	go func() {
		for {
			fmt.Println("compactions", s.Compactions())
			time.Sleep(10 * time.Millisecond)
		}
	}()

	// Keep writing, and rewriting, until killed, so that the kill lands in
	// the middle of writes and, with a small CompactMin, of compactions.
	var n atomic.Int64
	for range workers {
		go func() {
			for {
				i := n.Add(1)
				id := fmt.Sprintf("more-%d", i%500)
				rec, _, err := s.Get(ctx, id)
				if err != nil {
					fail("get %s: %v", id, err)
				}
				err = s.CompareAndSwap(ctx, id, rec.Version, rec.Version+1, helperData(int(i%300)), time.Hour)
				if err != nil && !errors.Is(err, session.ErrConflict) {
					fail("write %s: %v", id, err)
				}
			}
		}()
	}
	select {}
}

func TestUncleanStop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	ready := make(chan struct{})
	compacted := make(chan struct{}) // closed when the child has compacted twice
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
				break
			}
		}
		for sc.Scan() {
			var n int
			if _, err := fmt.Sscanf(sc.Text(), "compactions %d", &n); err == nil && n >= 2 {
				close(compacted)
				break
			}
		}
		io.Copy(io.Discard, stdout) // drain until the child dies
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })

	select {
	case <-ready:
	case err := <-exited:
		t.Fatalf("child exited before ready: %v\n%s", err, stderr.Bytes())
	case <-time.After(20 * time.Second):
		t.Fatalf("child not ready within 20s\n%s", stderr.Bytes())
	}

	// While the child runs, the database is taken: a second process cannot
	// open it, and is told so.
	if s, err := Open(dir, Options{}); err == nil {
		s.Close()
		t.Fatal("Open succeeded while another process holds the database")
	} else if !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("Open while held: %v, want an error saying it is in use", err)
	}

	select {
	case <-compacted:
	case err := <-exited:
		t.Fatalf("child exited: %v\n%s", err, stderr.Bytes())
	case <-time.After(20 * time.Second):
		t.Fatalf("child did not compact its log twice within 20s\n%s", stderr.Bytes())
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred cleanup runs
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Exited() {
			t.Fatalf("child ended with %v, want killed by a signal\n%s", err, stderr.Bytes())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("child not dead 10s after SIGKILL")
	}

	s := openStore(t, dir, Options{})
	for i := range helperRecords {
		mustGet(t, s, helperID(i), uint64(i+1), helperData(i))
	}
	// Whatever else the child got in is readable too.
	more := s.Len() - helperRecords
	for i := range 500 {
		id := fmt.Sprintf("more-%d", i)
		if _, _, err := s.Get(context.Background(), id); err != nil {
			t.Fatalf("Get(%s): %v", id, err)
		}
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping after reopen: %v", err)
	}
	t.Logf("%d acknowledged records intact, %d more written before the kill", helperRecords, more)
}

func TestSweep(t *testing.T) {
	const short = 200 * time.Millisecond

	t.Run("explicit sweep drops expired records and keeps live ones", func(t *testing.T) {
		s := openStore(t, t.TempDir(), Options{SweepEvery: time.Hour})
		for i := range 5 {
			mustCAS(t, s, fmt.Sprint("short-", i), 0, 1, []byte("x"), short)
		}
		mustCAS(t, s, "live", 0, 1, []byte("keep"), time.Hour)
		mustCAS(t, s, "forever", 0, 1, []byte("keep"), 0)
		if n := s.Sweep(); n != 0 {
			t.Fatalf("Sweep before expiry = %d, want 0", n)
		}
		time.Sleep(short + 100*time.Millisecond)
		mustNotFind(t, s, "short-0") // expired, though not yet swept
		if got := s.Len(); got != 7 {
			t.Fatalf("%d records before the sweep, want 7", got)
		}
		if n := s.Sweep(); n != 5 {
			t.Fatalf("Sweep = %d, want 5", n)
		}
		if got := s.Len(); got != 2 {
			t.Fatalf("%d records after the sweep, want 2", got)
		}
		mustGet(t, s, "live", 1, []byte("keep"))
		mustGet(t, s, "forever", 1, []byte("keep"))
		if live, want := s.live.Load(), recordSize("live", []byte("keep"))+recordSize("forever", []byte("keep")); live != want {
			t.Errorf("live bytes = %d after the sweep, want %d", live, want)
		}
	})

	t.Run("background sweeper purges without a call", func(t *testing.T) {
		s := openStore(t, t.TempDir(), Options{SweepEvery: 50 * time.Millisecond})
		for i := range 5 {
			mustCAS(t, s, fmt.Sprint("short-", i), 0, 1, []byte("x"), short)
		}
		mustCAS(t, s, "live", 0, 1, []byte("keep"), time.Hour)
		waitFor(t, 3*time.Second, func() bool { return s.Len() == 1 })
		mustGet(t, s, "live", 1, []byte("keep"))
	})
}

func TestOpenWhileOpen(t *testing.T) {
	dir := t.TempDir()
	openStore(t, dir, Options{})
	start := time.Now()
	s, err := Open(dir, Options{})
	elapsed := time.Since(start)
	if err == nil {
		s.Close()
		t.Fatal("second Open of an open database succeeded")
	}
	if elapsed > 1500*time.Millisecond {
		t.Errorf("second Open took %v, want at most 1.5s", elapsed)
	}
	path := filepath.Join(dir, FileName)
	for _, want := range []string{path, "in use by another process"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestDataIsCopied(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), Options{})
	buf := []byte("original")
	mustCAS(t, s, "id", 0, 1, buf, time.Hour)
	copy(buf, "CLOBBER!") // the caller reuses its buffer
	mustGet(t, s, "id", 1, []byte("original"))
	rec, _, _ := s.Get(ctx, "id")
	rec.Data[0] = 'X' // the caller scribbles on what Get returned
	mustGet(t, s, "id", 1, []byte("original"))
}

func TestInvalidArguments(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		want error // nil: any error
	}{
		{"Get with canceled context", func() error { _, _, err := s.Get(canceled, "id"); return err }, context.Canceled},
		{"CompareAndSwap with canceled context", func() error { return s.CompareAndSwap(canceled, "id", 0, 1, nil, time.Hour) }, context.Canceled},
		{"Ping with canceled context", func() error { return s.Ping(canceled) }, context.Canceled},
		{"empty id", func() error { return s.CompareAndSwap(ctx, "", 0, 1, nil, time.Hour) }, nil},
		{"next version 0", func() error { return s.CompareAndSwap(ctx, "id", 0, 0, nil, time.Hour) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || errors.Is(err, session.ErrConflict) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if got := s.Len(); got != 0 {
		t.Fatalf("%d keys stored by refused calls, want 0", got)
	}
}

func TestClose(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), Options{SweepEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	mustCAS(t, s, "id", 0, 1, []byte("x"), time.Hour)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-s.swept:
	default:
		t.Fatal("sweeper still running after Close")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping after Close succeeded")
	}
	if _, _, err := s.Get(ctx, "id"); err == nil {
		t.Error("Get after Close succeeded")
	}
	if err := s.CompareAndSwap(ctx, "id", 1, 2, nil, time.Hour); err == nil || errors.Is(err, session.ErrConflict) {
		t.Errorf("CompareAndSwap after Close: err = %v, want a system error", err)
	}
}

// BenchmarkCompareAndSwapParallel measures writes from 64 concurrent
// connections, which the flusher coalesces into shared fsyncs.
func BenchmarkCompareAndSwapParallel(b *testing.B) {
	ctx := context.Background()
	s := openStore(b, b.TempDir(), Options{})
	var conn atomic.Int64
	data := make([]byte, 512)
	b.SetParallelism(32) // 64 goroutines on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprint("bench-", conn.Add(1))
		var version uint64
		for pb.Next() {
			if err := s.CompareAndSwap(ctx, id, version, version+1, data, time.Hour); err != nil {
				b.Error(err)
				return
			}
			version++
		}
	})
}

// BenchmarkGetParallel measures reads from 64 concurrent connections.
func BenchmarkGetParallel(b *testing.B) {
	ctx := context.Background()
	s := openStore(b, b.TempDir(), Options{})
	const ids = 1000
	for i := range ids {
		mustCAS(b, s, fmt.Sprint("bench-", i), 0, 1, make([]byte, 512), time.Hour)
	}
	var conn atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprint("bench-", conn.Add(1)%ids)
		for pb.Next() {
			if _, found, err := s.Get(ctx, id); !found || err != nil {
				b.Errorf("Get: found=%v err=%v", found, err)
				return
			}
		}
	})
}

// BenchmarkOpen measures replaying a log of 100,000 sessions of 200 bytes,
// and reports what each session costs in memory once replayed.
func BenchmarkOpen(b *testing.B) {
	const sessions = 100_000
	dir := b.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte("c"), 200)
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < sessions; i += 64 {
				if err := s.CompareAndSwap(context.Background(), fmt.Sprintf("%043d", i), 0, 1, data, time.Hour); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var heap uint64
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap = after.HeapAlloc - before.HeapAlloc
		if s.Len() != sessions {
			b.Fatalf("Len = %d after replay, want %d", s.Len(), sessions)
		}
		s.Close()
	}
	b.ReportMetric(float64(heap)/sessions, "heap-bytes/session")
}
