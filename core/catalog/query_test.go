package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

var queryTestNow = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func queryTestEntity() *Entity {
	return &Entity{
		Identifier: "checkout",
		Title:      "Checkout",
		Blueprint:  "service",
		Team:       []string{"payments", "platform"},
		Properties: map[string]any{
			"language":  "go",
			"tier":      float64(1),
			"count":     2, // an int, as a computed property may produce
			"version":   "2",
			"enabled":   true,
			"tags":      []any{"pci", "critical"},
			"ports":     []any{80.0, 443.0},
			"mixed":     []any{"a", 1.0, true},
			"empty":     "",
			"emptyList": []any{},
			"emptyObj":  map[string]any{},
			"obj":       map[string]any{"a": 1.0},
			"null":      nil,
			"expiresAt": "2024-12-31T23:59:59Z",
			"renewAt":   "2025-01-01T12:00:00Z",
			"notATime":  "tomorrow",
			"owner":     "props-wins",
		},
		Relations: map[string]any{
			"owner":     "payments-team",
			"dependsOn": []any{"cart", "pricing"},
			"lead":      "alice",
			"reviewers": []string{"bob", "carol"},
		},
		CreatedAt:  time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		UpdatedAt:  time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC),
		Datasource: "k8s-prod",
	}
}

func ql(property, operator string, value any) Rule {
	return Rule{Property: property, Operator: operator, Value: value}
}

