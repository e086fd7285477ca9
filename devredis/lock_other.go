//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package devredis

import (
	"fmt"
	"os"
)

// lockDir opens dir's lock file; without flock there is no exclusion.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	return f, nil
}
