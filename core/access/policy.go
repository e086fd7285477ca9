package access

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/internal/jqeval"
)

// PolicyLimits bound one jq policy evaluation: it runs on the request path
// of every execution and approval.
var PolicyLimits = jqeval.Limits{Timeout: 100 * time.Millisecond, Steps: 100_000}

// Policy says who may execute or approve an action: the principal must be
// admitted by the embedded Permission (roles, teams, users, owning team of
// the target entity; admins always are), the entity must match Rule when
// set, and JQ, when set, must yield true over
// {"user": {"id", "role", "teams"}, "entity": <entity or null>, "inputs"}.
// Rule and JQ apply to admins too. Compile it once, then call Allows from
// any goroutine.
type Policy struct {
	catalog.Permission
	Rule *catalog.Rule `json:"rule,omitempty"`
	JQ   string        `json:"jq,omitempty"`

	prog *jqeval.Program
}

// Compile validates the policy and prepares its jq program; path prefixes
// violation pointers.
func (p *Policy) Compile(path string) error {
	var vs []catalog.Violation
	if p.Rule != nil {
		if err := p.Rule.Validate(path + "/rule"); err != nil {
			return err
		}
	}
	p.prog = nil
	if p.JQ != "" {
		var err error
		if p.prog, err = jqeval.Compile(p.JQ, PolicyLimits); err != nil {
			vs = append(vs, catalog.Violation{Path: path + "/jq", Message: "invalid jq: " + err.Error()})
		}
	}
	if len(vs) > 0 {
		return &catalog.ValidationError{Message: "invalid policy", Violations: vs}
	}
	return nil
}

// Allows reports whether the principal may act on entity (nil for actions
// without one) with inputs; owners are the entity's owning teams as the
// catalog resolves them (catalog.Service.OwningTeams: its $team plus any
// inherited through the blueprint's ownership relation). A jq policy that
// fails or yields anything but true denies, with the error returned for
// logging.
func (p *Policy) Allows(principal Principal, entity *catalog.Entity, owners []string, inputs map[string]any) (bool, error) {
	if !Admits(&p.Permission, principal, owners) {
		return false, nil
	}
	if p.Rule != nil && !catalog.Match(p.Rule, entity, entityProps(entity), time.Now(), nil) {
		return false, nil
	}
	if p.JQ == "" {
		return true, nil
	}
	if p.prog == nil {
		if err := p.Compile(""); err != nil {
			return false, err
		}
	}
	in, err := policyInput(principal, entity, inputs)
	if err != nil {
		return false, err
	}
	v, _, err := p.prog.First(context.Background(), in)
	if err != nil {
		return false, fmt.Errorf("jq policy: %w", err)
	}
	return v == true, nil
}

func entityProps(e *catalog.Entity) map[string]any {
	if e == nil {
		return nil
	}
	return e.Properties
}

// policyInput is the jq input as plain JSON values.
func policyInput(principal Principal, entity *catalog.Entity, inputs map[string]any) (any, error) {
	doc := map[string]any{
		"user":   map[string]any{"id": principal.ID, "role": principal.Role, "teams": principal.Teams},
		"entity": entity,
		"inputs": inputs,
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("jq policy input: %w", err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("jq policy input: %w", err)
	}
	return out, nil
}
