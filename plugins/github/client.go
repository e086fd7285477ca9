package main

import (
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

// Errors a caller of the GitHub client can branch on; each wrapped error
// also says which request failed and what GitHub answered.
var (
	// ErrUnauthorized: GitHub refused the token (401).
	ErrUnauthorized = errors.New("GitHub refused the token (401): check the installation's token secret")
	// ErrForbidden: the token lacks a permission, or an organization policy
	// blocks it (403 without a rate limit).
	ErrForbidden = errors.New("GitHub denied access (403): the token lacks a permission this request needs")
	// ErrNotFound: no such object, or the token cannot see it (404).
	ErrNotFound = errors.New("not found on GitHub (404), or the token cannot see it")
	// ErrRateLimited: GitHub's rate limit resets later than the plugin may wait.
	ErrRateLimited = errors.New("rate limited by GitHub")
	// ErrUpstream: GitHub answered with a server error or an unexpected status.
	ErrUpstream = errors.New("GitHub request failed")
)

// rateLimitAttempts bounds the waits for one request's rate limit.
const rateLimitAttempts = 3

// client calls GitHub's REST API through the host (which adds the token).
type client struct {
	base    string // baseUrl without a trailing slash
	origin  string // scheme://host[:port] of base: Link URLs must stay on it
	maxWait time.Duration
	clock   clock
	// blockedUntil is set when a response said no requests are left until
	// then (x-ratelimit-remaining: 0): the next request waits for it.
	blockedUntil time.Time
}

// clock is the time source of the client; tests replace it.
type clock struct {
	now   func() time.Time
	sleep func(context.Context, time.Duration) error
}

func realClock() clock {
	return clock{now: time.Now, sleep: func(ctx context.Context, d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}}
}

func newClient(cfg config, c clock) (*client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("config: baseUrl %q: want an absolute http(s) URL", cfg.BaseURL)
	}
	return &client{
		base: cfg.BaseURL, origin: u.Scheme + "://" + u.Host,
		maxWait: time.Duration(cfg.maxRateLimitWait()) * time.Second, clock: c,
	}, nil
}

// url returns the absolute URL of an API path ("/repos/o/r").
func (c *client) url(path string) string { return c.base + path }

// get returns a 2xx response to GET u; fields asks the host to split the
// JSON body's top-level members (pdk.HTTPRequest.Fields).
func (c *client) get(ctx context.Context, u string, fields bool) (*pdk.HTTPResponse, error) {
	return c.do(ctx, "GET", u, nil, fields)
}

