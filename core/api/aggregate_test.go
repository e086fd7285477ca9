package api_test

import (
	"fmt"
	"testing"

	"github.com/portico-dev/portico/core/access"
)

var aggBlueprint = M{
	"schema": M{"properties": M{
		"language":   M{"type": "string"},
		"cost":       M{"type": "number"},
		"deployedAt": M{"type": "string", "format": "date-time"},
	}},
}

func TestAggregate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "PUT", "/api/v1/blueprints/svc", aggBlueprint)
	for i, x := range []struct {
		lang string
		cost float64
		team []string
	}{{"go", 10, []string{"pay"}}, {"go", 20, []string{"pay", "web"}}, {"python", 5, []string{"web"}}, {"go", 1, nil}} {
		e.must(201, "PUT", fmt.Sprintf("/api/v1/blueprints/svc/entities/s%d", i), M{"team": x.team,
			"properties": M{"language": x.lang, "cost": x.cost, "deployedAt": fmt.Sprintf("2025-03-%02dT10:00:00Z", 3+i*3)}})
	}
	tests := []struct {
		name string
		body string
		want string
	}{
		{"count by language", `{"func": "count", "groupBy": "language"}`,
			`{"groups":[{"key":"go","value":3},{"key":"python","value":1}]}`},
		{"avg cost by team, of go services", `{"query": {"combinator": "and", "rules": [{"property": "language", "operator": "=", "value": "go"}]},
		   "func": "avg", "property": "cost", "groupBy": "$team"}`,
			`{"groups":[{"key":null,"value":1},{"key":"pay","value":15},{"key":"web","value":20}]}`},
		{"weekly count", `{"func": "count", "bucket": {"property": "deployedAt", "interval": "week"}}`,
			`{"groups":[{"key":null,"bucket":"2025-03-03T00:00:00Z","value":3},{"key":null,"bucket":"2025-03-10T00:00:00Z","value":1}]}`},
		{"createdAt names the meta-property", `{"func": "sum", "property": "cost", "bucket": {"property": "createdAt", "interval": "month"}}`, ""},
		{"median of nothing is null", `{"query": {"combinator": "and", "rules": [{"property": "language", "operator": "=", "value": "rust"}]}, "func": "median", "property": "cost"}`,
			`{"groups":[]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.must(200, "POST", "/api/v1/entities/aggregate", tc.body)
			if tc.want != "" && string(r.Raw) != tc.want {
				t.Errorf("got  %s\nwant %s", r.Raw, tc.want)
			}
		})
	}
}

func TestAggregateBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "PUT", "/api/v1/blueprints/svc", aggBlueprint)
	tests := []struct {
		name, body string
		status     int // 422: well-formed but wrong, 400: not the request shape
		code       string
		paths      []string
	}{
		{"unknown func", `{"func": "p95", "property": "cost"}`, 422, "validation_failed", []string{"/func"}},
		{"no func", `{"groupBy": "language"}`, 422, "validation_failed", []string{"/func"}},
		{"sum without a property", `{"func": "sum"}`, 422, "validation_failed", []string{"/property"}},
		{"sum of a string", `{"func": "sum", "property": "language"}`, 422, "validation_failed", []string{"/property"}},
		{"sum of an unknown property", `{"func": "sum", "property": "nope"}`, 422, "validation_failed", []string{"/property"}},
		{"group by an unknown property", `{"func": "count", "groupBy": "nope"}`, 422, "validation_failed", []string{"/groupBy"}},
		{"group by a time", `{"func": "count", "groupBy": "$createdAt"}`, 422, "validation_failed", []string{"/groupBy"}},
		{"bucket on a non-date", `{"func": "count", "bucket": {"property": "language", "interval": "week"}}`, 422, "validation_failed", []string{"/bucket/property"}},
		{"bucket without an interval", `{"func": "count", "bucket": {"property": "$createdAt"}}`, 422, "validation_failed", []string{"/bucket/interval"}},
		{"bucket by the year", `{"func": "count", "bucket": {"property": "$createdAt", "interval": "year"}}`, 422, "validation_failed", []string{"/bucket/interval"}},
		{"invalid query", `{"func": "count", "query": {"combinator": "and", "rules": [{"property": "cost", "operator": "~", "value": 1}]}}`, 422, "validation_failed", []string{"/query/rules/0/operator"}},
		{"unknown member", `{"func": "count", "limit": 5}`, 400, "malformed_request", nil},
		{"not JSON", `{"func": `, 400, "malformed_request", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkError(t, e.do("POST", "/api/v1/entities/aggregate", tc.body), tc.status, tc.code, tc.paths)
		})
	}
}

// TestAggregateCountsOnlyReadable: a member of another team does not see
// the counts of entities hidden from them by read.ownedOnly.
func TestAggregateCountsOnlyReadable(t *testing.T) {
	t.Parallel()
	e := newAccessEnv(t, access.Options{})
	e.must(201, "PUT", "/api/v1/blueprints/_team/entities/payments", M{})
	e.must(201, "PUT", "/api/v1/blueprints/_team/entities/search", M{})
	e.must(201, "PUT", "/api/v1/blueprints/vault", M{
		"schema":      M{"properties": M{"language": M{"type": "string"}, "cost": M{"type": "number"}}},
		"permissions": M{"read": M{"ownedOnly": true}},
	})
	for i := range 3 {
		e.must(201, "PUT", fmt.Sprintf("/api/v1/blueprints/vault/entities/pay-%d", i), M{"team": []string{"payments"}, "properties": M{"language": "go", "cost": 10}})
	}
	for i := range 4 {
		e.must(201, "PUT", fmt.Sprintf("/api/v1/blueprints/vault/entities/search-%d", i), M{"team": []string{"search"}, "properties": M{"language": "go", "cost": 100}})
	}
	e.user("m@example.com", "member", "search")
	_, member := e.mint("m@example.com", "read")

	for _, tc := range []struct{ body, admin, member string }{
		{`{"func": "count", "groupBy": "$team", "query": {"combinator": "and", "rules": [{"property": "$blueprint", "operator": "=", "value": "vault"}]}}`,
			`{"groups":[{"key":"payments","value":3},{"key":"search","value":4}]}`,
			`{"groups":[{"key":"search","value":4}]}`},
		{`{"func": "sum", "property": "cost", "groupBy": "language", "query": {"combinator": "and", "rules": [{"property": "$blueprint", "operator": "=", "value": "vault"}]}}`,
			`{"groups":[{"key":"go","value":430}]}`,
			`{"groups":[{"key":"go","value":400}]}`},
	} {
		if r := e.must(200, "POST", "/api/v1/entities/aggregate", tc.body); string(r.Raw) != tc.admin {
			t.Errorf("admin %s: %s, want %s", tc.body, r.Raw, tc.admin)
		}
		r := e.as(member, "POST", "/api/v1/entities/aggregate", tc.body)
		if r.Status != 200 || string(r.Raw) != tc.member {
			t.Errorf("member %s: %d %s, want %s", tc.body, r.Status, r.Raw, tc.member)
		}
	}
}
