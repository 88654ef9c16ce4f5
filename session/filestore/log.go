package filestore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"os"
	"runtime"
	"time"

	"tote/session/internal/index"
)

// The log is a header followed by records:
//
//	magic   8 bytes, "totelog1"
//	record  length uint32 (of the body), crc32c uint32 (of the body), body
//	body    version uint64, expires int64 (unix nanoseconds, 0: never;
//	        the sign bit set for an evictable record), key length uint16,
//	        key, data
//
// All integers are big-endian. The last record for a key is its state; a
// record of version 0, or one that is expired at replay, removes the key.
// Versions before the evictable bit read an evictable record as expired,
// that is as evicted.
var magic = []byte("totelog1")

const (
	frameLen      = 8         // length and checksum
	fixedLen      = 8 + 8 + 2 // version, expires, key length
	maxKey        = 1024      // longest key a record may carry
	maxData       = 16 << 20  // largest data a record may carry
	maxBody       = fixedLen + maxKey + maxData
	snapBuf       = 1 << 20    // buffer for writing a snapshot or reading the log
	keepBuf       = 4 << 20    // the flusher keeps a write buffer up to this size for reuse
	compactSuffix = ".compact" // added to the log's name for a snapshot being written
	probeKey      = "probe:"   // the key of the deletion written to test the disk after a failure
	maxProbe      = 1 << 20    // the most a probe writes
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// evictableBit marks an evictable record in its expires field.
const evictableBit = math.MinInt64

// logExpires returns the expires field of a record.
func logExpires(expires int64, evictable bool) int64 {
	if evictable {
		return expires | evictableBit
	}
	return expires
}

// encodeRecord returns the record for key and where in it data starts.
func encodeRecord(key string, version uint64, expires int64, data []byte) ([]byte, int) {
	return appendRecord(make([]byte, 0, frameLen+fixedLen+len(key)+len(data)), key, version, expires, data)
}

// appendRecord appends the record to b and returns it and where in it data
// starts.
func appendRecord(b []byte, key string, version uint64, expires int64, data []byte) ([]byte, int) {
	start := len(b)
	body := fixedLen + len(key) + len(data)
	b = binary.BigEndian.AppendUint32(b, uint32(body))
	b = binary.BigEndian.AppendUint32(b, 0) // the checksum, below
	b = binary.BigEndian.AppendUint64(b, version)
	b = binary.BigEndian.AppendUint64(b, uint64(expires))
	b = binary.BigEndian.AppendUint16(b, uint16(len(key)))
	b = append(b, key...)
	at := len(b)
	b = append(b, data...)
	binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(b[start+frameLen:], crcTable))
	return b, at
}

// open replays the log into memory, cutting off a torn record at its end,
// or creates it.
func (s *Store) open() error {
	// A snapshot left by a compaction that did not finish is incomplete;
	// the log it was to replace is whole.
	if err := os.Remove(s.path + compactSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("filestore: remove unfinished compaction: %w", err)
	}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("filestore: open %s: %w", s.path, err)
	}
	idx := s.newIndex()
	size, total, err := s.replay(f, -1, idx)
	if err == nil && size < total {
		s.cut = total - size
		if err = truncate(f, size); err != nil {
			err = fmt.Errorf("filestore: cut the torn end of %s: %w", s.path, err)
		}
	}
	if err == nil && size == 0 {
		size, err = s.create(f)
	}
	if err != nil {
		f.Close()
		return err
	}
	s.f = f
	s.size.Store(size)
	s.idx.Store(idx)
	return nil
}

// create writes the header of a new log to f and makes the file durable,
// and returns the log's size.
func (s *Store) create(f *os.File) (int64, error) {
	if _, err := f.WriteAt(magic, 0); err != nil {
		return 0, fmt.Errorf("filestore: write %s: %w", s.path, err)
	}
	if err := fdatasync(f); err != nil {
		return 0, fmt.Errorf("filestore: sync %s: %w", s.path, err)
	}
	if err := syncDir(s.dir); err != nil {
		return 0, fmt.Errorf("filestore: sync %s: %w", s.dir, err)
	}
	return int64(len(magic)), nil
}

