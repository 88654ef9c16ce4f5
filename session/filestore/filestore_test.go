package filestore

import (
	"bufio"
	"bytes"
	"context"
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
	"syscall"
	"testing"
	"time"

	"tote/session"
	"tote/session/filestore/tmpfstest"
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
	if err := s.CompareAndSwap(context.Background(), id, old, session.Write{Version: next, Data: data, TTL: ttl}); err != nil {
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

// errBrokenDisk is the failure of every write to a disk broken by breakDisk.
var errBrokenDisk = fmt.Errorf("injected failure: %w", syscall.EIO)

// breakDisk makes every later write of s's log fail with errBrokenDisk, as
// on a failing disk, until repair is called. It does not touch s.f, which
// the flusher owns: the failure comes from the test hook that write runs
// first. Reads of the log (replay) keep working, as on a disk that fails
// only writes.
func breakDisk(tb testing.TB, s *Store) (repair func()) {
	tb.Helper()
	var broken atomic.Bool
	broken.Store(true)
	fail := func() error {
		if broken.Load() {
			return errBrokenDisk
		}
		return nil
	}
	s.testWrite.Store(&fail)
	return func() { broken.Store(false) }
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
		{"text", "session:cart-1", 1, []byte(`{"items":[1,2,3]}`), time.Hour},
		{"binary", "session:cart-2", 1<<40 + 3, binary, time.Hour},
		{"empty", "session:cart-3", 7, []byte{}, time.Hour},
		{"no expiry", "account:cart-4", 2, []byte("forever"), 0},
	}
	s := openStore(t, t.TempDir(), Options{})
	for _, r := range records {
		mustCAS(t, s, r.id, 0, r.version, r.data, r.ttl)
	}
	// A rewrite and an expired record: the last state of each id counts.
	mustCAS(t, s, "session:cart-1", 1, 2, []byte("rewritten"), time.Hour)
	mustCAS(t, s, "session:gone", 0, 1, []byte("x"), 50*time.Millisecond)
	records[0].version, records[0].data = 2, []byte("rewritten")
	time.Sleep(100 * time.Millisecond)

	s = reopen(t, s, Options{})
	mustNotFind(t, s, "session:gone")
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
	whole, _ := encodeRecord("session:late", 1, 0, []byte("never acknowledged"))
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
			mustCAS(t, s, "session:a", 0, 1, []byte("alpha"), time.Hour)
			mustCAS(t, s, "session:b", 0, 1, []byte("beta"), time.Hour)
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
			mustGet(t, s, "session:a", 1, []byte("alpha"))
			mustGet(t, s, "session:b", 1, []byte("beta"))
			mustNotFind(t, s, "session:late")
			if got := fileSize(t, s.Path()); got != good {
				t.Fatalf("log is %d bytes after reopen, want the torn end cut to %d", got, good)
			}
			if got := s.Cut(); got != int64(len(tt.tail)) {
				t.Errorf("Cut() = %d, want %d", got, len(tt.tail))
			}
			// Writes go on after the cut, and survive.
			mustCAS(t, s, "session:a", 1, 2, []byte("after"), time.Hour)
			s = reopen(t, s, Options{})
			mustGet(t, s, "session:a", 2, []byte("after"))
			if got := s.Cut(); got != 0 {
				t.Errorf("Cut() = %d after a clean close, want 0", got)
			}
			mustGet(t, s, "session:b", 1, []byte("beta"))
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
	mustCAS(t, s, "session:short", 0, 1, []byte("x"), 20*time.Millisecond)
	var wg sync.WaitGroup
	var conflicts atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				id := fmt.Sprint("session:id-", (w*rounds+r)%ids)
				rec, _, err := s.Get(ctx, id)
				if err != nil {
					t.Error(err)
					return
				}
				data := []byte(fmt.Sprintf("%s v%d %s", id, rec.Version+1, strings.Repeat("z", 100)))
				err = s.CompareAndSwap(ctx, id, rec.Version, session.Write{Version: rec.Version + 1, Data: data, TTL: time.Hour})
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
		id := fmt.Sprint("session:id-", i)
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
	mustNotFind(t, s, "session:short")
	for id, rec := range want {
		mustGet(t, s, id, rec.Version, rec.Data)
	}
	if _, err := os.Stat(s.Path() + compactSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a snapshot file is left behind: %v", err)
	}
}

func TestUnfinishedCompaction(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	mustCAS(t, s, "session:a", 0, 1, []byte("alpha"), time.Hour)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash while a snapshot was written leaves it half done, beside the
	// whole log.
	if err := os.WriteFile(s.Path()+compactSuffix, []byte("totelog1\x00\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, s.dir, Options{})
	mustGet(t, s, "session:a", 1, []byte("alpha"))
	if _, err := os.Stat(s.Path() + compactSuffix); !errors.Is(err, os.ErrNotExist) {
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
	if err := os.Mkdir(s.Path()+compactSuffix, 0o700); err != nil {
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
	os.Remove(s.Path() + compactSuffix)

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

// holdSnapshot makes the next snapshot of s wait, once it has started
// (created its file, taken the memory it copies), until release is called;
// started is closed when it waits. Cleanup releases it.
func holdSnapshot(tb testing.TB, s *Store) (started <-chan struct{}, release func()) {
	tb.Helper()
	st, rel := make(chan struct{}), make(chan struct{})
	var once, relOnce sync.Once
	hold := func() { once.Do(func() { close(st); <-rel }) }
	s.testSnapshot.Store(&hold)
	release = func() { relOnce.Do(func() { close(rel) }) }
	tb.Cleanup(release)
	return st, release
}

// writeUntilSnapshot rewrites key in s until a snapshot has started, and
// returns the last version written.
func writeUntilSnapshot(tb testing.TB, s *Store, key string, started <-chan struct{}) uint64 {
	tb.Helper()
	data := []byte(strings.Repeat("d", 200))
	for v := uint64(0); ; v++ {
		select {
		case <-started:
			return v
		default:
		}
		if v > 2000 {
			tb.Fatalf("no compaction started after %d writes (log %d bytes)", v, s.LogSize())
		}
		mustCAS(tb, s, key, v, v+1, data, time.Hour)
	}
}

// TestCompactionAfterFailedWrite checks that a compaction in flight when a
// write fails does not replace the log: its snapshot of memory may hold the
// failed write, which must not be there after a restart.
func TestCompactionAfterFailedWrite(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), Options{CompactMin: 4 << 10})
	started, release := holdSnapshot(t, s)
	const a, victim = "session:a", "session:victim"
	last := writeUntilSnapshot(t, s, a, started)

	// The snapshot waits with the memory it copies in hand; the failed
	// write goes into that memory before the failure is known.
	breakDisk(t, s)
	if err := s.CompareAndSwap(ctx, victim, 0, session.Write{Version: 1, Data: []byte("never written"), TTL: time.Hour}); err == nil {
		t.Fatal("CompareAndSwap on a failing disk succeeded")
	}
	mustNotFind(t, s, victim)
	release()
	waitFor(t, 5*time.Second, func() bool { return s.FailedCompactions() == 1 })
	if s.Compactions() != 0 {
		t.Errorf("%d compactions finished after the failure, want 0", s.Compactions())
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openStore(t, s.dir, Options{})
	mustNotFind(t, s, victim)
	mustGet(t, s, a, last, []byte(strings.Repeat("d", 200)))
	if _, err := os.Stat(s.Path() + compactSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the abandoned snapshot is still there: %v", err)
	}
}

// TestCompactionBeforeFailedWrite checks the other order: a snapshot that
// holds a change appended but not yet written when the snapshot is done,
// whose write then fails, must not become the log. The flusher then has
// both the finished snapshot and that write to handle; whichever it takes
// first, the change must not survive. Several rounds, since the order is
// the flusher's choice.
func TestCompactionBeforeFailedWrite(t *testing.T) {
	for round := range 8 {
		t.Run(fmt.Sprint("round-", round), func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, t.TempDir(), Options{CompactMin: 4 << 10})
			started, release := holdSnapshot(t, s)
			const a, first, victim = "session:a", "session:first", "session:victim"
			writeUntilSnapshot(t, s, a, started)

			// Hold the flusher in the write of first's batch.
			inWrite, proceed := make(chan struct{}), make(chan struct{})
			var broken atomic.Bool
			var once, proceedOnce sync.Once
			hook := func() error {
				held := false
				once.Do(func() { held = true; close(inWrite); <-proceed })
				if !held && broken.Load() {
					return errBrokenDisk
				}
				return nil
			}
			s.testWrite.Store(&hook)
			t.Cleanup(func() { proceedOnce.Do(func() { close(proceed) }) })
			firstErr, victimErr := make(chan error, 1), make(chan error, 1)
			go func() {
				firstErr <- s.CompareAndSwap(ctx, first, 0, session.Write{Version: 1, Data: []byte("durable"), TTL: time.Hour})
			}()
			<-inWrite
			// victim is applied to memory and waits to be written.
			go func() {
				victimErr <- s.CompareAndSwap(ctx, victim, 0, session.Write{Version: 1, Data: []byte("never written"), TTL: time.Hour})
			}()
			waitFor(t, 5*time.Second, func() bool { _, found, _ := s.Get(ctx, victim); return found })
			// The snapshot copies memory, victim included, and is done.
			compacting := s.compacting // set before the snapshot started; the flusher is held
			release()
			waitFor(t, 5*time.Second, func() bool { return len(compacting) == 1 })
			// first's write succeeds; the next one, victim's, fails.
			broken.Store(true)
			proceedOnce.Do(func() { close(proceed) })
			if err := <-firstErr; err != nil {
				t.Fatalf("first write: %v", err)
			}
			if err := <-victimErr; err == nil {
				t.Fatal("the write that failed was acknowledged")
			}
			waitFor(t, 5*time.Second, func() bool { return s.Compactions()+s.FailedCompactions() == 1 })
			mustNotFind(t, s, victim)
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			s = openStore(t, s.dir, Options{})
			mustNotFind(t, s, victim)
			mustGet(t, s, first, 1, []byte("durable"))
		})
	}
}

// TestWriteFailure checks what a store does while its disk fails: the
// failed change is answered with an error and never served, reads go on,
// writes are refused, and a restart serves what was acknowledged.
func TestWriteFailure(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), Options{})
	mustCAS(t, s, "session:kept", 0, 1, []byte("durable"), time.Hour)
	mustCAS(t, s, "account:a", 0, 1, []byte("account"), 0)

	breakDisk(t, s)
	err := s.CompareAndSwap(ctx, "session:kept", 1, session.Write{Version: 2, Data: []byte("lost"), TTL: time.Hour})
	if !errors.Is(err, errBrokenDisk) {
		t.Fatalf("CompareAndSwap on a failing disk: err = %v, want %v", err, errBrokenDisk)
	}
	if s.Failures() != 1 {
		t.Errorf("Failures() = %d, want 1", s.Failures())
	}
	// Reads are served from memory, without the failed change.
	mustGet(t, s, "session:kept", 1, []byte("durable"))
	mustGet(t, s, "account:a", 1, []byte("account"))
	refused := []struct {
		name string
		call func() error
	}{
		{"Ping", func() error { return s.Ping(ctx) }},
		{"create", func() error {
			return s.CompareAndSwap(ctx, "session:other", 0, session.Write{Version: 1, Data: []byte("x"), TTL: time.Hour})
		}},
		{"swap", func() error {
			return s.CompareAndSwap(ctx, "session:kept", 1, session.Write{Version: 3, Data: []byte("x"), TTL: time.Hour})
		}},
		{"Delete", func() error { return s.Delete(ctx, "account:a", 0) }},
	}
	for _, tt := range refused {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			if err := tt.call(); err == nil || errors.Is(err, session.ErrConflict) {
				t.Fatalf("err = %v, want the failure", err)
			}
		})
	}
	mustNotFind(t, s, "session:other")
	mustGet(t, s, "account:a", 1, []byte("account"))
	// The failure was reported when it happened; closing is fine.
	if err := s.Close(); err != nil {
		t.Errorf("Close after a failed write: %v, want nil", err)
	}

	// A restart serves what was durable.
	s = openStore(t, s.dir, Options{})
	mustGet(t, s, "session:kept", 1, []byte("durable"))
	mustGet(t, s, "account:a", 1, []byte("account"))
	mustNotFind(t, s, "session:other")
}