func TestMatchOperators(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
		want bool
	}{
		// = and !=
		{"= string", ql("language", "=", "go"), true},
		{"= string mismatch", ql("language", "=", "rust"), false},
		{"= number", ql("tier", "=", 1.0), true},
		{"= int property vs float value", ql("count", "=", 2.0), true},
		{"= float property vs int value", ql("tier", "=", 1), true},
		{"= bool", ql("enabled", "=", true), true},
		{"= string vs number no coercion", ql("version", "=", 2.0), false},
		{"= number vs string no coercion", ql("tier", "=", "1"), false},
		{"= bool vs string no coercion", ql("enabled", "=", "true"), false},
		{"= array any element", ql("tags", "=", "critical"), true},
		{"= array no element", ql("tags", "=", "pii"), false},
		{"= numeric array", ql("ports", "=", 443.0), true},
		{"= mixed array typed", ql("mixed", "=", true), true},
		{"= mixed array no coercion", ql("mixed", "=", "1"), false},
		{"= missing", ql("nope", "=", "x"), false},
		{"= null", ql("null", "=", "x"), false},
		{"= object", ql("obj", "=", "x"), false},
		{"!= string", ql("language", "!=", "rust"), true},
		{"!= equal", ql("language", "!=", "go"), false},
		{"!= type differs", ql("version", "!=", 2.0), true},
		{"!= array containing", ql("tags", "!=", "pci"), false},
		{"!= array not containing", ql("tags", "!=", "pii"), true},
		{"!= empty array", ql("emptyList", "!=", "x"), true},
		{"!= missing", ql("nope", "!=", "x"), true},
		{"!= null", ql("null", "!=", "x"), true},

		// ordering
		{"< number", ql("tier", "<", 2.0), true},
		{"< number equal", ql("tier", "<", 1.0), false},
		{"<= number equal", ql("tier", "<=", 1.0), true},
		{"> number", ql("tier", ">", 0.5), true},
		{">= int property", ql("count", ">=", 2.0), true},
		{"> int property", ql("count", ">", 2.0), false},
		{"< string lexicographic", ql("language", "<", "java"), true},
		{"> string lexicographic", ql("language", ">", "c"), true},
		{"< string vs number", ql("version", "<", 10.0), false},
		{"< bool false<true", ql("enabled", "<", true), false},
		{">= bool", ql("enabled", ">=", false), true},
		{"> array any element", ql("ports", ">", 100.0), true},
		{"> array no element", ql("ports", ">", 1000.0), false},
		{"< missing", ql("nope", "<", 1.0), false},
		{"< string vs string numbers are lexicographic", ql("version", "<", "10"), false},

		// between
		{"between object", ql("tier", "between", map[string]any{"from": 1.0, "to": 3.0}), true},
		{"between inclusive upper", ql("tier", "between", []any{0.0, 1.0}), true},
		{"between outside", ql("tier", "between", []any{2.0, 3.0}), false},
		{"between array any", ql("ports", "between", []any{400.0, 500.0}), true},
		{"between array none", ql("ports", "between", []any{100.0, 400.0}), false},
		{"between strings", ql("language", "between", []any{"a", "h"}), true},
		{"between mixed types", ql("tier", "between", []any{"0", 3.0}), false},
		{"between missing", ql("nope", "between", []any{0.0, 3.0}), false},

		// in / notIn
		{"in", ql("language", "in", []any{"go", "rust"}), true},
		{"in none", ql("language", "in", []any{"java", "rust"}), false},
		{"in typed", ql("tier", "in", []any{"1", true}), false},
		{"in number", ql("tier", "in", []any{3.0, 1.0}), true},
		{"in array property", ql("tags", "in", []any{"critical"}), true},
		{"in empty list", ql("language", "in", []any{}), false},
		{"in missing", ql("nope", "in", []any{"x"}), false},
		{"in []string value", ql("language", "in", []string{"go"}), true},
		{"notIn", ql("language", "notIn", []any{"java"}), true},
		{"notIn hit", ql("language", "notIn", []any{"go"}), false},
		{"notIn array hit", ql("tags", "notIn", []any{"x", "pci"}), false},
		{"notIn array no hit", ql("tags", "notIn", []any{"x"}), true},
		{"notIn missing", ql("nope", "notIn", []any{"x"}), true},

		// contains / containsAny
		{"contains substring", ql("language", "contains", "o"), true},
		{"contains no substring", ql("language", "contains", "x"), false},
		{"contains array element", ql("tags", "contains", "pci"), true},
		{"contains array is not substring", ql("tags", "contains", "pc"), false},
		{"contains numeric array", ql("ports", "contains", 80.0), true},
		{"contains number on string", ql("version", "contains", 2.0), false},
		{"contains on number", ql("tier", "contains", 1.0), false},
		{"contains missing", ql("nope", "contains", "x"), false},
		{"containsAny string", ql("language", "containsAny", []any{"x", "g"}), true},
		{"containsAny array", ql("tags", "containsAny", []any{"x", "critical"}), true},
		{"containsAny none", ql("tags", "containsAny", []any{"x", "y"}), false},
		{"containsAny empty", ql("tags", "containsAny", []any{}), false},

		// beginsWith / endsWith
		{"beginsWith", ql("language", "beginsWith", "g"), true},
		{"beginsWith no", ql("language", "beginsWith", "o"), false},
		{"beginsWith array", ql("tags", "beginsWith", "crit"), true},
		{"beginsWith non-string property", ql("tier", "beginsWith", "1"), false},
		{"beginsWith non-string value", ql("version", "beginsWith", 2.0), false},
		{"endsWith", ql("language", "endsWith", "o"), true},
		{"endsWith array", ql("tags", "endsWith", "ci"), true},
		{"endsWith no", ql("tags", "endsWith", "x"), false},

		// isEmpty / isNotEmpty
		{"isEmpty missing", ql("nope", "isEmpty", nil), true},
		{"isEmpty null", ql("null", "isEmpty", nil), true},
		{"isEmpty empty string", ql("empty", "isEmpty", nil), true},
		{"isEmpty empty array", ql("emptyList", "isEmpty", nil), true},
		{"isEmpty empty object", ql("emptyObj", "isEmpty", nil), true},
		{"isEmpty zero is not empty", ql("count", "isEmpty", nil), false},
		{"isEmpty false is not empty", ql("enabled", "isEmpty", nil), false},
		{"isEmpty string", ql("language", "isEmpty", nil), false},
		{"isNotEmpty array", ql("tags", "isNotEmpty", nil), true},
		{"isNotEmpty object", ql("obj", "isNotEmpty", nil), true},
		{"isNotEmpty missing", ql("nope", "isNotEmpty", nil), false},
		{"isNotEmpty empty", ql("emptyList", "isNotEmpty", nil), false},

		// timers
		{"isExpired past", ql("expiresAt", "isExpired", nil), true},
		{"isNotExpired past", ql("expiresAt", "isNotExpired", nil), false},
		{"isExpired exactly now", ql("renewAt", "isExpired", nil), false},
		{"isNotExpired exactly now", ql("renewAt", "isNotExpired", nil), true},
		{"isExpired missing", ql("nope", "isExpired", nil), false},
		{"isNotExpired missing", ql("nope", "isNotExpired", nil), false},
		{"isExpired not a time", ql("notATime", "isExpired", nil), false},
		{"isNotExpired not a time", ql("notATime", "isNotExpired", nil), false},
		{"isExpired meta time", ql("$createdAt", "isExpired", nil), true},

		// meta-properties
		{"$identifier", ql("$identifier", "=", "checkout"), true},
		{"$title beginsWith", ql("$title", "beginsWith", "Check"), true},
		{"$blueprint", ql("$blueprint", "=", "service"), true},
		{"$blueprint in", ql("$blueprint", "in", []any{"team", "service"}), true},
		{"$team contains", ql("$team", "contains", "payments"), true},
		{"$team =", ql("$team", "=", "platform"), true},
		{"$team !=", ql("$team", "!=", "payments"), false},
		{"$team isNotEmpty", ql("$team", "isNotEmpty", nil), true},
		{"$datasource", ql("$datasource", "=", "k8s-prod"), true},
		{"$createdAt =", ql("$createdAt", "=", "2024-01-02T03:04:05Z"), true},
		{"$createdAt = other zone", ql("$createdAt", "=", "2024-01-02T05:04:05+02:00"), true},
		{"$createdAt < ", ql("$createdAt", "<", "2024-01-02T03:04:06Z"), true},
		{"$createdAt > ", ql("$createdAt", ">", "2024-01-02T03:04:06Z"), false},
		{"$updatedAt between", ql("$updatedAt", "between", map[string]any{"from": "2024-01-01T00:00:00Z", "to": "2024-12-31T00:00:00Z"}), true},
		{"$updatedAt bad time", ql("$updatedAt", "<", "yesterday"), false},
		{"$updatedAt number", ql("$updatedAt", "<", 1e18), false},
		{"$unknown", ql("$unknown", "isEmpty", nil), true},

		// relations fall back when props lacks the key
		{"relation single", ql("lead", "=", "alice"), true},
		{"relation many", ql("dependsOn", "contains", "cart"), true},
		{"relation many in", ql("dependsOn", "in", []any{"pricing"}), true},
		{"relation []string", ql("reviewers", "=", "carol"), true},
		{"props shadow relations", ql("owner", "=", "props-wins"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := queryTestEntity()
			if err := tt.rule.Validate(""); err != nil && !strings.HasPrefix(tt.rule.Property, "$unknown") {
				t.Fatalf("test rule does not validate: %v", err)
			}
			if got := Match(&tt.rule, e, e.Properties, queryTestNow, nil); got != tt.want {
				t.Errorf("Match(%+v) = %v, want %v", tt.rule, got, tt.want)
			}
		})
	}
}

