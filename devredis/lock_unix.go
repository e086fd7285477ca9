//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package devredis

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive advisory lock on dir's lock file, so two
// processes cannot persist into one data dir. The kernel drops the lock when
// the process dies, so a kill -9 does not block the next start.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock data dir: %w", ErrDataDirInUse)
		}
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	return f, nil
}
