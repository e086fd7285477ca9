package catalog

import (
	"encoding/json"
	"fmt"
	"math"
	"net/mail"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxTitleLength is the longest entity title accepted, in characters.
const MaxTitleLength = 1000

// ValidateEntity checks e against the blueprint: identifier, title, team,
// properties and relations. It normalises e in place: null properties are
// removed (null means unset), as are calculation and mirror properties
// echoed back by a client; relation values become a string (single) or a
// []string without duplicates (many), null relations are removed. Every
// violation is reported in one *ValidationError, with pointers like
// "/properties/port" or "/relations/owner/1". Relation targets are not
// looked up. e.Blueprint is neither checked nor set.
func (c *CompiledBlueprint) ValidateEntity(e *Entity) error {
	var vs violations
	if msg := schemaIdentifierProblem(e.Identifier); msg != "" {
		vs.add("/identifier", "%s", msg)
	}
	if len(e.Title) > MaxTitleLength && utf8.RuneCountInString(e.Title) > MaxTitleLength {
		vs.add("/title", "must be at most %d characters", MaxTitleLength)
	}
	for i, t := range e.Team {
		if msg := schemaIdentifierProblem(t); msg != "" {
			vs.add("/team/"+strconv.Itoa(i), "%s", msg)
		}
	}

	for name, v := range e.Properties {
		r := c.props[name]
		if r == nil {
			if _, ok := c.computed[name]; ok {
				delete(e.Properties, name)
				continue
			}
			vs.add(pointer("properties", name), "not defined in blueprint %s", c.Blueprint.Identifier)
			continue
		}
		if v == nil {
			delete(e.Properties, name)
			continue
		}
		r.check(v, r.path, -1, &vs)
	}
	for _, r := range c.required {
		if v, ok := e.Properties[r.name]; !ok || v == nil {
			vs.add(r.path, "required property missing")
		}
	}

	for name, v := range e.Relations {
		r := c.relations[name]
		if r == nil {
			vs.add(pointer("relations", name), "not defined in blueprint %s", c.Blueprint.Identifier)
			continue
		}
		if v == nil {
			delete(e.Relations, name)
			continue
		}
		if r.many {
			if ids, ok := r.checkMany(v, &vs); ok {
				e.Relations[name] = ids
			}
			continue
		}
		s, ok := v.(string)
		if !ok {
			vs.add(r.path, "expected string, got %s", schemaValueTypeName(v))
		} else if msg := schemaIdentifierProblem(s); msg != "" {
			vs.add(r.path, "%s", msg)
		}
	}
	for _, r := range c.requiredRels {
		switch v := e.Relations[r.name].(type) {
		case nil:
			vs.add(r.path, "required relation missing")
		case []string:
			if len(v) == 0 {
				vs.add(r.path, "required relation missing")
			}
		case []any:
			if len(v) == 0 {
				vs.add(r.path, "required relation missing")
			}
		}
	}

	if len(vs.list) > 1 {
		sort.SliceStable(vs.list, func(i, j int) bool {
			return schemaComparePointers(vs.list[i].Path, vs.list[j].Path) < 0
		})
	}
	return vs.err("invalid entity")
}

// checkMany validates a many-relation value and returns it as a
// duplicate-free []string; ok is false when it had violations.
func (r *schemaRelRule) checkMany(v any, vs *violations) ([]string, bool) {
	switch t := v.(type) {
	case string:
		if msg := schemaIdentifierProblem(t); msg != "" {
			vs.add(r.path, "%s", msg)
			return nil, false
		}
		return []string{t}, true
	case []string:
		ok := true
		for i, s := range t {
			if msg := schemaIdentifierProblem(s); msg != "" {
				vs.add(r.path+"/"+strconv.Itoa(i), "%s", msg)
				ok = false
			}
		}
		if !ok {
			return nil, false
		}
		return schemaDedupeStrings(t), true
	case []any:
		out := make([]string, 0, len(t))
		ok := true
		for i, x := range t {
			s, isStr := x.(string)
			if !isStr {
				vs.add(r.path+"/"+strconv.Itoa(i), "expected string, got %s", schemaValueTypeName(x))
				ok = false
				continue
			}
			if msg := schemaIdentifierProblem(s); msg != "" {
				vs.add(r.path+"/"+strconv.Itoa(i), "%s", msg)
				ok = false
				continue
			}
			out = append(out, s)
		}
		if !ok {
			return nil, false
		}
		return schemaDedupeStrings(out), true
	default:
		vs.add(r.path, "expected array of strings, got %s", schemaValueTypeName(v))
		return nil, false
	}
}

// schemaDedupeStrings removes later duplicates, preserving order; it returns s
// itself when there are none.
func schemaDedupeStrings(s []string) []string {
	if len(s) < 2 {
		return s
	}
	if len(s) <= 16 {
		for i := 1; i < len(s); i++ {
			for j := 0; j < i; j++ {
				if s[i] == s[j] {
					return schemaDedupeStringsSlow(s)
				}
			}
		}
		return s
	}
	return schemaDedupeStringsSlow(s)
}

func schemaDedupeStringsSlow(s []string) []string {
	seen := make(map[string]struct{}, len(s))
	out := make([]string, 0, len(s))
	for _, x := range s {
		if _, dup := seen[x]; dup {
			continue
		}
		seen[x] = struct{}{}
		out = append(out, x)
	}
	return out
}

// schemaAt is the pointer of a value: base, or base's element idx when idx ≥ 0.
// It is only called on the error path.
func schemaAt(base string, idx int) string {
	if idx < 0 {
		return base
	}
	return base + "/" + strconv.Itoa(idx)
}

// check validates one non-null value against r, reporting at base (or at
// base's element idx when idx ≥ 0).
func (r *schemaPropRule) check(v any, base string, idx int, vs *violations) {
	switch r.kind {
	case schemaKindString:
		s, ok := v.(string)
		if !ok {
			vs.add(schemaAt(base, idx), "expected string, got %s", schemaValueTypeName(v))
			return
		}
		r.checkString(s, base, idx, vs)
	case schemaKindNumber, schemaKindInteger:
		f, ok := schemaNumberValue(v)
		if !ok {
			vs.add(schemaAt(base, idx), "expected %s, got %s", r.kind, schemaValueTypeName(v))
			return
		}
		if r.kind == schemaKindInteger && !schemaIsWhole(f) {
			vs.add(schemaAt(base, idx), "expected integer, got number")
			return
		}
		if r.hasEnum {
			found := false
			for _, x := range r.enumNum {
				if x == f {
					found = true
					break
				}
			}
			if !found {
				vs.add(schemaAt(base, idx), "must be one of %s", r.enumText)
			}
		}
		if r.hasMin && f < r.min {
			vs.add(schemaAt(base, idx), "must be ≥ %s", schemaFormatNumber(r.min))
		}
		if r.hasMax && f > r.max {
			vs.add(schemaAt(base, idx), "must be ≤ %s", schemaFormatNumber(r.max))
		}
	case schemaKindBoolean:
		b, ok := v.(bool)
		if !ok {
			vs.add(schemaAt(base, idx), "expected boolean, got %s", schemaValueTypeName(v))
			return
		}
		if r.hasEnum {
			found := false
			for _, x := range r.enumBool {
				if x == b {
					found = true
					break
				}
			}
			if !found {
				vs.add(schemaAt(base, idx), "must be one of %s", r.enumText)
			}
		}
	case schemaKindArray:
		path := schemaAt(base, idx)
		switch a := v.(type) {
		case []any:
			if r.items != nil {
				for i, x := range a {
					if x == nil {
						vs.add(path+"/"+strconv.Itoa(i), "expected %s, got null", r.items.kind)
						continue
					}
					r.items.check(x, path, i, vs)
				}
			}
		case []string:
			if r.items != nil {
				for i, x := range a {
					r.items.check(x, path, i, vs)
				}
			}
		default:
			vs.add(path, "expected array, got %s", schemaValueTypeName(v))
		}
	case schemaKindObject:
		if _, ok := v.(map[string]any); !ok {
			vs.add(schemaAt(base, idx), "expected object, got %s", schemaValueTypeName(v))
		}
	}
}

func (r *schemaPropRule) checkString(s, base string, idx int, vs *violations) {
	if r.minLen >= 0 || r.maxLen >= 0 {
		n := utf8.RuneCountInString(s)
		if r.minLen >= 0 && n < r.minLen {
			vs.add(schemaAt(base, idx), "must be at least %d characters", r.minLen)
		}
		if r.maxLen >= 0 && n > r.maxLen {
			vs.add(schemaAt(base, idx), "must be at most %d characters", r.maxLen)
		}
	}
	if r.re != nil && !r.re.MatchString(s) {
		vs.add(schemaAt(base, idx), "must match pattern %q", r.re.String())
	}
	if r.format != schemaFormatNone {
		if msg := schemaFormatProblem(r.format, s); msg != "" {
			vs.add(schemaAt(base, idx), "%s", msg)
		}
	}
	if r.hasEnum {
		found := false
		for _, x := range r.enumStr {
			if x == s {
				found = true
				break
			}
		}
		if !found {
			vs.add(schemaAt(base, idx), "must be one of %s", r.enumText)
		}
	}
}

// schemaFormatProblem returns why s does not satisfy f, or "".
func schemaFormatProblem(f schemaStringFormat, s string) string {
	switch f {
	case schemaFormatURL:
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "must be an absolute http or https URL"
		}
	case schemaFormatEmail:
		if !schemaIsEmail(s) {
			return "must be an email address"
		}
	case schemaFormatUser:
		if !schemaIsEmail(s) {
			return "must be a user's email address"
		}
	case schemaFormatDateTime, schemaFormatTimer:
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			return "must be an RFC 3339 date-time, e.g. 2024-01-02T15:04:05Z"
		}
	case schemaFormatTeam:
		if !schemaIsIdentifier(s) {
			return "must be a team identifier"
		}
	}
	return ""
}