func TestMatchCombinators(t *testing.T) {
	yes := ql("language", "=", "go")
	no := ql("language", "=", "rust")
	tests := []struct {
		name string
		rule *Rule
		want bool
	}{
		{"nil rule matches everything", nil, true},
		{"empty and", &Rule{Combinator: "and"}, true},
		{"empty or", &Rule{Combinator: "or"}, false},
		{"and all", &Rule{Combinator: "and", Rules: []Rule{yes, yes}}, true},
		{"and one false", &Rule{Combinator: "and", Rules: []Rule{yes, no}}, false},
		{"or one true", &Rule{Combinator: "or", Rules: []Rule{no, yes}}, true},
		{"or none", &Rule{Combinator: "or", Rules: []Rule{no, no}}, false},
		{"nested", &Rule{Combinator: "and", Rules: []Rule{yes, {Combinator: "or", Rules: []Rule{no, yes}}}}, true},
		{"unknown combinator fails closed", &Rule{Combinator: "xor", Rules: []Rule{yes}}, false},
		{"unknown operator fails closed", &Rule{Property: "language", Operator: "like", Value: "go"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := queryTestEntity()
			if got := Match(tt.rule, e, e.Properties, queryTestNow, nil); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
	if Match(&Rule{Combinator: "and"}, nil, nil, queryTestNow, nil) {
		t.Error("a nil entity matched")
	}
}

func TestMatchComputedProps(t *testing.T) {
	e := queryTestEntity()
	props := map[string]any{"url": "https://svc/checkout"}
	if !Match(&Rule{Property: "url", Operator: "beginsWith", Value: "https://"}, e, props, queryTestNow, nil) {
		t.Error("computed property not seen")
	}
	if Match(&Rule{Property: "language", Operator: "=", Value: "go"}, e, props, queryTestNow, nil) {
		t.Error("props is the whole view; stored properties outside it must not be seen")
	}
	// Relations are still consulted when the view has no such key.
	if !Match(&Rule{Property: "lead", Operator: "=", Value: "alice"}, e, props, queryTestNow, nil) {
		t.Error("relation fallback missing")
	}
}

func TestMatchRelatedTo(t *testing.T) {
	q, err := DecodeQuery([]byte(`{"combinator":"or","rules":[
		{"operator":"relatedTo","blueprint":"team","identifier":"payments","direction":"upstream"},
		{"operator":"relatedTo","blueprint":"team","identifier":"search","direction":"downstream","relation":"owner","depth":2}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var relRules []*Rule
	q.Walk(func(r *Rule) {
		if r.Operator == "relatedTo" {
			relRules = append(relRules, r)
		}
	})
	if len(relRules) != 2 {
		t.Fatalf("Walk found %d relatedTo rules, want 2", len(relRules))
	}
	e := queryTestEntity()
	other := &Entity{Blueprint: "service", Identifier: "cart"}

	if Match(q, e, e.Properties, queryTestNow, nil) {
		t.Error("nil Related matched")
	}
	related := Related{relRules[1]: {e.Ref(): {}}}
	if !Match(q, e, e.Properties, queryTestNow, related) {
		t.Error("entity in the second rule's set did not match")
	}
	if Match(q, other, other.Properties, queryTestNow, related) {
		t.Error("entity outside every set matched")
	}
	// Keyed by pointer: an equal copy of the rule is a different key.
	cp := *relRules[1]
	if Match(&cp, e, e.Properties, queryTestNow, related) {
		t.Error("a copy of the rule shared its Related entry")
	}
}

func TestQueryWalkOrder(t *testing.T) {
	q := &Rule{Combinator: "and", Rules: []Rule{
		ql("a", "isEmpty", nil),
		{Combinator: "or", Rules: []Rule{ql("b", "isEmpty", nil), ql("c", "isEmpty", nil)}},
		ql("d", "isEmpty", nil),
	}}
	var got []string
	q.Walk(func(r *Rule) {
		if r.IsCombinator() {
			got = append(got, r.Combinator)
		} else {
			got = append(got, r.Property)
		}
	})
	want := []string{"and", "a", "or", "b", "c", "d"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Walk order %v, want %v", got, want)
	}
	var nilRule *Rule
	nilRule.Walk(func(*Rule) { t.Error("visited a nil rule") })
}

func TestLookupMetaProperties(t *testing.T) {
	e := queryTestEntity()
	tests := []struct {
		property string
		want     any
		found    bool
	}{
		{"$identifier", "checkout", true},
		{"$title", "Checkout", true},
		{"$blueprint", "service", true},
		{"$team", []string{"payments", "platform"}, true},
		{"$createdAt", e.CreatedAt, true},
		{"$updatedAt", e.UpdatedAt, true},
		{"$datasource", "k8s-prod", true},
		{"$foo", nil, false},
		{"language", "go", true},
		{"null", nil, true},
		{"lead", "alice", true},
		{"dependsOn", []string{"cart", "pricing"}, true},
		{"reviewers", []string{"bob", "carol"}, true},
		{"owner", "props-wins", true},
		{"nope", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.property, func(t *testing.T) {
			got, found := Lookup(e, e.Properties, tt.property)
			if found != tt.found || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Lookup(%q) = %#v, %v; want %#v, %v", tt.property, got, found, tt.want, tt.found)
			}
		})
	}
	if _, found := Lookup(&Entity{}, nil, "$createdAt"); found {
		t.Error("a zero $createdAt was reported present")
	}
	if _, found := Lookup(nil, nil, "$identifier"); found {
		t.Error("a nil entity had an identifier")
	}
}

func TestCompareValues(t *testing.T) {
	ts := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		a, b any
		want int
		ok   bool
	}{
		{"float equal", 1.0, 1.0, 0, true},
		{"int float equal", 2, 2.0, 0, true},
		{"int64 uint8", int64(3), uint8(4), -1, true},
		{"json.Number", json.Number("10"), 9.5, 1, true},
		{"strings", "a", "b", -1, true},
		{"strings byte-wise", "Z", "a", -1, true},
		{"numeric strings lexicographic", "10", "9", -1, true},
		{"bools", false, true, -1, true},
		{"bools equal", true, true, 0, true},
		{"string vs number", "2", 2.0, 0, false},
		{"bool vs string", true, "true", 0, false},
		{"bool vs number", true, 1.0, 0, false},
		{"nil", nil, nil, 0, false},
		{"array", []any{1.0}, 1.0, 0, false},
		{"time vs time", ts, ts.Add(time.Hour), -1, true},
		{"time vs RFC 3339", ts, "2024-01-02T03:04:05Z", 0, true},
		{"RFC 3339 vs time", "2024-01-02T03:04:06Z", ts, 1, true},
		{"time vs fractional RFC 3339", ts, "2024-01-02T03:04:05.000000001Z", 0, true},
		{"time vs fractional ms", ts, "2024-01-02T03:04:05.001Z", -1, true},
		{"time vs bad string", ts, "2024-01-02", 0, false},
		{"time vs number", ts, 1.0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := CompareValues(tt.a, tt.b)
			if got != tt.want || ok != tt.ok {
				t.Errorf("CompareValues(%#v, %#v) = %d, %v; want %d, %v", tt.a, tt.b, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func queryViolationPaths(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	paths := make([]string, len(ve.Violations))
	for i, v := range ve.Violations {
		paths[i] = v.Path
	}
	return paths
}

func TestQueryValidate(t *testing.T) {
	deep := Rule{Combinator: "and"}
	for range MaxQueryNesting {
		deep = Rule{Combinator: "and", Rules: []Rule{deep}}
	}
	okDeep := deep.Rules[0]
	wide := func(n int) *Rule {
		r := &Rule{Combinator: "or"}
		for range n {
			r.Rules = append(r.Rules, ql("a", "isEmpty", nil))
		}
		return r
	}
	list := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = float64(i)
		}
		return out
	}

	tests := []struct {
		name string
		rule *Rule
		want []string
	}{
		{"nil", nil, []string{"/query"}},
		{"valid leaf", &Rule{Property: "tier", Operator: "<=", Value: 2.0}, nil},
		{"valid empty and", &Rule{Combinator: "and"}, nil},
		{"valid design example", &Rule{Combinator: "and", Rules: []Rule{
			ql("$blueprint", "=", "service"),
			ql("language", "in", []any{"go", "rust"}),
			{Combinator: "or", Rules: []Rule{ql("tier", "<=", 2.0), ql("$team", "contains", "payments")}},
			{Operator: "relatedTo", Blueprint: "team", Identifier: "payments", Direction: "upstream"},
		}}, nil},
		{"valid 10 levels", &okDeep, nil},
		{"11 levels", &deep, []string{"/query" + strings.Repeat("/rules/0", MaxQueryNesting)}},
		{"bad combinator", &Rule{Combinator: "xor"}, []string{"/query/combinator"}},
		{"rules without combinator", &Rule{Rules: []Rule{ql("a", "isEmpty", nil)}}, []string{"/query/combinator"}},
		{"combinator with leaf fields", &Rule{Combinator: "and", Property: "a", Operator: "=", Value: 1.0, Depth: 2},
			[]string{"/query/property", "/query/operator", "/query/value", "/query/depth"}},
		{"missing operator", &Rule{Property: "a"}, []string{"/query/operator"}},
		{"unknown operator", &Rule{Property: "a", Operator: "like", Value: "x"}, []string{"/query/operator"}},
		{"nested paths", &Rule{Combinator: "and", Rules: []Rule{
			ql("a", "=", 1.0),
			{Property: "b", Operator: "~"},
			{Combinator: "or", Rules: []Rule{ql("", "=", 1.0), ql("c", "in", "x")}},
		}}, []string{"/query/rules/1/operator", "/query/rules/2/rules/0/property", "/query/rules/2/rules/1/value"}},
		{"missing property", &Rule{Operator: "isEmpty"}, []string{"/query/property"}},
		{"unknown meta", &Rule{Property: "$foo", Operator: "isEmpty"}, []string{"/query/property"}},
		{"bad property name", &Rule{Property: "-x", Operator: "isEmpty"}, []string{"/query/property"}},
		{"relatedTo fields on a leaf", &Rule{Property: "a", Operator: "isEmpty", Blueprint: "team", Identifier: "x", Direction: "upstream", Relation: "owner", Depth: 1},
			[]string{"/query/blueprint", "/query/identifier", "/query/direction", "/query/relation", "/query/depth"}},
		{"scalar required", &Rule{Property: "a", Operator: "="}, []string{"/query/value"}},
		{"scalar not array", &Rule{Property: "a", Operator: "<", Value: []any{1.0}}, []string{"/query/value"}},
		{"scalar not object", &Rule{Property: "a", Operator: "beginsWith", Value: map[string]any{}}, []string{"/query/value"}},
		{"scalar ok", &Rule{Property: "a", Operator: "contains", Value: true}, nil},
		{"list required", &Rule{Property: "a", Operator: "in"}, []string{"/query/value"}},
		{"list not scalar", &Rule{Property: "a", Operator: "notIn", Value: "x"}, []string{"/query/value"}},
		{"list elements", &Rule{Property: "a", Operator: "containsAny", Value: []any{"x", nil, []any{}, 1.0}},
			[]string{"/query/value/1", "/query/value/2"}},
		{"list empty ok", &Rule{Property: "a", Operator: "in", Value: []any{}}, nil},
		{"no value allowed", &Rule{Property: "a", Operator: "isEmpty", Value: "x"}, []string{"/query/value"}},
		{"no value isExpired", &Rule{Property: "a", Operator: "isExpired", Value: false}, []string{"/query/value"}},
		{"between object ok", &Rule{Property: "a", Operator: "between", Value: map[string]any{"from": 1.0, "to": 2.0}}, nil},
		{"between array ok", &Rule{Property: "a", Operator: "between", Value: []any{"a", "b"}}, nil},
		{"between missing", &Rule{Property: "a", Operator: "between"}, []string{"/query/value"}},
		{"between scalar", &Rule{Property: "a", Operator: "between", Value: 1.0}, []string{"/query/value"}},
		{"between object fields", &Rule{Property: "a", Operator: "between", Value: map[string]any{"to": []any{}, "zz": 1.0, "a/b": 1.0}},
			[]string{"/query/value/from", "/query/value/to", "/query/value/a~1b", "/query/value/zz"}},
		{"between 3 elements", &Rule{Property: "a", Operator: "between", Value: []any{1.0, 2.0, 3.0}}, []string{"/query/value"}},
		{"between bad element", &Rule{Property: "a", Operator: "between", Value: []any{1.0, nil}}, []string{"/query/value/1"}},
		{"relatedTo ok", &Rule{Operator: "relatedTo", Blueprint: "team", Identifier: "payments", Direction: "downstream", Relation: "owner", Depth: 3}, nil},
		{"relatedTo empty", &Rule{Operator: "relatedTo"}, []string{"/query/blueprint", "/query/identifier", "/query/direction"}},
		{"relatedTo bad", &Rule{Operator: "relatedTo", Property: "a", Value: "x", Blueprint: "-", Identifier: "a b", Direction: "sideways", Relation: "!", Depth: 4},
			[]string{"/query/property", "/query/value", "/query/blueprint", "/query/identifier", "/query/direction", "/query/relation", "/query/depth"}},
		{"relatedTo negative depth", &Rule{Operator: "relatedTo", Blueprint: "team", Identifier: "x", Direction: "upstream", Depth: -1}, []string{"/query/depth"}},
		{"most rules", wide(MaxQueryRules - 1), nil},
		{"too many rules", wide(MaxQueryRules), []string{fmt.Sprintf("/query/rules/%d", MaxQueryRules-1)}},
		{"too many nested rules", &Rule{Combinator: "and", Rules: []Rule{ql("a", "isEmpty", nil), *wide(MaxQueryRules)}},
			[]string{fmt.Sprintf("/query/rules/1/rules/%d", MaxQueryRules-3)}},
		{"longest list", &Rule{Property: "a", Operator: "in", Value: list(MaxQueryListValues)}, nil},
		{"list too long", &Rule{Property: "a", Operator: "in", Value: list(MaxQueryListValues + 1)}, []string{"/query/value"}},
		{"notIn too long", &Rule{Property: "a", Operator: "notIn", Value: list(MaxQueryListValues + 1)}, []string{"/query/value"}},
		{"containsAny too long", &Rule{Property: "a", Operator: "containsAny", Value: list(MaxQueryListValues + 1)}, []string{"/query/value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := queryViolationPaths(t, tt.rule.Validate("/query"))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("violation paths %q, want %q (%v)", got, tt.want, tt.rule.Validate("/query"))
			}
		})
	}
}

func TestDecodeQuery(t *testing.T) {
	valid := []string{
		`{"combinator":"and","rules":[]}`,
		`{"combinator":"and","rules":[{"property":"$blueprint","operator":"=","value":"service"},
		  {"property":"language","operator":"in","value":["go","rust"]},
		  {"combinator":"or","rules":[{"property":"tier","operator":"<=","value":2},
		    {"property":"$team","operator":"contains","value":"payments"}]},
		  {"operator":"relatedTo","blueprint":"team","identifier":"payments","direction":"upstream"}]}`,
		` {"property":"a","operator":"isEmpty","value":null,"depth":null} ` + "\n",
		`{"property":"a","operator":"between","value":{"from":1,"to":2}}`,
	}
	for _, in := range valid {
		if _, err := DecodeQuery([]byte(in)); err != nil {
			t.Errorf("DecodeQuery(%s): %v", in, err)
		}
	}

	q, err := DecodeQuery([]byte(`{"property":"tier","operator":"in","value":[1,"x",true]}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []any{1.0, "x", true}; !reflect.DeepEqual(q.Value, want) {
		t.Errorf("value decoded as %#v, want %#v", q.Value, want)
	}

	tests := []struct {
		name, in string
		want     []string
	}{
		{"empty", ``, []string{""}},
		{"null", `null`, []string{""}},
		{"array", `[]`, []string{""}},
		{"syntax", `{"combinator":}`, []string{"/combinator"}},
		{"unterminated", `{"combinator":"and"`, []string{""}},
		{"trailing data", `{"combinator":"and"} {}`, []string{""}},
		{"trailing garbage", `{"combinator":"and"}x`, []string{""}},
		{"unknown field", `{"combinator":"and","limit":1}`, []string{"/limit"}},
		{"case-folded field", `{"Combinator":"and"}`, []string{"/Combinator"}},
		{"duplicate field", `{"operator":"isEmpty","property":"a","operator":"="}`, []string{"/operator"}},
		{"wrong type", `{"operator":5}`, []string{"/operator"}},
		{"rules not array", `{"combinator":"and","rules":{}}`, []string{"/rules"}},
		{"null rule", `{"combinator":"and","rules":[null]}`, []string{"/rules/0"}},
		{"nested unknown field", `{"combinator":"and","rules":[{"combinator":"or","rules":[{"x~/":1}]}]}`, []string{"/rules/0/rules/0/x~0~1"}},
		{"depth float", `{"operator":"relatedTo","depth":1.5}`, []string{"/depth"}},
		{"depth huge", `{"operator":"relatedTo","depth":1e3}`, []string{"/depth"}},
		{"depth string", `{"operator":"relatedTo","depth":"1"}`, []string{"/depth"}},
		{"number out of range", `{"property":"a","operator":"in","value":[1,1e400]}`, []string{"/value/1"}},
		{"too deep", strings.Repeat(`{"combinator":"and","rules":[`, 20) + strings.Repeat(`]}`, 20),
			[]string{strings.Repeat("/rules/0", MaxQueryNesting)}},
		{"then validated", `{"combinator":"and","rules":[{"property":"a","operator":"in","value":"x"}]}`, []string{"/rules/0/value"}},
		{"too many rules", `{"combinator":"or","rules":[` + strings.Repeat(`{"property":"a","operator":"isEmpty"},`, MaxQueryRules) + `{}]}`,
			[]string{fmt.Sprintf("/rules/%d", MaxQueryRules-1)}},
		{"list too long", `{"property":"a","operator":"in","value":[` + strings.Repeat(`1,`, MaxQueryListValues) + `1]}`, []string{"/value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := DecodeQuery([]byte(tt.in))
			if err == nil {
				t.Fatalf("DecodeQuery(%s) = %+v, want an error", tt.in, q)
			}
			if got := queryViolationPaths(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("violation paths %q, want %q (%v)", got, tt.want, err)
			}
		})
	}
}

func TestDecodeQueryRoundTrip(t *testing.T) {
	in := `{"combinator":"or","rules":[{"property":"tier","operator":"between","value":[1,3]},` +
		`{"operator":"relatedTo","blueprint":"team","identifier":"payments","direction":"upstream","relation":"owner","depth":2},` +
		`{"property":"enabled","operator":"=","value":false}]}`
	q, err := DecodeQuery([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(q)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Errorf("round trip\n got %s\nwant %s", out, in)
	}
}
