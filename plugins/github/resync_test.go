package main

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portico-dev/portico/pdk"
	"github.com/portico-dev/portico/plugins/github/standin"
)

func TestInfoIsValid(t *testing.T) {
	info, err := GitHub{}.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := info.Validate(); err != nil {
		t.Fatal(err)
	}
	if info.Name != "github" || info.Version != "0.1.0" || !info.Webhook {
		t.Errorf("info %s@%s webhook %v", info.Name, info.Version, info.Webhook)
	}
	mapped := map[string]bool{}
	for _, m := range info.Mappings.Resources {
		mapped[m.Kind] = true
	}
	for _, k := range info.Kinds {
		if !mapped[k.Kind] {
			t.Errorf("kind %s has no default mapping", k.Kind)
		}
	}
}

// TestResyncWalksEveryKind pages (one item per page: every listing follows
// its Link header) through the configured repositories and the
// organization's, for every kind.
func TestResyncWalksEveryKind(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(map[string]any{
		"repositories": []string{"octo-org/octo-repo", "Codertocat/Hello-World", "hub4j-test-org/GHWorkflowTest"},
		"org":          "hub4j-test-org", "pageSize": 1,
	})
	tests := []struct {
		kind string
		path []string
		want string
	}{
		{kindRepository, []string{"full_name"}, "octo-org/octo-repo,Codertocat/Hello-World,hub4j-test-org/GHWorkflowTest,hub4j-test-org/GHWorkflowRunTest"},
		{kindWorkflow, []string{"id"}, "2823525,2202229000,6817859,6820790,7433027"},
		{kindRun, []string{"id"}, "289782451,2202229078,7890467516,686039314,677006583"},
		{kindDeployment, []string{"deployment", "id"}, "145988746"},
		{kindDeployment, []string{"deployment_status", "state"}, "success"},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			items, err := e.resyncAll(t, tt.kind, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := fields(t, items, tt.path...); got != tt.want {
				t.Errorf("%s %v = %s, want %s", tt.kind, tt.path, got, tt.want)
			}
		})
	}
	// The org's second page came from its Link header, verbatim.
	var followed bool
	for _, u := range e.host.urls() {
		followed = followed || strings.HasSuffix(u, "/orgs/hub4j-test-org/repos?page=2&per_page=1&type=all")
		if !strings.HasPrefix(u, "GET "+e.api.URL+"/") {
			t.Errorf("request off the stand-in: %s", u)
		}
	}
	if !followed {
		t.Errorf("org page 2 not requested: %v", e.host.urls())
	}
}

// TestResyncWindow: runs are asked for with created>=, and the listing of
// a repository stops at maxRunsPerRepository.
func TestResyncWindow(t *testing.T) {
	e := newEnv(t)
	const repo = "hub4j-test-org/GHWorkflowRunTest"
	if _, err := e.api.AddRuns(repo, 25); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		extra map[string]any
		want  int
	}{
		{"last 30 days: the synthetic runs only", map[string]any{"runsSinceDays": 30}, 25},
		{"no window", map[string]any{}, 28},
		{"capped", map[string]any{"maxRunsPerRepository": 10, "pageSize": 5}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.extra["repositories"] = []string{repo}
			items, err := e.resyncAll(t, kindRun, e.config(tt.extra))
			if err != nil {
				t.Fatal(err)
			}
			if len(items) != tt.want {
				t.Errorf("%d runs, want %d", len(items), tt.want)
			}
		})
	}
	since := e.clock.t.UTC().AddDate(0, 0, -30).Format("2006-01-02")
	var windowed bool
	for _, r := range e.api.Requests() {
		windowed = windowed || (r.Path == "/repos/"+repo+"/actions/runs" && strings.Contains(r.Query, "created=%3E%3D"+since))
	}
	if !windowed {
		t.Errorf("no runs request with created>=%s", since)
	}
}

