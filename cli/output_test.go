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

// TestOutputFromEnvironment: PORTICO_OUTPUT picks the format when -o is
// not given; an explicit -o wins; a bad value is refused.
func TestOutputFromEnvironment(t *testing.T) {
	t.Setenv("PORTICO_OUTPUT", "yaml")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "blueprints"}, formatYAML},
		{[]string{"get", "blueprints", "-o", "json"}, formatJSON},
	} {
		var got string
		for _, cmd := range Commands() {
			if cmd.Name() != "get" {
				continue
			}
			sub, _, err := cmd.Find(c.args[1:])
			if err != nil {
				t.Fatal(err)
			}
			if err := sub.ParseFlags(c.args[2:]); err != nil {
				t.Fatal(err)
			}
			got = sub.Flag("output").Value.String()
		}
		if got != c.want {
			t.Errorf("%v: output %q, want %q", c.args, got, c.want)
		}
	}
	cfg := &Config{Output: "xml"}
	if _, err := cfg.printer(Commands()[0]); err == nil || CodeOf(err) != ExitFailure {
		t.Errorf("-o xml: %v", err)
	}
}
