// Package standin is a local stand-in for GitHub's REST API, for tests and
// benchmarks of the github plugin. It speaks GitHub's wire format (paths,
// per_page/page paging with Link headers, Bearer tokens, rate-limit headers,
// error bodies) over an httptest server, with data derived from real
// published payloads (testdata/SOURCES.md), and knobs to inject faults,
// remove objects and generate synthetic runs.
package standin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Token is the token a new Server accepts (Authorization: Bearer Token).
const Token = "ghp_standin0123456789"

const docsURL = "https://docs.github.com/rest"

// Server is a running stand-in. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL of the API, e.g. http://127.0.0.1:PORT (the
	// plugin's baseUrl).
	URL string

	srv *httptest.Server

	mu        sync.Mutex
	token     string
	repos     map[string]*repository // by lower-case full name
	order     []string               // full names, in creation order
	faults    []*Fault
	requests  []Request
	remaining int
	nextID    int64
}

type repository struct {
	obj         *object
	workflows   []*object // by id, ascending
	runs        []*object // newest first
	deployments []*deployment
}

type deployment struct {
	obj      *object
	statuses []*object // newest first
}

// object is a JSON object and its encoding, kept in step.
type object struct {
	m   map[string]any
	raw []byte
}

func newObject(m map[string]any) *object {
	o := &object{m: m}
	o.encode()
	return o
}

func (o *object) encode() {
	b, err := json.Marshal(o.m)
	if err != nil {
		panic(err)
	}
	o.raw = b
}

func (o *object) id() string { return fmt.Sprint(o.m["id"]) }

// Request is a request the stand-in received.
type Request struct {
	Method, Path, Query, Authorization string
	Body                               []byte
}

// Fault makes matching requests fail. Empty fields match anything.
type Fault struct {
	Method string
	Path   string // URL path, e.g. /repos/o/r/actions/runs
	Page   int    // the page query parameter (0: any; a missing page is 1)

	Status     int           // answer this status (default 500) ...
	Body       string        // ... with this body (default GitHub's message for it)
	RetryAfter time.Duration // sets Retry-After (whole seconds)
	// RateLimitReset, when set, answers x-ratelimit-remaining: 0 with
	// this x-ratelimit-reset (a primary rate limit).
	RateLimitReset time.Time
	// Malformed serves the real answer cut in half instead (status 200).
	Malformed bool
	Times     int // how many requests it hits; 0: every one until ClearFaults
}

// New starts a stand-in seeded with the fixture data; Close stops it.
func New() *Server {
	s := &Server{token: Token, repos: map[string]*repository{}, remaining: 5000, nextID: 9_000_000_000}
	s.seed()
	s.srv = httptest.NewServer(s.handler())
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// SetToken changes the token the stand-in accepts ("" accepts none).
func (s *Server) SetToken(t string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = t
}

// Inject adds a fault; the first matching fault answers a request.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Repositories returns the full names of the repositories, in creation order.
func (s *Server) Repositories() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.order)
}

// Run returns a copy of run id of repo, as the API would serve it.
func (s *Server) Run(repo string, id int64) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.run(repo, strconv.FormatInt(id, 10)); o != nil {
		return slices.Clone(o.raw), true
	}
	return nil, false
}

// RemoveRun deletes a run; it reports whether it existed.
func (s *Server) RemoveRun(repo string, id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(repo)]
	if r == nil {
		return false
	}
	n := len(r.runs)
	r.runs = slices.DeleteFunc(r.runs, func(o *object) bool { return o.id() == strconv.FormatInt(id, 10) })
	return len(r.runs) < n
}

// RemoveRepository deletes a repository with everything in it.
func (s *Server) RemoveRepository(fullName string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(fullName)
	if s.repos[key] == nil {
		return false
	}
	delete(s.repos, key)
	s.order = slices.DeleteFunc(s.order, func(n string) bool { return strings.EqualFold(n, fullName) })
	return true
}

