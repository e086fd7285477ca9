// Package csvimport turns a CSV file into entities of one blueprint: the
// header names the columns (identifier, title, team, a property, or
// rel:<relation>), every cell is coerced by the blueprint's schema, and
// every problem is reported with its line and column before anything is
// written.
package csvimport

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/portico-dev/portico/core/catalog"
)

// RelationPrefix marks a column holding a relation's target identifiers.
const RelationPrefix = "rel:"

// DefaultSeparator splits a cell into several values: the identifiers of
// a many relation, teams, the items of an array property.
const DefaultSeparator = ";"

// RowError is one problem of one row (Line 1 is the header).
type RowError struct {
	File   string
	Line   int
	Column string // empty when the problem is the row's
	Msg    string
}

func (e RowError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: column %s: %s", e.File, e.Line, e.Column, e.Msg)
}

// Result is what a CSV file holds: its entities (in file order, each
// with the line it came from) and the problems of its rows.
type Result struct {
	Blueprint *catalog.Blueprint
	Entities  []*catalog.Entity
	Lines     []int
	Errors    []RowError
	file      string
	relCols   map[string]string // relation → its column name
}

// Options tune Read.
type Options struct {
	// Separator splits multi-value cells (DefaultSeparator when empty).
	Separator string
}

type column struct {
	name     string
	kind     string // identifier, title, team, property, relation
	property catalog.Property
	relation catalog.Relation
	key      string // property or relation name
}

// Read parses a CSV file named file (for messages) into entities of bp.
// The error is for a file that cannot be read at all (no header, a
// column that is not the blueprint's, malformed CSV); problems of single
// rows are in Result.Errors.
func Read(r io.Reader, file string, bp *catalog.Blueprint, opts Options) (*Result, error) {
	sep := opts.Separator
	if sep == "" {
		sep = DefaultSeparator
	}
	compiled, err := catalog.CompileBlueprint(bp)
	if err != nil {
		return nil, fmt.Errorf("blueprint %s: %w", bp.Identifier, err)
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // checked here, with a better message
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: empty file: expected a header line", file)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	cols, err := columns(file, header, bp)
	if err != nil {
		return nil, err
	}
	res := &Result{Blueprint: bp, file: file, relCols: map[string]string{}}
	for _, c := range cols {
		if c.kind == "relation" {
			res.relCols[c.key] = c.name
		}
	}
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("%s:%d: %v", file, pe.Line, pe.Err)
			}
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		if len(rec) != len(cols) {
			res.fail(line, "", fmt.Sprintf("%d cells, but the header has %d columns", len(rec), len(cols)))
			continue
		}
		e, errs := row(rec, cols, sep)
		for _, pe := range errs {
			res.fail(line, pe.Column, pe.Msg)
		}
		if len(errs) > 0 {
			continue
		}
		if first, dup := seen[e.Identifier]; dup {
			res.fail(line, "identifier", fmt.Sprintf("%q already on line %d", e.Identifier, first))
			continue
		}
		seen[e.Identifier] = line
		if err := compiled.ValidateEntity(e); err != nil {
			res.violations(line, err)
			continue
		}
		e.Blueprint = bp.Identifier
		res.Entities = append(res.Entities, e)
		res.Lines = append(res.Lines, line)
	}
	return res, nil
}

func (r *Result) fail(line int, col, msg string) {
	r.Errors = append(r.Errors, RowError{File: r.file, Line: line, Column: col, Msg: msg})
}

// violations reports a validation error of a row by column.
func (r *Result) violations(line int, err error) {
	var ve *catalog.ValidationError
	if !errors.As(err, &ve) || len(ve.Violations) == 0 {
		r.fail(line, "", err.Error())
		return
	}
	for _, v := range ve.Violations {
		r.fail(line, r.columnOf(v.Path), v.Message)
	}
}

// columnOf names the column a JSON pointer into an entity comes from.
func (r *Result) columnOf(path string) string {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	unescape := strings.NewReplacer("~1", "/", "~0", "~")
	switch {
	case len(parts) >= 2 && parts[0] == "properties":
		return unescape.Replace(parts[1])
	case len(parts) >= 2 && parts[0] == "relations":
		name := unescape.Replace(parts[1])
		if c, ok := r.relCols[name]; ok {
			return c
		}
		return RelationPrefix + name
	case len(parts) >= 1 && parts[0] != "":
		return parts[0]
	}
	return ""
}

// columns maps the header onto the blueprint.
func columns(file string, header []string, bp *catalog.Blueprint) ([]column, error) {
	var cols []column
	var problems []string
	seen := map[string]bool{}
	for i, h := range header {
		name := strings.TrimSpace(h)
		if i == 0 {
			name = strings.TrimPrefix(name, "\ufeff")
		}
		if seen[name] {
			problems = append(problems, fmt.Sprintf("column %q appears twice", name))
			continue
		}
		seen[name] = true
		c := column{name: name, key: name}
		switch {
		case name == "":
			problems = append(problems, fmt.Sprintf("column %d has no name", i+1))
		case name == "identifier" || name == "title" || name == "team":
			c.kind = name
		case strings.HasPrefix(name, RelationPrefix):
			c.kind, c.key = "relation", strings.TrimPrefix(name, RelationPrefix)
			rel, ok := bp.Relations[c.key]
			if !ok {
				problems = append(problems, fmt.Sprintf("column %s: blueprint %s has no relation %q", name, bp.Identifier, c.key))
			}
			c.relation = rel
		default:
			c.kind = "property"
			p, ok := bp.Schema.Properties[name]
			if !ok {
				problems = append(problems, fmt.Sprintf("column %s: blueprint %s has no property %q (relations are rel:<name> columns)", name, bp.Identifier, name))
			}
			c.property = p
		}
		cols = append(cols, c)
	}
	if !seen["identifier"] {
		problems = append(problems, "no identifier column")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s:1: %s", file, strings.Join(problems, "; "))
	}
	return cols, nil
}

