package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/actions/redisactions"
)

// listRuns follows GET /runs?query as tok to the last page (at most
// maxPages) and returns the run ids and the number of pages.
func listRuns(t *testing.T, e *accessEnv, tok, query string, maxPages int) ([]string, int) {
	t.Helper()
	var ids []string
	cursor := ""
	for page := 1; ; page++ {
		q := query
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		r := e.as(tok, "GET", "/api/v1/runs?"+q, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("GET /runs?%s: %d %s", q, r.Status, r.Raw)
		}
		var body struct {
			Runs []struct{ ID string } `json:"runs"`
			Next *string               `json:"next"`
		}
		if err := json.Unmarshal(r.Raw, &body); err != nil {
			t.Fatal(err)
		}
		for _, run := range body.Runs {
			ids = append(ids, run.ID)
		}
		if body.Next == nil {
			return ids, page
		}
		if page == maxPages {
			t.Fatalf("GET /runs?%s: still a next page after %d pages", query, page)
		}
		cursor = *body.Next
	}
}

// streamAs GETs a run log path as tok with Accept: text/event-stream. A
// stream (200) is read to its end only when follow is set (a finished
// run's stream ends by itself); any other answer is read whole.
func streamAs(t *testing.T, e *accessEnv, tok, path string, follow bool) resp {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "text/event-stream")
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out := resp{Status: res.StatusCode, Header: res.Header}
	if res.StatusCode != http.StatusOK || follow {
		if out.Raw, err = io.ReadAll(res.Body); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	return out
}

// runsQueries are the listings an attacker would try, approvals included.
var runsQueries = []string{"limit=500", "action=rotate", "entity=vault/ledger", "entity=ledger",
	"status=WAITING_FOR_APPROVAL", "status=SUCCESS", "triggeredBy=alice@example.com"}

// TestRunsArePrivate: a run (inputs, logs, step outputs) is seen by its
// requester, its approvers, admins and those who may read its entity;
// everyone else gets a 404 from every route that names it and never finds
// it in a listing.
func TestRunsArePrivate(t *testing.T) {
	t.Parallel()
	runner := &fakeRunner{runs: map[string]*actions.Run{}}
	e := newActionsEnv(t, runner)
	worker := redisactions.New(e.rdb, redisactions.Options{})
	for _, team := range []string{"payments", "platform", "sre"} {
		e.must(201, "PUT", "/api/v1/blueprints/_team/entities/"+team, M{})
	}
	e.must(201, "PUT", "/api/v1/blueprints/vault", M{"schema": M{}, "permissions": M{"read": M{"ownedOnly": true}}})
	e.must(201, "PUT", "/api/v1/blueprints/vault/entities/ledger", M{"team": []string{"payments"}})
	e.user("alice@example.com", "member", "payments") // the requester
	e.user("pat@example.com", "member", "payments")   // reads the entity
	e.user("bob@example.com", "member", "platform")   // reads neither
	e.user("vic@example.com", "viewer", "platform")   // reads neither
	e.user("sam@example.com", "member", "sre")        // an approver
	e.user("sue@example.com", "member", "sre")        // an approver who never decides
	_, alice := e.mint("alice@example.com", "read", "run")
	_, pat := e.mint("pat@example.com", "read", "run")
	_, bob := e.mint("bob@example.com", "read", "run", "approve")
	_, vic := e.mint("vic@example.com", "read")
	_, sam := e.mint("sam@example.com", "read", "approve")
	_, sue := e.mint("sue@example.com", "read", "approve")
	e.must(201, "PUT", "/api/v1/actions/rotate", M{"blueprint": "vault", "operation": "DAY-2",
		"invocation": M{"type": "webhook", "url": "https://ci.example/rotate"},
		"approval":   M{"count": 1, "approvers": M{"teams": []string{"sre"}}, "timeout": "1h"}})
	e.must(201, "PUT", "/api/v1/actions/scaffold", M{"blueprint": "vault", "operation": "CREATE",
		"invocation": M{"type": "webhook", "url": "https://ci.example/scaffold"}})

	waiting := trigger(e, alice, "rotate", M{"entity": "ledger"})
	noEntity := trigger(e, alice, "scaffold", M{})
	// A finished run whose step output carries the webhook's answer.
	done := testRun("run_done", 3, actions.StatusSuccess, 2)
	done.Action, done.Blueprint, done.Entity = "rotate", "vault", "ledger"
	done.Steps = []actions.StepRun{{ID: "webhook", Type: "webhook", Status: actions.StatusSuccess, Output: json.RawMessage(`{"token":"s3cr3t"}`)}}
	save(t, worker, done)
	all := []string{waiting, noEntity, "run_done"}

	// sees checks every route that reveals a run as tok: the runs of all
	// listed in want answer, the others are missing. Only a finished run's
	// stream ends by itself, so only run_done is streamed while visible.
	sees := func(who, tok string, want ...string) {
		t.Helper()
		for _, id := range all {
			visible := slices.Contains(want, id)
			for _, path := range []string{"/api/v1/runs/" + id, "/api/v1/runs/" + id + "/logs"} {
				checkVisible(t, who, path, e.as(tok, "GET", path, nil), visible)
			}
			if !visible || id == "run_done" {
				for _, path := range []string{"/api/v1/runs/" + id + "/logs/stream", "/api/v1/runs/" + id + "/logs"} {
					checkVisible(t, who, "event stream "+path, streamAs(t, e, tok, path, visible), visible)
				}
			}
		}
		for _, q := range runsQueries {
			ids, _ := listRuns(t, e, tok, q, 5)
			ids = slices.DeleteFunc(ids, func(id string) bool { return !slices.Contains(all, id) })
			for _, id := range ids {
				if !slices.Contains(want, id) {
					t.Errorf("%s: GET /runs?%s lists hidden run %s", who, q, id)
				}
			}
			if q == "limit=500" && !sameSet(ids, want) {
				t.Errorf("%s: GET /runs lists %v, want %v", who, ids, want)
			}
		}
	}
	sees("admin", token, all...)
	sees("requester", alice, all...)
	sees("reader of the entity", pat, waiting, "run_done")
	sees("approver", sam, waiting, "run_done")
	sees("member of another team", bob)
	sees("viewer of another team", vic)

	// Deciding or cancelling a hidden run answers as for a missing one,
	// before revealing its status.
	for _, id := range []string{waiting, "run_done"} {
		checkError(t, approve(e, bob, id), 404, "not_found", nil)
		checkError(t, e.as(bob, "POST", "/api/v1/runs/"+id+"/cancel", nil), 404, "not_found", nil)
	}
	checkError(t, e.as(pat, "POST", "/api/v1/runs/"+noEntity+"/cancel", nil), 404, "not_found", nil)
	if n := len(runner.decisions) + len(runner.cancelled); n != 0 {
		t.Fatalf("hidden runs were decided or cancelled %d times", n)
	}
	// The approvers' listing: what waits for me.
	for _, who := range []struct {
		tok  string
		want []string
	}{{sam, []string{waiting}}, {sue, []string{waiting}}, {bob, nil}, {vic, nil}} {
		if ids, _ := listRuns(t, e, who.tok, "status=WAITING_FOR_APPROVAL", 5); !sameSet(ids, who.want) {
			t.Errorf("waiting runs %v, want %v", ids, who.want)
		}
	}
	if r := approve(e, sam, waiting); r.Status != http.StatusAccepted {
		t.Fatalf("approver: %d %s", r.Status, r.Raw)
	}

	// Once the action is gone its policy admits nobody: the approver who
	// decided still sees the run, the one who did not no longer does.
	decided := testRun(waiting, 5, actions.StatusInProgress, 0)
	decided.Action, decided.Blueprint, decided.Entity = "rotate", "vault", "ledger"
	decided.Approvals = []actions.ApprovalRecord{{Step: "approval", By: "sam@example.com", Decision: "approve", At: logT0}}
	save(t, worker, decided)
	e.must(204, "DELETE", "/api/v1/actions/rotate", nil)
	all = []string{waiting}
	sees("approver who decided", sam, waiting)
	sees("approver who did not", sue)

	// Whoever may read the entity sees its runs, as ownership changes.
	e.must(200, "PUT", "/api/v1/blueprints/vault/entities/ledger", M{"team": []string{"platform"}})
	all = []string{waiting, "run_done"}
	sees("new owning team", bob, waiting, "run_done")
	sees("viewer of the new owning team", vic, waiting, "run_done")
	sees("former owning team", pat)
}

