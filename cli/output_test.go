package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestTableCellsAreClipped: a long cell is cut to maxCell runes with an
// ellipsis (multi-byte runes counted as one), so a list stays one screen
// wide; short cells are untouched and columns still align.
func TestTableCellsAreClipped(t *testing.T) {
	var out bytes.Buffer
	p := &printer{w: &out, format: formatTable}
	long := strings.Repeat("é", 100)
	if err := p.print(nil, func(t *table) {
		t.row("ID", "PROPERTIES")
		t.row("a", long)
		t.row("bb", "short")
	}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := "a   " + strings.Repeat("é", maxCell-1) + "…"
	if len(lines) != 3 || lines[1] != want || lines[2] != "bb  short" {
		t.Fatalf("table:\n%s", out.String())
	}
}
