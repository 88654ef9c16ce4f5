//go:build !linux

package filestore

import (
	"fmt"
	"os"
	"time"
)

// lockDir opens the lock file at path. Outside Linux it takes no lock: two
// processes on one data directory are not kept apart there.
func lockDir(path, what string, timeout time.Duration) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// fdatasync flushes f to stable storage.
func fdatasync(f *os.File) error { return f.Sync() }
