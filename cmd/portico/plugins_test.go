package main

import (
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portico-dev/portico/host/registry"
)

// TestRegisterPluginDirMissing: without --plugin-dir a missing plugins/
// beside the binary is fine (`go run`, a bare binary); a --plugin-dir that
// does not exist stops the start with an error naming the flag.
func TestRegisterPluginDirMissing(t *testing.T) {
	// RegisterDir reads the directory before the store: none is needed.
	reg := registry.New(nil, nil)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tt := range []struct {
		dir     string
		wantErr string
	}{
		{dir: "", wantErr: ""}, // the test binary has no plugins/ beside it
		{dir: filepath.Join(t.TempDir(), "nope"), wantErr: "--plugin-dir: plugin dir: open "},
	} {
		err := registerPluginDir(log, reg, tt.dir)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("dir %q: got %v, want error %q", tt.dir, err, tt.wantErr)
		}
	}
}
