package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/portico-dev/portico/pdk"
	"github.com/portico-dev/portico/plugins/pagerduty/standin"
)

func TestInfoIsValid(t *testing.T) {
	info, err := PagerDuty{}.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := info.Validate(); err != nil {
		t.Fatal(err)
	}
	if info.Name != "pagerduty" || info.Version != "0.1.0" || !info.Webhook {
		t.Errorf("info = %s@%s webhook %v", info.Name, info.Version, info.Webhook)
	}
	// Relation targets come before the kinds relating to them.
	var kinds []string
	for _, k := range info.Kinds {
		kinds = append(kinds, k.Kind)
	}
	if want := []string{kindServices, kindSchedules, kindOncalls, kindIncidents}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("kinds %v, want %v", kinds, want)
	}
	for _, bp := range info.Blueprints {
		var b map[string]any
		if err := json.Unmarshal(bp, &b); err != nil {
			t.Errorf("blueprint %s: %v", bp[:40], err)
		}
	}
	if len(info.Auth) != 1 || info.Auth[0].Template != "Token token={{apiToken}}" || !slices.Contains(info.Auth[0].Hosts, "api.pagerduty.com") {
		t.Errorf("auth %+v", info.Auth)
	}
}

func TestResyncServicesCarryOncallsAndStats(t *testing.T) {
	s, ctx, _, cfg := setup(t, `, "pageSize": 40`)
	if err := s.AddIncidents(30); err != nil { // incident k on service k
		t.Fatal(err)
	}
	items := resyncAll(t, PagerDuty{}, ctx, kindServices, cfg)
	var ids []string
	for _, it := range items {
		ids = append(ids, stringField(it, "id"))
	}
	if want := s.Services(); !reflect.DeepEqual(ids, want) {
		t.Fatalf("listed %d services, want the stand-in's %d in order", len(ids), len(want))
	}
	all := byID(items)
	svcs := s.Services()
	tests := []struct {
		id   string
		want map[string]any // properties expected (absent: must not be set)
	}{
		{"P00BUSE", map[string]any{"status": "critical", "escalationPolicy": "Backend Escalation Policy",
			"oncallNow": []any{"John Doe", "isaac"}, "openIncidents": 1, "incidents30d": 0}},
		// Synthetic incident 1 on service 1: acknowledged after 61s, open.
		{svcs[1], map[string]any{"openIncidents": 1, "incidents30d": 1, "mttaSeconds": 61, "oncallNow": []any{}}},
		// Synthetic incident 2 on service 2: acknowledged after 62s, resolved after 1802s.
		{svcs[2], map[string]any{"openIncidents": 0, "incidents30d": 1, "mttaSeconds": 62, "mttrSeconds": 1802}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			raw, ok := all[tt.id]
			if !ok {
				t.Fatalf("service %s not listed", tt.id)
			}
			e := mapItem(t, kindServices, raw)
			props := e["properties"].(map[string]any)
			for k, want := range tt.want {
				if got := jsonString(props[k]); got != jsonString(want) {
					t.Errorf("%s = %s, want %s", k, got, jsonString(want))
				}
			}
			if tt.want["mttrSeconds"] == nil {
				if v, ok := props["mttrSeconds"]; ok {
					t.Errorf("mttrSeconds = %v, want unset (nothing resolved)", v)
				}
			}
			if e["identifier"] != tt.id || e["blueprint"] != "pagerdutyService" {
				t.Errorf("entity %v/%v", e["blueprint"], e["identifier"])
			}
		})
	}
}

