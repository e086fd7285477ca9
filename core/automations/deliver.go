package automations

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/internal/jqeval"
)

// Actor is the service account an automation acts as: its writes and
// runs are attributed to "automation:<id>", with the admin role of the
// platform team that defined it.
func Actor(id string) catalog.Actor {
	return catalog.Actor{ID: "automation:" + id, Datasource: "automation:" + id, Role: catalog.RoleAdmin}
}

// RunID is the id of the action run a delivery starts: derived from the
// delivery, so a retried delivery starts the same run once.
func RunID(automation, eventID string) string {
	sum := sha256.Sum256([]byte(DeliveryID(automation, eventID)))
	return "run_a" + hex.EncodeToString(sum[:12])
}

// Deliver executes one delivery attempt (attempt counts from 1) and
// records it: started on the first attempt, the error of a failed
// attempt, succeeded at the end. An error that retrying cannot fix is a
// *PermanentError; the caller records the final failure with Fail.
func (s *Service) Deliver(ctx context.Context, req Request, attempt int) (*Delivery, error) {
	d := s.record(req, StatusStarted, attempt)
	if attempt <= 1 {
		if err := s.store.SaveDelivery(ctx, d); err != nil {
			return nil, err
		}
	}
	run, err := s.invoke(ctx, req)
	if err != nil {
		d.Error = err.Error()
		if serr := s.store.SaveDelivery(ctx, d); serr != nil {
			return nil, errors.Join(err, serr)
		}
		return nil, err
	}
	d.Status, d.Run, d.Error = StatusSucceeded, run, ""
	d.EndedAt = &d.UpdatedAt
	return d, s.store.SaveDelivery(ctx, d)
}

// Fail records a delivery's final failure.
func (s *Service) Fail(ctx context.Context, req Request, attempts int, cause string) error {
	d := s.record(req, StatusFailed, attempts)
	d.Error = cause
	d.EndedAt = &d.UpdatedAt
	return s.store.SaveDelivery(ctx, d)
}

func (s *Service) record(req Request, status string, attempts int) *Delivery {
	now := s.opts.Now().UTC()
	ev := req.Event
	return &Delivery{
		ID: ev.ID, Automation: req.Automation, Status: status, Attempts: attempts,
		Event:     DeliveryEvent{ID: ev.ID, Type: ev.Type, Blueprint: ev.Blueprint, Identifier: ev.Identifier, Depth: ev.Depth, At: ev.At},
		StartedAt: now, UpdatedAt: now,
	}
}

// invoke does what the automation says, as its service account, one
// level deeper in the chain than the event; it returns the started run's
// id for an action invocation.
func (s *Service) invoke(ctx context.Context, req Request) (string, error) {
	a, err := s.store.Get(ctx, req.Automation)
	if errors.Is(err, ErrNotFound) {
		return "", permanent("automation %s was deleted", req.Automation)
	}
	if err != nil {
		return "", err
	}
	input, err := InputOf(req.Event)
	if err != nil {
		return "", permanent("event input: %v", err)
	}
	ctx = catalog.WithDepth(catalog.WithActor(ctx, Actor(a.Identifier)), req.Event.Depth+1)
	in := a.Invoke
	switch in.Type {
	case InvokeAction:
		return s.runAction(ctx, a, req, input)
	case InvokeWebhook:
		return "", s.webhook(ctx, a, req, input)
	case InvokePlugin:
		if s.opts.Plugins == nil {
			return "", permanent("no plugin host in this worker")
		}
		inputs, err := evalJSON(ctx, in.Inputs, input, "{}")
		if err != nil {
			return "", err
		}
		var ref *catalog.Ref
		if req.Event.Identifier != "" {
			ref = &catalog.Ref{Blueprint: req.Event.Blueprint, Identifier: req.Event.Identifier}
		}
		return "", s.opts.Plugins(ctx, in.Integration, in.Action, ref, inputs)
	case InvokeUpsert:
		return "", s.upsert(ctx, a, req, input)
	case InvokeDelete:
		return "", s.delete(ctx, a, req, input)
	}
	return "", permanent("unknown invocation type %q", in.Type)
}

