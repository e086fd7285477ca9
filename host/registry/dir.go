package registry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Registered is what RegisterDir did with one file of a plugin directory.
type Registered struct {
	// File is the file's absolute path.
	File string
	// Plugin is the record of the file's plugin; nil when Err is set.
	Plugin *Plugin
	// Created is false when these bytes were registered already.
	Created bool
	// Err says why the file was not registered (a version conflict, a
	// module that does not load); the other files were still registered.
	Err error
}

// RegisterDir registers every plugin in dir, in file name order: each
// *.wasm file is published as a Wasm module, every other regular executable
// file (symbolic links followed) is registered as a go-plugin binary at its
// absolute path. Other files are ignored. Files whose bytes are already
// registered are reported unchanged without being started or compiled
// again, so registering the same directory twice is a no-op.
//
// A file that cannot be registered is reported in its Registered.Err and
// the others are registered still. The error returned is about dir itself
// (it wraps fs.ErrNotExist when dir does not exist) or ctx.
func (r *Registry) RegisterDir(ctx context.Context, dir string) ([]Registered, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("plugin dir: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("plugin dir: %w", err)
	}
	known, err := r.store.Plugins(ctx)
	if err != nil {
		return nil, fmt.Errorf("list plugins: %w", err)
	}
	bySum := make(map[string]*Plugin, len(known))
	for _, p := range known {
		bySum[p.SHA256] = p
	}
	var out []Registered
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		file := filepath.Join(dir, e.Name())
		wasm := strings.HasSuffix(e.Name(), ".wasm")
		fi, err := os.Stat(file)
		if err != nil {
			out = append(out, Registered{File: file, Err: err})
			continue
		}
		if !fi.Mode().IsRegular() || !wasm && fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		out = append(out, r.registerFile(ctx, file, wasm, bySum))
	}
	return out, nil
}

// registerFile registers one file of a plugin directory; known holds the
// registered plugins by sha256.
func (r *Registry) registerFile(ctx context.Context, file string, wasm bool, known map[string]*Plugin) Registered {
	res := Registered{File: file}
	data, err := os.ReadFile(file)
	if err != nil {
		res.Err = err
		return res
	}
	typ := TypeGoPlugin
	if wasm {
		typ = TypeWasm
	}
	sum := checksum(data)
	if p := known[sum]; p != nil && p.Type == typ && (wasm || p.Path == file) {
		res.Plugin = p
		return res
	}
	if wasm {
		res.Plugin, res.Created, err = r.PublishWasm(ctx, data)
	} else {
		res.Plugin, res.Created, err = r.RegisterGoPlugin(ctx, file, sum)
	}
	if err != nil {
		res.Plugin, res.Err = nil, err
		if errors.Is(err, ErrVersionConflict) {
			res.Err = fmt.Errorf("%w: bump the plugin's version to register other bytes", err)
		}
	}
	return res
}
