package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestPlainLines: off a terminal the bar writes whole lines, at most one
// a second, and always the final state.
func TestPlainLines(t *testing.T) {
	var out bytes.Buffer
	b := New(&out, "import", 200)
	clock := time.Unix(0, 0)
	b.now = func() time.Time { return clock }
	b.Set(10, "written 10") // first: drawn
	b.Set(50, "written 50") // same second: skipped
	clock = clock.Add(time.Second)
	b.Add(50)                 // a second later: drawn
	b.Set(200, "written 200") // skipped, but Finish draws it
	b.Finish()
	b.Set(7, "after finish") // ignored
	want := "import 10/200 (5%) written 10\nimport 100/200 (50%) written 50\nimport 200/200 (100%) written 200\n"
	if out.String() != want {
		t.Fatalf("got\n%q\nwant\n%q", out.String(), want)
	}
	if strings.Contains(out.String(), "\r") {
		t.Fatal("carriage return off a terminal")
	}
}

// TestUnknownTotal counts without a percentage.
func TestUnknownTotal(t *testing.T) {
	var out bytes.Buffer
	b := New(&out, "resync", 0)
	b.Set(42, "seen 42")
	b.Finish()
	if got := out.String(); got != "resync 42 seen 42\n" { // Finish does not repeat it
		t.Fatalf("got %q", got)
	}
}

// TestTerminalRedrawsInPlace: on a terminal a shorter line overwrites a
// longer one completely and Finish ends the line.
func TestTerminalRedrawsInPlace(t *testing.T) {
	var out bytes.Buffer
	b := New(&out, "apply", 4)
	b.tty = true
	clock := time.Unix(0, 0)
	b.now = func() time.Time { return clock }
	b.Set(1, "blueprints (long detail)")
	clock = clock.Add(time.Second)
	b.Set(4, "done")
	b.Finish()
	s := out.String()
	if !strings.HasPrefix(s, "\rapply [#######.......................] 1/4 (25%) blueprints (long detail)") {
		t.Fatalf("first draw: %q", s)
	}
	if !strings.HasSuffix(s, "\n") || strings.Count(s, "\r") != 2 {
		t.Fatalf("redraws: %q", s)
	}
	if !strings.Contains(s, "4/4 (100%) done"+strings.Repeat(" ", 19)) {
		t.Fatalf("shorter line not padded over the longer: %q", s)
	}
}
