package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/portico-dev/portico/core/actions"
)

// Actions lists every action.
func (c *Client) Actions(ctx context.Context) ([]*actions.Action, error) {
	var out struct {
		Actions []*actions.Action `json:"actions"`
	}
	err := c.get(ctx, "/api/v1/actions", &out)
	return out.Actions, err
}

// Action returns action id.
func (c *Client) Action(ctx context.Context, id string) (*actions.Action, error) {
	var out actions.Action
	if err := c.get(ctx, "/api/v1/actions/"+seg(id), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Trigger starts a run of action id.
func (c *Client) Trigger(ctx context.Context, id string, req actions.TriggerRequest) (*actions.Run, error) {
	var out actions.Run
	if err := c.Do(ctx, http.MethodPost, "/api/v1/actions/"+seg(id)+"/runs", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Run returns run id.
func (c *Client) Run(ctx context.Context, id string) (*actions.Run, error) {
	var out actions.Run
	if err := c.get(ctx, "/api/v1/runs/"+seg(id), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RunFilter narrows a run list; empty fields do not filter.
type RunFilter struct {
	Action, Status, Entity, TriggeredBy string
	Limit                               int
	Cursor                              string
}

// RunPage is one page of runs, newest first; Next is nil on the last.
type RunPage struct {
	Runs []*actions.Run `json:"runs"`
	Next *string        `json:"next"`
}

// Runs lists one page of the runs f admits.
func (c *Client) Runs(ctx context.Context, f RunFilter) (*RunPage, error) {
	q := url.Values{}
	for k, v := range map[string]string{"action": f.Action, "status": f.Status, "entity": f.Entity, "triggeredBy": f.TriggeredBy, "cursor": f.Cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	path := "/api/v1/runs"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out RunPage
	if err := c.get(ctx, path, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Decide records an approval decision (actions.DecisionApprove or
// DecisionDecline) on run id.
func (c *Client) Decide(ctx context.Context, id string, req actions.DecideRequest) (*actions.Run, error) {
	var out actions.Run
	if err := c.Do(ctx, http.MethodPost, "/api/v1/runs/"+seg(id)+"/approval", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RunLogs streams run id's log (GET /runs/{id}/logs/stream), from the
// line after index after (-1: from the start), until the run ends; see
// Stream.
func (c *Client) RunLogs(ctx context.Context, id string, after int, on func(Event) error) error {
	path := "/api/v1/runs/" + seg(id) + "/logs/stream"
	if after >= 0 {
		path += "?after=" + strconv.Itoa(after)
	}
	return c.Stream(ctx, path, on)
}