// AddRuns adds n synthetic completed runs to repo (of its first workflow),
// cloned from the newest fixture run and created in the last n seconds; it
// returns their ids, newest first.
func (s *Server) AddRuns(repo string, n int) ([]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(repo)]
	if r == nil || len(r.workflows) == 0 {
		return nil, fmt.Errorf("standin: repository %q with a workflow not found", repo)
	}
	template := s.run("hub4j-test-org/GHWorkflowRunTest", "7890467516")
	full := r.obj.m["full_name"].(string)
	wf := r.workflows[0].m
	base := clone(template.m, "hub4j-test-org/GHWorkflowRunTest", full)
	now := time.Now().UTC().Truncate(time.Second)
	number := len(r.runs)
	ids := make([]int64, n)
	added := make([]*object, n)
	for i := range n {
		id := s.newID()
		m := make(map[string]any, len(base))
		for k, v := range base {
			m[k] = v
		}
		created := now.Add(-time.Duration(i) * time.Second)
		m["id"], m["workflow_id"], m["name"], m["path"] = id, wf["id"], wf["name"], wf["path"]
		m["run_number"] = number + n - i
		m["created_at"], m["run_started_at"] = created.Format(time.RFC3339), created.Format(time.RFC3339)
		m["updated_at"] = created.Add(42 * time.Second).Format(time.RFC3339)
		m["node_id"] = fmt.Sprintf("WFR_standin_%d", id)
		m["html_url"] = fmt.Sprintf("https://github.com/%s/actions/runs/%d", full, id)
		m["url"] = fmt.Sprintf("https://api.github.com/repos/%s/actions/runs/%d", full, id)
		ids[i], added[i] = id, newObject(m)
	}
	r.runs = append(added, r.runs...)
	return ids, nil
}

// AddDeploymentStatus adds a status (state: success, failure, …) to a
// deployment and returns it, as the API and the deployment_status webhook
// carry it.
func (s *Server) AddDeploymentStatus(repo string, deploymentID int64, state string) (json.RawMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(repo)]
	if r == nil {
		return nil, fmt.Errorf("standin: repository %q not found", repo)
	}
	for _, d := range r.deployments {
		if d.obj.id() != strconv.FormatInt(deploymentID, 10) || len(d.statuses) == 0 {
			continue
		}
		st := clone(d.statuses[len(d.statuses)-1].m)
		id := s.newID()
		now := time.Now().UTC().Format(time.RFC3339)
		st["id"], st["state"], st["created_at"], st["updated_at"] = id, state, now, now
		st["url"] = fmt.Sprintf("%v/%d", strings.TrimSuffix(fmt.Sprint(d.obj.m["statuses_url"]), "/"), id)
		o := newObject(st)
		d.statuses = append([]*object{o}, d.statuses...)
		return slices.Clone(o.raw), nil
	}
	return nil, fmt.Errorf("standin: deployment %d of %s with a status not found", deploymentID, repo)
}

func (s *Server) newID() int64 {
	s.nextID++
	return s.nextID
}

func (s *Server) addRepository(m map[string]any) {
	full := m["full_name"].(string)
	s.repos[strings.ToLower(full)] = &repository{obj: newObject(m)}
	s.order = append(s.order, full)
}

func (s *Server) addWorkflow(repo string, m map[string]any) {
	r := s.repos[strings.ToLower(repo)]
	r.workflows = append(r.workflows, newObject(m))
	slices.SortFunc(r.workflows, func(a, b *object) int { return strings.Compare(pad(a.id()), pad(b.id())) })
}

func (s *Server) addRun(repo string, m map[string]any) {
	r := s.repos[strings.ToLower(repo)]
	r.runs = append(r.runs, newObject(m))
	slices.SortStableFunc(r.runs, func(a, b *object) int {
		return strings.Compare(fmt.Sprint(b.m["created_at"]), fmt.Sprint(a.m["created_at"]))
	})
}

func (s *Server) addDeployment(repo string, m map[string]any) *deployment {
	r := s.repos[strings.ToLower(repo)]
	d := &deployment{obj: newObject(m)}
	r.deployments = append([]*deployment{d}, r.deployments...)
	return d
}

func pad(id string) string { return fmt.Sprintf("%020s", id) }

func (s *Server) workflow(repo, idOrFile string) *object {
	r := s.repos[strings.ToLower(repo)]
	if r == nil {
		return nil
	}
	for _, w := range r.workflows {
		if w.id() == idOrFile || path.Base(fmt.Sprint(w.m["path"])) == idOrFile {
			return w
		}
	}
	return nil
}

func (s *Server) run(repo, id string) *object {
	r := s.repos[strings.ToLower(repo)]
	if r == nil {
		return nil
	}
	for _, o := range r.runs {
		if o.id() == id {
			return o
		}
	}
	return nil
}

