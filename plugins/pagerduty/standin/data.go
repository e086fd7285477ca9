package standin

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"time"
)

//go:embed testdata/*.json
var fixtures embed.FS

type service struct {
	id, name string
	teamIDs  []string
	doc      map[string]any
	raw      json.RawMessage
}

type incident struct {
	id, status, serviceID        string
	teamIDs                      []string
	createdAt, ackAt, resolvedAt time.Time
	doc                          map[string]any
	raw                          json.RawMessage // assignees expanded (include[]=assignees)
	ref                          json.RawMessage // assignees as references (the default)
}

type oncall struct {
	epID string
	raw  json.RawMessage // user expanded (include[]=users)
	ref  json.RawMessage // user as a reference (the default)
}

type schedule struct {
	raw json.RawMessage
}

// load reads the fixtures. Incidents and webhooks name services the
// service fixtures lack; those are made up from the references (id, name,
// URLs, the incident's escalation policy) so the account is consistent.
func (s *Server) load() error {
	var svcDocs []map[string]any
	if err := readFixture("services.pypd-sample.json", &svcDocs); err != nil {
		return err
	}
	for _, name := range []string{"service.port-ocean-c.json", "service.port-ocean-e.json"} {
		var d map[string]any
		if err := readFixture(name, &d); err != nil {
			return err
		}
		delete(d, "__analytics") // added by Port's integration, not PagerDuty's API
		delete(d, "__oncall_user")
		svcDocs = append(svcDocs, d)
	}
	for _, d := range svcDocs {
		if err := s.addService(d); err != nil {
			return err
		}
	}
	var incDocs []map[string]any
	if err := readFixture("incidents.pypd-sample.json", &incDocs); err != nil {
		return err
	}
	for _, name := range []string{"incident.port-ocean-a.json", "incident.port-ocean-c.json"} {
		var d map[string]any
		if err := readFixture(name, &d); err != nil {
			return err
		}
		incDocs = append(incDocs, d)
	}
	for _, d := range incDocs {
		inc, err := incidentFrom(d)
		if err != nil {
			return err
		}
		if err := s.ensureService(d["service"], d["escalation_policy"], d["created_at"]); err != nil {
			return err
		}
		s.incidents = append(s.incidents, inc)
	}
	for _, name := range []string{"incident.triggered.json", "incident.acknowledged.json", "incident.resolved.json"} {
		var ev struct {
			Event struct {
				OccurredAt string         `json:"occurred_at"`
				Data       map[string]any `json:"data"`
			} `json:"event"`
		}
		if err := readFixture(name, &ev); err != nil {
			return err
		}
		if err := s.ensureService(ev.Event.Data["service"], ev.Event.Data["escalation_policy"], ev.Event.OccurredAt); err != nil {
			return err
		}
	}
	s.sortIncidents()
	return s.loadOncalls()
}

func (s *Server) loadOncalls() error {
	scheds := map[string]map[string]any{}
	var order []string
	for _, name := range []string{"oncall.port-ocean-a.json", "oncall.port-ocean-b.json"} {
		var d map[string]any
		if err := readFixture(name, &d); err != nil {
			return err
		}
		raw, err := json.Marshal(d)
		if err != nil {
			return err
		}
		user, _ := d["user"].(map[string]any)
		collapsed := maps.Clone(d)
		collapsed["user"] = reference(user, "user_reference")
		ref, err := json.Marshal(collapsed)
		if err != nil {
			return err
		}
		ep, _ := d["escalation_policy"].(map[string]any)
		epID, _ := ep["id"].(string)
		s.oncalls = append(s.oncalls, &oncall{epID: epID, raw: raw, ref: ref})
		sched, _ := d["schedule"].(map[string]any)
		id, _ := sched["id"].(string)
		if id == "" {
			continue
		}
		sc := scheds[id]
		if sc == nil {
			sc = map[string]any{"id": id, "type": "schedule", "summary": sched["summary"], "name": sched["summary"],
				"self": sched["self"], "html_url": sched["html_url"], "time_zone": user["time_zone"], "description": nil,
				"users": []any{}, "escalation_policies": []any{ep}, "teams": []any{}}
			scheds[id] = sc
			order = append(order, id)
		}
		sc["users"] = append(sc["users"].([]any), reference(user, "user_reference"))
	}
	for _, id := range order {
		raw, err := json.Marshal(scheds[id])
		if err != nil {
			return err
		}
		s.schedules = append(s.schedules, &schedule{raw: raw})
	}
	return nil
}

