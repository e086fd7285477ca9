// Package standin is a local stand-in for PagerDuty's REST API v2, for tests
// and benchmarks: it speaks the real wire format (paths, classic
// pagination with limit/offset/more/total and its 10,000-record cap,
// `Authorization: Token token=…`, `{"error": {"message", "code"}}` bodies)
// over httptest, serves data built from real payloads (testdata/, see
// SOURCES.md there), and has knobs to make it fail the way PagerDuty does.
//
// Served: GET /services, /incidents, /incidents/{id}, /oncalls, /schedules
// (users and assignees as references unless include[]=users or
// include[]=assignees asks for them expanded);
// PUT /incidents/{id} (status changes, `From` required); POST /incidents;
// POST /analytics/metrics/incidents/services (computed from its incidents).
package standin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultToken is the API token a new Server accepts.
const DefaultToken = "pd-standin-token"

// MaxOffset is PagerDuty's classic pagination cap: offset+limit may not
// exceed it.
const MaxOffset = 10000

// Server is a running stand-in. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL to configure as the plugin's baseUrl.
	URL string

	srv *httptest.Server

	mu        sync.Mutex
	token     string
	services  []*service
	incidents []*incident // ordered by createdAt, then id
	oncalls   []*oncall
	schedules []*schedule
	faults    map[string][]fault // by path ("/incidents"); consumed in order
	requests  []Request
	nextID    int
	now       func() time.Time
}

// Request is one request the stand-in received (bodies of writes only).
type Request struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
}

// maxRequests bounds the request log (benchmarks send many).
const maxRequests = 2000

// New starts a stand-in loaded with the fixture data. Close it when done.
func New() *Server {
	s := &Server{token: DefaultToken, faults: map[string][]fault{}, now: time.Now}
	if err := s.load(); err != nil {
		panic(fmt.Sprintf("standin: load fixtures: %v", err)) // embedded data: a bug, not an input
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// Host returns the server's host:port (for an installation's allowedHosts).
func (s *Server) Host() string { return strings.TrimPrefix(s.URL, "http://") }

// SetToken changes the token the server accepts (e.g. to revoke the one an
// installation holds).
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// Requests returns the requests received so far (the newest 2,000).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// fault is a canned failure for a coming request to a path.
type fault struct {
	skip       int // requests served normally first
	status     int
	retryAfter int // seconds; 429 only
	malformed  bool
}

// FailNext makes the next request to path (e.g. "/incidents") fail with
// status and PagerDuty's error body.
func (s *Server) FailNext(path string, status int) { s.addFault(path, fault{status: status}) }

// FailAfter lets skip requests to path through, then fails the next one
// with status (e.g. the last page of a resync).
func (s *Server) FailAfter(path string, skip, status int) {
	s.addFault(path, fault{skip: skip, status: status})
}

// RateLimitNext makes the next request to path answer 429 with a
// Retry-After of retryAfterSeconds.
func (s *Server) RateLimitNext(path string, retryAfterSeconds int) {
	s.addFault(path, fault{status: http.StatusTooManyRequests, retryAfter: retryAfterSeconds})
}

// MalformNext makes the next request to path answer 200 with a truncated
// JSON body.
func (s *Server) MalformNext(path string) {
	s.addFault(path, fault{status: http.StatusOK, malformed: true})
}

func (s *Server) addFault(path string, f fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[path] = append(s.faults[path], f)
}

// RemoveIncident deletes an incident upstream; it reports whether it existed.
func (s *Server) RemoveIncident(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.incidents)
	s.incidents = slices.DeleteFunc(s.incidents, func(i *incident) bool { return i.id == id })
	return len(s.incidents) < n
}

// RemoveService deletes a service upstream; it reports whether it existed.
func (s *Server) RemoveService(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.services)
	s.services = slices.DeleteFunc(s.services, func(v *service) bool { return v.id == id })
	return len(s.services) < n
}

// Services returns the ids of the services, in listing order.
func (s *Server) Services() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.services))
	for i, v := range s.services {
		out[i] = v.id
	}
	return out
}

// Incidents returns the ids of the incidents, in listing order.
func (s *Server) Incidents() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.incidents))
	for i, v := range s.incidents {
		out[i] = v.id
	}
	return out
}

