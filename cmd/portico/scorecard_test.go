package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/cli"
)

// checkPortal starts the portal's API as serve wires it (over miniredis)
// with service octo/checkout (an identifier holding "/") at Bronze in
// scorecard readiness, and returns its URL.
func checkPortal(t *testing.T) string {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	p, err := newPortal(discardLog(), rdb, portalConfig{access: accessConfig{adminToken: "T"}, cacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.close(context.Background()) })
	if err := p.start(startOptions{api: true, pluginDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.srv.Handler)
	t.Cleanup(srv.Close)
	put := func(path, body string) {
		t.Helper()
		req, _ := http.NewRequest("PUT", srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer T")
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode/100 != 2 {
			t.Fatalf("PUT %s: %d", path, res.StatusCode)
		}
	}
	put("/api/v1/blueprints/service", `{"schema": {"properties": {"language": {"type": "string"}, "tier": {"type": "integer"}}}}`)
	put("/api/v1/blueprints/service/scorecards/readiness", `{"rules": [
	  {"identifier": "language", "title": "Has a language", "level": "Bronze", "query": {"combinator": "and", "rules": [{"property": "language", "operator": "isNotEmpty"}]}},
	  {"identifier": "tier", "level": "Silver", "query": {"combinator": "and", "rules": [{"property": "tier", "operator": "<=", "value": 2}]}},
	  {"identifier": "gold-tier", "level": "Gold", "query": {"combinator": "and", "rules": [{"property": "tier", "operator": "=", "value": 1}]}}]}`)
	put("/api/v1/blueprints/service/entities/octo%2Fcheckout", `{"properties": {"language": "go", "tier": 3}}`)
	return srv.URL
}

// TestScorecardCheck runs `portico scorecard check` against a portal:
// exit 0 at or above the minimum, 1 below it with the failing rules, 2
// when the check cannot be made (unknown level, HTTP errors with the
// server's message).
func TestScorecardCheck(t *testing.T) {
	url := checkPortal(t)
	t.Setenv("PORTICO_TOKEN", "T")
	for _, c := range []struct {
		name     string
		args     []string
		code     int
		out, err []string // substrings of stdout and of the error
	}{
		{"at the minimum", []string{"service/octo/checkout", "--scorecard", "readiness", "--min-level", "Bronze"}, 0,
			[]string{"service/octo/checkout: readiness Bronze", "✓ Has a language [language] (Bronze)", "✗ tier (Silver)", "ok: Bronze is at or above Bronze"}, nil},
		{"below", []string{"service/octo/checkout", "--scorecard", "readiness", "--min-level", "Silver"}, 1,
			[]string{"failing rules up to Silver:\n  ✗ tier (Silver)\n"}, []string{"is at Bronze, below Silver"}},
		{"unknown level", []string{"service/octo/checkout", "--scorecard", "readiness", "--min-level", "Platinum"}, 2,
			nil, []string{`level "Platinum" is not one of scorecard readiness's levels (Basic, Bronze, Silver, Gold)`}},
		{"unknown scorecard", []string{"service/octo/checkout", "--scorecard", "nope", "--min-level", "Silver"}, 2,
			nil, []string{"HTTP 404", "scorecard service/nope"}},
		{"bad token", []string{"service/octo/checkout", "--scorecard", "readiness", "--min-level", "Silver", "--token", "wrong"}, 2,
			nil, []string{"HTTP 401"}},
		{"no entity name", []string{"checkout", "--scorecard", "readiness", "--min-level", "Silver"}, 2,
			nil, []string{"<blueprint>/<identifier>"}},
		{"no server", []string{"service/octo/checkout", "--scorecard", "readiness", "--min-level", "Silver", "--server", "http://127.0.0.1:1"}, 2,
			nil, []string{"connection refused"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"scorecard", "check", "--server", url}, c.args...)
			var stdout bytes.Buffer
			cmd := rootCmd()
			cmd.SetArgs(args)
			cmd.SetOut(&stdout)
			err := cmd.Execute()
			code := 0
			if err != nil {
				code = cli.CodeOf(err)
			}
			if code != c.code {
				t.Fatalf("exit %d (%v), want %d; output:\n%s", code, err, c.code, stdout.String())
			}
			for _, want := range c.out {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, stdout.String())
				}
			}
			for _, want := range c.err {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error %v lacks %q", err, want)
				}
			}
		})
	}
}
