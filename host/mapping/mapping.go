// Package mapping turns a plugin's raw items into catalog entities with the
// jq expressions of its resource mappings (DESIGN §5): per kind a selector
// and identifier, title, blueprint, team, properties and relations
// expressions, each evaluated over the raw item. A Mapper is compiled once
// per installation and is safe for concurrent use.
package mapping

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/itchyny/gojq"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/internal/jqeval"
	"github.com/portico-dev/portico/pdk"
)

// Limits bound every evaluation of a mapping expression: it comes from a
// plugin author or an admin and runs in the host, once per item and field.
// An evaluation that exceeds them fails with a jqeval.LimitError naming
// the expression (errors.Is(err, jqeval.ErrLimit)).
var Limits = jqeval.Default

// Mapper maps raw items of each kind with the compiled resource mappings.
type Mapper struct {
	byKind map[string][]*resource
}

type resource struct {
	index      int
	selector   *expr // nil: every item
	identifier *expr
	title      *expr
	blueprint  *expr
	team       *expr
	properties []named
	relations  []named
}

type named struct {
	name string
	expr *expr
}

// Compile compiles resource mappings. Every problem is reported as a
// *catalog.ValidationError whose paths point into {"resources": […]}.
func Compile(resources []pdk.ResourceMapping) (*Mapper, error) {
	m := &Mapper{byKind: map[string][]*resource{}}
	var violations []catalog.Violation
	bad := func(path, format string, args ...any) {
		violations = append(violations, catalog.Violation{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	for i, rm := range resources {
		base := fmt.Sprintf("/resources/%d", i)
		if rm.Kind == "" {
			bad(base+"/kind", "kind is required")
		}
		r := &resource{index: i}
		compile := func(path, src string, required bool) *expr {
			if strings.TrimSpace(src) == "" {
				if required {
					bad(path, "expression is required")
				}
				return nil
			}
			e, err := compileExpr(src)
			if err != nil {
				bad(path, "%v", err)
			}
			return e
		}
		r.selector = compile(base+"/selector", rm.Selector, false)
		r.identifier = compile(base+"/entity/identifier", rm.Entity.Identifier, true)
		r.blueprint = compile(base+"/entity/blueprint", rm.Entity.Blueprint, true)
		r.title = compile(base+"/entity/title", rm.Entity.Title, false)
		r.team = compile(base+"/entity/team", rm.Entity.Team, false)
		for _, name := range sortedKeys(rm.Entity.Properties) {
			if e := compile(base+"/entity/properties/"+name, rm.Entity.Properties[name], true); e != nil {
				r.properties = append(r.properties, named{name, e})
			}
		}
		for _, name := range sortedKeys(rm.Entity.Relations) {
			if e := compile(base+"/entity/relations/"+name, rm.Entity.Relations[name], true); e != nil {
				r.relations = append(r.relations, named{name, e})
			}
		}
		m.byKind[rm.Kind] = append(m.byKind[rm.Kind], r)
	}
	if len(violations) > 0 {
		return nil, &catalog.ValidationError{Message: "invalid mapping", Violations: violations}
	}
	return m, nil
}

// HasKind reports whether some mapping handles kind.
func (m *Mapper) HasKind(kind string) bool { return len(m.byKind[kind]) > 0 }

// Decode parses a raw item into the value jq expressions run over.
func Decode(raw json.RawMessage) (any, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("decode item: %w", err)
	}
	return v, nil
}

// Map returns the entities the mappings of kind produce from one raw item
// (none when no selector matches). Entities carry Blueprint, Identifier,
// Title, Team, Properties and Relations; null values are left out.
func (m *Mapper) Map(kind string, item any) ([]*catalog.Entity, error) {
	var out []*catalog.Entity
	for _, r := range m.byKind[kind] {
		e, err := r.entity(item)
		if err != nil {
			return nil, fmt.Errorf("mapping %d (kind %s): %w", r.index, kind, err)
		}
		if e != nil {
			out = append(out, e)
		}
	}
	return out, nil
}

// Refs returns the entity references the mappings of kind derive from an
// item, evaluating only the selector, identifier and blueprint: enough to
// delete what a partial item (e.g. a deletion event) names.
func (m *Mapper) Refs(kind string, item any) ([]catalog.Ref, error) {
	var out []catalog.Ref
	for _, r := range m.byKind[kind] {
		ok, err := r.selected(item)
		if err != nil {
			return nil, fmt.Errorf("mapping %d (kind %s): %w", r.index, kind, err)
		}
		if !ok {
			continue
		}
		ref, err := r.ref(item)
		if err != nil {
			return nil, fmt.Errorf("mapping %d (kind %s): %w", r.index, kind, err)
		}
		out = append(out, ref)
	}
	return out, nil
}

func (r *resource) selected(item any) (bool, error) {
	if r.selector == nil {
		return true, nil
	}
	v, err := r.selector.eval(item)
	if err != nil {
		return false, fmt.Errorf("selector: %w", err)
	}
	return v != nil && v != false, nil
}

func (r *resource) ref(item any) (catalog.Ref, error) {
	id, err := requiredString(r.identifier, item, "identifier")
	if err != nil {
		return catalog.Ref{}, err
	}
	bp, err := requiredString(r.blueprint, item, "blueprint")
	if err != nil {
		return catalog.Ref{}, err
	}
	return catalog.Ref{Blueprint: bp, Identifier: id}, nil
}

func (r *resource) entity(item any) (*catalog.Entity, error) {
	ok, err := r.selected(item)
	if err != nil || !ok {
		return nil, err
	}
	ref, err := r.ref(item)
	if err != nil {
		return nil, err
	}
	e := &catalog.Entity{
		Blueprint:  ref.Blueprint,
		Identifier: ref.Identifier,
		Properties: make(map[string]any, len(r.properties)),
		Relations:  make(map[string]any, len(r.relations)),
	}
	if r.title != nil {
		v, err := r.title.eval(item)
		if err != nil {
			return nil, fmt.Errorf("title: %w", err)
		}
		if v != nil {
			if e.Title, err = scalarString(v); err != nil {
				return nil, fmt.Errorf("title: %w", err)
			}
		}
	}
	if r.team != nil {
		v, err := r.team.eval(item)
		if err != nil {
			return nil, fmt.Errorf("team: %w", err)
		}
		if e.Team, err = stringList(v); err != nil {
			return nil, fmt.Errorf("team: %w", err)
		}
	}
	for _, p := range r.properties {
		v, err := p.expr.eval(item)
		if err != nil {
			return nil, fmt.Errorf("property %s: %w", p.name, err)
		}
		if v != nil {
			e.Properties[p.name] = catalog.JSONValue(v)
		}
	}
	for _, rel := range r.relations {
		v, err := rel.expr.eval(item)
		if err != nil {
			return nil, fmt.Errorf("relation %s: %w", rel.name, err)
		}
		switch t := v.(type) {
		case nil:
		case []any:
			ids, err := stringList(t)
			if err != nil {
				return nil, fmt.Errorf("relation %s: %w", rel.name, err)
			}
			e.Relations[rel.name] = ids
		default:
			id, err := scalarString(t)
			if err != nil {
				return nil, fmt.Errorf("relation %s: %w", rel.name, err)
			}
			e.Relations[rel.name] = id
		}
	}
	return e, nil
}

func requiredString(e *expr, item any, what string) (string, error) {
	v, err := e.eval(item)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if v == nil {
		return "", fmt.Errorf("%s: expression gave null", what)
	}
	s, err := scalarString(v)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if s == "" {
		return "", fmt.Errorf("%s: expression gave an empty string", what)
	}
	return s, nil
}

// scalarString renders a string or a number (ids are often numeric).
func scalarString(v any) (string, error) {
	switch t := v.(type) {
	case string:
		return t, nil
	case int:
		return strconv.Itoa(t), nil
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1<<53 {
			return strconv.FormatInt(int64(t), 10), nil
		}
		return strconv.FormatFloat(t, 'g', -1, 64), nil
	case *big.Int:
		return t.String(), nil
	}
	return "", fmt.Errorf("want a string, got %s", typeName(v))
}

func stringList(v any) ([]string, error) {
	switch t := v.(type) {
	case nil:
		return nil, nil
	case []any:
		out := make([]string, 0, len(t))
		for _, x := range t {
			if x == nil {
				continue
			}
			s, err := scalarString(x)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	s, err := scalarString(v)
	if err != nil {
		return nil, err
	}
	return []string{s}, nil
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case string:
		return "string"
	}
	return "number"
}

// expr is one compiled expression. Simple paths (".a.b") and string
// literals, the bulk of real mappings, skip the jq interpreter.
type expr struct {
	path     []string // fast path: field names
	constant any      // fast path when isConst
	isConst  bool
	prog     *jqeval.Program
}

var simplePath = regexp.MustCompile(`^(\.[A-Za-z_][A-Za-z0-9_]*)+$`)

func compileExpr(src string) (*expr, error) {
	src = strings.TrimSpace(src)
	prog, err := jqeval.Compile(src, Limits)
	if err != nil {
		return nil, fmt.Errorf("compile jq %q: %w", src, err)
	}
	e := &expr{prog: prog}
	switch {
	case simplePath.MatchString(src):
		e.path = strings.Split(src[1:], ".")
	case src == "true" || src == "false" || src == "null" || isStringLiteral(src):
		var v any
		if json.Unmarshal([]byte(src), &v) == nil {
			e.constant, e.isConst = v, true
		}
	}
	return e, nil
}

func isStringLiteral(s string) bool {
	return len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' && !strings.ContainsAny(s[1:len(s)-1], `"\`)
}

// eval returns the expression's first output (null when it has none).
func (e *expr) eval(item any) (any, error) {
	if e.isConst {
		return e.constant, nil
	}
	if e.path != nil {
		v := item
		for _, field := range e.path {
			switch t := v.(type) {
			case nil:
				return nil, nil
			case map[string]any:
				v = t[field]
			default:
				return nil, fmt.Errorf("cannot index %s with %q", typeName(v), field)
			}
		}
		return v, nil
	}
	v, _, err := e.prog.First(context.Background(), item)
	if err != nil {
		var halt *gojq.HaltError
		if errors.As(err, &halt) && halt.Value() == nil {
			return nil, nil
		}
		return nil, err
	}
	return v, nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
