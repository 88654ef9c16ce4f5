package filestore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// boltName is the database file of the bbolt store that earlier versions of
// tote kept in the data directory.
const boltName = "tote.db"

// ImportedName is what an imported tote.db is renamed to in the data
// directory.
const ImportedName = boltName + ".imported"

// importBolt writes the live sessions of the bbolt database at dbPath, if
// there is one, to a new log at logPath, then renames the database to
// ImportedName so that it is not imported twice. It returns how many
// sessions it imported; no database is 0 and no error.
//
// The database kept each session in the bucket "sessions" as an 8-byte
// big-endian expiry (unix nanoseconds, 0: never), an 8-byte big-endian
// version, and the data.
func importBolt(dbPath, logPath string) (int, error) {
	if _, err := os.Stat(dbPath); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("filestore: import %s: %w", dbPath, err)
	}
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return 0, fmt.Errorf("filestore: import %s: it is in use by another process", dbPath)
	}
	if err != nil {
		return 0, fmt.Errorf("filestore: import %s: %w", dbPath, err)
	}
	defer db.Close()

	tmp := logPath + compactN
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("filestore: import %s: %w", dbPath, err)
	}
	defer os.Remove(tmp) // a no-op once renamed
	defer f.Close()
	w := bufio.NewWriterSize(f, snapBuf)
	w.Write(magic)
	n := 0
	now := time.Now().UnixNano()
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("sessions"))
		if b == nil {
			return nil
		}
		var rec []byte
		return b.ForEach(func(k, v []byte) error {
			if len(v) < 16 || len(k) == 0 || len(k) > maxID || len(v)-16 > maxData {
				return nil
			}
			expires := int64(binary.BigEndian.Uint64(v[0:8]))
			version := binary.BigEndian.Uint64(v[8:16])
			if version == 0 || (expires != 0 && expires <= now) {
				return nil
			}
			rec, _ = appendRecord(rec[:0], string(k), version, expires, v[16:])
			_, err := w.Write(rec)
			n++
			return err
		})
	})
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = fdatasync(f)
	}
	if err == nil {
		err = os.Rename(tmp, logPath)
	}
	if err == nil {
		// The log must be in place for good before the database is moved
		// aside: a crash in between must not leave neither.
		err = syncDir(filepath.Dir(logPath))
	}
	if err == nil {
		err = os.Rename(dbPath, filepath.Join(filepath.Dir(dbPath), ImportedName))
	}
	if err == nil {
		err = syncDir(filepath.Dir(logPath))
	}
	if err != nil {
		return 0, fmt.Errorf("filestore: import %s: %w", dbPath, err)
	}
	return n, nil
}
