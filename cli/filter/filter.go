// Package filter parses the short filters of `portico search`
// ("tier <= 2", "language in go,rust", "relatedTo team/payments") into
// rules of the catalog's search language.
package filter

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/portico-dev/portico/core/catalog"
)

// SyntaxError is a filter that does not parse; Column (1-based, in
// characters) is where the problem starts.
type SyntaxError struct {
	Filter string
	Column int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("filter %q, column %d: %s", e.Filter, e.Column, e.Msg)
}

// kind is what an operator takes after it.
type kind int

const (
	noValue kind = iota
	scalar
	list
	pair // between: exactly two values
)

// operators maps every spelling (lower-cased) to the rule operator and
// what it takes.
var operators = map[string]struct {
	op   string
	kind kind
}{
	"=": {"=", scalar}, "==": {"=", scalar}, "!=": {"!=", scalar},
	"<": {"<", scalar}, "<=": {"<=", scalar}, ">": {">", scalar}, ">=": {">=", scalar},
	"~": {"contains", scalar}, "contains": {"contains", scalar},
	"containsany": {"containsAny", list},
	"in":          {"in", list}, "notin": {"notIn", list},
	"beginswith": {"beginsWith", scalar}, "endswith": {"endsWith", scalar},
	"between": {"between", pair},
	"isempty": {"isEmpty", noValue}, "isnotempty": {"isNotEmpty", noValue},
	"exists": {"isNotEmpty", noValue}, "missing": {"isEmpty", noValue},
	"isexpired": {"isExpired", noValue}, "isnotexpired": {"isNotExpired", noValue},
}

// symbols are the characters of symbolic operators: they also end a
// property name ("tier<=2").
const symbols = "=!<>~"

// Parse turns one filter into a rule:
//
//	PROPERTY OP VALUE        =, !=, <, <=, >, >=, ~ (contains), contains, beginsWith, endsWith
//	PROPERTY OP V1,V2,…      in, notIn (or "not in"), containsAny
//	PROPERTY between A,B
//	PROPERTY isEmpty         also isNotEmpty, exists (= isNotEmpty), missing (= isEmpty), isExpired, isNotExpired
//	relatedTo BP/ID [upstream|downstream] [via RELATION] [depth N]
//
// Values are typed: numbers, true, false and null are JSON values, other
// words strings; quote a string that holds spaces or commas, or that
// would read as a number ("'42'", "\"a b\"").
func Parse(src string) (catalog.Rule, error) {
	s := &scanner{src: src}
	s.space()
	if s.eof() {
		return catalog.Rule{}, s.fail(s.pos, "empty filter")
	}
	start := s.pos
	prop := s.word()
	if prop == "" {
		return catalog.Rule{}, s.fail(start, "expected a property name")
	}
	if prop == "relatedTo" {
		return s.related()
	}
	s.space()
	if s.eof() {
		return catalog.Rule{}, s.fail(s.pos, "expected an operator after "+strconv.Quote(prop))
	}
	opAt := s.pos
	spelled := s.operator()
	if strings.EqualFold(spelled, "not") {
		s.space()
		if w := s.word(); !strings.EqualFold(w, "in") {
			return catalog.Rule{}, s.fail(opAt, `"not" must be followed by "in"`)
		}
		spelled = "notIn"
	}
	op, ok := operators[strings.ToLower(spelled)]
	if !ok {
		return catalog.Rule{}, s.fail(opAt, fmt.Sprintf("unknown operator %q (use =, !=, <, <=, >, >=, ~, in, notIn, contains, containsAny, beginsWith, endsWith, between, isEmpty, isNotEmpty)", spelled))
	}
	rule := catalog.Rule{Property: prop, Operator: op.op}
	switch op.kind {
	case noValue:
	case scalar:
		v, err := s.value(spelled, false)
		if err != nil {
			return catalog.Rule{}, err
		}
		rule.Value = v
	case list, pair:
		var vs []any
		for {
			v, err := s.value(spelled, true)
			if err != nil {
				return catalog.Rule{}, err
			}
			vs = append(vs, v)
			s.space()
			if s.eof() || s.peek() != ',' {
				break
			}
			s.pos++
		}
		if op.kind == pair && len(vs) != 2 {
			return catalog.Rule{}, s.fail(opAt, fmt.Sprintf("between takes two values (A,B), got %d", len(vs)))
		}
		rule.Value = vs
	}
	s.space()
	if !s.eof() {
		msg := fmt.Sprintf("unexpected %q", s.src[s.pos:])
		if op.kind == scalar {
			msg += " (quote a value that holds spaces)"
		}
		return catalog.Rule{}, s.fail(s.pos, msg)
	}
	return rule, nil
}