func (s *Service) runAction(ctx context.Context, a *Automation, req Request, input any) (string, error) {
	raw, err := evalJSON(ctx, a.Invoke.Inputs, input, "{}")
	if err != nil {
		return "", err
	}
	var inputs map[string]any
	if err := json.Unmarshal(raw, &inputs); err != nil {
		return "", permanent("invoke.inputs must yield an object")
	}
	entity, err := s.entityID(ctx, a.Invoke.Entity, input, req.Event.Identifier)
	if err != nil {
		return "", err
	}
	run, err := s.actions.Trigger(ctx, a.Invoke.Action, actions.TriggerRequest{Entity: entity, Inputs: inputs, RunID: RunID(a.Identifier, req.Event.ID)})
	var verr *catalog.ValidationError
	switch {
	case errors.As(err, &verr), errors.Is(err, actions.ErrNotFound), errors.Is(err, catalog.ErrForbidden):
		return "", &PermanentError{Err: fmt.Errorf("action %s: %w", a.Invoke.Action, err)}
	case err != nil:
		return "", fmt.Errorf("action %s: %w", a.Invoke.Action, err)
	}
	return run.ID, nil
}

func (s *Service) webhook(ctx context.Context, a *Automation, req Request, input any) error {
	if s.opts.Webhooks == nil {
		return permanent("no webhook sender in this worker")
	}
	var body []byte
	var err error
	if a.Invoke.Body != "" {
		if body, err = evalJSON(ctx, a.Invoke.Body, input, ""); err != nil {
			return err
		}
	} else {
		m := input.(map[string]any)
		if body, err = json.Marshal(map[string]any{"automation": a.Identifier, "event": m["trigger"], "entity": m["entity"]}); err != nil {
			return err
		}
	}
	secret, err := s.store.Secret(ctx, a.Identifier)
	if err != nil || secret == "" {
		return permanent("webhook not sent: automation %s has no signing secret", a.Identifier)
	}
	method := a.Invoke.Method
	if method == "" {
		method = http.MethodPost
	}
	_, err = s.opts.Webhooks.Send(ctx, Webhook{
		URL: a.Invoke.URL, Method: method, Headers: a.Invoke.Headers, Body: body, Secret: secret,
		IdempotencyKey: a.Identifier + ":" + req.Event.ID,
	})
	return err
}

func (s *Service) upsert(ctx context.Context, a *Automation, req Request, input any) error {
	raw, err := evalJSON(ctx, a.Invoke.Entity, input, "")
	if err != nil {
		return err
	}
	e, err := catalog.DecodeEntity(raw)
	if err != nil {
		return permanent("invoke.entity: %v", err)
	}
	e.Blueprint = a.Invoke.Blueprint
	if e.Blueprint == "" {
		e.Blueprint = req.Event.Blueprint
	}
	if _, _, err := s.cat.PutEntity(ctx, e, false); err != nil {
		return writeErr(fmt.Errorf("upsert %s/%s: %w", e.Blueprint, e.Identifier, err))
	}
	return nil
}

func (s *Service) delete(ctx context.Context, a *Automation, req Request, input any) error {
	id, err := s.entityID(ctx, a.Invoke.Entity, input, req.Event.Identifier)
	if err != nil {
		return err
	}
	bp := a.Invoke.Blueprint
	if bp == "" {
		bp = req.Event.Blueprint
	}
	_, err = s.cat.DeleteEntity(ctx, catalog.Ref{Blueprint: bp, Identifier: id}, false)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil // gone already: what a delete wants
	}
	if err != nil {
		return writeErr(fmt.Errorf("delete %s/%s: %w", bp, id, err))
	}
	return nil
}

// writeErr marks the catalog's refusals permanent; other errors (Redis)
// are retried.
func writeErr(err error) error {
	var verr *catalog.ValidationError
	if errors.As(err, &verr) || errors.Is(err, catalog.ErrForbidden) || errors.Is(err, catalog.ErrConflict) || errors.Is(err, catalog.ErrNotFound) || errors.Is(err, catalog.ErrMalformed) {
		return &PermanentError{Err: err}
	}
	return err
}

// entityID evaluates an identifier template, defaulting to the event's
// entity.
func (s *Service) entityID(ctx context.Context, expr string, input any, def string) (string, error) {
	if expr == "" {
		return def, nil
	}
	raw, err := evalJSON(ctx, expr, input, "")
	if err != nil {
		return "", err
	}
	var id string
	if json.Unmarshal(raw, &id) != nil {
		return "", permanent("invoke.entity must yield a string identifier")
	}
	return id, nil
}

// evalJSON evaluates a jq template over input to JSON; an empty
// expression yields def.
func evalJSON(ctx context.Context, expr string, input any, def string) ([]byte, error) {
	if expr == "" {
		return []byte(def), nil
	}
	p, err := jqeval.Compile(expr, jqeval.Limits{})
	if err != nil {
		return nil, permanent("jq %q: %v", jqeval.Truncate(expr), err)
	}
	v, ok, err := p.First(ctx, input)
	if err != nil {
		return nil, permanent("%v", err)
	}
	if !ok {
		return nil, permanent("jq %q yielded nothing", jqeval.Truncate(expr))
	}
	return json.Marshal(v)
}
