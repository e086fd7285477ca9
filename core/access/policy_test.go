package access_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/internal/jqeval"
)

func TestPolicyAllows(t *testing.T) {
	t.Parallel()
	svc := &catalog.Entity{Identifier: "checkout", Blueprint: "service", Team: []string{"payments"}, Properties: map[string]any{"tier": 1.0}}
	tier3 := &catalog.Entity{Identifier: "cart", Blueprint: "service", Team: []string{"platform"}, Properties: map[string]any{"tier": 3.0}}
	alice := access.Principal{ID: "alice@example.com", Role: catalog.RoleMember, Teams: []string{"payments"}}
	bob := access.Principal{ID: "bob@example.com", Role: catalog.RoleMember, Teams: []string{"platform"}}
	viewer := access.Principal{ID: "vic@example.com", Role: catalog.RoleViewer, Teams: []string{"payments"}}
	admin := access.Principal{ID: "root@example.com", Role: catalog.RoleAdmin}
	tests := []struct {
		name   string
		policy string
		who    access.Principal
		entity *catalog.Entity
		inputs map[string]any
		want   bool
	}{
		{"role listed", `{"roles": ["member"]}`, alice, svc, nil, true},
		{"role not listed", `{"roles": ["member"]}`, viewer, svc, nil, false},
		{"admin always admitted", `{}`, admin, svc, nil, true},
		{"empty policy admits nobody else", `{}`, alice, svc, nil, false},
		{"user listed", `{"users": ["bob@example.com"]}`, bob, svc, nil, true},
		{"team listed", `{"teams": ["platform"]}`, bob, svc, nil, true},
		{"team not listed", `{"teams": ["platform"]}`, alice, svc, nil, false},
		{"owning team", `{"owningTeam": true}`, alice, svc, nil, true},
		{"not owning team", `{"owningTeam": true}`, bob, svc, nil, false},
		{"owning team without entity", `{"owningTeam": true}`, alice, nil, nil, false},
		{"rule matches", `{"roles": ["member"], "rule": {"combinator": "and", "rules": [{"property": "tier", "operator": "<=", "value": 2}]}}`, alice, svc, nil, true},
		{"rule does not match", `{"roles": ["member"], "rule": {"combinator": "and", "rules": [{"property": "tier", "operator": "<=", "value": 2}]}}`, bob, tier3, nil, false},
		{"rule applies to admins", `{"rule": {"combinator": "and", "rules": [{"property": "tier", "operator": "<=", "value": 2}]}}`, admin, tier3, nil, false},
		{"jq over inputs", `{"roles": ["member"], "jq": ".inputs.replicas <= 5"}`, alice, svc, map[string]any{"replicas": 3}, true},
		{"jq over inputs denies", `{"roles": ["member"], "jq": ".inputs.replicas <= 5"}`, alice, svc, map[string]any{"replicas": 9}, false},
		{"jq over user and entity", `{"roles": ["member"], "jq": "(.user.teams | index(\"payments\")) != null and .entity.properties.tier == 1"}`, alice, svc, nil, true},
		{"jq yielding a non-boolean denies", `{"roles": ["member"], "jq": "\"yes\""}`, alice, svc, nil, false},
		{"jq yielding nothing denies", `{"roles": ["member"], "jq": "empty"}`, alice, svc, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p access.Policy
			if err := json.Unmarshal([]byte(tt.policy), &p); err != nil {
				t.Fatal(err)
			}
			if err := p.Compile("/permissions/execute"); err != nil {
				t.Fatal(err)
			}
			var owners []string
			if tt.entity != nil {
				owners = tt.entity.Team
			}
			got, err := p.Allows(tt.who, tt.entity, owners, tt.inputs)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("Allows = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPolicyCompileErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ policy, path string }{
		{`{"jq": ".["}`, "/p/jq"},
		{`{"rule": {"combinator": "and", "rules": [{"property": "tier", "operator": "~"}]}}`, "/p/rule/rules/0/operator"},
	} {
		var p access.Policy
		if err := json.Unmarshal([]byte(tt.policy), &p); err != nil {
			t.Fatal(err)
		}
		err := p.Compile("/p")
		verr, ok := err.(*catalog.ValidationError)
		if !ok || len(verr.Violations) != 1 || verr.Violations[0].Path != tt.path {
			t.Fatalf("%s: %v", tt.policy, err)
		}
	}
	// A jq error at run time denies and reports.
	var p access.Policy
	_ = json.Unmarshal([]byte(`{"roles": ["member"], "jq": "error(\"boom\")"}`), &p)
	if ok, err := p.Allows(access.Principal{ID: "a", Role: catalog.RoleMember}, nil, nil, nil); ok || err == nil {
		t.Fatalf("jq error: %v %v", ok, err)
	}
}

// TestPolicyJQBounds: a jq policy that never ends or builds a huge value
// denies within its bound, with the expression named.
func TestPolicyJQBounds(t *testing.T) {
	admin := access.Principal{ID: "root@example.com", Role: catalog.RoleAdmin}
	for _, jq := range []string{`def f: f; f`, `[repeat(true)] | length > 0`, `("x" * 1e9 | length) > 0`,
		`[range(64)] | reduce .[] as $i ([1]; [., .]) | . == .`} {
		p := &access.Policy{JQ: jq}
		if err := p.Compile(""); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		ok, err := p.Allows(admin, nil, nil, nil)
		if ok || !errors.Is(err, jqeval.ErrLimit) || !strings.Contains(err.Error(), fmt.Sprintf("jq %q", jq)) {
			t.Errorf("%s: allows %v, %v", jq, ok, err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s: took %v", jq, took)
		}
	}
}