// checkVisible asserts a 200 for a visible run and, for a hidden one, the
// 404 of an unknown run with nothing of the run in it.
func checkVisible(t *testing.T, who, what string, r resp, visible bool) {
	t.Helper()
	if visible {
		if r.Status != http.StatusOK {
			t.Errorf("%s: %s: %d %.300s", who, what, r.Status, r.Raw)
		}
		return
	}
	if r.Status != http.StatusNotFound || strings.Contains(string(r.Raw), "s3cr3t") || strings.Contains(string(r.Raw), "alice") {
		t.Errorf("%s: %s of a hidden run: %d %.300s", who, what, r.Status, r.Raw)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestRunListIsBounded: thousands of runs a viewer may not see cost a
// listing a bounded read each page, never the whole index: the first
// pages are empty with a cursor, and the viewer's one visible run (the
// oldest) comes last. Hidden runs are never listed.
func TestRunListIsBounded(t *testing.T) {
	t.Parallel()
	e, worker := newRunLogsEnv(t)
	e.must(201, "PUT", "/api/v1/blueprints/_team/entities/platform", M{})
	e.must(201, "PUT", "/api/v1/blueprints/vault", M{"schema": M{}, "permissions": M{"read": M{"ownedOnly": true}}})
	e.must(201, "PUT", "/api/v1/blueprints/vault/entities/ledger", M{"team": []string{"payments"}})
	e.must(201, "PUT", "/api/v1/blueprints/vault/entities/open", M{"team": []string{"platform"}})
	e.user("vic@example.com", "viewer", "platform")
	_, vic := e.mint("vic@example.com", "read")
	const hidden = 2200
	for i := range hidden + 1 {
		r := testRun(fmt.Sprintf("run_%05d", i), 1, actions.StatusSuccess, 0)
		r.Blueprint, r.Entity = "vault", "ledger"
		r.CreatedAt = logT0.Add(time.Duration(i) * time.Millisecond)
		if i == 0 {
			r.Entity = "open"
		}
		save(t, worker, r)
	}
	for _, q := range []string{"limit=50", "status=SUCCESS&limit=500", "action=deploy&limit=1"} {
		ids, pages := listRuns(t, e, vic, q, hidden/actions.MaxRunsScanned+2)
		if !slices.Equal(ids, []string{"run_00000"}) {
			t.Fatalf("%s: viewer listed %d runs (%.5v)", q, len(ids), ids)
		}
		if pages < hidden/actions.MaxRunsScanned+1 {
			t.Fatalf("%s: one of %d pages read more than %d runs", q, pages, actions.MaxRunsScanned)
		}
	}
	if ids, pages := listRuns(t, e, token, "limit=500", 10); len(ids) != hidden+1 || pages != 5 {
		t.Fatalf("admin listed %d runs in %d pages", len(ids), pages)
	}
	checkError(t, e.as(vic, "GET", "/api/v1/runs?cursor=forged", nil), 422, "validation_failed", []string{"/cursor"})
}