// helperEnv names the variable that turns TestHelperProcess into the child
// of TestUncleanStop: its value is the data directory.
const helperEnv = "TOTE_FILESTORE_HELPER_DIR"

// helperRecords is how many records the child acknowledges before "ready".
const helperRecords = 200

func helperID(i int) string { return fmt.Sprintf("session:acked-%04d", i) }

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
				if err := s.CompareAndSwap(ctx, helperID(i), 0, session.Write{Version: uint64(i + 1), Data: helperData(i), TTL: time.Hour, Evictable: i%2 == 0}); err != nil {
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
				id := fmt.Sprintf("session:more-%d", i%500)
				rec, _, err := s.Get(ctx, id)
				if err != nil {
					fail("get %s: %v", id, err)
				}
				err = s.CompareAndSwap(ctx, id, rec.Version, session.Write{Version: rec.Version + 1, Data: helperData(int(i % 300)), TTL: time.Hour})
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
		id := fmt.Sprintf("session:more-%d", i)
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
		live1, _ := encodeRecord("live", 1, 0, []byte("keep"))
		live2, _ := encodeRecord("forever", 1, 0, []byte("keep"))
		if live, want := s.live(), int64(len(live1)+len(live2)); live != want {
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
		{"CompareAndSwap with canceled context", func() error {
			return s.CompareAndSwap(canceled, "id", 0, session.Write{Version: 1, Data: nil, TTL: time.Hour})
		}, context.Canceled},
		{"Delete with canceled context", func() error { return s.Delete(canceled, "id", 0) }, context.Canceled},
		{"Ping with canceled context", func() error { return s.Ping(canceled) }, context.Canceled},
		{"key too long", func() error {
			return s.CompareAndSwap(ctx, strings.Repeat("k", maxKey+1), 0, session.Write{Version: 1, TTL: time.Hour})
		}, nil},
		{"empty id", func() error {
			return s.CompareAndSwap(ctx, "", 0, session.Write{Version: 1, Data: nil, TTL: time.Hour})
		}, nil},
		{"next version 0", func() error {
			return s.CompareAndSwap(ctx, "id", 0, session.Write{Version: 0, Data: nil, TTL: time.Hour})
		}, nil},
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
	if err := s.CompareAndSwap(ctx, "id", 1, session.Write{Version: 2, Data: nil, TTL: time.Hour}); err == nil || errors.Is(err, session.ErrConflict) {
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
			if err := s.CompareAndSwap(ctx, id, version, session.Write{Version: version + 1, Data: data, TTL: time.Hour}); err != nil {
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
				if err := s.CompareAndSwap(context.Background(), fmt.Sprintf("session:%043d", i), 0, session.Write{Version: 1, Data: data, TTL: time.Hour}); err != nil {
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

// TestCap checks the cap across a reopen, and across a compaction: an
// evicted record stays gone, and a record that was evictable still is.
func TestCap(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		compact bool
	}{
		{"reopened", false},
		{"compacted and reopened", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{Max: 3, CompactMin: 4 << 10}
			s := openStore(t, t.TempDir(), o)
			create := func(key string, ttl time.Duration, evictable bool) error {
				return s.CompareAndSwap(ctx, key, 0, session.Write{Version: 1, Data: []byte(key), TTL: ttl, Evictable: evictable})
			}
			for _, c := range []struct {
				key       string
				ttl       time.Duration
				evictable bool
			}{
				{"account:a", 0, false},
				{"session:soon", time.Minute, true},
				{"session:later", time.Hour, true},
				{"session:cart", time.Hour, false}, // evicts session:soon
			} {
				if err := create(c.key, c.ttl, c.evictable); err != nil {
					t.Fatalf("create %s: %v", c.key, err)
				}
			}
			mustNotFind(t, s, "session:soon")
			if s.Evicted() != 1 || s.Len() != 3 {
				t.Fatalf("Evicted, Len = %d, %d; want 1, 3", s.Evicted(), s.Len())
			}
			last := uint64(1)
			if tt.compact {
				data := []byte(strings.Repeat("a", 200))
				for s.Compactions() == 0 {
					if last > 2000 {
						t.Fatalf("no compaction after %d writes", last)
					}
					mustCAS(t, s, "account:a", last, last+1, data, 0)
					last++
				}
			}

			s = reopen(t, s, o)
			mustNotFind(t, s, "session:soon")
			mustGet(t, s, "session:later", 1, []byte("session:later"))
			if s.Len() != 3 {
				t.Fatalf("Len = %d after reopen, want 3", s.Len())
			}
			// session:later is still evictable: it makes room.
			if err := create("session:new", time.Hour, false); err != nil {
				t.Fatalf("create at the cap after reopen: %v", err)
			}
			mustNotFind(t, s, "session:later")
			if s.Evicted() != 1 {
				t.Errorf("Evicted = %d, want 1", s.Evicted())
			}
			// Nothing else is evictable.
			if err := create("session:more", time.Hour, true); !errors.Is(err, session.ErrFull) {
				t.Fatalf("create in a full store: err = %v, want ErrFull", err)
			}

			s = reopen(t, s, o)
			mustNotFind(t, s, "session:later")
			mustNotFind(t, s, "session:more")
			mustGet(t, s, "session:new", 1, []byte("session:new"))
			mustGet(t, s, "session:cart", 1, []byte("session:cart"))
			if rec, found, err := s.Get(ctx, "account:a"); err != nil || !found || rec.Version != last {
				t.Fatalf("account:a = %+v, %v, %v; want version %d", rec, found, err, last)
			}
			if s.Len() != 3 {
				t.Fatalf("Len = %d after reopen, want 3", s.Len())
			}
		})
	}
}

// TestLegacyKeys checks that records written by versions that keyed a
// session by its bare id are read under "session:"+id.
func TestLegacyKeys(t *testing.T) {
	ctx := context.Background()
	hour := time.Now().Add(time.Hour).UnixNano()
	log := append([]byte(nil), magic...)
	add := func(key string, version uint64, expires int64, data string) {
		log, _ = appendRecord(log, key, version, expires, []byte(data))
	}
	add("abc", 3, hour, "bare id")
	add("forever", 2, 0, "no expiry")
	add("gone", 1, hour, "deleted below")
	add("gone", 0, 0, "")
	add("rewritten", 1, hour, "old")
	add("session:rewritten", 2, hour, "keyed")
	add("account:bob", 1, 0, "account")
	add("expired", 1, time.Now().Add(-time.Second).UnixNano(), "old")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), log, 0o600); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir, Options{})
	tests := []struct {
		key     string
		version uint64 // 0: not found
		data    string
	}{
		{"session:abc", 3, "bare id"},
		{"abc", 0, ""},
		{"session:forever", 2, "no expiry"},
		{"session:gone", 0, ""},
		{"session:rewritten", 2, "keyed"},
		{"account:bob", 1, "account"},
		{"session:account:bob", 0, ""},
		{"session:expired", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if tt.version == 0 {
				mustNotFind(t, s, tt.key)
			} else {
				mustGet(t, s, tt.key, tt.version, []byte(tt.data))
			}
		})
	}
	if s.Len() != 4 {
		t.Errorf("Len = %d, want 4", s.Len())
	}
	// The session goes on under its key, and stays there.
	mustCAS(t, s, "session:abc", 3, 4, []byte("keyed now"), time.Hour)
	if err := s.CompareAndSwap(ctx, "session:abc", 3, session.Write{Version: 5, Data: []byte("stale"), TTL: time.Hour}); !errors.Is(err, session.ErrConflict) {
		t.Fatalf("stale swap: err = %v, want ErrConflict", err)
	}
	s = reopen(t, s, Options{})
	mustGet(t, s, "session:abc", 4, []byte("keyed now"))
}

