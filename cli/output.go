package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// Output formats of -o.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
)

// printer writes a command's result in the format -o names: an aligned
// table, or the API's JSON (or the same as YAML).
type printer struct {
	w      io.Writer
	format string
}

// printer checks -o and returns the printer of cmd's output.
func (c *Config) printer(cmd *cobra.Command) (*printer, error) {
	switch c.Output {
	case formatTable, formatJSON, formatYAML:
		return &printer{w: cmd.OutOrStdout(), format: c.Output}, nil
	}
	return nil, &ExitError{ExitFailure, fmt.Errorf("-o %q: the output format is table, json or yaml", c.Output)}
}

// structured reports whether the output is JSON or YAML (not a table).
func (p *printer) structured() bool { return p.format != formatTable }

// print writes v as JSON or YAML, or calls draw to draw it as a table.
func (p *printer) print(v any, draw func(t *table)) error {
	switch p.format {
	case formatJSON:
		raw, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.w, "%s\n", raw)
		return err
	case formatYAML:
		raw, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = p.w.Write(raw)
		return err
	}
	t := &table{tw: tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)}
	draw(t)
	return t.tw.Flush()
}

// table is aligned columns.
type table struct{ tw *tabwriter.Writer }

// maxCell is the widest a table cell gets: a list stays one screen
// wide; -o json, -o yaml and describe show everything.
const maxCell = 60

// row writes one row; values are printed with cell, cut at maxCell.
func (t *table) row(cols ...any) {
	s := make([]string, len(cols))
	for i, c := range cols {
		s[i] = clip(cell(c), maxCell)
	}
	fmt.Fprintln(t.tw, strings.Join(s, "\t"))
}

// clip cuts s to n runes, the last one an ellipsis.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// cell is how a value reads in a table: "-" for nothing, times in UTC,
// lists joined with commas, other values as JSON.
func cell(v any) string {
	switch v := v.(type) {
	case nil:
		return "-"
	case string:
		if v == "" {
			return "-"
		}
		return strings.ReplaceAll(v, "\t", " ")
	case time.Time:
		if v.IsZero() {
			return "-"
		}
		return v.UTC().Format("2006-01-02 15:04:05Z")
	case *time.Time:
		if v == nil {
			return "-"
		}
		return cell(*v)
	case []string:
		if len(v) == 0 {
			return "-"
		}
		return strings.Join(v, ",")
	case []any:
		if len(v) == 0 {
			return "-"
		}
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = cell(x)
		}
		return strings.Join(parts, ",")
	case int, int64, bool, float64:
		return fmt.Sprint(v)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(raw)
}

// pairs is a map as "k=v, k=v" sorted by key ("-" when empty).
func pairs[V any](m map[string]V) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + cell(any(m[k]))
	}
	return strings.Join(parts, " ")
}

// keys is a map's keys, sorted.
func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
