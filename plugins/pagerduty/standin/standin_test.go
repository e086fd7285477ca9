package standin

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func get(t *testing.T, s *Server, token, path string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Token token="+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]any
	_ = json.Unmarshal(b, &body)
	return resp.StatusCode, resp.Header, body
}

func TestWireFormat(t *testing.T) {
	s := New()
	defer s.Close()
	if err := s.AddServices(10); err != nil {
		t.Fatal(err)
	}
	total := len(s.Services())
	tests := []struct {
		name, token, path string
		status            int
		check             func(t *testing.T, h http.Header, body map[string]any)
	}{
		{"no token", "", "/services", 401, func(t *testing.T, _ http.Header, b map[string]any) {
			if e, _ := b["error"].(map[string]any); e["message"] != "Authentication failed" || e["code"] != 2006.0 {
				t.Errorf("error body %v", b)
			}
		}},
		{"wrong token", "rotated", "/services", 401, nil},
		{"first page", DefaultToken, "/services?limit=100&total=true", 200, func(t *testing.T, _ http.Header, b map[string]any) {
			if len(b["services"].([]any)) != 100 || b["more"] != true || b["offset"] != 0.0 || b["limit"] != 100.0 || b["total"] != float64(total) {
				t.Errorf("page %v %v %v %v", len(b["services"].([]any)), b["more"], b["offset"], b["total"])
			}
		}},
		{"last page", DefaultToken, "/services?limit=100&offset=100", 200, func(t *testing.T, _ http.Header, b map[string]any) {
			if len(b["services"].([]any)) != total-100 || b["more"] != false || b["total"] != nil {
				t.Errorf("page %d more %v total %v", len(b["services"].([]any)), b["more"], b["total"])
			}
		}},
		{"limit capped at 100", DefaultToken, "/services?limit=500", 200, func(t *testing.T, _ http.Header, b map[string]any) {
			if b["limit"] != 100.0 {
				t.Errorf("limit %v", b["limit"])
			}
		}},
		{"pagination cap", DefaultToken, "/incidents?limit=100&offset=9901", 400, func(t *testing.T, _ http.Header, b map[string]any) {
			if e, _ := b["error"].(map[string]any); e["code"] != 2001.0 || !strings.Contains(jsonOf(e["errors"]), "offset+limit") {
				t.Errorf("error body %v", b)
			}
		}},
		{"on-calls by policy", DefaultToken, "/oncalls?escalation_policy_ids%5B%5D=P7LVMYP", 200, func(t *testing.T, _ http.Header, b map[string]any) {
			if len(b["oncalls"].([]any)) != 2 {
				t.Errorf("oncalls %v", b["oncalls"])
			}
		}},
		{"unknown incident", DefaultToken, "/incidents/PNOPE", 404, nil},
		{"assignees as references", DefaultToken, "/incidents/Q1QGYB805SG874", 200, func(t *testing.T, _ http.Header, b map[string]any) {
			if got := assigneeType(b); got != "user_reference" {
				t.Errorf("assignee type %q", got)
			}
		}},
		{"assignees expanded", DefaultToken, "/incidents/Q1QGYB805SG874?include%5B%5D=assignees", 200, func(t *testing.T, _ http.Header, b map[string]any) {
			if got := assigneeType(b); got != "user" {
				t.Errorf("assignee type %q", got)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := get(t, s, tt.token, tt.path)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %v", status, tt.status, body)
			}
			if tt.check != nil {
				tt.check(t, h, body)
			}
		})
	}
}

func assigneeType(b map[string]any) any {
	inc, _ := b["incident"].(map[string]any)
	list, _ := inc["assignments"].([]any)
	if len(list) == 0 {
		return nil
	}
	return list[0].(map[string]any)["assignee"].(map[string]any)["type"]
}

func jsonOf(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestFaults(t *testing.T) {
	s := New()
	defer s.Close()
	s.FailAfter("/schedules", 1, 503)
	s.RateLimitNext("/oncalls", 7)
	if st, _, _ := get(t, s, DefaultToken, "/schedules"); st != 200 {
		t.Errorf("first /schedules: %d", st)
	}
	if st, _, _ := get(t, s, DefaultToken, "/schedules"); st != 503 {
		t.Errorf("second /schedules: %d", st)
	}
	if st, _, _ := get(t, s, DefaultToken, "/schedules"); st != 200 {
		t.Errorf("third /schedules: %d", st)
	}
	if st, h, _ := get(t, s, DefaultToken, "/oncalls"); st != 429 || h.Get("Retry-After") != "7" {
		t.Errorf("/oncalls: %d Retry-After %q", st, h.Get("Retry-After"))
	}
	s.MalformNext("/services")
	if st, _, body := get(t, s, DefaultToken, "/services"); st != 200 || body != nil {
		t.Errorf("malformed: %d %v", st, body)
	}
}

func TestSyntheticIncidentsStaySorted(t *testing.T) {
	s := New()
	defer s.Close()
	if err := s.AddIncidents(300); err != nil {
		t.Fatal(err)
	}
	var prev string
	for _, inc := range s.incidents {
		at := inc.createdAt.UTC().Format("2006-01-02T15:04:05Z")
		if at < prev {
			t.Fatalf("incident %s created %s listed after %s", inc.id, at, prev)
		}
		prev = at
		if inc.serviceID == "" || s.findService(inc.serviceID) == nil {
			t.Fatalf("incident %s of unknown service %q", inc.id, inc.serviceID)
		}
	}
}

func TestSign(t *testing.T) {
	body := []byte(`{"event": {}}`)
	m := hmac.New(sha256.New, []byte("k"))
	m.Write(body)
	if got, want := Sign("k", body), "v1="+hex.EncodeToString(m.Sum(nil)); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}