// TestDeleteDurable checks that deletions survive a reopen, and that a
// deleted record is not written back after one.
func TestDeleteDurable(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), Options{})
	mustCAS(t, s, "session:a", 0, 1, []byte("a"), time.Hour)
	mustCAS(t, s, "session:b", 0, 1, []byte("b"), time.Hour)
	mustCAS(t, s, "session:b", 1, 2, []byte("b2"), time.Hour)
	mustCAS(t, s, "account:c", 0, 1, []byte("c"), 0)
	mustCAS(t, s, "session:d", 0, 1, []byte("d"), time.Hour)
	deletes := []struct {
		key     string
		version uint64
		wantErr error
	}{
		{"session:a", 1, nil},
		{"session:b", 0, nil},
		{"account:c", 1, nil},
		{"session:d", 9, session.ErrConflict},
		{"session:missing", 0, nil},
		{"session:missing", 1, session.ErrConflict},
	}
	for _, d := range deletes {
		if err := s.Delete(ctx, d.key, d.version); !errors.Is(err, d.wantErr) || (err != nil) != (d.wantErr != nil) {
			t.Fatalf("Delete(%s, %d) = %v, want %v", d.key, d.version, err, d.wantErr)
		}
	}
	s = reopen(t, s, Options{})
	for _, key := range []string{"session:a", "session:b", "account:c", "session:missing"} {
		mustNotFind(t, s, key)
	}
	mustGet(t, s, "session:d", 1, []byte("d"))
	if s.Len() != 1 {
		t.Fatalf("Len = %d after reopen, want 1", s.Len())
	}
	// No resurrection after a restart either; a create works.
	if err := s.CompareAndSwap(ctx, "session:b", 2, session.Write{Version: 3, Data: []byte("back"), TTL: time.Hour}); !errors.Is(err, session.ErrConflict) {
		t.Fatalf("swap from the deleted version: err = %v, want ErrConflict", err)
	}
	mustCAS(t, s, "session:b", 0, 1, []byte("new"), time.Hour)
	s = reopen(t, s, Options{})
	mustGet(t, s, "session:b", 1, []byte("new"))
	mustNotFind(t, s, "session:a")
}