func readFixture(name string, v any) error {
	b, err := fixtures.ReadFile("testdata/" + name)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// reference returns the PagerDuty reference form of an object.
func reference(obj map[string]any, typ string) map[string]any {
	return map[string]any{"id": obj["id"], "type": typ, "summary": obj["summary"], "self": obj["self"], "html_url": obj["html_url"]}
}

func (s *Server) addService(d map[string]any) error {
	raw, err := json.Marshal(d)
	if err != nil {
		return err
	}
	id, _ := d["id"].(string)
	name, _ := d["name"].(string)
	s.services = append(s.services, &service{id: id, name: name, teamIDs: refIDs(d["teams"]), doc: d, raw: raw})
	return nil
}

// ensureService adds a service made up from a reference unless it exists.
func (s *Server) ensureService(ref, ep, createdAt any) error {
	r, _ := ref.(map[string]any)
	id, _ := r["id"].(string)
	if id == "" || s.findService(id) != nil {
		return nil
	}
	return s.addService(map[string]any{
		"id": id, "type": "service", "summary": r["summary"], "name": r["summary"], "description": nil,
		"self": r["self"], "html_url": r["html_url"], "status": "active", "created_at": createdAt,
		"escalation_policy": ep, "teams": []any{}, "integrations": []any{}, "addons": []any{},
		"acknowledgement_timeout": nil, "auto_resolve_timeout": nil, "last_incident_timestamp": createdAt,
		"incident_urgency_rule": map[string]any{"type": "constant", "urgency": "high"}, "support_hours": nil,
		"scheduled_actions": []any{}, "alert_creation": "create_alerts_and_incidents",
	})
}

func refIDs(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		if m, ok := x.(map[string]any); ok {
			if id, ok := m["id"].(string); ok {
				out = append(out, id)
			}
		}
	}
	return out
}

func parseTime(v any) time.Time {
	s, _ := v.(string)
	t, _ := time.Parse(time.RFC3339, s)
	return t
}

// incidentFrom indexes an incident document.
func incidentFrom(d map[string]any) (*incident, error) {
	inc := &incident{doc: d}
	inc.id, _ = d["id"].(string)
	if inc.id == "" {
		return nil, errors.New("incident without id")
	}
	return inc, inc.reindex()
}

// reindex refreshes the indexed fields and the raw JSON from doc.
func (inc *incident) reindex() error {
	d := inc.doc
	inc.status, _ = d["status"].(string)
	svc, _ := d["service"].(map[string]any)
	inc.serviceID, _ = svc["id"].(string)
	inc.teamIDs = refIDs(d["teams"])
	inc.createdAt = parseTime(d["created_at"])
	inc.ackAt, inc.resolvedAt = time.Time{}, time.Time{}
	if acks, _ := d["acknowledgements"].([]any); len(acks) > 0 {
		if a, ok := acks[0].(map[string]any); ok {
			inc.ackAt = parseTime(a["at"])
		}
	}
	if inc.status == "resolved" {
		if inc.resolvedAt = parseTime(d["resolved_at"]); inc.resolvedAt.IsZero() {
			inc.resolvedAt = parseTime(d["last_status_change_at"])
		}
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode incident %s: %w", inc.id, err)
	}
	inc.raw, inc.ref = raw, raw
	list, _ := d["assignments"].([]any)
	expanded := false
	refs := make([]any, len(list))
	for i, a := range list {
		m, _ := a.(map[string]any)
		u, _ := m["assignee"].(map[string]any)
		if u == nil || u["type"] != "user" {
			refs[i] = a
			continue
		}
		expanded = true
		r := maps.Clone(m)
		r["assignee"] = reference(u, "user_reference")
		refs[i] = r
	}
	if expanded {
		c := maps.Clone(d)
		c["assignments"] = refs
		if inc.ref, err = json.Marshal(c); err != nil {
			return fmt.Errorf("encode incident %s: %w", inc.id, err)
		}
	}
	return nil
}

