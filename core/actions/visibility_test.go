package actions

import (
	"context"
	"testing"

	"github.com/portico-dev/portico/core/catalog"
)

// TestRunVisibilityFailsClosed: callers that are not users see runs only
// when they are the trusted system; an integration, or a context without
// an actor, sees none, not even a run it names as requester.
func TestRunVisibilityFailsClosed(t *testing.T) {
	run := &Run{ID: "run_1", Action: "deploy", Blueprint: "service", Entity: "checkout", TriggeredBy: "sync"}
	s := &Service{} // no store or catalog: nothing may be looked up
	for _, tc := range []struct {
		name string
		ctx  context.Context
		sees bool
	}{
		{"system", catalog.WithActor(context.Background(), catalog.SystemActor("timers")), true},
		{"admin", catalog.WithActor(context.Background(), catalog.Actor{ID: "root@example.com", Role: catalog.RoleAdmin}), true},
		{"no actor", context.Background(), false},
		{"no role", catalog.WithActor(context.Background(), catalog.Actor{ID: "sync"}), false},
		{"integration", catalog.WithActor(context.Background(), catalog.Actor{ID: "sync", Role: catalog.RoleIntegration}), false},
	} {
		got, err := s.viewer(tc.ctx).sees(run)
		if err != nil || got != tc.sees {
			t.Errorf("%s: sees %v (%v), want %v", tc.name, got, err, tc.sees)
		}
	}
}