// schemaIsEmail reports whether s is a bare email address (no display name, no
// angle brackets).
func schemaIsEmail(s string) bool {
	if s == "" || len(s) > 320 || strings.IndexByte(s, '@') < 0 {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s
}

// schemaIdentChars marks the bytes allowed after the first identifier character.
var schemaIdentChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "@_.:/=+-" {
		t[c] = true
	}
	return t
}()

// schemaIsIdentifier is IdentifierPattern.MatchString without the regexp engine.
func schemaIsIdentifier(s string) bool {
	if len(s) == 0 || len(s) > 200 {
		return false
	}
	c := s[0]
	if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !schemaIdentChars[s[i]] {
			return false
		}
	}
	return true
}

// schemaIdentifierProblem describes why s is not an identifier, or returns "".
func schemaIdentifierProblem(s string) string {
	if schemaIsIdentifier(s) {
		return ""
	}
	if s == "" {
		return "required"
	}
	return "must match " + IdentifierPattern.String()
}

// schemaNumberValue returns v as a float64 when it is a number (JSON numbers
// decode as float64; the other kinds come from Go callers).
func schemaNumberValue(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, !math.IsNaN(n) && !math.IsInf(n, 0)
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	case uint64:
		return float64(n), true
	case uint32:
		return float64(n), true
	case float32:
		f := float64(n)
		return f, !math.IsNaN(f) && !math.IsInf(f, 0)
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func schemaIsWhole(f float64) bool { return f == math.Trunc(f) && !math.IsInf(f, 0) }

// schemaValueTypeName names v's JSON type for messages.
func schemaValueTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64, float32, int, int64, int32, uint64, uint32, json.Number:
		return "number"
	case []any, []string:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("unsupported value %T", v)
}

// schemaFormatNumber prints a limit without exponent for ordinary magnitudes.
func schemaFormatNumber(f float64) string {
	if math.Abs(f) < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// schemaComparePointers orders JSON pointers token by token, numeric tokens
// numerically, so "/tags/2" sorts before "/tags/10".
func schemaComparePointers(a, b string) int {
	for a != "" || b != "" {
		if a == "" {
			return -1
		}
		if b == "" {
			return 1
		}
		var ta, tb string
		ta, a = schemaNextToken(a)
		tb, b = schemaNextToken(b)
		if ta == tb {
			continue
		}
		na, errA := strconv.Atoi(ta)
		nb, errB := strconv.Atoi(tb)
		if errA == nil && errB == nil {
			if na < nb {
				return -1
			}
			return 1
		}
		return strings.Compare(ta, tb)
	}
	return 0
}

func schemaNextToken(p string) (tok, rest string) {
	p = strings.TrimPrefix(p, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i:]
	}
	return p, ""
}