// do sends a request and returns its response when the status is 2xx. A
// rate-limited request is retried after waiting, when the wait is at most
// maxWait; otherwise it fails with ErrRateLimited saying when to retry.
func (c *client) do(ctx context.Context, method, u string, body []byte, fields bool) (*pdk.HTTPResponse, error) {
	req := pdk.HTTPRequest{Method: method, URL: u, Fields: fields, Body: body, Headers: map[string][]string{
		"Accept":               {"application/vnd.github+json"},
		"X-GitHub-Api-Version": {"2022-11-28"},
	}}
	if body != nil {
		req.Headers["Content-Type"] = []string{"application/json"}
	}
	what := method + " " + strings.TrimPrefix(u, c.base)
	for attempt := 1; ; attempt++ {
		if err := c.waitUntil(ctx, c.blockedUntil, what, "x-ratelimit-remaining: 0"); err != nil {
			return nil, err
		}
		resp, err := pdk.HTTP(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		c.noteRateLimit(resp)
		if resp.Status >= 200 && resp.Status < 300 {
			return resp, nil
		}
		until, source, limited := c.rateLimitedUntil(resp)
		if !limited {
			return nil, statusError(what, resp)
		}
		if attempt == rateLimitAttempts {
			return nil, fmt.Errorf("%w: %s: still limited after %d attempts (%s)", ErrRateLimited, what, attempt, githubMessage(resp))
		}
		if err := c.waitUntil(ctx, until, what, fmt.Sprintf("%d %s (%s)", resp.Status, githubMessage(resp), source)); err != nil {
			return nil, err
		}
	}
}

// waitUntil sleeps until t when that is at most maxWait away, and fails
// with ErrRateLimited (saying when to retry) when it is further.
func (c *client) waitUntil(ctx context.Context, t time.Time, what, why string) error {
	d := t.Sub(c.clock.now())
	if d <= 0 {
		return nil
	}
	if d > c.maxWait {
		return fmt.Errorf("%w: %s: %s; retry after %s (in %s)", ErrRateLimited, what, why,
			t.UTC().Format(time.RFC3339), d.Round(time.Second))
	}
	if err := c.clock.sleep(ctx, d); err != nil {
		return fmt.Errorf("%s: waiting for the rate limit: %w", what, err)
	}
	return nil
}

// noteRateLimit remembers when a response says the quota is used up.
func (c *client) noteRateLimit(resp *pdk.HTTPResponse) {
	if header(resp, "X-Ratelimit-Remaining") != "0" {
		return
	}
	if reset, ok := unixHeader(resp, "X-Ratelimit-Reset"); ok {
		c.blockedUntil = reset
	}
}

// rateLimitedUntil reports whether resp is a rate-limit refusal (GitHub
// answers 403 or 429, with retry-after for secondary limits or
// x-ratelimit-remaining: 0 for the primary one), until when, and which
// header said so.
func (c *client) rateLimitedUntil(resp *pdk.HTTPResponse) (time.Time, string, bool) {
	if resp.Status != 403 && resp.Status != 429 {
		return time.Time{}, "", false
	}
	if s := header(resp, "Retry-After"); s != "" {
		if secs, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && secs >= 0 {
			return c.clock.now().Add(time.Duration(secs) * time.Second), "retry-after", true
		}
		if t, err := time.Parse(time.RFC1123, s); err == nil {
			return t, "retry-after", true
		}
	}
	if header(resp, "X-Ratelimit-Remaining") == "0" {
		if reset, ok := unixHeader(resp, "X-Ratelimit-Reset"); ok {
			return reset, "x-ratelimit-reset", true
		}
		// GitHub's advice when nothing says how long: wait a minute.
		return c.clock.now().Add(time.Minute), "x-ratelimit-remaining: 0", true
	}
	if resp.Status == 429 {
		return c.clock.now().Add(time.Minute), "429 without retry-after", true
	}
	return time.Time{}, "", false
}

// statusError describes a non-2xx answer that is not a rate limit.
func statusError(what string, resp *pdk.HTTPResponse) error {
	msg := githubMessage(resp)
	switch {
	case resp.Status == 401:
		return fmt.Errorf("%w: %s: %s", ErrUnauthorized, what, msg)
	case resp.Status == 403:
		return fmt.Errorf("%w: %s: %s", ErrForbidden, what, msg)
	case resp.Status == 404:
		return fmt.Errorf("%w: %s", ErrNotFound, what)
	}
	return fmt.Errorf("%w: %s: status %d: %s", ErrUpstream, what, resp.Status, msg)
}

// githubMessage returns the "message" of a GitHub error body, or the start
// of the body when it has none.
func githubMessage(resp *pdk.HTTPResponse) string {
	const maxLen = 200
	var e struct {
		Message string `json:"message"`
	}
	msg := strings.TrimSpace(string(resp.Body))
	if json.Unmarshal(resp.Body, &e) == nil && e.Message != "" {
		msg = e.Message
	}
	if len(msg) > maxLen {
		msg = msg[:maxLen] + "…"
	}
	if msg == "" {
		msg = "empty body"
	}
	return strconv.Quote(msg)
}

// nextLink returns the rel="next" URL of the response's Link header, or ""
// on the last page. The URL must stay on the API's origin: the host adds
// the token only for the hosts it knows, and a link elsewhere is an error.
func (c *client) nextLink(resp *pdk.HTTPResponse) (string, error) {
	next := parseNextLink(header(resp, "Link"))
	if next == "" {
		return "", nil
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme+"://"+u.Host != c.origin {
		return "", fmt.Errorf("Link rel=\"next\" %q leaves %s", next, c.origin)
	}
	return next, nil
}

// parseNextLink finds the rel="next" target of an RFC 8288 Link header:
// `<https://api.github.com/…?page=2>; rel="next", <…>; rel="last"`.
func parseNextLink(h string) string {
	for _, part := range strings.Split(h, ",") {
		target, params, ok := strings.Cut(part, ";")
		target = strings.TrimSpace(target)
		if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
			continue
		}
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(k, "rel") && hasToken(strings.Trim(v, `"`), "next") {
				return target[1 : len(target)-1]
			}
		}
	}
	return ""
}

func hasToken(list, tok string) bool {
	for _, f := range strings.Fields(list) {
		if strings.EqualFold(f, tok) {
			return true
		}
	}
	return false
}

// header returns the first value of a response header, matched
// case-insensitively.
func header(resp *pdk.HTTPResponse, name string) string {
	for k, v := range resp.Headers {
		if len(v) > 0 && strings.EqualFold(k, name) {
			return v[0]
		}
	}
	return ""
}

func unixHeader(resp *pdk.HTTPResponse, name string) (time.Time, bool) {
	secs, err := strconv.ParseInt(strings.TrimSpace(header(resp, name)), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(secs, 0), true
}
