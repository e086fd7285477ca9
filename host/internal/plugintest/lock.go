package plugintest

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockBuilds takes a machine-wide lock for one plugin build. `go test`
// runs several of these test binaries at once and each builds the same
// plugins; the Go build cache does not share work in progress, so on a
// cold cache two binaries would both compile the wasip1 standard library.
// Serialised, the second build finds the first one's packages cached.
func lockBuilds() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "portico-plugin-build.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("plugin build lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("plugin build lock: %w", err)
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}