// setStatus applies a status change made by the user whose email is from.
func (inc *incident) setStatus(status string, now time.Time, from string) error {
	switch {
	case status != "acknowledged" && status != "resolved":
		return fmt.Errorf("status %q: want acknowledged or resolved", status)
	case inc.status == "resolved":
		return errors.New("Incident Already Resolved")
	}
	d := maps.Clone(inc.doc)
	at := now.Format(time.RFC3339)
	d["status"], d["last_status_change_at"], d["updated_at"] = status, at, at
	d["last_status_change_by"] = userRef(from)
	if status == "acknowledged" {
		acks, _ := d["acknowledgements"].([]any)
		d["acknowledgements"] = append(append([]any(nil), acks...), map[string]any{"at": at, "acknowledger": userRef(from)})
	} else {
		d["resolved_at"] = at
	}
	inc.doc = d
	return inc.reindex()
}

func userRef(email string) map[string]any {
	return map[string]any{"id": "PUSER01", "type": "user_reference", "summary": email,
		"self": "https://api.pagerduty.com/users/PUSER01", "html_url": "https://standin.pagerduty.com/users/PUSER01"}
}

func (s *Server) sortIncidents() {
	sort.SliceStable(s.incidents, func(i, j int) bool {
		a, b := s.incidents[i], s.incidents[j]
		if !a.createdAt.Equal(b.createdAt) {
			return a.createdAt.Before(b.createdAt)
		}
		return a.id < b.id
	})
}

// newIncident returns a triggered incident of svc created at now.
func newIncident(id string, number int, title, details, urgency string, svc *service, now time.Time) (*incident, error) {
	at := now.Format(time.RFC3339)
	d := map[string]any{
		"id": id, "type": "incident", "incident_number": number, "title": title, "description": title,
		"summary": fmt.Sprintf("[#%d] %s", number, title), "status": "triggered", "urgency": urgency,
		"created_at": at, "updated_at": at, "last_status_change_at": at, "resolved_at": nil,
		"service": reference(svc.doc, "service_reference"), "escalation_policy": svc.doc["escalation_policy"],
		"teams": svc.doc["teams"], "assignments": []any{}, "acknowledgements": []any{}, "priority": nil,
		"incident_key": id, "pending_actions": []any{}, "alert_counts": map[string]any{"all": 0, "triggered": 0, "resolved": 0},
		"self": "https://api.pagerduty.com/incidents/" + id, "html_url": "https://standin.pagerduty.com/incidents/" + id,
		"body": map[string]any{"type": "incident_body", "details": details},
	}
	return incidentFrom(d)
}

// SetIncidentStatus changes an incident upstream as a responder would in
// PagerDuty's UI (status acknowledged or resolved).
func (s *Server) SetIncidentStatus(id, status, by string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	inc := s.findIncident(id)
	if inc == nil {
		return fmt.Errorf("incident %s: not found", id)
	}
	return inc.setStatus(status, s.now().UTC(), by)
}

// AddServices adds n services cloned from the fixture services (ids
// PSYN00001…), for benchmarks.
func (s *Server) AddServices(n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	templates := len(s.services)
	start := len(s.services)
	for k := range n {
		t := s.services[k%templates].doc
		d := maps.Clone(t)
		id := fmt.Sprintf("PSYN%05d", start+k)
		name := fmt.Sprintf("%v %d", t["name"], start+k)
		d["id"], d["name"], d["summary"] = id, name, name
		d["self"] = "https://api.pagerduty.com/services/" + id
		d["html_url"] = "https://standin.pagerduty.com/service-directory/" + id
		if err := s.addService(d); err != nil {
			return err
		}
	}
	return nil
}

