// Package client calls Portico's HTTP API: what the portico command's
// client subcommands (scorecard check, …) are built on.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/portico-dev/portico/core/catalog"
)

// Client is a Portico API client.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client of the portal at base (http://host:port) sending
// token as its bearer token (none when empty).
func New(base, token string) *Client {
	return &Client{base: strings.TrimSuffix(base, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}
}

// Error is an answer other than 2xx, with the server's message and the
// details of a validation error (JSON pointer and message each).
type Error struct {
	Status  int
	Code    string
	Message string
	Details []Detail
}

// Detail is one problem of a refused request, at Path in its body.
type Detail struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("HTTP %d", e.Status)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	for i, d := range e.Details {
		sep := "; "
		if i == 0 {
			sep = ": "
		}
		msg += sep + d.Path + " " + d.Message
	}
	return msg
}

// errorOf decodes the error body raw of an answer with status.
func errorOf(status int, raw []byte) *Error {
	e := &Error{Status: status}
	var body struct {
		Error struct {
			Code    string   `json:"code"`
			Message string   `json:"message"`
			Details []Detail `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil {
		e.Code, e.Message, e.Details = body.Error.Code, body.Error.Message, body.Error.Details
	}
	return e
}

// EntityScorecard returns the standing of entity bp/id in scorecard sc.
func (c *Client) EntityScorecard(ctx context.Context, bp, id, sc string) (*catalog.EntityScorecard, error) {
	var out catalog.EntityScorecard
	if err := c.get(ctx, "/api/v1/blueprints/"+seg(bp)+"/entities/"+seg(id)+"/scorecards/"+seg(sc), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// seg escapes one path segment (identifiers may hold "/").
func seg(s string) string { return url.PathEscape(s) }

// get decodes the JSON answer of GET path into out.
func (c *Client) get(ctx context.Context, path string, out any) error {
	return c.Do(ctx, http.MethodGet, path, nil, out)
}

// Do sends method path (path holds any query string) with in encoded as
// its JSON body (none when nil) and decodes a JSON answer into out (kept
// when nil). An answer other than 2xx is an *Error with the server's
// message.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	contentType := ""
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode body: %w", method, path, err)
		}
		body, contentType = bytes.NewReader(raw), "application/json"
	}
	return c.send(ctx, method, path, contentType, body, out)
}

// send sends method path with body (of contentType; none when empty)
// and decodes a JSON answer into out (kept when nil).
func (c *Client) send(ctx context.Context, method, path, contentType string, body io.Reader, out any) error {
	req, err := c.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if res.StatusCode/100 != 2 {
		return errorOf(res.StatusCode, raw)
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: invalid answer: %w", method, path, err)
	}
	return nil
}