// TestOutage fails a write, checks the store while it refuses writes, then
// frees the disk and checks that it takes writes again without a reopen,
// and that a restart keeps every acknowledged write and no failed one.
func TestOutage(t *testing.T) {
	tests := []struct {
		name string
		// fill opens a store, writes until a write fails, and returns the
		// store, the records acknowledged, the key whose write failed, and
		// what frees the disk.
		fill func(t *testing.T) (s *Store, acked map[string][]byte, failed string, fix func())
	}{
		{"injected failure", fillInjected},
		{"full tmpfs", fillTmpfs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, acked, failed, fix := tt.fill(t)
			if s.Failures() < 1 {
				t.Fatalf("Failures() = %d after a failed write", s.Failures())
			}

			// While writes are refused, reads serve every acknowledged
			// record and not the failed one.
			for key, data := range acked {
				mustGet(t, s, key, 1, data)
			}
			mustNotFind(t, s, failed)
			if err := s.Ping(ctx); err == nil {
				t.Error("Ping after a failed write succeeded")
			}
			if err := s.CompareAndSwap(ctx, "session:refused", 0, session.Write{Version: 1, Data: []byte("x"), TTL: time.Hour}); err == nil {
				t.Fatal("a write after the failure succeeded before the disk was freed")
			}
			if s.Recoveries() != 0 {
				t.Fatalf("Recoveries() = %d before the disk was freed", s.Recoveries())
			}

			fix()
			waitFor(t, 5*time.Second, func() bool { return s.Ping(ctx) == nil })
			if s.Recoveries() < 1 {
				t.Errorf("Recoveries() = %d after the store took writes again", s.Recoveries())
			}
			mustNotFind(t, s, "session:refused")
			mustCAS(t, s, "session:after", 0, 1, []byte("after"), time.Hour)
			acked["session:after"] = []byte("after")
			for key, data := range acked {
				mustGet(t, s, key, 1, data)
			}
			mustNotFind(t, s, failed)

			s = reopen(t, s, Options{})
			for key, data := range acked {
				mustGet(t, s, key, 1, data)
			}
			mustNotFind(t, s, failed)
			mustNotFind(t, s, "session:refused")
			if s.Len() != len(acked) {
				t.Errorf("Len = %d after reopen, want the %d acknowledged records", s.Len(), len(acked))
			}
		})
	}
}

