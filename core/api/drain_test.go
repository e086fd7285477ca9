package api_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/api"
	"github.com/portico-dev/portico/core/catalog"
)

// from sends a request as a client at addr: the test server trusts the
// loopback peer as a proxy, so X-Forwarded-For names the client.
func (e *env) from(addr, method, path, auth string, body string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", addr)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return resp{Status: res.StatusCode, Header: res.Header, Raw: raw}
}

// auditCount is how many entries the audit log holds (read as the
// bootstrap admin).
func auditCount(e *accessEnv) int {
	e.t.Helper()
	var out struct {
		Entries []access.AuditEntry `json:"entries"`
	}
	r := e.must(200, "GET", "/api/v1/audit?limit=1000", nil)
	if err := json.Unmarshal(r.Raw, &out); err != nil {
		e.t.Fatal(err)
	}
	return len(out.Entries)
}

// TestAnonymousFloodIsNotAudited floods the API from one address with
// writes nobody authenticated — random paths, no token, bad tokens — and
// asserts the audit log did not grow, the address is refused with 429 and
// Retry-After once its budget is spent, the refusals are counted in the
// metrics, and everyone else is still served.
func TestAnonymousFloodIsNotAudited(t *testing.T) {
	t.Parallel()
	const burst = 30
	e := newAccessEnvWith(t, access.Options{}, api.Config{
		TrustedProxies: []string{"127.0.0.1", "::1"},
		ClientRate:     0.01, ClientBurst: burst,
	})
	e.must(201, "PUT", "/api/v1/blueprints/open", openBlueprint)
	before := auditCount(e)
	if before == 0 {
		t.Fatal("the admin's write was not audited")
	}

	const attacker = "203.0.113.7"
	long := strings.Repeat("x", 8000)
	served, limited := 0, 0
	for i := range 200 {
		var r resp
		switch i % 4 {
		case 0:
			r = e.from(attacker, "POST", fmt.Sprintf("/random/%d/%s", i, long), "", "{}")
		case 1:
			r = e.from(attacker, "PUT", "/api/v1/blueprints/open/entities/x"+long, "", `{"title": "pwned"}`)
		case 2:
			r = e.from(attacker, "DELETE", "/api/v1/blueprints/open", fmt.Sprintf("Bearer bad-%d", i), "")
		case 3:
			r = e.from(attacker, "POST", "/api/v1/no/such/route", "Bearer bad", "{}")
		}
		switch r.Status {
		case http.StatusTooManyRequests:
			limited++
			checkError(t, r, 429, "rate_limited", nil)
			if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
				t.Fatalf("429 with Retry-After %q", r.Header.Get("Retry-After"))
			}
		case http.StatusNotFound, http.StatusUnauthorized, http.StatusMethodNotAllowed:
			served++
		default:
			t.Fatalf("flood request %d: %d %.300s", i, r.Status, r.Raw)
		}
	}
	if served > burst+2 || limited == 0 {
		t.Errorf("the address was served %d requests with a budget of %d (%d refused)", served, burst, limited)
	}
	if after := auditCount(e); after != before {
		t.Errorf("audit log grew from %d to %d entries under an anonymous flood", before, after)
	}
	// A valid token from the flooded address waits its turn too (it is
	// refused before any token lookup); other addresses are served.
	if r := e.from(attacker, "GET", "/api/v1/blueprints", "Bearer "+token, ""); r.Status != http.StatusTooManyRequests {
		t.Errorf("flooded address with a valid token: %d", r.Status)
	}
	e.must(200, "GET", "/api/v1/blueprints", nil)
	for _, probe := range []string{"/healthz", "/readyz"} { // exempt
		if r := e.from(attacker, "GET", probe, "", ""); r.Status != http.StatusOK {
			t.Errorf("%s from the flooded address: %d", probe, r.Status)
		}
	}
	if r := e.from("198.51.100.1", "POST", "/random", "", "{}"); r.Status != http.StatusNotFound {
		t.Errorf("another address: %d", r.Status)
	}

	metrics := string(e.must(200, "GET", "/metrics", nil).Raw)
	for _, reason := range []string{"address_limit", "missing_token", "invalid_token", "no_route"} {
		if !strings.Contains(metrics, `portico_http_unauthenticated_total{reason="`+reason+`"}`) {
			t.Errorf("metrics do not count %s refusals", reason)
		}
	}
}

// TestForwardedForIgnoredByDefault: without trusted proxies the TCP peer
// is the client, so a made-up X-Forwarded-For does not buy a new budget.
func TestForwardedForIgnoredByDefault(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, &redis.Options{}, func(c *api.Config) { c.ClientRate, c.ClientBurst = 0.01, 5 })
	limited := false
	for i := range 20 {
		r := e.from(fmt.Sprintf("192.0.2.%d", i), "POST", "/api/v1/blueprints", "Bearer wrong", "{}")
		if r.Status == http.StatusTooManyRequests {
			limited = true
			break
		}
		checkError(t, r, 401, "unauthorized", nil)
	}
	if !limited {
		t.Fatal("20 bad tokens under spoofed X-Forwarded-For were never limited")
	}
}