// replay reads the log in f, or its first limit bytes if limit >= 0, into
// idx and returns the size of its valid part and of what it read. A file
// shorter than the header that starts like one is a log whose creation was
// cut short, and counts as empty (size 0). What follows the last whole
// record is the torn end of a write that never completed, hence was never
// acknowledged; the caller cuts it off.
func (s *Store) replay(f *os.File, limit int64, idx *index.Index) (size, total int64, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("filestore: %w", err)
	}
	total = fi.Size()
	if limit >= 0 {
		total = min(total, limit)
	}
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, total), snapBuf)
	head := make([]byte, len(magic))
	n, err := io.ReadFull(r, head)
	switch {
	case err == nil && string(head) == string(magic):
	case total < int64(len(magic)) && string(head[:n]) == string(magic[:n]):
		return 0, total, nil
	default:
		return 0, total, fmt.Errorf("filestore: %s is not a tote session log (it does not start with %q); move it away to start empty", s.path, magic)
	}

	now := time.Now().UnixNano()
	off := int64(len(magic))
	var frame [frameLen]byte
	body := make([]byte, 0, 4096)
	for {
		if _, err := io.ReadFull(r, frame[:]); err != nil {
			break // io.EOF: the end; io.ErrUnexpectedEOF: a torn frame
		}
		n := binary.BigEndian.Uint32(frame[0:4])
		if n < fixedLen || n > maxBody {
			break
		}
		if cap(body) < int(n) {
			body = make([]byte, 0, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			break
		}
		if crc32.Checksum(body, crcTable) != binary.BigEndian.Uint32(frame[4:8]) {
			break
		}
		keyLen := int(binary.BigEndian.Uint16(body[16:18]))
		if fixedLen+keyLen > len(body) {
			break
		}
		key := legacyKey(string(body[fixedLen : fixedLen+keyLen]))
		expires := int64(binary.BigEndian.Uint64(body[8:16]))
		e := index.Entry{
			Version:   binary.BigEndian.Uint64(body[0:8]),
			Expires:   expires &^ evictableBit,
			Data:      append([]byte(nil), body[fixedLen+keyLen:]...),
			Evictable: expires&evictableBit != 0,
		}
		if e.Version != 0 && !e.Expired(now) {
			idx.Put(key, e)
		} else {
			idx.Remove(key)
		}
		off += frameLen + int64(n)
	}
	return off, total, nil
}

// syncDir makes the creation and renaming of files in dir durable, where
// the system allows a directory to be synced (not on Windows).
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func truncate(f *os.File, size int64) error {
	if err := f.Truncate(size); err != nil {
		return err
	}
	return fdatasync(f)
}

// flusher writes what writers append, one write and one fsync per batch,
// and compacts the log when it has grown enough. It is the only goroutine
// that writes to the log file. After a failed write it retries, less and
// less often, until a write succeeds (see recover).
func (s *Store) flusher() {
	defer close(s.done)
	for {
		select {
		case <-s.kick:
		case c := <-s.compacting: // nil, hence never ready, unless compacting
			s.finishCompaction(c)
			continue
		case <-s.retry: // nil unless writes are refused after a failure
			s.recover()
			continue
		case <-s.stop:
			s.flush(true)
			if s.compacting != nil {
				c := <-s.compacting
				s.abandon(c.f)
			}
			return
		}
		s.flush(false)
		s.maybeCompact()
	}
}