// ParseAll parses filters and ANDs them into one query.
func ParseAll(filters []string) (*catalog.Rule, error) {
	q := &catalog.Rule{Combinator: "and"}
	for _, f := range filters {
		r, err := Parse(f)
		if err != nil {
			return nil, err
		}
		q.Rules = append(q.Rules, r)
	}
	return q, nil
}

// related parses what follows "relatedTo".
func (s *scanner) related() (catalog.Rule, error) {
	s.space()
	at := s.pos
	target := s.word()
	bp, id, ok := strings.Cut(target, "/")
	if !ok || bp == "" || id == "" {
		return catalog.Rule{}, s.fail(at, "relatedTo needs an entity as BLUEPRINT/IDENTIFIER")
	}
	rule := catalog.Rule{Operator: "relatedTo", Blueprint: bp, Identifier: id, Direction: "upstream"}
	for {
		s.space()
		if s.eof() {
			return rule, nil
		}
		at := s.pos
		switch w := s.word(); strings.ToLower(w) {
		case "upstream", "downstream":
			rule.Direction = strings.ToLower(w)
		case "via":
			s.space()
			if rule.Relation = s.word(); rule.Relation == "" {
				return catalog.Rule{}, s.fail(s.pos, "via needs a relation name")
			}
		case "depth":
			s.space()
			dat := s.pos
			n, err := strconv.Atoi(s.word())
			if err != nil || n < 1 || n > 3 {
				return catalog.Rule{}, s.fail(dat, "depth must be 1, 2 or 3")
			}
			rule.Depth = n
		default:
			return catalog.Rule{}, s.fail(at, fmt.Sprintf("unexpected %q after relatedTo (want upstream, downstream, via RELATION or depth N)", w))
		}
	}
}

// scanner reads a filter left to right; pos is a byte offset.
type scanner struct {
	src string
	pos int
}

func (s *scanner) eof() bool  { return s.pos >= len(s.src) }
func (s *scanner) peek() byte { return s.src[s.pos] }

func (s *scanner) space() {
	for !s.eof() && (s.peek() == ' ' || s.peek() == '\t') {
		s.pos++
	}
}

// word reads up to a space or an operator symbol.
func (s *scanner) word() string {
	start := s.pos
	for !s.eof() && s.peek() != ' ' && s.peek() != '\t' && !strings.ContainsRune(symbols, rune(s.peek())) {
		s.pos++
	}
	return s.src[start:s.pos]
}

// operator reads a symbolic operator or a word.
func (s *scanner) operator() string {
	start := s.pos
	for !s.eof() && strings.ContainsRune(symbols, rune(s.peek())) {
		s.pos++
	}
	if s.pos > start {
		return s.src[start:s.pos]
	}
	return s.word()
}

// value reads one value after operator op; inList stops a bare value at
// a comma.
func (s *scanner) value(op string, inList bool) (any, error) {
	s.space()
	if s.eof() {
		return nil, s.fail(s.pos, "expected a value after "+strconv.Quote(op))
	}
	start := s.pos
	if q := s.peek(); q == '"' || q == '\'' {
		i := s.pos + 1
		for i < len(s.src) && s.src[i] != q {
			if q == '"' && s.src[i] == '\\' {
				i++ // an escape: skip what it escapes
			}
			i++
		}
		if i >= len(s.src) {
			return nil, s.fail(start, "unterminated quoted value")
		}
		raw := s.src[s.pos : i+1]
		s.pos = i + 1
		if q == '\'' {
			return raw[1 : len(raw)-1], nil
		}
		v, err := strconv.Unquote(raw)
		if err != nil {
			return nil, s.fail(start, "invalid quoted value "+raw)
		}
		return v, nil
	}
	for !s.eof() && s.peek() != ' ' && s.peek() != '\t' && !(inList && s.peek() == ',') {
		s.pos++
	}
	word := s.src[start:s.pos]
	if word == "" {
		return nil, s.fail(start, "expected a value after "+strconv.Quote(op))
	}
	return typed(word), nil
}

// typed reads a bare word as a number, a boolean, null or a string.
func typed(w string) any {
	switch w {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if n, err := strconv.ParseInt(w, 10, 64); err == nil {
		return n
	}
	if strings.Trim(w, "0123456789+-.eE") == "" {
		if f, err := strconv.ParseFloat(w, 64); err == nil {
			return f
		}
	}
	return w
}

// fail is a SyntaxError at byte offset pos.
func (s *scanner) fail(pos int, msg string) error {
	return &SyntaxError{Filter: s.src, Column: utf8.RuneCountInString(s.src[:pos]) + 1, Msg: msg}
}
