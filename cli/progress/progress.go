// Package progress shows how far a long client operation (an import, an
// apply, a resync) has come: a bar redrawn in place on a terminal, plain
// lines (at most one a second, and the last) anywhere else, so CI logs
// stay readable.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// Bar reports progress of one operation to a writer. Its methods are
// safe for concurrent use.
type Bar struct {
	mu     sync.Mutex
	w      io.Writer
	label  string
	total  int
	done   int
	detail string
	tty    bool
	last   time.Time
	width  int    // of the last line drawn on a terminal
	drawn  string // the last line drawn
	now    func() time.Time
	closed bool
}

// New starts a bar for label over total steps (0 when unknown) on w;
// it draws in place when w is a terminal.
func New(w io.Writer, label string, total int) *Bar {
	f, ok := w.(*os.File)
	return &Bar{w: w, label: label, total: total, tty: ok && term.IsTerminal(int(f.Fd())), now: time.Now}
}

// SetTotal changes the number of steps (when learned late).
func (b *Bar) SetTotal(total int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total = total
}

// Set reports done steps with a short detail ("seen 120, written 80").
func (b *Bar) Set(done int, detail string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done, b.detail = done, detail
	b.draw(false)
}

// Add reports n more steps done.
func (b *Bar) Add(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	b.draw(false)
}

// Finish draws the final state and ends the line; later calls do
// nothing.
func (b *Bar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.draw(true)
	if b.tty {
		fmt.Fprintln(b.w)
	}
	b.closed = true
}

func (b *Bar) draw(final bool) {
	if b.closed {
		return
	}
	now := b.now()
	if !final && !b.last.IsZero() && now.Sub(b.last) < b.interval() {
		return
	}
	line := b.line()
	if final && line == b.drawn {
		return // the final state is on screen already
	}
	b.last, b.drawn = now, line
	if !b.tty {
		fmt.Fprintln(b.w, line)
		return
	}
	pad := ""
	if n := b.width - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	b.width = len(line)
	fmt.Fprint(b.w, "\r"+line+pad)
}

// interval: a terminal redraws often, a log gets a line a second.
func (b *Bar) interval() time.Duration {
	if b.tty {
		return 100 * time.Millisecond
	}
	return time.Second
}

func (b *Bar) line() string {
	var s strings.Builder
	s.WriteString(b.label)
	if b.total > 0 {
		done := min(b.done, b.total)
		if b.tty {
			const cells = 30
			full := done * cells / b.total
			s.WriteString(" [" + strings.Repeat("#", full) + strings.Repeat(".", cells-full) + "]")
		}
		fmt.Fprintf(&s, " %d/%d (%d%%)", b.done, b.total, done*100/b.total)
	} else {
		fmt.Fprintf(&s, " %d", b.done)
	}
	if b.detail != "" {
		s.WriteString(" " + b.detail)
	}
	return s.String()
}
