package automations_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/portico-dev/portico/core/automations"
	"github.com/portico-dev/portico/core/catalog"
)

func TestTriggerMatches(t *testing.T) {
	level := func(sc, dir string) json.RawMessage {
		raw, _ := json.Marshal(catalog.ScorecardLevelChange{Scorecard: sc, Direction: dir})
		return raw
	}
	run := func(action string) json.RawMessage {
		raw, _ := json.Marshal(map[string]any{"id": "r", "action": action})
		return raw
	}
	svc := func(typ string) catalog.Event { return catalog.Event{Type: typ, Blueprint: "service", Identifier: "a"} }
	for _, tc := range []struct {
		name string
		trig automations.Trigger
		ev   catalog.Event
		want bool
	}{
		{"created", automations.Trigger{Event: "entity.created", Blueprint: "service"}, svc("entity.created"), true},
		{"other blueprint", automations.Trigger{Event: "entity.created", Blueprint: "team"}, svc("entity.created"), false},
		{"other type", automations.Trigger{Event: "entity.created", Blueprint: "service"}, svc("entity.updated"), false},
		{"any: deleted", automations.Trigger{Event: "entity.any", Blueprint: "service"}, svc("entity.deleted"), true},
		{"any: not a timer", automations.Trigger{Event: "entity.any", Blueprint: "service"}, svc("timer.expired"), false},
		{"timer", automations.Trigger{Event: "timer.expired", Blueprint: "service"}, svc("timer.expired"), true},
		{"degraded", automations.Trigger{Event: "scorecard.level_changed", Blueprint: "service", Scorecard: "readiness", Direction: "degraded"},
			catalog.Event{Type: "scorecard.level_changed", Blueprint: "service", Detail: level("readiness", "degraded")}, true},
		{"improved is not degraded", automations.Trigger{Event: "scorecard.level_changed", Blueprint: "service", Direction: "degraded"},
			catalog.Event{Type: "scorecard.level_changed", Blueprint: "service", Detail: level("readiness", "improved")}, false},
		{"other scorecard", automations.Trigger{Event: "scorecard.level_changed", Blueprint: "service", Scorecard: "security"},
			catalog.Event{Type: "scorecard.level_changed", Blueprint: "service", Detail: level("readiness", "degraded")}, false},
		{"run of the action", automations.Trigger{Event: "run.finished", Action: "deploy"}, catalog.Event{Type: "run.finished", Detail: run("deploy")}, true},
		{"run of another action", automations.Trigger{Event: "run.finished", Action: "deploy"}, catalog.Event{Type: "run.finished", Detail: run("other")}, false},
		{"schedule never matches events", automations.Trigger{Schedule: "* * * * *"}, svc("entity.created"), false},
	} {
		if got := tc.trig.Matches(tc.ev); got != tc.want {
			t.Errorf("%s: Matches = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestInputOf(t *testing.T) {
	before := json.RawMessage(`{"identifier":"a","properties":{"n":1}}`)
	in, err := automations.InputOf(catalog.Event{ID: "1-0", Type: "entity.deleted", Blueprint: "s", Identifier: "a", Before: before, After: json.RawMessage("null")})
	if err != nil {
		t.Fatal(err)
	}
	m := in.(map[string]any)
	if m["entity"].(map[string]any)["identifier"] != "a" || m["diff"].(map[string]any)["after"] != nil || m["trigger"].(map[string]any)["id"] != "1-0" {
		t.Errorf("input of a deletion: %v", m)
	}
}

// TestExamples checks that examples/automations holds valid definitions.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/automations/*.json")
	if err != nil || len(files) < 3 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var a automations.Automation
		if err := dec.Decode(&a); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if err := a.Validate(); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