// row turns one record into an entity; an empty cell leaves its field
// unset.
func row(rec []string, cols []column, sep string) (*catalog.Entity, []RowError) {
	e := &catalog.Entity{Properties: map[string]any{}, Relations: map[string]any{}}
	var errs []RowError
	for i, c := range cols {
		cell := strings.TrimSpace(rec[i])
		if cell == "" {
			if c.kind == "identifier" {
				errs = append(errs, RowError{Column: c.name, Msg: "empty: every row needs an identifier"})
			}
			continue
		}
		switch c.kind {
		case "identifier":
			e.Identifier = cell
		case "title":
			e.Title = cell
		case "team":
			e.Team = split(cell, sep)
		case "relation":
			if c.relation.Many {
				e.Relations[c.key] = split(cell, sep)
			} else {
				e.Relations[c.key] = cell
			}
		case "property":
			v, err := Coerce(cell, c.property, sep)
			if err != nil {
				errs = append(errs, RowError{Column: c.name, Msg: err.Error()})
				continue
			}
			e.Properties[c.key] = v
		}
	}
	return e, errs
}

// split cuts a multi-value cell, dropping empty values.
func split(cell, sep string) []string {
	var out []string
	for _, s := range strings.Split(cell, sep) {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Coerce converts a non-empty cell to the JSON value property p takes:
// integer, number and boolean parsed, an array split on sep (or given as
// a JSON array) with its items coerced, an object as JSON, a string as
// is.
func Coerce(cell string, p catalog.Property, sep string) (any, error) {
	switch p.Type {
	case "integer":
		n, err := strconv.ParseInt(cell, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", cell)
		}
		return n, nil
	case "number":
		f, err := strconv.ParseFloat(cell, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("%q is not a number", cell)
		}
		return f, nil
	case "boolean":
		switch strings.ToLower(cell) {
		case "true", "yes", "y", "1":
			return true, nil
		case "false", "no", "n", "0":
			return false, nil
		}
		return nil, fmt.Errorf("%q is not a boolean (true/false, yes/no, 1/0)", cell)
	case "object":
		var v map[string]any
		if err := json.Unmarshal([]byte(cell), &v); err != nil || v == nil {
			return nil, fmt.Errorf("%q is not a JSON object", cell)
		}
		return v, nil
	case "array":
		if strings.HasPrefix(cell, "[") {
			var v []any
			if err := json.Unmarshal([]byte(cell), &v); err != nil {
				return nil, fmt.Errorf("%q is not a JSON array", cell)
			}
			return v, nil
		}
		item := catalog.Property{Type: "string"}
		if p.Items != nil {
			item = *p.Items
		}
		out := []any{}
		for _, s := range split(cell, sep) {
			v, err := Coerce(s, item, sep)
			if err != nil {
				return nil, fmt.Errorf("item %s", err)
			}
			out = append(out, v)
		}
		return out, nil
	}
	return cell, nil
}

// Targets lists, per blueprint, the identifiers the entities' relations
// point at that are not among the entities themselves: those must exist
// in the portal.
func (r *Result) Targets() map[string][]string {
	inFile := map[string]bool{}
	for _, e := range r.Entities {
		inFile[e.Identifier] = true
	}
	sets := map[string]map[string]bool{}
	for _, e := range r.Entities {
		for name, v := range e.Relations {
			bp := r.Blueprint.Relations[name].Target
			for _, id := range catalog.RelationIDs(v) {
				if bp == r.Blueprint.Identifier && inFile[id] {
					continue
				}
				if sets[bp] == nil {
					sets[bp] = map[string]bool{}
				}
				sets[bp][id] = true
			}
		}
	}
	out := map[string][]string{}
	for bp, ids := range sets {
		for id := range ids {
			out[bp] = append(out[bp], id)
		}
		sort.Strings(out[bp])
	}
	return out
}

// CheckTargets adds an error for every relation pointing at an entity
// that is neither in the file nor among existing (blueprint → identifier
// → true) and drops the rows that have one.
func (r *Result) CheckTargets(existing map[string]map[string]bool) {
	inFile := map[string]bool{}
	for _, e := range r.Entities {
		inFile[e.Identifier] = true
	}
	keep := 0
	for i, e := range r.Entities {
		ok := true
		for _, name := range e.RelationNames() {
			bp := r.Blueprint.Relations[name].Target
			for _, id := range catalog.RelationIDs(e.Relations[name]) {
				if (bp == r.Blueprint.Identifier && inFile[id]) || existing[bp][id] {
					continue
				}
				r.fail(r.Lines[i], r.relCols[name], fmt.Sprintf("no %s %q in the file or the portal", bp, id))
				ok = false
			}
		}
		if ok {
			r.Entities[keep], r.Lines[keep] = e, r.Lines[i]
			keep++
		}
	}
	r.Entities, r.Lines = r.Entities[:keep], r.Lines[:keep]
	sort.SliceStable(r.Errors, func(i, j int) bool { return r.Errors[i].Line < r.Errors[j].Line })
}