// flush writes and syncs every record appended so far, then wakes their
// writers, and returns the error of a write that failed. A failed write
// refuses writes and rebuilds memory (see fail) before the writers learn of
// it, so that none of them finds its change served. closing refuses every
// later append first.
func (s *Store) flush(closing bool) error {
	s.wmu.Lock()
	failed := s.failure() // before closing: what a failure refused stays refused
	if closing {
		closed := errClosed
		s.failed.Store(&closed)
	}
	buf, b := s.pending, s.batch
	s.pending, s.spare, s.batch = s.spare[:0], nil, newBatch()
	s.wmu.Unlock()

	var err error
	switch {
	case len(buf) == 0:
	case failed != nil && failed != errClosed:
		// Appended before writes were refused: not written, and memory
		// is rebuilt from the log without them.
		b.err = failed
	default:
		err = s.write(buf)
		b.err = err
		if err != nil && !closing {
			s.fail(err, len(buf))
		}
	}
	if cap(buf) <= keepBuf {
		s.spare = buf[:0]
	}
	close(b.done)
	return err
}

// write appends buf to the log file and syncs it. The log's size grows
// only when both succeed.
func (s *Store) write(buf []byte) error {
	if h := s.testWrite.Load(); h != nil {
		if err := (*h)(); err != nil {
			return fmt.Errorf("filestore: write %s: %w", s.path, err)
		}
	}
	at := s.size.Load()
	if _, err := s.f.WriteAt(buf, at); err != nil {
		return fmt.Errorf("filestore: write %s: %w", s.path, err)
	}
	if err := fdatasync(s.f); err != nil {
		return fmt.Errorf("filestore: sync %s: %w", s.path, err)
	}
	s.size.Store(at + int64(len(buf)))
	return nil
}

// fail refuses writes because of err, the failure of a write of n bytes,
// and tries at once to recover.
func (s *Store) fail(err error, n int) {
	s.failures.Add(1)
	s.failedLen = n
	s.epoch++
	s.stale = true
	s.wmu.Lock()
	s.setFailure(err)
	s.wmu.Unlock()
	s.retryWait = 0
	s.recover()
}

// recover tries to bring the store back after a failed write: it cuts the
// log back to the size of its last acknowledged write (a failed write or
// fsync may have left anything after it), rebuilds memory from the log as
// read back from the file (so that no change whose write failed is served),
// and writes and syncs a small record to see whether the disk takes writes
// again. If it does not, recover tries again later, less and less often.
// Reads are served throughout, from the old memory until the new one is in
// place.
func (s *Store) recover() {
	if s.rebuild() && s.probe() {
		s.wmu.Lock()
		s.setFailure(nil)
		s.wmu.Unlock()
		s.recoveries.Add(1)
		s.retry = nil
		return
	}
	s.retryWait = min(max(2*s.retryWait, firstRetry), lastRetry)
	s.retry = time.After(s.retryWait)
}

// rebuild replaces memory with what the log holds up to its last
// acknowledged size, if memory may hold changes whose write failed, and
// cuts the file back to that size; it reports whether both are done. The
// records appended to the old memory and not yet written are dropped: their
// writers get the failure.
func (s *Store) rebuild() bool {
	size := s.size.Load()
	if s.stale {
		idx := s.newIndex()
		if valid, _, err := s.replay(s.f, size, idx); err != nil || valid != size {
			return false
		}
		s.wmu.Lock()
		s.evictedBefore.Add(s.idx.Load().Evicted())
		s.idx.Store(idx)
		b, err := s.batch, s.failure()
		s.pending, s.batch = s.pending[:0], newBatch()
		s.wmu.Unlock()
		b.err = err
		close(b.done)
		s.stale = false
	}
	return truncate(s.f, size) == nil
}

// probe writes and syncs a record that changes nothing, as long as the
// write that failed (up to maxProbe: on a full disk, a write that fits in
// the last block proves nothing), and the directory, and reports whether
// both succeeded.
func (s *Store) probe() bool {
	size := s.size.Load()
	pad := min(s.failedLen, maxProbe) - (frameLen + fixedLen + len(probeKey))
	rec, _ := encodeRecord(probeKey, 0, 0, make([]byte, max(pad, 0)))
	if err := s.write(rec); err != nil {
		truncate(s.f, size)
		return false
	}
	return syncDir(s.dir) == nil
}

