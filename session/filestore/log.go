package filestore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// The log is a header followed by records:
//
//	magic   8 bytes, "totelog1"
//	record  length uint32 (of the body), crc32c uint32 (of the body), body
//	body    version uint64, expires int64 (unix nanoseconds, 0: never),
//	        id length uint16, id, data
//
// All integers are big-endian. The last record for an id is its state; a
// record that is expired at replay removes the id.
var magic = []byte("totelog1")

const (
	frameLen = 8         // length and checksum
	fixedLen = 8 + 8 + 2 // version, expires, id length
	maxID    = 1024      // longest id a record may carry
	maxData  = 16 << 20  // largest data a record may carry
	maxBody  = fixedLen + maxID + maxData
	snapBuf  = 1 << 20    // buffer for writing a snapshot or reading the log
	keepBuf  = 4 << 20    // the flusher keeps a write buffer up to this size for reuse
	compactN = ".compact" // suffix of a snapshot being written
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// recordSize is the encoded size of a record for id and data.
func recordSize(id string, data []byte) int64 {
	return int64(frameLen + fixedLen + len(id) + len(data))
}

// encodeRecord returns the record for id and where in it data starts.
func encodeRecord(id string, version uint64, expires int64, data []byte) ([]byte, int) {
	return appendRecord(make([]byte, 0, recordSize(id, data)), id, version, expires, data)
}

// appendRecord appends the record to b and returns it and where in it data
// starts.
func appendRecord(b []byte, id string, version uint64, expires int64, data []byte) ([]byte, int) {
	start := len(b)
	body := fixedLen + len(id) + len(data)
	b = binary.BigEndian.AppendUint32(b, uint32(body))
	b = binary.BigEndian.AppendUint32(b, 0) // the checksum, below
	b = binary.BigEndian.AppendUint64(b, version)
	b = binary.BigEndian.AppendUint64(b, uint64(expires))
	b = binary.BigEndian.AppendUint16(b, uint16(len(id)))
	b = append(b, id...)
	at := len(b)
	b = append(b, data...)
	binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(b[start+frameLen:], crcTable))
	return b, at
}

// open imports a bbolt database if there is one to import, then replays the
// log into memory, cutting off a torn record at its end.
func (s *Store) open() error {
	// A snapshot left by a compaction that did not finish is incomplete;
	// the log it was to replace is whole.
	if err := os.Remove(s.path + compactN); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("filestore: remove unfinished compaction: %w", err)
	}
	if _, err := os.Stat(s.path); errors.Is(err, fs.ErrNotExist) {
		n, err := importBolt(filepath.Join(s.dir, boltName), s.path)
		if err != nil {
			return err
		}
		s.imported = n
	}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("filestore: open %s: %w", s.path, err)
	}
	size, err := s.replay(f)
	if err == nil && size == 0 {
		size, err = s.create(f)
	}
	if err != nil {
		f.Close()
		return err
	}
	s.f = f
	s.size.Store(size)
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