func TestResyncServicesWithoutStats(t *testing.T) {
	s, ctx, _, cfg := setup(t, `, "serviceStats": false`)
	items := resyncAll(t, PagerDuty{}, ctx, kindServices, cfg)
	raw := byID(items)["P00BUSE"]
	fields, err := pdk.SplitObject(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fields["__stats"]; ok {
		t.Error("__stats present with serviceStats false")
	}
	if oncalls, _ := pdk.SplitArray(fields["__oncalls"]); len(oncalls) != 2 {
		t.Errorf("__oncalls = %s, want the 2 entries of P7LVMYP", fields["__oncalls"])
	}
	for _, r := range s.Requests() {
		if r.Path == "/analytics/metrics/incidents/services" || r.Path == "/incidents" {
			t.Errorf("request %s %s with serviceStats false", r.Method, r.Path)
		}
	}
}

func TestResyncIncidentsWindowThenOpen(t *testing.T) {
	s, ctx, _, cfg := setup(t, `, "incidentsSinceDays": 7, "pageSize": 5`)
	if err := s.AddIncidents(250); err != nil {
		t.Fatal(err)
	}
	items := resyncAll(t, PagerDuty{}, ctx, kindIncidents, cfg)
	got := byID(items)
	if len(got) != len(items) {
		t.Errorf("%d items for %d incidents: the open phase relisted the window's", len(items), len(got))
	}
	for _, id := range s.Incidents() {
		_, listed := got[id]
		// The 2017 sample incidents are resolved and out of the window;
		// the 2025 ones are a year old but still triggered.
		want := id != "INCIDENT1" && id != "INCIDENT2"
		if listed != want {
			t.Errorf("incident %s listed %v, want %v", id, listed, want)
		}
	}
	e := mapItem(t, kindIncidents, got["Q1QGYB805SG874"])
	want := map[string]any{"status": "triggered", "priority": "P2", "number": 271, "urgency": "high",
		"assignees": []any{"John Doe"}, "createdAt": "2025-11-07T08:48:39Z"}
	props := e["properties"].(map[string]any)
	for k, v := range want {
		if jsonString(props[k]) != jsonString(v) {
			t.Errorf("%s = %s, want %s", k, jsonString(props[k]), jsonString(v))
		}
	}
	if _, ok := props["acknowledgedAt"]; ok {
		t.Error("acknowledgedAt set on a triggered incident")
	}
	if rel := e["relations"].(map[string]any)["service"]; rel != "P00BUSE" {
		t.Errorf("service relation %v", rel)
	}
	resolved := mapItem(t, kindIncidents, got["QSYN000006"])["properties"].(map[string]any) // k=2: resolved
	if resolved["status"] != "resolved" || resolved["resolvedAt"] == nil || resolved["acknowledgedAt"] == nil {
		t.Errorf("resolved incident properties %v", resolved)
	}
	// The open phase stops where the window starts: one page (2 old open
	// incidents, then the window's), not the 12 open incidents' 3 pages.
	open := 0
	for _, r := range s.Requests() {
		if q, _ := url.ParseQuery(r.Query); q.Get("date_range") == "all" {
			open++
		}
	}
	if open != 1 {
		t.Errorf("%d requests for open incidents, want 1", open)
	}
	first := s.Requests()[0]
	q, _ := url.ParseQuery(first.Query)
	if first.Path != "/incidents" || q.Get("since") == "" || q.Get("until") == "" || q.Get("sort_by") != "created_at:asc" {
		t.Errorf("first request %s?%s", first.Path, first.Query)
	}
}

func TestIncidentCursorPastPaginationCap(t *testing.T) {
	c := client{cfg: config{PageSize: 100}}
	since := time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC)
	until := since.AddDate(0, 0, 30)
	at := func(phase string) incidentCursor {
		return incidentCursor{phase: phase, start: since, since: since, until: until, offset: 9900}
	}
	items := json.RawMessage(`[{"id": "a", "created_at": "2026-11-05T00:00:00Z"}, {"id": "b", "created_at": "2026-11-06T10:00:00Z"}]`)
	tests := []struct {
		name    string
		cur     incidentCursor
		pg      listPage
		want    incidentCursor
		wantErr string
	}{
		{"next page", incidentCursor{phase: phaseWindow, start: since, since: since, until: until, offset: 100},
			listPage{items: items, more: true}, incidentCursor{phase: phaseWindow, start: since, since: since, until: until, offset: 200}, ""},
		{"window done: open phase", at(phaseWindow), listPage{items: items}, incidentCursor{phase: phaseOpen, start: since, until: until}, ""},
		{"cap: window resumes at the last creation time", at(phaseWindow), listPage{items: items, more: true},
			incidentCursor{phase: phaseWindow, start: since, since: time.Date(2026, 11, 6, 10, 0, 0, 0, time.UTC), until: until}, ""},
		{"cap: no progress", at(phaseWindow), listPage{items: json.RawMessage(`[{"created_at": "2026-11-04T00:00:00Z"}]`), more: true},
			incidentCursor{}, "more than 10000 incidents created at 2026-11-04T00:00:00Z"},
		{"cap: open phase", at(phaseOpen), listPage{items: items, more: true}, incidentCursor{}, "more than 10000 open incidents"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, err := PagerDuty{}.nextIncidentCursor(c, tt.cur, tt.pg)
			if tt.wantErr != "" {
				if err == nil || !contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseIncidentCursor(next)
			if err != nil {
				t.Fatal(err)
			}
			if got.phase != tt.want.phase || got.offset != tt.want.offset || !got.start.Equal(tt.want.start) ||
				!got.since.Equal(tt.want.since) || !got.until.Equal(tt.want.until) {
				t.Errorf("cursor %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestResyncFailures(t *testing.T) {
	tests := []struct {
		name     string
		kind     string
		prepare  func(s *standin.Server)
		sentinel error
		wantErr  string
	}{
		{"token revoked", kindServices, func(s2 *standin.Server) {
			s2.SetToken("rotated")
		}, ErrTokenRefused, "list services page 1: PagerDuty refused the API token (401): Authentication failed"},
		{"forbidden", kindSchedules, func(s2 *standin.Server) {
			s2.FailNext("/schedules", 403)
		}, ErrTokenRefused, "list schedules page 1: PagerDuty refused the API token (403)"},
		{"server error", kindIncidents, func(s2 *standin.Server) {
			s2.FailNext("/incidents", 500)
		}, nil, "list incidents (window) page 1: status 500: Internal Server Error (code 2001)"},
		{"malformed page", kindIncidents, func(s2 *standin.Server) {
			s2.MalformNext("/incidents")
		}, ErrMalformed, "list incidents (window) page 1: malformed JSON from PagerDuty"},
		{"malformed on-calls", kindServices, func(s2 *standin.Server) {
			s2.MalformNext("/oncalls")
		}, ErrMalformed, "list services page 1: on-calls: page 1: malformed JSON"},
		{"rate limited too long", kindOncalls, func(s2 *standin.Server) {
			s2.RateLimitNext("/oncalls", 30)
		}, ErrRateLimited, "list oncalls page 1: rate limited by PagerDuty (429): retry after 30s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ctx, _, cfg := setup(t, "")
			tt.prepare(s)
			slept := &recordedSleep{}
			_, err := PagerDuty{sleep: slept.sleep}.Resync(ctx, pdk.ResyncRequest{Kind: tt.kind, Config: cfg})
			if err == nil || !contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("err = %v, want errors.Is %v", err, tt.sentinel)
			}
			if len(slept.waited) > 0 {
				t.Errorf("waited %v", slept.waited)
			}
		})
	}
}

func TestResyncFailsOnTheFailingPage(t *testing.T) {
	s, ctx, _, cfg := setup(t, `, "pageSize": 50`)
	p := PagerDuty{}
	page, err := p.Resync(ctx, pdk.ResyncRequest{Kind: kindServices, Config: cfg})
	if err != nil || page.Cursor != "50" {
		t.Fatalf("page 1: cursor %q, %v", page.Cursor, err)
	}
	s.FailNext("/services", 502)
	_, err = p.Resync(ctx, pdk.ResyncRequest{Kind: kindServices, Cursor: page.Cursor, Config: cfg})
	if err == nil || !contains(err.Error(), "list services page 2: status 502") {
		t.Fatalf("err = %v", err)
	}
}

func TestRateLimitWaitsRetryAfter(t *testing.T) {
	s, ctx, h, cfg := setup(t, `, "maxRetryWaitSeconds": 5`)
	s.RateLimitNext("/schedules", 2)
	s.RateLimitNext("/schedules", 2)
	slept := &recordedSleep{}
	page, err := PagerDuty{sleep: slept.sleep}.Resync(ctx, pdk.ResyncRequest{Kind: kindSchedules, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if items, _ := page.RawItems(); len(items) != 1 || stringField(items[0], "id") != "PWAXLIH" {
		t.Errorf("items %s", page.ItemsJSON)
	}
	if want := []time.Duration{2 * time.Second, 2 * time.Second}; !reflect.DeepEqual(slept.waited, want) {
		t.Errorf("waited %v, want %v", slept.waited, want)
	}
	if len(h.logs) != 2 || !contains(h.logs[0], "rate limited, retrying in 2s") {
		t.Errorf("logs %q", h.logs)
	}
	// A third 429 would exceed the 5 s budget: the page fails.
	for range 3 {
		s.RateLimitNext("/schedules", 2)
	}
	slept.waited = nil
	_, err = PagerDuty{sleep: slept.sleep}.Resync(ctx, pdk.ResyncRequest{Kind: kindSchedules, Config: cfg})
	if !errors.Is(err, ErrRateLimited) || len(slept.waited) != 2 {
		t.Errorf("err = %v after waiting %v", err, slept.waited)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ cfg, want string }{
		{`{"baseUrl": "ftp://x"}`, `baseUrl "ftp://x" is not an http(s) URL`},
		{`{"incidentsSinceDays": 200}`, "incidentsSinceDays 200 is outside 1–180"},
		{`{"pageSize": 101}`, "pageSize 101 is outside 1–100"},
		{`{"maxRetryWaitSeconds": -1}`, "maxRetryWaitSeconds -1 is negative"},
		{`{"teamIds": "x"}`, "decode config"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := PagerDuty{}.Resync(context.Background(), pdk.ResyncRequest{Kind: kindServices, Config: json.RawMessage(tt.cfg)})
			if err == nil || !contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := (PagerDuty{}).Resync(context.Background(), pdk.ResyncRequest{Kind: "users"}); err == nil || !contains(err.Error(), `unknown kind "users"`) {
		t.Errorf("unknown kind: %v", err)
	}
}

func TestResyncSchedulesAndOncalls(t *testing.T) {
	_, ctx, _, cfg := setup(t, "")
	scheds := resyncAll(t, PagerDuty{}, ctx, kindSchedules, cfg)
	if len(scheds) != 1 {
		t.Fatalf("%d schedules", len(scheds))
	}
	sc := mapItem(t, kindSchedules, scheds[0])
	if sc["identifier"] != "PWAXLIH" || sc["title"] != "Port Test Service - Weekly Rotation" ||
		jsonString(sc["properties"].(map[string]any)["users"]) != `["isaac","John Doe"]` {
		t.Errorf("schedule %v", sc)
	}
	oncalls := resyncAll(t, PagerDuty{}, ctx, kindOncalls, cfg)
	var got []string
	for _, o := range oncalls {
		e := mapItem(t, kindOncalls, o)
		props := e["properties"].(map[string]any)
		got = append(got, fmt.Sprintf("%v %v %v %v %v", e["identifier"], props["user"], props["userEmail"], props["escalationLevel"], e["relations"].(map[string]any)["schedule"]))
	}
	want := []string{
		"P7LVMYP-1-PWAXLIH-PJCRRLH isaac jdoe@getport.io 1 PWAXLIH",
		"P7LVMYP-1-PWAXLIH-P4K4DLP John Doe jdoe@getport.io 1 PWAXLIH",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("on-calls\n%q\nwant\n%q", got, want)
	}
}

// An incident opened after the resync started (here: 2 s after its clock)
// is listed by the window, not lost between the two phases.
func TestResyncListsIncidentsCreatedDuringIt(t *testing.T) {
	s, ctx, _, cfg := setup(t, "")
	started := time.Now().Add(-2 * time.Second)
	res, err := PagerDuty{}.Act(ctx, pdk.ActRequest{Action: "trigger", Config: cfg,
		Inputs: json.RawMessage(`{"service": "P00BUSE", "title": "late"}`)})
	if err != nil {
		t.Fatal(err)
	}
	id := stringField(res.Upserts[0].Item, "id")
	items := resyncAll(t, PagerDuty{now: func() time.Time { return started }}, ctx, kindIncidents, cfg)
	if _, ok := byID(items)[id]; !ok {
		t.Errorf("incident %s created during the resync not listed (stand-in has %v)", id, s.Incidents())
	}
}