// handler routes the API and wraps it with recording, faults, auth and
// rate-limit headers.
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /repos/{owner}/{repo}", s.getRepository)
	mux.HandleFunc("GET /orgs/{org}/repos", s.listOrgRepositories)
	mux.HandleFunc("GET /repos/{owner}/{repo}/actions/workflows", s.listWorkflows)
	mux.HandleFunc("GET /repos/{owner}/{repo}/actions/workflows/{wf}", s.getWorkflow)
	mux.HandleFunc("POST /repos/{owner}/{repo}/actions/workflows/{wf}/dispatches", s.dispatch)
	mux.HandleFunc("GET /repos/{owner}/{repo}/actions/runs", s.listRuns)
	mux.HandleFunc("GET /repos/{owner}/{repo}/actions/runs/{id}", s.getRun)
	mux.HandleFunc("POST /repos/{owner}/{repo}/actions/runs/{id}/cancel", s.cancelRun)
	mux.HandleFunc("POST /repos/{owner}/{repo}/actions/runs/{id}/rerun", s.rerunRun)
	mux.HandleFunc("GET /repos/{owner}/{repo}/deployments", s.listDeployments)
	mux.HandleFunc("GET /repos/{owner}/{repo}/deployments/{id}/statuses", s.listStatuses)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { notFound(w) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := readBody(r)
		s.mu.Lock()
		s.requests = append(s.requests, Request{
			Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
			Authorization: r.Header.Get("Authorization"), Body: body,
		})
		token := s.token
		if s.remaining > 0 {
			s.remaining--
		}
		remaining := s.remaining
		f := s.fault(r)
		s.mu.Unlock()
		h := w.Header()
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("X-GitHub-Api-Version-Selected", "2022-11-28")
		h.Set("X-Ratelimit-Limit", "5000")
		h.Set("X-Ratelimit-Remaining", strconv.Itoa(remaining))
		h.Set("X-Ratelimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
		h.Set("X-Ratelimit-Resource", "core")
		if token != "" && !authorized(r.Header.Get("Authorization"), token) {
			writeJSON(w, 401, map[string]any{"message": "Bad credentials", "documentation_url": docsURL, "status": "401"})
			return
		}
		if f != nil && !f.Malformed {
			serveFault(w, f)
			return
		}
		if f != nil {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, r)
			for k, v := range rec.Header() {
				h[k] = v
			}
			w.WriteHeader(rec.Code)
			b := rec.Body.Bytes()
			_, _ = w.Write(b[:len(b)/2])
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	var b bytes.Buffer
	_, err := b.ReadFrom(r.Body)
	r.Body.Close()
	r.Body = readCloser{bytes.NewReader(b.Bytes())}
	return b.Bytes(), err
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func authorized(header, token string) bool {
	scheme, t, ok := strings.Cut(header, " ")
	return ok && (strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "token")) && t == token
}

// fault returns the first fault matching r and uses it up; s.mu is held.
func (s *Server) fault(r *http.Request) *Fault {
	page := 1
	if p, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil {
		page = p
	}
	for i, f := range s.faults {
		if (f.Method != "" && f.Method != r.Method) || (f.Path != "" && f.Path != r.URL.Path) || (f.Page != 0 && f.Page != page) {
			continue
		}
		if f.Times > 0 {
			if f.Times--; f.Times == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		return f
	}
	return nil
}

func serveFault(w http.ResponseWriter, f *Fault) {
	status := f.Status
	if status == 0 {
		status = 500
	}
	h := w.Header()
	if f.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(f.RetryAfter.Round(time.Second)/time.Second)))
	}
	if !f.RateLimitReset.IsZero() {
		h.Set("X-Ratelimit-Remaining", "0")
		h.Set("X-Ratelimit-Reset", strconv.FormatInt(f.RateLimitReset.Unix(), 10))
	}
	if f.Body != "" {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(f.Body))
		return
	}
	msg := http.StatusText(status)
	switch {
	case !f.RateLimitReset.IsZero():
		msg = "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID."
	case f.RetryAfter > 0:
		msg = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
	case status >= 500:
		msg = "Server Error"
	}
	writeJSON(w, status, map[string]any{"message": msg, "documentation_url": docsURL, "status": strconv.Itoa(status)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func notFound(w http.ResponseWriter) {
	writeJSON(w, 404, map[string]any{"message": "Not Found", "documentation_url": docsURL, "status": "404"})
}

// repository returns the repository of a request's {owner}/{repo}, or
// answers 404; s.mu is held.
func (s *Server) repository(w http.ResponseWriter, r *http.Request) *repository {
	repo := s.repos[strings.ToLower(r.PathValue("owner")+"/"+r.PathValue("repo"))]
	if repo == nil {
		notFound(w)
	}
	return repo
}

func (s *Server) getRepository(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if repo := s.repository(w, r); repo != nil {
		writeRaw(w, 200, repo.obj.raw)
	}
}

func (s *Server) listOrgRepositories(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var objs []*object
	for _, name := range s.order {
		if strings.EqualFold(owner(name), r.PathValue("org")) {
			objs = append(objs, s.repos[strings.ToLower(name)].obj)
		}
	}
	if len(objs) == 0 {
		notFound(w)
		return
	}
	s.page(w, r, objs, "")
}

func owner(fullName string) string {
	o, _, _ := strings.Cut(fullName, "/")
	return o
}

func (s *Server) listWorkflows(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if repo := s.repository(w, r); repo != nil {
		s.page(w, r, repo.workflows, "workflows")
	}
}

func (s *Server) getWorkflow(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if wf := s.workflow(r.PathValue("owner")+"/"+r.PathValue("repo"), r.PathValue("wf")); wf != nil {
		writeRaw(w, 200, wf.raw)
		return
	}
	notFound(w)
}

// listRuns serves GET …/actions/runs with the created (>=, <=, a..b, a
// date) and status filters.
func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	repo := s.repository(w, r)
	if repo == nil {
		return
	}
	from, to, err := createdRange(r.URL.Query().Get("created"))
	if err != nil {
		writeJSON(w, 422, map[string]any{"message": "Validation Failed", "errors": []string{err.Error()}, "documentation_url": docsURL, "status": "422"})
		return
	}
	status := r.URL.Query().Get("status")
	var runs []*object
	for _, o := range repo.runs {
		created := fmt.Sprint(o.m["created_at"])
		if (from != "" && created < from) || (to != "" && created > to) {
			continue
		}
		if status != "" && o.m["status"] != status && o.m["conclusion"] != status {
			continue
		}
		runs = append(runs, o)
	}
	s.page(w, r, runs, "workflow_runs")
}

// createdRange turns a created filter into inclusive RFC 3339 bounds
// compared as strings (the stand-in's timestamps are all UTC "Z").
func createdRange(q string) (from, to string, err error) {
	bound := func(s string, end bool) (string, error) {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t.UTC().Format(time.RFC3339), nil
		}
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			return "", fmt.Errorf("created: %q is not a date", s)
		}
		if end {
			t = t.Add(24*time.Hour - time.Second)
		}
		return t.Format(time.RFC3339), nil
	}
	switch {
	case q == "":
		return "", "", nil
	case strings.HasPrefix(q, ">="):
		from, err = bound(q[2:], false)
	case strings.HasPrefix(q, "<="):
		to, err = bound(q[2:], true)
	case strings.Contains(q, ".."):
		a, b, _ := strings.Cut(q, "..")
		if from, err = bound(a, false); err == nil {
			to, err = bound(b, true)
		}
	default:
		if from, err = bound(q, false); err == nil {
			to, err = bound(q, true)
		}
	}
	return from, to, err
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.run(r.PathValue("owner")+"/"+r.PathValue("repo"), r.PathValue("id")); o != nil {
		writeRaw(w, 200, o.raw)
		return
	}
	notFound(w)
}