// AddIncidents adds n incidents cloned from the fixture incidents (ids
// QSYN000001…), spread over the services and the last days before now.
// As in a real account most are resolved: of every 50, one is triggered
// and one acknowledged (the 1st and 2nd), the rest acknowledged then
// resolved.
func (s *Server) AddIncidents(n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var templates []map[string]any
	for _, inc := range s.incidents {
		if inc.serviceID != "" {
			templates = append(templates, inc.doc)
		}
	}
	now := s.now().UTC().Add(-time.Hour)
	start := len(s.incidents)
	for k := range n {
		t := templates[k%len(templates)]
		svc := s.services[k%len(s.services)]
		d := maps.Clone(t)
		id := fmt.Sprintf("QSYN%06d", start+k)
		num := 100000 + start + k
		created := now.Add(-time.Duration(n-k) * 37 * time.Second)
		title := fmt.Sprintf("%v #%d", t["title"], start+k)
		d["id"], d["incident_number"], d["title"] = id, num, title
		d["summary"] = fmt.Sprintf("[#%d] %s", num, title)
		d["self"] = "https://api.pagerduty.com/incidents/" + id
		d["html_url"] = "https://standin.pagerduty.com/incidents/" + id
		d["service"] = reference(svc.doc, "service_reference")
		d["escalation_policy"] = svc.doc["escalation_policy"]
		d["teams"] = svc.doc["teams"]
		d["created_at"] = created.Format(time.RFC3339)
		d["acknowledgements"], d["resolved_at"] = []any{}, nil
		d["status"], d["last_status_change_at"] = "triggered", d["created_at"]
		if k%50 > 0 {
			ack := created.Add(time.Duration(60+k%300) * time.Second).Format(time.RFC3339)
			d["status"], d["last_status_change_at"] = "acknowledged", ack
			d["acknowledgements"] = []any{map[string]any{"at": ack, "acknowledger": userRef("oncall@example.com")}}
		}
		if k%50 >= 2 {
			res := created.Add(time.Duration(1800+k%3600) * time.Second).Format(time.RFC3339)
			d["status"], d["last_status_change_at"], d["resolved_at"] = "resolved", res, res
		}
		inc, err := incidentFrom(d)
		if err != nil {
			return err
		}
		s.incidents = append(s.incidents, inc)
	}
	s.sortIncidents()
	return nil
}

// WebhookEvent returns the body of a PagerDuty V3 webhook delivery of
// eventType ("incident.acknowledged", …) about incident id in its current
// state, shaped as the fixtures in testdata/ (the V3 incident object:
// number, assignees, no acknowledgements).
func (s *Server) WebhookEvent(eventType, id string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inc := s.findIncident(id)
	if inc == nil {
		return nil, fmt.Errorf("incident %s: not found", id)
	}
	var env map[string]any
	if err := readFixture("incident.triggered.json", &env); err != nil {
		return nil, err
	}
	ev := env["event"].(map[string]any)
	d := inc.doc
	var assignees []any
	list, _ := d["assignments"].([]any)
	for _, a := range list {
		if m, ok := a.(map[string]any); ok {
			if u, ok := m["assignee"].(map[string]any); ok {
				assignees = append(assignees, reference(u, "user_reference"))
			}
		}
	}
	s.nextID++
	ev["id"] = fmt.Sprintf("01STANDIN%017d", s.nextID)
	ev["event_type"] = eventType
	ev["occurred_at"] = s.now().UTC().Format(time.RFC3339Nano)
	ev["data"] = map[string]any{
		"id": inc.id, "type": "incident", "self": d["self"], "html_url": d["html_url"], "number": d["incident_number"],
		"status": d["status"], "title": d["title"], "service": d["service"], "assignees": assignees,
		"escalation_policy": d["escalation_policy"], "teams": d["teams"], "priority": d["priority"],
		"urgency": d["urgency"], "conference_bridge": nil, "resolve_reason": nil, "created_at": d["created_at"],
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(env); err != nil {
		return nil, err
	}
	return bytes.TrimSpace(b.Bytes()), nil
}

// Fixture returns one of the embedded fixture files as published (e.g.
// "incident.triggered.json", a real V3 delivery).
func Fixture(name string) ([]byte, error) { return fixtures.ReadFile("testdata/" + name) }
