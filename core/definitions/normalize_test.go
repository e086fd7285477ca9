package definitions

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/portico-dev/portico/core/catalog"
)

func obj(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestNormalize: a file's spec and the API's answer for the same
// definition normalise to the same value.
func TestNormalize(t *testing.T) {
	bp := &catalog.Blueprint{CalculationProperties: map[string]catalog.CalculationProperty{"url": {}},
		MirrorProperties: map[string]catalog.MirrorProperty{"ownerSlack": {}}}
	cases := []struct {
		name      string
		kind      Kind
		file, api string
		blueprint *catalog.Blueprint
	}{
		{"blueprint defaults and server fields", Blueprint,
			`{"identifier": "s", "schema": {}, "relations": {"owner": {"target": "team"}}}`,
			`{"identifier": "s", "description": "", "schema": {"properties": {}}, "relations": {"owner": {"target": "team", "many": false, "required": false}},
			  "scorecards": {"r": {}}, "dependents": [{"blueprint": "x"}], "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-02T00:00:00Z"}`, nil},
		{"entity computed properties", Entity,
			`{"blueprint": "service", "identifier": "a", "properties": {"tier": 1}}`,
			`{"blueprint": "service", "identifier": "a", "properties": {"tier": 1, "url": "https://svc/a", "ownerSlack": "#x"}, "relations": {"owner": null},
			  "datasource": "user:admin", "createdBy": "admin", "scorecards": {"r": {"level": "Gold"}}}`, bp},
		{"action headers are write-only", Action,
			`{"identifier": "d", "invocation": {"type": "webhook", "headers": {"B": {"fromEnv": "X"}, "A": "v"}}}`,
			`{"identifier": "d", "invocation": {"type": "webhook", "headersSet": ["A", "B"]}, "version": 3, "signingSecret": "whsec"}`, nil},
		{"integration secrets and default threshold", Integration,
			`{"id": "pd", "plugin": "pagerduty", "secrets": {"apiToken": {"fromEnv": "T"}}}`,
			`{"id": "pd", "plugin": "pagerduty", "secretsSet": ["apiToken"], "deletionThreshold": 0.5, "entities": 3, "lastSync": {"id": "s"}, "datasource": "integration:pd"}`, nil},
		{"token scopes in any order", Token,
			`{"name": "ci", "user": "ci@x", "scopes": ["write", "read"], "secretFile": "/tmp/x", "expiresIn": "720h"}`,
			`{"id": "t1", "name": "ci", "user": "ci@x", "scopes": ["read", "write"], "expiresAt": "2027-01-01T00:00:00Z", "lastUsedAt": null}`, nil},
		{"scorecard evaluation", Scorecard,
			`{"blueprint": "s", "identifier": "r", "rules": []}`,
			`{"blueprint": "s", "identifier": "r", "rules": [], "evaluation": {"state": "done"}}`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := Normalize(c.kind, obj(t, c.file), c.blueprint)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Normalize(c.kind, obj(t, c.api), c.blueprint)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a, b) || Hash(a) != Hash(b) {
				t.Errorf("file %v\n api %v\ndiff %v", a, b, Diff(a, b))
			}
		})
	}
}

// TestNormalizeKeepsMeaning: values that mean something survive
// normalisation (zero numbers, a changed field).
func TestNormalizeKeepsMeaning(t *testing.T) {
	a, _ := Normalize(Blueprint, obj(t, `{"identifier": "s", "schema": {"properties": {"n": {"type": "integer", "minimum": 0}}}}`), nil)
	b, _ := Normalize(Blueprint, obj(t, `{"identifier": "s", "schema": {"properties": {"n": {"type": "integer"}}}}`), nil)
	if Hash(a) == Hash(b) {
		t.Fatal("minimum 0 was dropped")
	}
	i1, _ := Normalize(Integration, obj(t, `{"id": "x", "deletionThreshold": 0.9}`), nil)
	if i1["deletionThreshold"] != 0.9 {
		t.Fatalf("a non-default threshold was dropped: %v", i1)
	}
}

// TestDiff: changes come field by field, as JSON pointers, ordered.
func TestDiff(t *testing.T) {
	cases := []struct {
		name     string
		old, new string
		want     []Change
	}{
		{"same", `{"a": 1, "b": [1, 2]}`, `{"b": [1, 2], "a": 1}`, nil},
		{"nested field", `{"schema": {"properties": {"tier": {"maximum": 3}}}}`, `{"schema": {"properties": {"tier": {"maximum": 4}}}}`,
			[]Change{{Path: "/schema/properties/tier/maximum", Old: 3.0, New: 4.0}}},
		{"added and removed", `{"a": "x"}`, `{"b": "y"}`, []Change{{Path: "/a", Old: "x"}, {Path: "/b", New: "y"}}},
		{"array element", `{"r": [{"l": "A"}, {"l": "B"}]}`, `{"r": [{"l": "A"}, {"l": "C"}]}`, []Change{{Path: "/r/1/l", Old: "B", New: "C"}}},
		{"array length", `{"r": [1]}`, `{"r": [1, 2]}`, []Change{{Path: "/r", Old: []any{1.0}, New: []any{1.0, 2.0}}}},
		{"escaped key", `{"m": {"a/b": 1}}`, `{"m": {"a/b": 2}}`, []Change{{Path: "/m/a~1b", Old: 1.0, New: 2.0}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Diff(obj(t, c.old), obj(t, c.new))
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Diff = %#v, want %#v", got, c.want)
			}
		})
	}
}

// TestID: each kind's identity.
func TestID(t *testing.T) {
	for _, c := range []struct {
		kind Kind
		spec string
		want string
	}{
		{Blueprint, `{"identifier": "s"}`, "s"},
		{Scorecard, `{"blueprint": "s", "identifier": "r"}`, "s/r"},
		{Entity, `{"blueprint": "s", "identifier": "a/b"}`, "s/a/b"},
		{Entity, `{"identifier": "a"}`, ""},
		{Token, `{"user": "ci@x", "name": "ci"}`, "ci@x/ci"},
		{Integration, `{"id": "pd"}`, "pd"},
	} {
		if got := ID(c.kind, obj(t, c.spec)); got != c.want {
			t.Errorf("ID(%s, %s) = %q, want %q", c.kind, c.spec, got, c.want)
		}
	}
}

// TestAlign: a plugin named without a version matches the version the
// portal installed; a pinned version, another plugin or another kind
// still differ.
func TestAlign(t *testing.T) {
	for _, c := range []struct {
		kind      Kind
		want, now string
		same      bool
	}{
		{Integration, "pagerduty", "pagerduty@0.1.0", true},
		{Integration, "pagerduty@0.1.0", "pagerduty@0.1.0", true},
		{Integration, "pagerduty@0.2.0", "pagerduty@0.1.0", false},
		{Integration, "pager", "pagerduty@0.1.0", false},
		{Integration, "pagerduty", "github@0.1.0", false},
		{Action, "pagerduty", "pagerduty@0.1.0", false},
	} {
		want, now := map[string]any{"plugin": c.want}, map[string]any{"plugin": c.now}
		Align(c.kind, want, now)
		if same := len(Diff(now, want)) == 0; same != c.same {
			t.Errorf("%s %q vs %q: same %v, want %v", c.kind, c.want, c.now, same, c.same)
		}
	}
}