// TestResyncFailures: every failure fails the page (the host then
// reconciles nothing) with an error saying what and where.
func TestResyncFailures(t *testing.T) {
	const runs = "/repos/hub4j-test-org/GHWorkflowRunTest/actions/runs"
	tests := []struct {
		name    string
		setup   func(*standin.Server)
		kind    string
		is      error
		message []string
	}{
		{"bad token", func(s *standin.Server) { s.SetToken("another") }, kindRepository,
			ErrUnauthorized, []string{"401", `"Bad credentials"`, "GET /repos/hub4j-test-org/GHWorkflowRunTest"}},
		{"forbidden", func(s *standin.Server) {
			s.Inject(standin.Fault{Path: runs, Status: 403, Body: `{"message": "Resource not accessible by personal access token"}`})
		}, kindRun, ErrForbidden, []string{"Resource not accessible by personal access token", "list workflowRuns of hub4j-test-org/GHWorkflowRunTest, page 1"}},
		{"server error on page 2", func(s *standin.Server) { s.Inject(standin.Fault{Path: runs, Page: 2, Status: 502}) },
			kindRun, ErrUpstream, []string{"page 2", "status 502"}},
		{"malformed page 2", func(s *standin.Server) { s.Inject(standin.Fault{Path: runs, Page: 2, Malformed: true}) },
			kindRun, nil, []string{"workflowRuns of hub4j-test-org/GHWorkflowRunTest, page 2: malformed JSON"}},
		{"malformed deployments", func(s *standin.Server) {
			s.Inject(standin.Fault{Path: "/repos/hub4j-test-org/GHWorkflowRunTest/deployments", Malformed: true})
		}, kindDeployment, nil, []string{"deployments of hub4j-test-org/GHWorkflowRunTest, page 1: malformed JSON"}},
		{"repository gone", func(s *standin.Server) { s.RemoveRepository("hub4j-test-org/GHWorkflowRunTest") },
			kindWorkflow, ErrNotFound, []string{"GET /repos/hub4j-test-org/GHWorkflowRunTest/actions/workflows"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tt.setup(e.api)
			cfg := e.config(map[string]any{"repositories": []string{"hub4j-test-org/GHWorkflowRunTest"}, "pageSize": 1})
			items, err := e.resyncAll(t, tt.kind, cfg)
			if err == nil {
				t.Fatalf("no error (%d items)", len(items))
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			for _, m := range tt.message {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q lacks %q", err, m)
				}
			}
		})
	}
}

// TestRateLimits: short waits are waited (on the plugin's clock), long ones
// fail saying when to retry.
func TestRateLimits(t *testing.T) {
	const path = "/repos/octo-org/octo-repo"
	tests := []struct {
		name    string
		fault   func(now time.Time) standin.Fault
		wantErr string
		slept   time.Duration
	}{
		{"secondary limit, retry-after 3s", func(time.Time) standin.Fault {
			return standin.Fault{Path: path, Status: 403, RetryAfter: 3 * time.Second, Times: 1}
		}, "", 3 * time.Second},
		{"429, retry-after 2s", func(time.Time) standin.Fault {
			return standin.Fault{Path: path, Status: 429, RetryAfter: 2 * time.Second, Times: 2}
		}, "", 4 * time.Second},
		{"primary limit resets in 5s", func(now time.Time) standin.Fault {
			return standin.Fault{Path: path, Status: 403, RateLimitReset: now.Add(5 * time.Second), Times: 1}
		}, "", 5 * time.Second},
		{"primary limit resets in an hour", func(now time.Time) standin.Fault {
			return standin.Fault{Path: path, Status: 403, RateLimitReset: now.Add(time.Hour), Times: 1}
		}, "x-ratelimit-reset", 0},
		{"still limited after 3 attempts", func(time.Time) standin.Fault {
			return standin.Fault{Path: path, Status: 429, RetryAfter: time.Second}
		}, "still limited after 3 attempts", 2 * time.Second},
		{"retry-after beyond the wait", func(time.Time) standin.Fault {
			return standin.Fault{Path: path, Status: 429, RetryAfter: time.Minute}
		}, "retry after", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.clock.t = time.Now().Truncate(time.Second)
			e.api.Inject(tt.fault(e.clock.t))
			cfg := e.config(map[string]any{"repositories": []string{"octo-org/octo-repo"}})
			items, err := e.resyncAll(t, kindRepository, cfg)
			var slept time.Duration
			for _, d := range e.clock.slept {
				slept += d
			}
			if tt.wantErr == "" {
				if err != nil || len(items) != 1 {
					t.Fatalf("%d items, %v", len(items), err)
				}
			} else if !errors.Is(err, ErrRateLimited) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want ErrRateLimited with %q", err, tt.wantErr)
			}
			// Waits are whole seconds from the stand-in's headers; the
			// reset-based ones are measured from the plugin's clock.
			if slept.Round(time.Second) != tt.slept {
				t.Errorf("slept %v, want %v", slept, tt.slept)
			}
		})
	}
}

