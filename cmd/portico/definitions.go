package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/automations"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/definitions"
	"github.com/portico-dev/portico/core/initiatives"
	"github.com/portico-dev/portico/host/integrations"
)

// definitionReaders read each kind of definition as the API shows it, for
// the drift of portal-as-code (ids as definitions.ID makes them).
func definitionReaders(cat *catalog.Service, act *actions.Service, integ *integrations.Manager,
	auto *automations.Service, inits *initiatives.Service, acc *access.Service) map[definitions.Kind]definitions.Reader {
	split := func(id string) (string, string) {
		a, b, _ := strings.Cut(id, "/")
		return a, b
	}
	return map[definitions.Kind]definitions.Reader{
		definitions.Blueprint: func(ctx context.Context, id string) (any, error) { return cat.GetBlueprint(ctx, id) },
		definitions.Workflow:  func(ctx context.Context, id string) (any, error) { return act.GetWorkflow(ctx, id) },
		definitions.Action:    func(ctx context.Context, id string) (any, error) { return act.GetAction(ctx, id) },
		definitions.Integration: func(ctx context.Context, id string) (any, error) {
			st, err := integ.Get(ctx, id)
			if err != nil {
				return nil, err
			}
			return st, nil
		},
		definitions.Scorecard: func(ctx context.Context, id string) (any, error) {
			bp, sc := split(id)
			return cat.GetScorecard(ctx, bp, sc)
		},
		definitions.Automation: func(ctx context.Context, id string) (any, error) { return auto.Get(ctx, id) },
		definitions.Initiative: func(ctx context.Context, id string) (any, error) { return inits.Get(ctx, id) },
		definitions.Token: func(ctx context.Context, id string) (any, error) {
			user, name := split(id)
			ts, err := acc.ListTokens(ctx, user)
			if err != nil {
				return nil, err
			}
			for _, t := range ts {
				if t.Name == name {
					return t, nil
				}
			}
			return nil, fmt.Errorf("token %s: %w", id, definitions.ErrNotFound)
		},
		definitions.Entity: func(ctx context.Context, id string) (any, error) {
			bp, ident := split(id)
			return cat.GetEntity(ctx, catalog.Ref{Blueprint: bp, Identifier: ident})
		},
	}
}