// fillInjected writes a few records, breaks the disk with breakDisk, and
// writes one that fails.
func fillInjected(t *testing.T) (*Store, map[string][]byte, string, func()) {
	t.Helper()
	s := openStore(t, t.TempDir(), Options{})
	acked := map[string][]byte{}
	for i := range 20 {
		key := fmt.Sprintf("session:r-%02d", i)
		acked[key] = []byte(fmt.Sprint("data of ", key))
		mustCAS(t, s, key, 0, 1, acked[key], time.Hour)
	}
	repair := breakDisk(t, s)
	const failed = "session:failed"
	err := s.CompareAndSwap(context.Background(), failed, 0, session.Write{Version: 1, Data: []byte("x"), TTL: time.Hour})
	if !errors.Is(err, errBrokenDisk) {
		t.Fatalf("write on a broken disk: err = %v, want %v", err, errBrokenDisk)
	}
	return s, acked, failed, repair
}

// fillTmpfs opens a store on a small tmpfs that also holds a filler file,
// and writes records until the disk is full; fix removes the filler. Where
// tmpfs cannot be mounted (not root) it falls back to fillInjected, unless
// CI=true and the process is root.
func fillTmpfs(t *testing.T) (*Store, map[string][]byte, string, func()) {
	t.Helper()
	mnt, err := tmpfstest.Mount(t, "256k")
	if err != nil {
		t.Logf("cannot mount a tmpfs (%v): testing with an injected failure instead", err)
		return fillInjected(t)
	}
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, filepath.Join(mnt, "data"), Options{})
	acked := map[string][]byte{}
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatalf("no write failed after %d records of 1 KB on a 256 KiB tmpfs", i)
		}
		key := fmt.Sprintf("session:r-%04d", i)
		data := []byte(fmt.Sprintf("%s %s", key, strings.Repeat("r", 1000)))
		err := s.CompareAndSwap(context.Background(), key, 0, session.Write{Version: 1, Data: data, TTL: time.Hour})
		if err == nil {
			acked[key] = data
			continue
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("write %d failed with %v, want ENOSPC", i, err)
		}
		t.Logf("%d records written, then %v", len(acked), err)
		return s, acked, key, func() {
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestFailureWhileAppending fails one write while another writer's change
// waits to be written, on a disk that works again right after (a transient
// I/O error): the waiting change is either acknowledged and kept, or
// refused and gone, never acknowledged and lost, nor refused and kept.
func TestFailureWhileAppending(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), Options{})
	mustCAS(t, s, "session:before", 0, 1, []byte("durable"), time.Hour)
	var calls atomic.Int32
	inWrite, proceed := make(chan struct{}), make(chan struct{})
	var proceedOnce sync.Once
	t.Cleanup(func() { proceedOnce.Do(func() { close(proceed) }) })
	hook := func() error {
		if calls.Add(1) == 1 {
			close(inWrite)
			<-proceed
			return errBrokenDisk
		}
		return nil
	}
	s.testWrite.Store(&hook)
	firstErr, secondErr := make(chan error, 1), make(chan error, 1)
	go func() {
		firstErr <- s.CompareAndSwap(ctx, "session:first", 0, session.Write{Version: 1, Data: []byte("x"), TTL: time.Hour})
	}()
	<-inWrite
	go func() {
		secondErr <- s.CompareAndSwap(ctx, "session:second", 0, session.Write{Version: 1, Data: []byte("y"), TTL: time.Hour})
	}()
	waitFor(t, 5*time.Second, func() bool { _, found, _ := s.Get(ctx, "session:second"); return found })
	proceedOnce.Do(func() { close(proceed) })

	if err := <-firstErr; !errors.Is(err, errBrokenDisk) {
		t.Fatalf("the failed write: err = %v, want %v", err, errBrokenDisk)
	}
	err2 := <-secondErr
	t.Logf("the waiting write: %v", err2)
	check := func(s *Store) {
		t.Helper()
		mustGet(t, s, "session:before", 1, []byte("durable"))
		mustNotFind(t, s, "session:first")
		if err2 == nil {
			mustGet(t, s, "session:second", 1, []byte("y"))
		} else {
			mustNotFind(t, s, "session:second")
		}
	}
	check(s)
	waitFor(t, 5*time.Second, func() bool { return s.Ping(ctx) == nil })
	if s.Recoveries() != 1 {
		t.Errorf("Recoveries() = %d, want 1", s.Recoveries())
	}
	check(s)
	s = reopen(t, s, Options{})
	check(s)
}