// cancelRun completes a queued or running run as cancelled (GitHub does it
// asynchronously; the stand-in at once) and answers 202.
func (s *Server) cancelRun(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.run(r.PathValue("owner")+"/"+r.PathValue("repo"), r.PathValue("id"))
	if o == nil {
		notFound(w)
		return
	}
	if o.m["status"] == "completed" {
		writeJSON(w, 409, map[string]any{"message": "Cannot cancel a workflow run that is completed.", "documentation_url": docsURL, "status": "409"})
		return
	}
	o.m["status"], o.m["conclusion"] = "completed", "cancelled"
	o.m["updated_at"] = time.Now().UTC().Format(time.RFC3339)
	o.encode()
	writeJSON(w, 202, map[string]any{})
}

// rerunRun queues a completed run again (a new attempt) and answers 201.
func (s *Server) rerunRun(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.run(r.PathValue("owner")+"/"+r.PathValue("repo"), r.PathValue("id"))
	if o == nil {
		notFound(w)
		return
	}
	if o.m["status"] != "completed" {
		writeJSON(w, 403, map[string]any{"message": "This workflow is already running", "documentation_url": docsURL, "status": "403"})
		return
	}
	attempt, _ := strconv.Atoi(fmt.Sprint(o.m["run_attempt"]))
	now := time.Now().UTC().Format(time.RFC3339)
	o.m["status"], o.m["conclusion"], o.m["run_attempt"] = "queued", nil, max(attempt, 1)+1
	o.m["run_started_at"], o.m["updated_at"] = now, now
	o.encode()
	writeJSON(w, 201, map[string]any{})
}

