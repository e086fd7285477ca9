package automations

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/robfig/cron/v3"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/internal/jqeval"
)

type problems struct{ list []catalog.Violation }

func (p *problems) add(path, format string, args ...any) {
	p.list = append(p.list, catalog.Violation{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return &catalog.ValidationError{Message: "invalid automation", Violations: p.list}
}

func (p *problems) jq(path, expr string) {
	if expr == "" {
		return
	}
	if _, err := jqeval.Compile(expr, jqeval.Limits{}); err != nil {
		p.add(path, "invalid jq: %s", err.Error())
	}
}

// entityEvents are the trigger events scoped by a blueprint.
var entityEvents = map[string]bool{
	catalog.EventEntityCreated: true, catalog.EventEntityUpdated: true, catalog.EventEntityDeleted: true,
	EventEntityAny: true, catalog.EventTimerExpired: true, catalog.EventScorecardLevelChanged: true,
}

// Validate checks a definition on its own (which blueprints and actions
// exist is the Service's to check).
func (a *Automation) Validate() error {
	var p problems
	if !catalog.IdentifierPattern.MatchString(a.Identifier) {
		p.add("/identifier", "must match %s", catalog.IdentifierPattern)
	}
	a.Trigger.validate(&p)
	p.jq("/condition", a.Condition)
	a.Invoke.validate(&p, a.Trigger)
	return p.err()
}

func (t Trigger) validate(p *problems) {
	const path = "/trigger"
	if t.Schedule != "" {
		if t.Event != "" || t.Blueprint != "" || t.Action != "" || t.Scorecard != "" || t.Direction != "" {
			p.add(path, "a schedule trigger takes no event, blueprint, action, scorecard or direction")
		}
		if _, err := cron.ParseStandard(t.Schedule); err != nil {
			p.add(path+"/schedule", "invalid cron expression: %s", err.Error())
		}
		return
	}
	switch {
	case t.Event == "":
		p.add(path+"/event", "required (or a schedule)")
	case entityEvents[t.Event]:
		if t.Blueprint == "" {
			p.add(path+"/blueprint", "required for %s", t.Event)
		}
		if t.Action != "" {
			p.add(path+"/action", "only run.created and run.finished are scoped by action")
		}
	case t.Event == catalog.EventRunCreated || t.Event == catalog.EventRunFinished:
		if t.Action == "" {
			p.add(path+"/action", "required for %s", t.Event)
		}
	default:
		p.add(path+"/event", "must be one of entity.created, entity.updated, entity.deleted, entity.any, timer.expired, scorecard.level_changed, run.created, run.finished")
	}
	if t.Event != catalog.EventScorecardLevelChanged && (t.Scorecard != "" || t.Direction != "") {
		p.add(path, "scorecard and direction apply to scorecard.level_changed only")
	}
	if t.Direction != "" && t.Direction != "improved" && t.Direction != "degraded" {
		p.add(path+"/direction", "must be improved or degraded")
	}
}

func (in Invoke) validate(p *problems, t Trigger) {
	const path = "/invoke"
	switch in.Type {
	case InvokeAction:
		if in.Action == "" {
			p.add(path+"/action", "required")
		}
		p.jq(path+"/inputs", in.Inputs)
		p.jq(path+"/entity", in.Entity)
	case InvokeWebhook:
		u, err := url.Parse(in.URL)
		if in.URL == "" {
			p.add(path+"/url", "required")
		} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add(path+"/url", "must be an absolute http(s) URL")
		}
		if in.Method != "" && in.Method != strings.ToUpper(in.Method) {
			p.add(path+"/method", "must be upper case")
		}
		p.jq(path+"/body", in.Body)
	case InvokePlugin:
		if in.Integration == "" {
			p.add(path+"/integration", "required")
		}
		if in.Action == "" {
			p.add(path+"/action", "required")
		}
		p.jq(path+"/inputs", in.Inputs)
	case InvokeUpsert, InvokeDelete:
		if in.Type == InvokeUpsert && in.Entity == "" {
			p.add(path+"/entity", "required: jq yielding the entity document")
		}
		if in.Blueprint == "" && (t.Schedule != "" || t.Event == catalog.EventRunCreated || t.Event == catalog.EventRunFinished) {
			p.add(path+"/blueprint", "required when the trigger names no blueprint")
		}
		p.jq(path+"/entity", in.Entity)
	case "":
		p.add(path+"/type", "required (action, webhook, plugin, upsert or delete)")
	default:
		p.add(path+"/type", "must be action, webhook, plugin, upsert or delete")
	}
	fields := map[string]bool{
		"action": in.Action != "", "inputs": in.Inputs != "", "entity": in.Entity != "", "url": in.URL != "",
		"method": in.Method != "", "headers": in.Headers != nil, "body": in.Body != "", "integration": in.Integration != "",
		"blueprint": in.Blueprint != "",
	}
	allowed := map[string][]string{
		InvokeAction:  {"action", "inputs", "entity"},
		InvokeWebhook: {"url", "method", "headers", "body"},
		InvokePlugin:  {"integration", "action", "inputs"},
		InvokeUpsert:  {"blueprint", "entity"},
		InvokeDelete:  {"blueprint", "entity"},
	}[in.Type]
	if allowed != nil {
		for _, f := range []string{"action", "inputs", "entity", "url", "method", "headers", "body", "integration", "blueprint"} {
			if fields[f] && !slices.Contains(allowed, f) {
				p.add(path+"/"+f, "does not apply to a %s invocation", in.Type)
			}
		}
	}
	if r := in.Retry; r != nil {
		if r.MaximumAttempts < 0 {
			p.add(path+"/retry/maximumAttempts", "must be at least 0")
		}
		if r.BackoffCoefficient != 0 && r.BackoffCoefficient < 1 {
			p.add(path+"/retry/backoffCoefficient", "must be at least 1")
		}
		for name, d := range map[string]string{"initialInterval": r.InitialInterval, "maximumInterval": r.MaximumInterval} {
			if d != "" {
				if _, err := actions.ParseDuration(d); err != nil {
					p.add(path+"/retry/"+name, "%s", err.Error())
				}
			}
		}
	}
}

// Matches reports whether ev fires the trigger (before the condition).
func (t Trigger) Matches(ev catalog.Event) bool {
	if t.Schedule != "" {
		return false
	}
	switch t.Event {
	case EventEntityAny:
		if ev.Type != catalog.EventEntityCreated && ev.Type != catalog.EventEntityUpdated && ev.Type != catalog.EventEntityDeleted {
			return false
		}
	case ev.Type:
	default:
		return false
	}
	if t.Blueprint != "" && t.Blueprint != ev.Blueprint {
		return false
	}
	switch ev.Type {
	case catalog.EventScorecardLevelChanged:
		var d catalog.ScorecardLevelChange
		if json.Unmarshal(ev.Detail, &d) != nil {
			return false
		}
		return (t.Scorecard == "" || t.Scorecard == d.Scorecard) && (t.Direction == "" || t.Direction == d.Direction)
	case catalog.EventRunCreated, catalog.EventRunFinished:
		var r actions.RunEvent
		return json.Unmarshal(ev.Detail, &r) == nil && r.Action == t.Action
	}
	return true
}