// TestAuditEntrySizesCapped: an authenticated write with a huge path is
// audited with the path cut to access.MaxAuditField bytes.
func TestAuditEntrySizesCapped(t *testing.T) {
	t.Parallel()
	e := newAccessEnv(t, access.Options{})
	e.must(201, "PUT", "/api/v1/blueprints/open", openBlueprint)
	e.do("DELETE", "/api/v1/blueprints/open/entities/"+strings.Repeat("é", 3000), nil)
	var out struct {
		Entries []access.AuditEntry `json:"entries"`
	}
	if err := json.Unmarshal(e.must(200, "GET", "/api/v1/audit?limit=1", nil).Raw, &out); err != nil || len(out.Entries) != 1 {
		t.Fatalf("audit: %v %d", err, len(out.Entries))
	}
	got := out.Entries[0]
	for name, v := range map[string]string{"path": got.Path, "resource": got.Resource, "identifier": got.Identifier} {
		if len(v) > access.MaxAuditField || !strings.HasSuffix(v, "…") || !utf8.ValidString(v) {
			t.Errorf("audited %s is %d bytes (cap %d): %.40q…", name, len(v), access.MaxAuditField, v)
		}
	}
}

// rawRequest opens a connection to the test server and writes head (the
// request line and headers, without the blank line) and then body.
func rawRequest(t *testing.T, e *env, head, body string) net.Conn {
	t.Helper()
	u, _ := url.Parse(e.srv.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, head+"\r\n\r\n"+body); err != nil {
		t.Fatal(err)
	}
	return conn
}

// TestTrickledBodyCutOff trickles a bulk body a byte at a time (never idle
// long, never done) and asserts the server answers 408 and closes the
// connection once the body deadline passes, while an event stream opened
// before stays open well beyond that deadline.
func TestTrickledBodyCutOff(t *testing.T) {
	t.Parallel()
	const bound = 300 * time.Millisecond
	e := newEnvWith(t, &redis.Options{}, func(c *api.Config) { c.BodyTimeout = bound })
	e.must(201, "PUT", "/api/v1/blueprints/team", teamBlueprint)
	events := openEvents(t, e, "$", "")
	opened := time.Now()

	start := time.Now()
	conn := rawRequest(t, e, "POST /api/v1/entities/bulk HTTP/1.1\r\nHost: portico\r\nAuthorization: Bearer "+token+
		"\r\nContent-Type: application/json\r\nContent-Length: 10000000", `{"entities": [`)
	stop := make(chan struct{})
	defer close(stop)
	go func() { // a byte every 20 ms, until the server hangs up
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to a trickled body: %v", err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	took := time.Since(start)
	checkError(t, resp{Status: res.StatusCode, Header: res.Header, Raw: raw}, http.StatusRequestTimeout, "request_timeout", nil)
	if took < bound || took > bound+10*time.Second {
		t.Errorf("trickled body answered after %s (bound %s)", took, bound)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("connection kept open after a body timeout")
	}

	// The stream outlives the body bound several times over and still
	// delivers.
	if wait := 4*bound - time.Since(opened); wait > 0 {
		time.Sleep(wait)
	}
	if ev := events.firstNew(t, e, "late"); !strings.HasPrefix(ev.Identifier, "late-") {
		t.Errorf("stream delivered %s/%s, want team/late-…", ev.Blueprint, ev.Identifier)
	}
}

// TestStalledBulkUploadsHoldNoSlot starts as many bulk uploads as there are
// bulk slots, each stalled after a few bytes of its body inside the
// handler (it answered 100-continue), and asserts a normal bulk write is
// still served at once.
func TestStalledBulkUploadsHoldNoSlot(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, &redis.Options{}, func(c *api.Config) { c.BodyTimeout = time.Hour })
	e.must(201, "PUT", "/api/v1/blueprints/team", teamBlueprint)
	var wg sync.WaitGroup
	for range api.MaxConcurrentBulk {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := rawRequest(t, e, "POST /api/v1/entities/bulk HTTP/1.1\r\nHost: portico\r\nAuthorization: Bearer "+token+
				"\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 1000000", "")
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			line, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil || !strings.Contains(line, " 100 ") {
				t.Errorf("stalled upload: %q %v", line, err)
				return
			}
			_, _ = io.WriteString(conn, `{"entities": [{"blueprint": "team", "ident`) // and nothing more
		}()
	}
	wg.Wait()

	done := make(chan resp, 1)
	go func() {
		done <- e.do("POST", "/api/v1/entities/bulk", M{"entities": []M{{"blueprint": "team", "identifier": "fifth"}}})
	}()
	select {
	case r := <-done:
		if r.Status != http.StatusOK {
			t.Fatalf("fifth bulk write: %d %.300s", r.Status, r.Raw)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("a normal bulk write waited behind %d stalled uploads", api.MaxConcurrentBulk)
	}
}

// TestOversizedSearchRefused sends searches over the query limits and
// asserts 422 naming the limit at the exact path.
func TestOversizedSearchRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	leaves := make([]M, catalog.MaxQueryRules)
	for i := range leaves {
		leaves[i] = M{"property": "tier", "operator": "=", "value": i}
	}
	values := make([]int, catalog.MaxQueryListValues+1)
	tests := []struct {
		name    string
		query   M
		path    string
		message string
	}{
		{"too many rules", M{"combinator": "or", "rules": leaves},
			fmt.Sprintf("/query/rules/%d", catalog.MaxQueryRules-1), strconv.Itoa(catalog.MaxQueryRules) + " rules"},
		{"in list too long", M{"property": "tier", "operator": "in", "value": values},
			"/query/value", strconv.Itoa(catalog.MaxQueryListValues) + " values"},
		{"nested containsAny too long", M{"combinator": "and", "rules": []M{{"property": "tags", "operator": "containsAny", "value": values}}},
			"/query/rules/0/value", strconv.Itoa(catalog.MaxQueryListValues) + " values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("POST", "/api/v1/entities/search", M{"query": tt.query})
			got := checkError(t, r, http.StatusUnprocessableEntity, "validation_failed", []string{tt.path})
			if msg := got.Error.Details[0].Message; !strings.Contains(msg, tt.message) {
				t.Errorf("message %q does not name the limit (%s)", msg, tt.message)
			}
		})
	}
}
