// Package tmpfstest gives a test a small filesystem of its own to fill: a
// tmpfs of a given size, mounted on a temporary directory and unmounted at
// cleanup. Mounting needs Linux and root; where the test cannot mount one,
// Mount returns an error and the test decides. Under CI=true as root a
// failure to mount fails the test; without root nothing can be mounted,
// and the caller says so when it skips or falls back.
package tmpfstest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"
)

// Mount mounts a tmpfs of size (as mount's size option: "256k") on a new
// directory, which is unmounted at cleanup, after the cleanups registered
// later (such as closing a store on it). It returns an error when this
// machine cannot mount one; under CI=true as root it fails tb instead.
func Mount(tb testing.TB, size string) (string, error) {
	tb.Helper()
	if runtime.GOOS != "linux" {
		return "", errors.New("tmpfs is Linux only")
	}
	dir := tb.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		err = fmt.Errorf("mount a tmpfs: %v: %s", err, bytes.TrimSpace(out))
		if os.Getenv("CI") == "true" && os.Geteuid() == 0 {
			tb.Fatalf("as root under CI: %v", err)
		}
		return "", err
	}
	tb.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			tb.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir, nil
}
