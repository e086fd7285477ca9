package standin

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, s *Server, path, token string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestSeededWorld(t *testing.T) {
	s := New()
	defer s.Close()
	if got := strings.Join(s.Repositories(), ","); got != "octo-org/octo-repo,hub4j-test-org/GHWorkflowTest,hub4j-test-org/GHWorkflowRunTest,Codertocat/Hello-World" {
		t.Fatalf("repositories %s", got)
	}
	tests := []struct {
		path string
		want []string // substrings of the body
	}{
		{"/repos/octo-org/octo-repo", []string{`"full_name":"octo-org/octo-repo"`}},
		{"/repos/hub4j-test-org/GHWorkflowRunTest", []string{`"full_name":"hub4j-test-org/GHWorkflowRunTest"`, `"name":"GHWorkflowRunTest"`, `"login":"hub4j-test-org"`}},
		{"/repos/hub4j-test-org/GHWorkflowRunTest/actions/workflows", []string{`"total_count":2`, `"id":6820790`, `"id":7433027`, `/repos/hub4j-test-org/GHWorkflowRunTest/actions/workflows/6820790"`}},
		{"/repos/hub4j-test-org/GHWorkflowRunTest/actions/runs", []string{`"total_count":3`, `"id":7890467516`}},
		{"/repos/Codertocat/Hello-World/actions/runs/2202229078", []string{`"status":"in_progress"`, `"workflow_id":2202229000`, `"full_name":"Codertocat/Hello-World"`}},
		{"/repos/Codertocat/Hello-World/deployments/145988746/statuses", []string{`"state":"success"`}},
		{"/repos/octo-org/octo-repo/actions/runs/289782451", []string{`"status":"queued"`}},
	}
	for _, tt := range tests {
		resp, body := get(t, s, tt.path, Token)
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", tt.path, resp.StatusCode, body)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(string(body), w) {
				t.Errorf("%s: no %s in %.300s", tt.path, w, body)
			}
		}
	}
}

func TestPagingAndLink(t *testing.T) {
	s := New()
	defer s.Close()
	resp, body := get(t, s, "/orgs/hub4j-test-org/repos?per_page=1", Token)
	var page []map[string]any
	if err := json.Unmarshal(body, &page); err != nil || len(page) != 1 || page[0]["full_name"] != "hub4j-test-org/GHWorkflowTest" {
		t.Fatalf("page 1: %v %.200s", err, body)
	}
	link := resp.Header.Get("Link")
	want := `<` + s.URL + `/orgs/hub4j-test-org/repos?page=2&per_page=1>; rel="next"`
	if !strings.HasPrefix(link, want) {
		t.Fatalf("Link %q, want prefix %q", link, want)
	}
	resp, body = get(t, s, "/orgs/hub4j-test-org/repos?page=2&per_page=1", Token)
	if err := json.Unmarshal(body, &page); err != nil || page[0]["full_name"] != "hub4j-test-org/GHWorkflowRunTest" {
		t.Fatalf("page 2: %v %.200s", err, body)
	}
	if l := resp.Header.Get("Link"); strings.Contains(l, `rel="next"`) {
		t.Errorf("last page has a next link: %s", l)
	}
}

func TestAuthAndFaults(t *testing.T) {
	s := New()
	defer s.Close()
	resp, body := get(t, s, "/repos/octo-org/octo-repo", "wrong")
	if resp.StatusCode != 401 || !strings.Contains(string(body), `"message":"Bad credentials"`) {
		t.Errorf("bad token: %d %s", resp.StatusCode, body)
	}
	reset := time.Now().Add(time.Hour).Truncate(time.Second)
	s.Inject(Fault{Path: "/repos/octo-org/octo-repo", Status: 403, RateLimitReset: reset, Times: 1})
	s.Inject(Fault{Path: "/repos/octo-org/octo-repo", Status: 429, RetryAfter: 3 * time.Second, Times: 1})
	s.Inject(Fault{Path: "/repos/octo-org/octo-repo", Malformed: true, Times: 1})
	resp, body = get(t, s, "/repos/octo-org/octo-repo", Token)
	if resp.StatusCode != 403 || resp.Header.Get("X-Ratelimit-Remaining") != "0" || resp.Header.Get("X-Ratelimit-Reset") != strconv.FormatInt(reset.Unix(), 10) || !strings.Contains(string(body), "rate limit") {
		t.Errorf("rate limit: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	resp, _ = get(t, s, "/repos/octo-org/octo-repo", Token)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" {
		t.Errorf("secondary limit: %d %v", resp.StatusCode, resp.Header)
	}
	resp, body = get(t, s, "/repos/octo-org/octo-repo", Token)
	if resp.StatusCode != 200 || json.Valid(body) {
		t.Errorf("malformed: %d, valid JSON %v", resp.StatusCode, json.Valid(body))
	}
	resp, body = get(t, s, "/repos/octo-org/octo-repo", Token)
	if resp.StatusCode != 200 || !json.Valid(body) {
		t.Errorf("after the faults: %d", resp.StatusCode)
	}
}

func TestMutations(t *testing.T) {
	s := New()
	defer s.Close()
	ids, err := s.AddRuns("hub4j-test-org/GHWorkflowRunTest", 250)
	if err != nil || len(ids) != 250 {
		t.Fatal(err)
	}
	_, body := get(t, s, "/repos/hub4j-test-org/GHWorkflowRunTest/actions/runs?per_page=100&page=3", Token)
	var page struct {
		TotalCount int               `json:"total_count"`
		Runs       []json.RawMessage `json:"workflow_runs"`
	}
	if err := json.Unmarshal(body, &page); err != nil || page.TotalCount != 253 || len(page.Runs) != 53 {
		t.Fatalf("page 3: %v total %d, %d runs", err, page.TotalCount, len(page.Runs))
	}
	since := time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04:05Z")
	_, body = get(t, s, "/repos/hub4j-test-org/GHWorkflowRunTest/actions/runs?created=%3E%3D"+since, Token)
	if err := json.Unmarshal(body, &page); err != nil || page.TotalCount != 250 {
		t.Fatalf("created filter: %v total %d", err, page.TotalCount)
	}
	if !s.RemoveRun("hub4j-test-org/GHWorkflowRunTest", ids[0]) || s.RemoveRun("hub4j-test-org/GHWorkflowRunTest", ids[0]) {
		t.Error("RemoveRun")
	}
	if resp, _ := get(t, s, "/repos/hub4j-test-org/GHWorkflowRunTest/actions/runs/"+strconv.FormatInt(ids[0], 10), Token); resp.StatusCode != 404 {
		t.Errorf("removed run: %d", resp.StatusCode)
	}
}