// TestExhaustedQuotaWaitsBeforeTheNextRequest: a response saying no
// requests are left makes the next request of the call wait for the reset.
func TestExhaustedQuotaWaitsBeforeTheNextRequest(t *testing.T) {
	fc := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	reset := fc.t.Add(4 * time.Second)
	page := 0
	h := &fakeHost{respond: func(r pdk.HTTPRequest) *pdk.HTTPResponse {
		page++
		hdr := map[string][]string{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {strconv.FormatInt(reset.Unix(), 10)}}
		if page == 1 {
			return &pdk.HTTPResponse{Status: 200, Headers: hdr, Body: []byte(`[{"full_name": "org/a"}]`)}
		}
		return &pdk.HTTPResponse{Status: 200, Body: []byte(`{"total_count": 0, "workflows": []}`)}
	}}
	g := GitHub{clock: fc.clock()}
	ctx := pdk.WithHost(context.Background(), h)
	_, err := g.Resync(ctx, pdk.ResyncRequest{Kind: kindWorkflow, Config: []byte(`{"baseUrl": "https://ghe.example/api/v3", "org": "org"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if len(fc.slept) != 1 || fc.slept[0] != 4*time.Second {
		t.Errorf("slept %v, want [4s]", fc.slept)
	}
	want := []string{"GET https://ghe.example/api/v3/orgs/org/repos?type=all&per_page=100",
		"GET https://ghe.example/api/v3/repos/org/a/actions/workflows?per_page=100"}
	if got := h.urls(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseNextLink(t *testing.T) {
	tests := []struct{ header, want string }{
		{`<https://api.github.com/repositories/1/issues?page=2>; rel="next", <https://api.github.com/repositories/1/issues?page=5>; rel="last"`,
			"https://api.github.com/repositories/1/issues?page=2"},
		{`<https://x/a?page=1>; rel="prev", <https://x/a?page=3>; rel="next"`, "https://x/a?page=3"},
		{`<https://x/a?page=1>; rel="first", <https://x/a?page=1>; rel="prev"`, ""},
		{`<https://x/a?page=2>; rel=next`, "https://x/a?page=2"},
		{`<https://x/a?page=2>; title="x"; rel="next last"`, "https://x/a?page=2"},
		{``, ""},
		{`garbage`, ""},
	}
	for _, tt := range tests {
		if got := parseNextLink(tt.header); got != tt.want {
			t.Errorf("parseNextLink(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
}

// TestNextLinkMustStayOnTheAPI: a Link to another origin fails the page
// rather than sending the walk (and maybe the token) elsewhere.
func TestNextLinkMustStayOnTheAPI(t *testing.T) {
	h := &fakeHost{respond: func(pdk.HTTPRequest) *pdk.HTTPResponse {
		return &pdk.HTTPResponse{Status: 200, Headers: map[string][]string{"Link": {`<https://evil.example/orgs/o/repos?page=2>; rel="next"`}},
			Body: []byte(`[]`)}
	}}
	ctx := pdk.WithHost(context.Background(), h)
	_, err := GitHub{}.Resync(ctx, pdk.ResyncRequest{Kind: kindRepository, Config: []byte(`{"org": "o"}`)})
	if err == nil || !strings.Contains(err.Error(), "leaves https://api.github.com") {
		t.Fatalf("error %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ config, want string }{
		{`{}`, "set repositories (owner/name) or org"},
		{`{"repositories": ["nope"]}`, `repositories[0] "nope": want owner/name`},
		{`{"org": "a/b"}`, `org "a/b"`},
		{`{"org": "o", "baseUrl": "ftp://x"}`, "want an absolute http(s) URL"},
		{`{"org": "o", "pageSize": 500}`, "pageSize 500"},
		{`{"org": "o", "runsSinceDays": -1}`, "runsSinceDays must not be negative"},
		{`[]`, "decode config"},
	}
	for _, tt := range tests {
		_, err := GitHub{}.Resync(context.Background(), pdk.ResyncRequest{Kind: kindRepository, Config: []byte(tt.config)})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("config %s: error %v, want %q", tt.config, err, tt.want)
		}
	}
	_, err := GitHub{}.Resync(context.Background(), pdk.ResyncRequest{Kind: "issues", Config: []byte(`{"org": "o"}`)})
	if err == nil || !strings.Contains(err.Error(), `unknown kind "issues"`) {
		t.Errorf("unknown kind: %v", err)
	}
}