// compacted is the outcome of writing a snapshot.
type compacted struct {
	f     *os.File // the snapshot, open, at path+compactSuffix
	size  int64
	epoch int // s.epoch when the snapshot began
	err   error
}

// maybeCompact starts writing a snapshot when the log is more than twice
// the size of the live records and at least CompactMin.
func (s *Store) maybeCompact() {
	select {
	case <-s.stop:
		return // closing: a snapshot would be thrown away
	default:
	}
	size := s.size.Load()
	if s.compacting != nil || s.failure() != nil || size < s.compactMin || size < s.nextTry || size <= 2*s.live() {
		return
	}
	// Every record before this offset was applied to memory before it was
	// appended, so the snapshot, taken from memory from now on, holds it or
	// a later state. Every record written after it is copied to the end of
	// the snapshot when it is done.
	s.tailFrom = size
	ch := make(chan compacted, 1)
	s.compacting = ch
	idx, epoch := s.idx.Load(), s.epoch
	go func() {
		c := s.snapshot(idx)
		c.epoch = epoch
		ch <- c
	}()
}

// snapshot writes every live record in idx to path+compactSuffix and syncs
// it.
func (s *Store) snapshot(idx *index.Index) compacted {
	f, err := os.OpenFile(s.path+compactSuffix, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return compacted{err: err}
	}
	if h := s.testSnapshot.Load(); h != nil {
		(*h)()
	}
	w := bufio.NewWriterSize(f, snapBuf)
	w.Write(magic)
	size := int64(len(magic))
	var rec []byte
	now := time.Now().UnixNano()
	idx.Range(func(key string, e index.Entry) {
		if e.Expired(now) {
			return
		}
		rec, _ = appendRecord(rec[:0], key, e.Version, logExpires(e.Expires, e.Evictable), e.Data)
		w.Write(rec)
		size += int64(len(rec))
	})
	err = w.Flush() // bufio.Writer keeps the first error
	if err == nil {
		err = fdatasync(f)
	}
	if err != nil {
		s.abandon(f)
		return compacted{err: err}
	}
	return compacted{f: f, size: size}
}

// finishCompaction copies the records written since the snapshot began to
// its end and puts it in place of the log. A compaction that fails leaves
// the log as it was, and is tried again when the log has doubled.
func (s *Store) finishCompaction(c compacted) {
	s.compacting = nil
	// The snapshot may hold changes appended but not yet written: write
	// them first, so that a change whose write fails is never in the new
	// log (the failure then abandons the snapshot).
	s.flush(false)
	if c.err == nil && (s.failure() != nil || c.epoch != s.epoch) {
		// A write failed meanwhile: the snapshot may hold changes that
		// were refused, and the log must stay as acknowledged writes
		// left it.
		c.err = errors.New("filestore: a write failed during the compaction")
	}
	if c.err == nil {
		tail := io.NewSectionReader(s.f, s.tailFrom, s.size.Load()-s.tailFrom)
		var n int64
		n, c.err = io.Copy(io.NewOffsetWriter(c.f, c.size), tail)
		c.size += n
		if c.err == nil {
			c.err = fdatasync(c.f)
		}
		if c.err == nil {
			c.err = os.Rename(c.f.Name(), s.path)
		}
		if c.err == nil {
			// The new log is in place; if the rename cannot be made
			// durable, a crash could bring back the old log without the
			// writes that go to the new one, so writes are refused
			// until a write to the new log succeeds.
			s.f.Close()
			s.f = c.f
			s.size.Store(c.size)
			s.compacts.Add(1)
			s.nextTry = 0
			if err := syncDir(s.dir); err != nil {
				s.fail(fmt.Errorf("filestore: sync %s after compaction: %w", s.dir, err), 0)
			}
			return
		}
	}
	if c.f != nil {
		s.abandon(c.f)
	}
	s.compactErr.Add(1)
	s.nextTry = 2 * s.size.Load()
}

// abandon closes and removes an unfinished snapshot.
func (s *Store) abandon(f *os.File) {
	if f == nil {
		return
	}
	f.Close()
	os.Remove(f.Name())
}
