package manifest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/portico-dev/portico/cli/progress"
	"github.com/portico-dev/portico/core/definitions"
)

// Result counts what an apply did.
type Result struct {
	Created, Updated, Deleted, Unchanged, Failed int
}

// Applier applies plans.
type Applier struct {
	API API
	// Out gets a line per definition written or deleted; Log gets
	// progress and token secrets shown once (os.Stderr).
	Out, Log io.Writer
}

// entityBatch is how many entities one bulk request writes.
const entityBatch = 500

// Apply writes the plan: secrets are resolved first (a missing one stops
// everything before any write), then every step in order; a failing step
// is reported and the others go on. The ledger records what the set
// applied. The error says how many steps failed.
func (a *Applier) Apply(ctx context.Context, plan *Plan) (Result, error) {
	var res Result
	bodies := map[*Step]map[string]any{}
	var errs Errors
	for _, s := range plan.Steps {
		if s.Op != Create && s.Op != Update {
			continue
		}
		body, err := resolved(s.Kind, s.Doc.Spec)
		if err != nil {
			errs = append(errs, &Error{File: s.Doc.File, Index: s.Doc.Index, Line: s.Doc.Line, Msg: err.Error()})
			continue
		}
		bodies[s] = body
	}
	if len(errs) > 0 {
		return res, errs
	}
	total := len(plan.Steps) - plan.Count(Unchanged)
	var bar *progress.Bar
	if total > 20 {
		bar = progress.New(a.Log, "apply", total)
		defer bar.Finish()
	}
	done := func(s *Step, err error) {
		if bar != nil {
			bar.Add(1)
		}
		if err != nil {
			res.Failed++
			fmt.Fprintf(a.Out, "failed  %s: %v\n", s.Name(), err)
			return
		}
		switch s.Op {
		case Create:
			res.Created++
		case Update:
			res.Updated++
		case Delete:
			res.Deleted++
		}
		fmt.Fprintf(a.Out, "%-8s%s\n", past(s.Op), s.Name())
	}
	ok, failed := map[*Step]bool{}, map[*Step]bool{}
	// Blueprints on a relation cycle are first created bare.
	cycle := cyclic(plan.Steps)
	for _, s := range plan.Steps {
		if s.Kind == definitions.Blueprint && cycle[s.ID] {
			if err := a.API.Do(ctx, http.MethodPut, itemPath(s.Kind, s.ID), bare(bodies[s]), nil); err != nil {
				done(s, fmt.Errorf("first pass (relations left out): %w", err))
				failed[s] = true
			}
		}
	}
	var entities []*Step
	for _, s := range plan.Steps {
		switch {
		case failed[s]:
		case s.Op == Unchanged:
			ok[s] = true
			res.Unchanged++
		case s.Kind == definitions.Entity && s.Op != Delete:
			entities = append(entities, s)
		default:
			if len(entities) > 0 {
				a.writeEntities(ctx, entities, bodies, ok, done)
				entities = nil
			}
			err := a.write(ctx, s, bodies[s])
			ok[s] = err == nil
			done(s, err)
		}
	}
	if len(entities) > 0 {
		a.writeEntities(ctx, entities, bodies, ok, done)
	}
	if err := a.record(ctx, plan, ok); err != nil {
		return res, fmt.Errorf("record the apply of set %s: %w", plan.Set, err)
	}
	if res.Failed > 0 {
		return res, fmt.Errorf("%d of %d definitions failed", res.Failed, len(plan.Steps))
	}
	return res, nil
}

func past(op Op) string {
	switch op {
	case Create:
		return "created"
	case Update:
		return "updated"
	case Delete:
		return "deleted"
	}
	return string(op)
}

// bare is a blueprint without what refers to other blueprints.
func bare(body map[string]any) map[string]any {
	out := deepCopy(body).(map[string]any)
	for _, k := range []string{"relations", "mirrorProperties", "aggregationProperties", "ownership"} {
		delete(out, k)
	}
	return out
}