// replay reads the log into memory and returns the size of its valid part.
// A file shorter than the header that starts like one is a log whose
// creation was cut short, and counts as empty. What follows the last whole
// record (the torn end of a write that never completed, hence was never
// acknowledged) is cut off.
func (s *Store) replay(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("filestore: %w", err)
	}
	total := fi.Size()
	r := bufio.NewReaderSize(f, snapBuf)
	head := make([]byte, len(magic))
	n, err := io.ReadFull(r, head)
	switch {
	case err == nil && string(head) == string(magic):
	case total < int64(len(magic)) && string(head[:n]) == string(magic[:n]):
		return 0, truncate(f, 0)
	default:
		return 0, fmt.Errorf("filestore: %s is not a tote session log (it does not start with %q); move it away to start empty", s.path, magic)
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
		body = body[:0]
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
		idLen := int(binary.BigEndian.Uint16(body[16:18]))
		if fixedLen+idLen > len(body) {
			break
		}
		id := string(body[fixedLen : fixedLen+idLen])
		e := entry{
			version: binary.BigEndian.Uint64(body[0:8]),
			expires: int64(binary.BigEndian.Uint64(body[8:16])),
			data:    append([]byte(nil), body[fixedLen+idLen:]...),
		}
		sh := s.shard(id)
		if prev, ok := sh.m[id]; ok {
			s.live.Add(-recordSize(id, prev.data))
			delete(sh.m, id)
		}
		if e.version != 0 && !e.expired(now) {
			sh.m[id] = e
			s.live.Add(recordSize(id, e.data))
		}
		off += frameLen + int64(n)
	}
	if off < total {
		s.cut = total - off
		if err := truncate(f, off); err != nil {
			return 0, fmt.Errorf("filestore: cut the torn end of %s: %w", s.path, err)
		}
	}
	return off, nil
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
// that writes to the log file.
func (s *Store) flusher() {
	defer close(s.done)
	for {
		select {
		case <-s.kick:
		case c := <-s.compacting: // nil, hence never ready, unless compacting
			s.finishCompaction(c)
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
// writers. closing refuses every later append first.
func (s *Store) flush(closing bool) {
	s.wmu.Lock()
	if closing && s.failure() == nil {
		closed := errClosed
		s.failed.Store(&closed)
	}
	buf, b, failed := s.pending, s.batch, s.failure()
	s.pending, s.spare, s.batch = s.spare[:0], nil, newBatch()
	s.wmu.Unlock()

	switch {
	case len(buf) == 0:
	case failed != nil && failed != errClosed:
		// Appended before the store stopped: there is no telling where
		// the log stands, so none of it is acknowledged.
		b.err = failed
	default:
		b.err = s.write(buf)
		if b.err != nil {
			s.fail(b.err)
		}
	}
	if cap(buf) <= keepBuf {
		s.spare = buf[:0]
	}
	close(b.done)
}

// write appends buf to the log file and syncs it.
func (s *Store) write(buf []byte) error {
	n, err := s.f.WriteAt(buf, s.size.Load())
	s.size.Add(int64(n))
	if err != nil {
		return fmt.Errorf("filestore: write %s: %w", s.path, err)
	}
	if err := fdatasync(s.f); err != nil {
		return fmt.Errorf("filestore: sync %s: %w", s.path, err)
	}
	return nil
}

// compacted is the outcome of writing a snapshot.
type compacted struct {
	f    *os.File // the snapshot, open, at path+compactN
	size int64
	err  error
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
	if s.compacting != nil || s.failure() != nil || size < s.compactMin || size < s.nextTry || size <= 2*s.live.Load() {
		return
	}
	// Every record before this offset was applied to memory before it was
	// appended, so the snapshot, taken from memory from now on, holds it or
	// a later state. Every record written after it is copied to the end of
	// the snapshot when it is done.
	s.tailFrom = size
	ch := make(chan compacted, 1)
	s.compacting = ch
	go func() { ch <- s.snapshot() }()
}

// snapshot writes every live record in memory to path+compactN and syncs
// it.
func (s *Store) snapshot() compacted {
	f, err := os.OpenFile(s.path+compactN, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return compacted{err: err}
	}
	w := bufio.NewWriterSize(f, snapBuf)
	w.Write(magic)
	size := int64(len(magic))
	type item struct {
		id string
		e  entry
	}
	var items []item
	var rec []byte
	for i := range s.shards {
		sh := &s.shards[i]
		items = items[:0]
		sh.mu.RLock()
		for id, e := range sh.m {
			items = append(items, item{id, e})
		}
		sh.mu.RUnlock()
		now := time.Now().UnixNano()
		for _, it := range items {
			if it.e.expired(now) {
				continue
			}
			rec, _ = appendRecord(rec[:0], it.id, it.e.version, it.e.expires, it.e.data)
			w.Write(rec)
			size += int64(len(rec))
		}
	}
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
	if err := s.failure(); c.err == nil && err != nil {
		// The store has stopped: memory may hold writes that were
		// refused, and the log must stay as the last successful write
		// left it.
		c.err = err
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
			// writes that go to the new one, so the store stops.
			if err := syncDir(s.dir); err != nil {
				c.f.Close()
				s.fail(fmt.Errorf("filestore: sync %s after compaction: %w", s.dir, err))
				return
			}
			s.f.Close()
			s.f = c.f
			s.size.Store(c.size)
			s.compacts.Add(1)
			s.nextTry = 0
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
