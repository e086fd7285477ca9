package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/portico-dev/portico/pdk"
)

// Sentinel errors callers (and tests) branch on.
var (
	// ErrTokenRefused: PagerDuty answered 401 or 403.
	ErrTokenRefused = errors.New("PagerDuty refused the API token")
	// ErrRateLimited: PagerDuty answered 429 and waiting it out would
	// take longer than the config allows.
	ErrRateLimited = errors.New("rate limited by PagerDuty")
	// ErrMalformed: a response body is not the JSON PagerDuty sends.
	ErrMalformed = errors.New("malformed JSON from PagerDuty")
)

// maxAttempts bounds the tries of one request rate limited with 429.
const maxAttempts = 4

// client calls PagerDuty's REST API v2 through the host (which adds the
// Authorization header from the apiToken secret).
type client struct {
	cfg     config
	sleep   func(time.Duration)
	maxWait time.Duration // total Retry-After a call may wait out
}

func (p PagerDuty) client(cfg config) client {
	sleep := p.sleep
	if sleep == nil {
		sleep = time.Sleep
	}
	return client{cfg: cfg, sleep: sleep, maxWait: cfg.retryWait()}
}

// request describes one call; path is relative to baseUrl.
type request struct {
	method string
	path   string
	query  url.Values
	body   []byte
	from   bool // send From: fromEmail (writes)
}

// do performs r and returns a 2xx response, asking the host for the body's
// top-level fields (pdk.HTTPResponse.Fields). A 429 is retried after its
// Retry-After while the waits fit in maxWait; then it fails with
// ErrRateLimited. 401/403 fail with ErrTokenRefused, other statuses with
// PagerDuty's error message.
func (c client) do(ctx context.Context, r request) (*pdk.HTTPResponse, error) {
	u := c.cfg.BaseURL + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	h := map[string][]string{"Accept": {"application/vnd.pagerduty+json;version=2"}}
	if r.body != nil {
		h["Content-Type"] = []string{"application/json"}
	}
	if r.from {
		h["From"] = []string{c.cfg.FromEmail}
	}
	method := r.method
	if method == "" {
		method = "GET"
	}
	var waited time.Duration
	for attempt := 1; ; attempt++ {
		resp, err := pdk.HTTP(ctx, pdk.HTTPRequest{Method: method, URL: u, Headers: h, Body: r.body, Fields: true})
		if err != nil {
			return nil, err
		}
		switch s := resp.Status; {
		case s >= 200 && s < 300:
			return resp, nil
		case s == 401 || s == 403:
			return nil, fmt.Errorf("%w (%d): %s", ErrTokenRefused, s, errorMessage(resp.Body))
		case s == 429:
			wait := retryAfter(resp.Headers)
			if attempt >= maxAttempts || waited+wait > c.maxWait {
				return nil, fmt.Errorf("%w (429): retry after %s", ErrRateLimited, wait)
			}
			pdk.Logf(ctx, pdk.LevelInfo, "%s %s: rate limited, retrying in %s", method, r.path, wait)
			c.sleep(wait)
			waited += wait
		default:
			return nil, fmt.Errorf("status %d: %s", s, errorMessage(resp.Body))
		}
	}
}

// retryAfter reads how long PagerDuty asks to wait: Retry-After (seconds),
// else ratelimit-reset (seconds), else one second.
func retryAfter(h map[string][]string) time.Duration {
	for _, name := range []string{"Retry-After", "Ratelimit-Reset"} {
		for k, v := range h {
			if strings.EqualFold(k, name) && len(v) > 0 {
				if n, err := strconv.Atoi(strings.TrimSpace(v[0])); err == nil && n >= 0 {
					return time.Duration(n) * time.Second
				}
			}
		}
	}
	return time.Second
}

// errorMessage renders PagerDuty's {"error": {"message", "code",
// "errors"}} body, or the start of any other body.
func errorMessage(body []byte) string {
	var e struct {
		Error struct {
			Message string   `json:"message"`
			Code    int      `json:"code"`
			Errors  []string `json:"errors"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		msg := fmt.Sprintf("%s (code %d)", e.Error.Message, e.Error.Code)
		if len(e.Error.Errors) > 0 {
			msg += ": " + strings.Join(e.Error.Errors, "; ")
		}
		return msg
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return "empty body"
	}
	return s
}

// listPage is one page of a classic-pagination list.
type listPage struct {
	items json.RawMessage // the raw array
	more  bool
}

// list fetches one page of GET path: {"<key>": [...], "limit", "offset",
// "more", "total"}. The items stay raw.
func (c client) list(ctx context.Context, key, path string, q url.Values, offset int) (listPage, error) {
	q.Set("limit", strconv.Itoa(c.cfg.PageSize))
	q.Set("offset", strconv.Itoa(offset))
	resp, err := c.do(ctx, request{path: path, query: q})
	if err != nil {
		return listPage{}, err
	}
	fields, err := resp.Fields()
	if err != nil {
		return listPage{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	items := fields[key]
	if len(items) == 0 || items[0] != '[' {
		return listPage{}, fmt.Errorf("%w: no %q array", ErrMalformed, key)
	}
	var more bool
	if raw := fields["more"]; len(raw) > 0 {
		if err := json.Unmarshal(raw, &more); err != nil {
			return listPage{}, fmt.Errorf("%w: more: %v", ErrMalformed, err)
		}
	}
	return listPage{items: items, more: more}, nil
}

// pageNumber is the 1-based page at offset, for error messages.
func (c client) pageNumber(offset int) int { return offset/c.cfg.PageSize + 1 }

// nextOffset returns the offset after a page at offset, and false when
// PagerDuty's classic pagination cap forbids requesting it.
func (c client) nextOffset(offset int) (int, bool) {
	next := offset + c.cfg.PageSize
	return next, next+c.cfg.PageSize <= classicOffsetLimit
}

// stringField decodes the string member name of a raw JSON object ("" when
// missing or not a string).
func stringField(obj json.RawMessage, name string) string {
	fields, err := pdk.SplitObject(obj)
	if err != nil {
		return ""
	}
	return rawString(fields[name])
}

func rawString(raw json.RawMessage) string {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return ""
	}
	if !bytes.ContainsRune(raw, '\\') {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}