// Incident returns the REST JSON of one incident (as GET /incidents/{id}).
func (s *Server) Incident(id string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if inc := s.findIncident(id); inc != nil {
		return inc.ref, true
	}
	return nil, false
}

func (s *Server) findIncident(id string) *incident {
	for _, inc := range s.incidents {
		if inc.id == id {
			return inc
		}
	}
	return nil
}

func (s *Server) findService(id string) *service {
	for _, v := range s.services {
		if v.id == id {
			return v
		}
	}
	return nil
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record(r)
	if r.Header.Get("Authorization") != "Token token="+s.token {
		writeError(w, http.StatusUnauthorized, 2006, "Authentication failed")
		return
	}
	path := r.URL.Path
	key := path
	if strings.HasPrefix(path, "/incidents/") {
		key = "/incidents/{id}"
	}
	if fs := s.faults[key]; len(fs) > 0 && fs[0].skip > 0 {
		fs[0].skip--
	} else if len(fs) > 0 {
		f := fs[0]
		s.faults[key] = fs[1:]
		switch {
		case f.malformed:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"` + strings.Trim(key, "/") + `": [{"id": "PTRUNC", "type": `))
		case f.status == http.StatusTooManyRequests:
			w.Header().Set("Retry-After", strconv.Itoa(f.retryAfter))
			writeError(w, f.status, 2020, "Rate Limit Exceeded")
		default:
			writeError(w, f.status, 2001, http.StatusText(f.status))
		}
		return
	}
	switch {
	case r.Method == http.MethodGet && path == "/services":
		s.listServices(w, r)
	case r.Method == http.MethodGet && path == "/incidents":
		s.listIncidents(w, r)
	case r.Method == http.MethodPost && path == "/incidents":
		s.createIncident(w, r)
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/incidents/"):
		s.getIncident(w, r, strings.TrimPrefix(path, "/incidents/"))
	case r.Method == http.MethodPut && strings.HasPrefix(path, "/incidents/"):
		s.updateIncident(w, r, strings.TrimPrefix(path, "/incidents/"))
	case r.Method == http.MethodGet && path == "/oncalls":
		s.listOncalls(w, r)
	case r.Method == http.MethodGet && path == "/schedules":
		s.listSchedules(w, r)
	case r.Method == http.MethodPost && path == "/analytics/metrics/incidents/services":
		s.serviceMetrics(w, r)
	default:
		writeError(w, http.StatusNotFound, 2100, "Not Found")
	}
}

func (s *Server) record(r *http.Request) {
	req := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone()}
	if r.Method != http.MethodGet && r.Body != nil {
		body, _ := io.ReadAll(r.Body)
		req.Body = body
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	if len(s.requests) >= maxRequests {
		s.requests = slices.Delete(s.requests, 0, len(s.requests)-maxRequests+1)
	}
	s.requests = append(s.requests, req)
}

// writeError writes PagerDuty's error body.
func writeError(w http.ResponseWriter, status, code int, message string, details ...string) {
	body := map[string]any{"message": message, "code": code}
	if len(details) > 0 {
		body["errors"] = details
	}
	writeJSON(w, status, map[string]any{"error": body})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// page writes one page of classic pagination: {"<key>": [...], "limit",
// "offset", "total", "more"}. It refuses offset+limit above MaxOffset as
// PagerDuty does.
func page(w http.ResponseWriter, r *http.Request, key string, items []json.RawMessage) {
	q := r.URL.Query()
	limit, offset := 25, 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", "limit must be a positive integer")
			return
		}
		limit = min(n, 100)
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", "offset must be a non-negative integer")
			return
		}
		offset = n
	}
	if offset+limit > MaxOffset {
		writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided",
			fmt.Sprintf("offset+limit must be at most %d", MaxOffset))
		return
	}
	start, end := min(offset, len(items)), min(offset+limit, len(items))
	var b strings.Builder
	b.WriteString(`{"` + key + `":[`)
	for i, it := range items[start:end] {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(it)
	}
	total := "null"
	if q.Get("total") == "true" {
		total = strconv.Itoa(len(items))
	}
	fmt.Fprintf(&b, `],"limit":%d,"offset":%d,"total":%s,"more":%t}`, limit, offset, total, end < len(items))
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(b.String()))
}

// idSet returns the values of a repeated array parameter (name[] or name).
func idSet(q map[string][]string, name string) map[string]bool {
	vals := append(slices.Clone(q[name+"[]"]), q[name]...)
	if len(vals) == 0 {
		return nil
	}
	out := make(map[string]bool, len(vals))
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			out[p] = true
		}
	}
	return out
}

func anyIn(ids []string, set map[string]bool) bool {
	for _, id := range ids {
		if set[id] {
			return true
		}
	}
	return false
}

func (s *Server) listServices(w http.ResponseWriter, r *http.Request) {
	teams := idSet(r.URL.Query(), "team_ids")
	var items []json.RawMessage
	for _, v := range s.services {
		if teams == nil || anyIn(v.teamIDs, teams) {
			items = append(items, v.raw)
		}
	}
	page(w, r, "services", items)
}

func (s *Server) listOncalls(w http.ResponseWriter, r *http.Request) {
	eps := idSet(r.URL.Query(), "escalation_policy_ids")
	expand := idSet(r.URL.Query(), "include")["users"]
	var items []json.RawMessage
	for _, o := range s.oncalls {
		switch {
		case eps != nil && !eps[o.epID]:
		case expand:
			items = append(items, o.raw)
		default:
			items = append(items, o.ref)
		}
	}
	page(w, r, "oncalls", items)
}

func (s *Server) listSchedules(w http.ResponseWriter, r *http.Request) {
	items := make([]json.RawMessage, len(s.schedules))
	for i, sc := range s.schedules {
		items[i] = sc.raw
	}
	page(w, r, "schedules", items)
}

// listIncidents filters by since/until (created_at; default the last 30
// days) unless date_range=all, and by statuses[], service_ids[] and
// team_ids[]; items are ordered by created_at (sort_by created_at:asc,
// PagerDuty's default order).
func (s *Server) listIncidents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if sb := q.Get("sort_by"); sb != "" && sb != "created_at" && sb != "created_at:asc" {
		writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", "the stand-in sorts by created_at:asc only")
		return
	}
	now := s.now().UTC()
	since, until := now.AddDate(0, 0, -30), now
	all := q.Get("date_range") == "all"
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &since}, {"until", &until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", p.name+" is not a date-time")
				return
			}
			*p.dst = t
		}
	}
	if !all && since.AddDate(0, 6, 0).Before(until) {
		writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", "the date range is over 6 months")
		return
	}
	statuses := idSet(q, "statuses")
	services := idSet(q, "service_ids")
	teams := idSet(q, "team_ids")
	expand := idSet(q, "include")["assignees"]
	var items []json.RawMessage
	for _, inc := range s.incidents {
		switch {
		case !all && (inc.createdAt.Before(since) || !inc.createdAt.Before(until)):
		case statuses != nil && !statuses[inc.status]:
		case services != nil && !services[inc.serviceID]:
		case teams != nil && !anyIn(inc.teamIDs, teams):
		case expand:
			items = append(items, inc.raw)
		default:
			items = append(items, inc.ref)
		}
	}
	page(w, r, "incidents", items)
}

func (s *Server) getIncident(w http.ResponseWriter, r *http.Request, id string) {
	inc := s.findIncident(id)
	if inc == nil {
		writeError(w, http.StatusNotFound, 2100, "Not Found")
		return
	}
	body := inc.ref
	if idSet(r.URL.Query(), "include")["assignees"] {
		body = inc.raw
	}
	writeRaw(w, http.StatusOK, `{"incident":`+string(body)+`}`)
}

func writeRaw(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// updateIncident applies PUT /incidents/{id} {"incident": {"type":
// "incident_reference", "status": "acknowledged"|"resolved"}}.
func (s *Server) updateIncident(w http.ResponseWriter, r *http.Request, id string) {
	from := r.Header.Get("From")
	if from == "" {
		writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", `A "From" header with a valid user email is required`)
		return
	}
	var body struct {
		Incident struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"incident"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Incident.Type != "incident_reference" {
		writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", "incident.type must be incident_reference")
		return
	}
	inc := s.findIncident(id)
	if inc == nil {
		writeError(w, http.StatusNotFound, 2100, "Not Found")
		return
	}
	if err := inc.setStatus(body.Incident.Status, s.now().UTC(), from); err != nil {
		writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", err.Error())
		return
	}
	writeRaw(w, http.StatusOK, `{"incident":`+string(inc.ref)+`}`)
}

// createIncident applies POST /incidents {"incident": {"type": "incident",
// "title", "service": {"id", "type": "service_reference"}, "urgency"?,
// "body"?: {"details"}}}.
func (s *Server) createIncident(w http.ResponseWriter, r *http.Request) {
	from := r.Header.Get("From")
	if from == "" {
		writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", `A "From" header with a valid user email is required`)
		return
	}
	var body struct {
		Incident struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Urgency string `json:"urgency"`
			Service struct {
				ID   string `json:"id"`
				Type string `json:"type"`
			} `json:"service"`
			Body *struct {
				Details string `json:"details"`
			} `json:"body"`
		} `json:"incident"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", "body is not JSON")
		return
	}
	in := body.Incident
	switch {
	case in.Type != "incident":
		writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", "incident.type must be incident")
		return
	case in.Title == "":
		writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", "incident.title is required")
		return
	case in.Urgency != "" && in.Urgency != "high" && in.Urgency != "low":
		writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", "incident.urgency must be high or low")
		return
	}
	svc := s.findService(in.Service.ID)
	if svc == nil || in.Service.Type != "service_reference" {
		writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", "incident.service must reference an existing service")
		return
	}
	if in.Urgency == "" {
		in.Urgency = "high"
	}
	details := ""
	if in.Body != nil {
		details = in.Body.Details
	}
	s.nextID++
	inc, err := newIncident(fmt.Sprintf("PNEW%04d", s.nextID), len(s.incidents)+1000, in.Title, details, in.Urgency, svc, s.now().UTC())
	if err != nil {
		writeError(w, http.StatusInternalServerError, 2000, err.Error())
		return
	}
	s.incidents = append(s.incidents, inc)
	writeRaw(w, http.StatusCreated, `{"incident":`+string(inc.ref)+`}`)
}

// serviceMetrics answers POST /analytics/metrics/incidents/services with
// aggregates computed from the stand-in's incidents created in the filter's
// window.
func (s *Server) serviceMetrics(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Filters struct {
			CreatedAtStart time.Time `json:"created_at_start"`
			CreatedAtEnd   time.Time `json:"created_at_end"`
			ServiceIDs     []string  `json:"service_ids"`
		} `json:"filters"`
		TimeZone string `json:"time_zone"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", "body: "+err.Error())
		return
	}
	f := body.Filters
	if f.CreatedAtStart.IsZero() || f.CreatedAtEnd.IsZero() {
		writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", "filters.created_at_start and created_at_end are required")
		return
	}
	want := map[string]bool{}
	for _, id := range f.ServiceIDs {
		want[id] = true
	}
	type agg struct {
		count, acked, resolved int
		ackSecs, resolveSecs   float64
	}
	by := map[string]*agg{}
	for _, inc := range s.incidents {
		if inc.createdAt.Before(f.CreatedAtStart) || !inc.createdAt.Before(f.CreatedAtEnd) || (len(want) > 0 && !want[inc.serviceID]) {
			continue
		}
		a := by[inc.serviceID]
		if a == nil {
			a = &agg{}
			by[inc.serviceID] = a
		}
		a.count++
		if !inc.ackAt.IsZero() {
			a.acked++
			a.ackSecs += inc.ackAt.Sub(inc.createdAt).Seconds()
		}
		if !inc.resolvedAt.IsZero() {
			a.resolved++
			a.resolveSecs += inc.resolvedAt.Sub(inc.createdAt).Seconds()
		}
	}
	ids := make([]string, 0, len(by))
	for id := range by {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	data := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		a := by[id]
		row := map[string]any{"service_id": id, "total_incident_count": a.count,
			"total_incidents_acknowledged": a.acked, "mean_seconds_to_first_ack": nil, "mean_seconds_to_resolve": nil}
		if a.acked > 0 {
			row["mean_seconds_to_first_ack"] = int(a.ackSecs / float64(a.acked))
		}
		if a.resolved > 0 {
			row["mean_seconds_to_resolve"] = int(a.resolveSecs / float64(a.resolved))
		}
		if svc := s.findService(id); svc != nil {
			row["service_name"] = svc.name
		}
		data = append(data, row)
	}
	tz := body.TimeZone
	if tz == "" {
		tz = "Etc/UTC"
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "filters": body.Filters, "time_zone": tz})
}