// write applies one step other than an entity's write.
func (a *Applier) write(ctx context.Context, s *Step, body map[string]any) error {
	if s.Kind == definitions.Token {
		return a.writeToken(ctx, s)
	}
	path := itemPath(s.Kind, s.ID)
	if s.Op == Delete {
		if s.Kind == definitions.Entity {
			path += "?cascade=false"
		}
		return a.API.Do(ctx, http.MethodDelete, path, nil, nil)
	}
	return a.API.Do(ctx, http.MethodPut, path, body, nil)
}

// writeToken creates a missing token (an update replaces it: tokens are
// immutable) and hands its secret over once.
func (a *Applier) writeToken(ctx context.Context, s *Step) error {
	if s.tokenID != "" {
		if err := a.API.Do(ctx, http.MethodDelete, "/api/v1/tokens/"+s.tokenID, nil, nil); err != nil {
			return fmt.Errorf("revoke the old token: %w", err)
		}
	}
	if s.Op == Delete {
		return nil
	}
	var spec TokenSpec
	if _, msg, ok := decodeStrict(s.Doc.Spec, &spec, ""); !ok {
		return fmt.Errorf("%s", msg)
	}
	var out struct {
		Token string `json:"token"`
	}
	req := map[string]any{"name": spec.Name, "user": spec.User, "scopes": spec.Scopes}
	if spec.ExpiresIn != "" {
		req["expiresIn"] = spec.ExpiresIn
	}
	if err := a.API.Do(ctx, http.MethodPost, "/api/v1/tokens", req, &out); err != nil {
		return err
	}
	if spec.SecretFile != "" {
		if err := os.WriteFile(spec.SecretFile, []byte(out.Token+"\n"), 0o600); err != nil {
			return fmt.Errorf("token created, but its secret could not be written: %w", err)
		}
		return nil
	}
	fmt.Fprintf(a.Log, "token %s for %s (shown once): %s\n", spec.Name, spec.User, out.Token)
	return nil
}

// writeEntities writes entities in bulk (relations among them resolve in
// any order).
func (a *Applier) writeEntities(ctx context.Context, steps []*Step, bodies map[*Step]map[string]any, ok map[*Step]bool, done func(*Step, error)) {
	for start := 0; start < len(steps); start += entityBatch {
		batch := steps[start:min(start+entityBatch, len(steps))]
		items := make([]map[string]any, len(batch))
		for i, s := range batch {
			items[i] = bodies[s]
		}
		var out struct {
			Results []struct {
				Index  int    `json:"index"`
				Status string `json:"status"`
				Error  *struct {
					Message string `json:"message"`
					Details []struct {
						Path    string `json:"path"`
						Message string `json:"message"`
					} `json:"details"`
				} `json:"error"`
			} `json:"results"`
		}
		err := a.API.Do(ctx, http.MethodPost, "/api/v1/entities/bulk", map[string]any{"entities": items}, &out)
		if err != nil {
			for _, s := range batch {
				done(s, err)
			}
			continue
		}
		failed := map[int]error{}
		for _, r := range out.Results {
			if r.Status == "error" && r.Error != nil {
				msg := r.Error.Message
				for _, d := range r.Error.Details {
					msg += "; " + d.Path + ": " + d.Message
				}
				failed[r.Index] = fmt.Errorf("%s", msg)
			}
		}
		for i, s := range batch {
			ok[s] = failed[i] == nil
			done(s, failed[i])
		}
	}
}

// record tells the portal's ledger what the set now holds.
func (a *Applier) record(ctx context.Context, plan *Plan, ok map[*Step]bool) error {
	in := definitions.Applied{Set: plan.Set, Definitions: []definitions.AppliedDef{}, Deleted: []definitions.Ref{}}
	for _, s := range plan.Steps {
		switch {
		case !ok[s]:
		case s.Doc == nil: // deleted, or already gone
			in.Deleted = append(in.Deleted, definitions.Ref{Kind: s.Kind, ID: s.ID})
		default:
			in.Definitions = append(in.Definitions, definitions.AppliedDef{Kind: s.Kind, ID: s.ID, Created: s.Op == Create, Spec: s.Doc.Normalised})
		}
	}
	return a.API.Do(ctx, http.MethodPost, "/api/v1/definitions/applies", in, nil)
}