// dispatch answers 204 and queues a new workflow_dispatch run of the workflow.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	full := r.PathValue("owner") + "/" + r.PathValue("repo")
	wf := s.workflow(full, r.PathValue("wf"))
	if wf == nil {
		notFound(w)
		return
	}
	var in struct {
		Ref    string         `json:"ref"`
		Inputs map[string]any `json:"inputs"`
	}
	body, _ := readBody(r)
	if err := json.Unmarshal(body, &in); err != nil || in.Ref == "" {
		writeJSON(w, 422, map[string]any{"message": "Invalid request.\n\n\"ref\" wasn't supplied.", "documentation_url": docsURL, "status": "422"})
		return
	}
	repo := s.repos[strings.ToLower(full)]
	if len(repo.runs) == 0 {
		w.WriteHeader(204)
		return
	}
	m := clone(repo.runs[0].m)
	id := s.newID()
	now := time.Now().UTC().Format(time.RFC3339)
	number, _ := strconv.Atoi(fmt.Sprint(repo.runs[0].m["run_number"]))
	m["id"], m["workflow_id"], m["name"], m["path"] = id, wf.m["id"], wf.m["name"], wf.m["path"]
	m["event"], m["head_branch"], m["status"], m["conclusion"] = "workflow_dispatch", in.Ref, "queued", nil
	m["run_number"], m["run_attempt"], m["created_at"], m["updated_at"], m["run_started_at"] = number+1, 1, now, now, now
	repo.runs = append([]*object{newObject(m)}, repo.runs...)
	w.WriteHeader(204)
}

func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	repo := s.repository(w, r)
	if repo == nil {
		return
	}
	objs := make([]*object, len(repo.deployments))
	for i, d := range repo.deployments {
		objs[i] = d.obj
	}
	s.page(w, r, objs, "")
}

func (s *Server) listStatuses(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	repo := s.repository(w, r)
	if repo == nil {
		return
	}
	for _, d := range repo.deployments {
		if d.obj.id() == r.PathValue("id") {
			s.page(w, r, d.statuses, "")
			return
		}
	}
	notFound(w)
}

// page answers one page of objs (per_page default 30, at most 100; page
// from 1) as an array, or wrapped as {"total_count", key: [...]}, with
// GitHub's Link header.
func (s *Server) page(w http.ResponseWriter, r *http.Request, objs []*object, key string) {
	q := r.URL.Query()
	perPage, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || perPage <= 0 {
		perPage = 30
	}
	perPage = min(perPage, 100)
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page <= 0 {
		page = 1
	}
	last := max((len(objs)+perPage-1)/perPage, 1)
	link := func(p int, rel string) string {
		q.Set("page", strconv.Itoa(p))
		u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
		return fmt.Sprintf("<%s%s>; rel=%q", s.URL, u.String(), rel)
	}
	var links []string
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"), link(min(page-1, last), "prev"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	start := min((page-1)*perPage, len(objs))
	end := min(start+perPage, len(objs))
	var b bytes.Buffer
	if key != "" {
		fmt.Fprintf(&b, `{"total_count":%d,%q:`, len(objs), key)
	}
	b.WriteByte('[')
	for i, o := range objs[start:end] {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(o.raw)
	}
	b.WriteByte(']')
	if key != "" {
		b.WriteByte('}')
	}
	writeRaw(w, 200, b.Bytes())
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
