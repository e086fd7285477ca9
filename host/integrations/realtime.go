package integrations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/host"
	"github.com/portico-dev/portico/host/mapping"
	"github.com/portico-dev/portico/internal/jqeval"
	"github.com/portico-dev/portico/pdk"
)

// WebhookResponse is what to answer a webhook sender.
type WebhookResponse struct {
	Status int
	Body   string
}

// Changes reports what a webhook delivery or an action changed.
type Changes struct {
	Upserts []catalog.WriteResult
	Deleted []catalog.Ref
	Errors  []SyncError
}

// Webhook hands a delivery to installation id's plugin, which verifies it,
// and applies the changes it reports through the installation's mapping.
// An unknown id is answered ErrNotFound before any rate-limit bucket is
// taken: deliveries to made-up ids hold no memory.
func (m *Manager) Webhook(ctx context.Context, id string, headers map[string][]string, body []byte) (*WebhookResponse, error) {
	inst, err := m.store.Installation(ctx, id)
	if err != nil {
		return nil, err
	}
	if ok, wait := m.limiter.Allow(id, time.Now()); !ok {
		return nil, &RateLimitError{RetryAfter: wait}
	}
	l, release, err := m.load(ctx, inst)
	if err != nil {
		return nil, err
	}
	defer release()
	if !l.plugin.Info.Webhook {
		return nil, fmt.Errorf("%w: %s", ErrNoWebhook, l.plugin.Ref())
	}
	res, err := l.integration.Webhook(ctx, pdk.WebhookRequest{Headers: headers, Body: body, Config: l.inst.Spec.Config})
	if err != nil {
		var pe *host.PluginError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%w: %s", ErrWebhookRejected, pe.Message)
		}
		return nil, fmt.Errorf("%w: %v", ErrPluginFailed, err)
	}
	ch := m.apply(l.as(ctx), l, res.Upserts, res.Deletes)
	if len(ch.Errors) > 0 {
		m.log.Warn("webhook changes not applied", "integration", id, "errors", len(ch.Errors), "first", ch.Errors[0].Message)
	}
	out := &WebhookResponse{Status: http.StatusAccepted, Body: `{"status":"accepted"}`}
	if r := res.Response; r != nil && r.Status >= 200 && r.Status <= 599 {
		out.Status, out.Body = r.Status, r.Body
	}
	return out, nil
}

// ActResult is the outcome of a write-back action: the plugin's result and
// what it changed in the catalog.
type ActResult struct {
	Message string          `json:"message,omitempty"`
	Logs    []string        `json:"logs"`
	Outputs json.RawMessage `json:"outputs,omitempty"`
	// Upserted and Deleted are the entities the action's changes touched.
	Upserted []catalog.Ref `json:"upserted"`
	Deleted  []catalog.Ref `json:"deleted"`
	Errors   []SyncError   `json:"errors"`
}

// Act runs action on installation id's plugin, for entity (nil: none), and
// applies the changes it returns.
func (m *Manager) Act(ctx context.Context, id, action string, entity *catalog.Ref, inputs json.RawMessage) (*ActResult, error) {
	l, release, err := m.acquire(ctx, id)
	if err != nil {
		return nil, err
	}
	defer release()
	known := false
	for _, a := range l.plugin.Info.Actions {
		known = known || a.Name == action
	}
	if !known {
		return nil, fmt.Errorf("action %q of %s: %w", action, l.plugin.Ref(), catalog.ErrNotFound)
	}
	req := pdk.ActRequest{Action: action, Inputs: inputs, Config: l.inst.Spec.Config}
	if entity != nil {
		e, err := m.cat.GetEntity(ctx, *entity)
		if err != nil {
			return nil, err
		}
		if req.Entity, err = json.Marshal(e); err != nil {
			return nil, fmt.Errorf("encode entity: %w", err)
		}
	}
	res, err := l.integration.Act(ctx, req)
	if err != nil {
		var pe *host.PluginError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%w: %s", ErrActionFailed, pe.Message)
		}
		return nil, fmt.Errorf("%w: %v", ErrPluginFailed, err)
	}
	ch := m.apply(l.as(ctx), l, res.Upserts, res.Deletes)
	out := &ActResult{
		Message: res.Message, Logs: res.Logs, Outputs: res.Outputs,
		Upserted: []catalog.Ref{}, Deleted: ch.Deleted, Errors: ch.Errors,
	}
	if out.Logs == nil {
		out.Logs = []string{}
	}
	for _, r := range ch.Upserts {
		out.Upserted = append(out.Upserted, catalog.Ref{Blueprint: r.Blueprint, Identifier: r.Identifier})
	}
	return out, nil
}

