package wasm

import (
	"strings"
	"sync"
)

// tailBuffer keeps the first bytes written to it (a Go guest's fatal error
// message comes first, then goroutine dumps), up to a limit.
type tailBuffer struct {
	mu    sync.Mutex
	limit int
	buf   []byte
}

func newTailBuffer(limit int) *tailBuffer { return &tailBuffer{limit: limit} }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.limit - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// Reset forgets what was written.
func (b *tailBuffer) Reset() {
	b.mu.Lock()
	b.buf = b.buf[:0]
	b.mu.Unlock()
}

// Summary returns the first non-empty lines written, joined, at most 300 bytes.
func (b *tailBuffer) Summary() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var lines []string
	n := 0
	for _, l := range strings.Split(string(b.buf), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "goroutine ") {
			if len(lines) > 0 {
				break
			}
			continue
		}
		lines = append(lines, l)
		if n += len(l); n > 300 {
			break
		}
	}
	s := strings.Join(lines, "; ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
