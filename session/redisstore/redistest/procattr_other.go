//go:build !linux

package redistest

import "syscall"

// sysProcAttr returns nil: only Linux can tie a child's life to its parent's,
// so elsewhere the processes are stopped by the tests' cleanups alone.
func sysProcAttr() *syscall.SysProcAttr { return nil }