// overBound ends a delivery whose mapping exceeded its jq bound, as a
// resync ends: the rest is not mapped (each item could cost the bound
// again) and what was not yet written is not written.
func overBound(ch Changes) Changes {
	ch.Errors = append(ch.Errors, SyncError{Message: "delivery stopped: a mapping exceeded its bound; the remaining items were not applied"})
	return ch
}

// apply maps and writes upserts and deletes reported by a plugin, as the
// installation (ctx carries its actor): what falls outside its lane, or
// belongs to another installation, is refused item by item.
func (m *Manager) apply(ctx context.Context, l *live, upserts, deletes []pdk.KindItem) Changes {
	ch := Changes{Deleted: []catalog.Ref{}, Errors: []SyncError{}}
	var items []catalog.WriteItem
	var kinds []string
	for _, ki := range upserts {
		v, err := mapping.Decode(ki.Item)
		var ents []*catalog.Entity
		if err == nil {
			ents, err = l.mapper.Map(ki.Kind, v)
		}
		if err != nil {
			ch.Errors = append(ch.Errors, SyncError{Kind: ki.Kind, Message: err.Error()})
			if errors.Is(err, jqeval.ErrLimit) {
				return overBound(ch)
			}
			continue
		}
		for _, e := range ents {
			if err := checkLane(l.actor, e.Blueprint); err != nil {
				ch.Errors = append(ch.Errors, SyncError{Kind: ki.Kind, Blueprint: e.Blueprint, Identifier: e.Identifier, Message: err.Error()})
				continue
			}
			items = append(items, catalog.WriteItem{Mode: catalog.Upsert, Entity: e})
			kinds = append(kinds, ki.Kind)
		}
	}
	for len(items) > 0 {
		n := min(len(items), catalog.MaxBatch)
		res, err := m.cat.Write(ctx, items[:n])
		if err != nil {
			ch.Errors = append(ch.Errors, SyncError{Message: "write entities: " + err.Error()})
			break
		}
		for i, r := range res {
			if r.Err != nil {
				ch.Errors = append(ch.Errors, SyncError{Kind: kinds[i], Blueprint: r.Blueprint, Identifier: r.Identifier, Message: r.Err.Error()})
				continue
			}
			ch.Upserts = append(ch.Upserts, r)
		}
		items, kinds = items[n:], kinds[n:]
	}
	var refs []catalog.Ref
	for _, ki := range deletes {
		v, err := mapping.Decode(ki.Item)
		var rs []catalog.Ref
		if err == nil {
			rs, err = l.mapper.Refs(ki.Kind, v)
		}
		if err != nil {
			ch.Errors = append(ch.Errors, SyncError{Kind: ki.Kind, Message: err.Error()})
			if errors.Is(err, jqeval.ErrLimit) {
				return overBound(ch)
			}
			continue
		}
		refs = append(refs, rs...)
	}
	for _, ref := range refs {
		err := m.mayDelete(ctx, l, ref)
		if err == nil {
			_, err = m.cat.DeleteEntity(ctx, ref, false)
		}
		switch {
		case err == nil:
			ch.Deleted = append(ch.Deleted, ref)
		case errors.Is(err, catalog.ErrNotFound):
		default:
			ch.Errors = append(ch.Errors, SyncError{Blueprint: ref.Blueprint, Identifier: ref.Identifier, Message: "delete: " + err.Error()})
		}
	}
	return ch
}

// mayDelete refuses a plugin's deletion outside its lane or of an entity
// another installation owns.
func (m *Manager) mayDelete(ctx context.Context, l *live, ref catalog.Ref) error {
	if err := checkLane(l.actor, ref.Blueprint); err != nil {
		return err
	}
	e, err := m.cat.GetEntity(systemCtx(ctx, l.inst.ID), ref)
	if err != nil {
		return err
	}
	if l.actor.OwnedByOther(e) {
		return fmt.Errorf("%w: %s/%s is owned by %s", ErrOutsideLane, ref.Blueprint, ref.Identifier, e.Datasource)
	}
	return nil
}
