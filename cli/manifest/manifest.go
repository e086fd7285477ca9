// Package manifest is portal-as-code on the client side: it reads
// definition documents ({"kind", "spec"}, multi-document YAML or JSON)
// from files and directories, validates them all before anything is
// written, plans what would change on a portal, applies the plan in
// dependency order and exports a portal's definitions as documents.
package manifest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/portico-dev/portico/core/definitions"
)

// Document is one definition read from a file.
type Document struct {
	File  string // as named on the command line, or found under a directory
	Index int    // 1-based position of the document in its file
	Line  int    // where the document starts
	Kind  definitions.Kind
	// Spec is the definition: the API body of its kind, identifier
	// included (JSON values: map[string]any, []any, float64, string, bool, nil).
	Spec map[string]any
	// Normalised is Spec normalised (set by Validate).
	Normalised map[string]any

	node *yaml.Node // the document's mapping node, for the lines of paths
}

// ID is the document's identity within its kind (definitions.ID).
func (d *Document) ID() string { return definitions.ID(d.Kind, d.Spec) }

// Name is "<Kind> <id>".
func (d *Document) Name() string { return string(d.Kind) + " " + d.ID() }

// Error is one problem with a document, at a JSON path.
type Error struct {
	File  string
	Index int
	Line  int
	Path  string // a JSON pointer within the document ("/spec/schema/…")
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Index > 0 {
		b.WriteString("#" + strconv.Itoa(e.Index))
	}
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	if e.Path != "" {
		b.WriteString(" " + e.Path)
	}
	return b.String() + ": " + e.Msg
}

// Errors are every problem found, one a line.
type Errors []*Error

// Sorted orders the errors by file, document and line.
func (es Errors) Sorted() Errors {
	out := slices.Clone(es)
	slices.SortStableFunc(out, func(a, b *Error) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		if a.Index != b.Index {
			return a.Index - b.Index
		}
		return a.Line - b.Line
	})
	return out
}

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// errorAt is a problem with d at path, located at the line of path's
// deepest node the file has.
func (d *Document) errorAt(path, format string, args ...any) *Error {
	return &Error{File: d.File, Index: d.Index, Line: lineOf(d.node, path, d.Line), Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Load reads every document of paths: files, or directories searched
// recursively for *.yaml, *.yml and *.json files (in lexical order). A
// YAML file holds documents separated by "---"; a JSON file one document
// or an array of them. Documents are checked for their shape only (kind
// and spec); Validate checks what they define. Documents that fail that
// check are reported as Errors beside the others (which come back too, so
// that every problem can be reported at once).
func Load(paths []string) ([]*Document, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && isDefinitionFile(path) {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		slices.Sort(found)
		files = append(files, found...)
	}
	var docs []*Document
	var errs Errors
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		ds, es := Parse(f, raw)
		docs = append(docs, ds...)
		errs = append(errs, es...)
	}
	if len(errs) > 0 {
		return docs, errs
	}
	return docs, nil
}

func isDefinitionFile(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// Parse reads the documents of one file's content.
func Parse(file string, raw []byte) ([]*Document, Errors) {
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	var docs []*Document
	var errs Errors
	index := 0
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, &Error{File: file, Index: index + 1, Line: yamlErrorLine(err), Msg: yamlErrorText(err)})
			break
		}
		root := &n
		if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
			root = root.Content[0]
		}
		items := []*yaml.Node{root}
		if root.Kind == yaml.SequenceNode && strings.EqualFold(filepath.Ext(file), ".json") {
			items = root.Content
		}
		for _, it := range items {
			index++
			if it.Kind == yaml.ScalarNode && it.Tag == "!!null" {
				index-- // an empty document ("---" at the end)
				continue
			}
			d, es := newDocument(file, index, it)
			if d != nil {
				docs = append(docs, d)
			}
			errs = append(errs, es...)
		}
	}
	return docs, errs
}

// newDocument checks a document's shape: {"kind": <known kind>, "spec": {…}}.
func newDocument(file string, index int, n *yaml.Node) (*Document, Errors) {
	d := &Document{File: file, Index: index, Line: n.Line, node: n}
	v, err := nodeValue(n)
	if err != nil {
		return nil, Errors{&Error{File: file, Index: index, Line: n.Line, Msg: err.Error()}}
	}
	top, ok := v.(map[string]any)
	if !ok {
		return nil, Errors{d.errorAt("", "a document must be an object with kind and spec")}
	}
	var errs Errors
	for k := range top {
		if k != "kind" && k != "spec" {
			errs = append(errs, d.errorAt("/"+k, "unknown field (a document has only kind and spec)"))
		}
	}
	kind, _ := top["kind"].(string)
	switch {
	case top["kind"] == nil:
		errs = append(errs, d.errorAt("/kind", "required"))
	case kind == string(definitions.Dashboard):
		errs = append(errs, d.errorAt("/kind", "kind Dashboard is not supported by this portal"))
	case definitions.Rank(definitions.Kind(kind)) < 0:
		errs = append(errs, d.errorAt("/kind", "unknown kind %v (one of %s)", quoteAny(top["kind"]), kindList()))
	}
	spec, ok := top["spec"].(map[string]any)
	if !ok {
		errs = append(errs, d.errorAt("/spec", "required: an object, the definition"))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	d.Kind, d.Spec = definitions.Kind(kind), spec
	return d, nil
}

func kindList() string {
	names := make([]string, len(definitions.Kinds))
	for i, k := range definitions.Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

func quoteAny(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

// nodeValue converts a YAML node to JSON values (timestamps and other
// scalars YAML would type stay strings unless they are JSON's).
func nodeValue(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return nodeValue(n.Content[0])
	case yaml.AliasNode:
		return nodeValue(n.Alias)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: object keys must be strings", k.Line)
			}
			if k.Tag == "!!merge" {
				return nil, fmt.Errorf("line %d: YAML merge keys are not supported", k.Line)
			}
			x, err := nodeValue(v)
			if err != nil {
				return nil, err
			}
			m[k.Value] = x
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			x, err := nodeValue(c)
			if err != nil {
				return nil, err
			}
			s = append(s, x)
		}
		return s, nil
	}
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return b, nil
	case "!!int", "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return f, nil
	}
	return n.Value, nil
}

// lineOf is the line of the node at JSON pointer path under n (the
// deepest one present), or def.
func lineOf(n *yaml.Node, path string, def int) int {
	if n == nil {
		return def
	}
	line := n.Line
	if path == "" {
		return line
	}
	for _, tok := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		for n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == tok {
					next = n.Content[i+1]
					line = n.Content[i].Line
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(n.Content) {
				next = n.Content[i]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

func yamlErrorLine(err error) int {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return 0
	}
	// "yaml: line 3: mapping values are not allowed in this context"
	s := err.Error()
	if i := strings.Index(s, "line "); i >= 0 {
		rest := s[i+5:]
		if j := strings.IndexByte(rest, ':'); j > 0 {
			if n, err := strconv.Atoi(rest[:j]); err == nil {
				return n
			}
		}
	}
	return 0
}

func yamlErrorText(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	if i := strings.Index(s, "line "); i == 0 {
		if j := strings.IndexByte(s, ':'); j > 0 {
			s = strings.TrimSpace(s[j+1:])
		}
	}
	return "invalid YAML: " + s
}
