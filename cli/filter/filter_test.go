package filter

import (
	"errors"
	"reflect"
	"testing"

	"github.com/portico-dev/portico/core/catalog"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want catalog.Rule
	}{
		{"tier <= 2", catalog.Rule{Property: "tier", Operator: "<=", Value: int64(2)}},
		{"tier<=2", catalog.Rule{Property: "tier", Operator: "<=", Value: int64(2)}},
		{"language = go", catalog.Rule{Property: "language", Operator: "=", Value: "go"}},
		{"language == go", catalog.Rule{Property: "language", Operator: "=", Value: "go"}},
		{"score > 1.5", catalog.Rule{Property: "score", Operator: ">", Value: 1.5}},
		{"score >= -3", catalog.Rule{Property: "score", Operator: ">=", Value: int64(-3)}},
		{"public = true", catalog.Rule{Property: "public", Operator: "=", Value: true}},
		{"public != false", catalog.Rule{Property: "public", Operator: "!=", Value: false}},
		{"version = '42'", catalog.Rule{Property: "version", Operator: "=", Value: "42"}},
		{`title = "Check out"`, catalog.Rule{Property: "title", Operator: "=", Value: "Check out"}},
		{`title = "say \"hi\""`, catalog.Rule{Property: "title", Operator: "=", Value: `say "hi"`}},
		{"name ~ check", catalog.Rule{Property: "name", Operator: "contains", Value: "check"}},
		{"$team contains payments", catalog.Rule{Property: "$team", Operator: "contains", Value: "payments"}},
		{"name beginsWith chk", catalog.Rule{Property: "name", Operator: "beginsWith", Value: "chk"}},
		{"name endswith out", catalog.Rule{Property: "name", Operator: "endsWith", Value: "out"}},
		{"language in go,rust", catalog.Rule{Property: "language", Operator: "in", Value: []any{"go", "rust"}}},
		{"language in go, 'rust' , py", catalog.Rule{Property: "language", Operator: "in", Value: []any{"go", "rust", "py"}}},
		{"tier in 1,2", catalog.Rule{Property: "tier", Operator: "in", Value: []any{int64(1), int64(2)}}},
		{"language notIn go", catalog.Rule{Property: "language", Operator: "notIn", Value: []any{"go"}}},
		{"language not in go,rust", catalog.Rule{Property: "language", Operator: "notIn", Value: []any{"go", "rust"}}},
		{"$team containsAny a,b", catalog.Rule{Property: "$team", Operator: "containsAny", Value: []any{"a", "b"}}},
		{"tier between 1,3", catalog.Rule{Property: "tier", Operator: "between", Value: []any{int64(1), int64(3)}}},
		{"owner isEmpty", catalog.Rule{Property: "owner", Operator: "isEmpty"}},
		{"owner exists", catalog.Rule{Property: "owner", Operator: "isNotEmpty"}},
		{"owner missing", catalog.Rule{Property: "owner", Operator: "isEmpty"}},
		{"  expiresAt isExpired  ", catalog.Rule{Property: "expiresAt", Operator: "isExpired"}},
		{"scorecards.readiness.level = Gold", catalog.Rule{Property: "scorecards.readiness.level", Operator: "=", Value: "Gold"}},
		{"url = https://x.example/a?b=1", catalog.Rule{Property: "url", Operator: "=", Value: "https://x.example/a?b=1"}},
		{"relatedTo team/payments", catalog.Rule{Operator: "relatedTo", Blueprint: "team", Identifier: "payments", Direction: "upstream"}},
		{"relatedTo service/a/b downstream via dependsOn depth 2", catalog.Rule{Operator: "relatedTo", Blueprint: "service", Identifier: "a/b", Direction: "downstream", Relation: "dependsOn", Depth: 2}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in     string
		column int
		msg    string
	}{
		{"", 1, "empty filter"},
		{"tier", 5, `expected an operator after "tier"`},
		{"= 2", 1, "expected a property name"},
		{"tier <== 2", 6, `unknown operator "<=="`},
		{"tier like 2", 6, `unknown operator "like"`},
		{"tier <=", 8, `expected a value after "<="`},
		{"title = hello world", 15, `unexpected "world" (quote a value that holds spaces)`},
		{`title = "open`, 9, "unterminated quoted value"},
		{"tier between 1", 6, "between takes two values (A,B), got 1"},
		{"owner isEmpty now", 15, `unexpected "now"`},
		{"language not go", 10, `"not" must be followed by "in"`},
		{"relatedTo payments", 11, "relatedTo needs an entity as BLUEPRINT/IDENTIFIER"},
		{"relatedTo team/a depth 9", 24, "depth must be 1, 2 or 3"},
		{"relatedTo team/a sideways", 18, `unexpected "sideways" after relatedTo`},
		{"näme <== 1", 6, `unknown operator "<=="`},
	}
	for _, tt := range tests {
		_, err := Parse(tt.in)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) = %v, want a syntax error", tt.in, err)
			continue
		}
		if se.Column != tt.column || len(se.Msg) < len(tt.msg) || se.Msg[:len(tt.msg)] != tt.msg {
			t.Errorf("Parse(%q): column %d %q, want column %d %q", tt.in, se.Column, se.Msg, tt.column, tt.msg)
		}
	}
}

func TestParseAll(t *testing.T) {
	q, err := ParseAll([]string{"tier <= 2", "language = go"})
	if err != nil {
		t.Fatal(err)
	}
	if q.Combinator != "and" || len(q.Rules) != 2 || q.Rules[1].Property != "language" {
		t.Errorf("ParseAll = %+v", q)
	}
	if _, err := ParseAll([]string{"tier <= 2", "tier <"}); err == nil || err.Error() != `filter "tier <", column 7: expected a value after "<"` {
		t.Errorf("ParseAll error = %v", err)
	}
}
