package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/access/redisaccess"
	"github.com/portico-dev/portico/core/api"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/catalog/rediscatalog"
	"github.com/portico-dev/portico/internal/redistest"
)

// clock is a settable clock for the access layer.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// accessEnv is a portal with the access layer over its own miniredis.
type accessEnv struct {
	*env
	rdb   *redis.Client
	clock *clock
}

func newAccessEnv(t *testing.T, opts access.Options, cors ...string) *accessEnv {
	t.Helper()
	return newAccessEnvWith(t, opts, api.Config{CORSOrigins: cors})
}

// newAccessEnvWith is newAccessEnv with cfg's HTTP settings (its Catalog
// and Access are set here).
func newAccessEnvWith(t *testing.T, opts access.Options, cfg api.Config) *accessEnv {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	cat := catalog.NewService(rediscatalog.New(rdb, rediscatalog.Options{}), catalog.Options{Authorizer: access.Authorizer{}})
	clk := &clock{t: time.Now()}
	opts.AdminToken, opts.Now = token, clk.Now
	acc := access.NewService(cat, redisaccess.New(rdb, redisaccess.Options{}), opts)
	if err := acc.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg.Catalog, cfg.Access = cat, acc
	srv := httptest.NewServer(api.New(cfg))
	t.Cleanup(srv.Close)
	return &accessEnv{env: &env{t: t, srv: srv}, rdb: rdb, clock: clk}
}

// as sends a request with a bearer token.
func (e *accessEnv) as(tok, method, path string, body any) resp {
	e.t.Helper()
	return e.doAuth(method, path, body, "Bearer "+tok)
}

// user creates (as the bootstrap admin) a _user entity.
func (e *accessEnv) user(email, role string, teams ...string) {
	e.t.Helper()
	if teams == nil {
		teams = []string{}
	}
	e.must(201, "PUT", "/api/v1/blueprints/_user/entities/"+email, M{"properties": M{"name": email, "role": role}, "relations": M{"teams": teams}})
}

// mint creates a token for user with scopes (as the bootstrap admin).
func (e *accessEnv) mint(user string, scopes ...string) (id, secret string) {
	e.t.Helper()
	r := e.must(201, "POST", "/api/v1/tokens", M{"name": "t", "user": user, "scopes": scopes})
	o := r.obj(e.t)
	return o["id"].(string), o["token"].(string)
}

// forbidden asserts a 403 naming a missing permission or scope.
func forbidden(t *testing.T, r resp, wantInMessage string) {
	t.Helper()
	e := checkError(t, r, http.StatusForbidden, "forbidden", nil)
	if !strings.HasPrefix(e.Error.Message, "missing ") || !strings.Contains(e.Error.Message, wantInMessage) {
		t.Errorf("403 message %q does not name %q", e.Error.Message, wantInMessage)
	}
}

// guardedBlueprint has every permission kind; openBlueprint has none.
var (
	guardedBlueprint = M{
		"identifier": "guarded",
		"schema":     M{"properties": M{"tier": M{"type": "integer"}}},
		"permissions": M{
			"create":     M{"owningTeam": true},
			"update":     M{"owningTeam": true},
			"delete":     M{"owningTeam": true},
			"read":       M{"ownedOnly": true},
			"properties": M{"tier": M{"update": M{"teams": []string{"platform"}}}},
		},
	}
	openBlueprint = M{"identifier": "open", "schema": M{"properties": M{"tier": M{"type": "integer"}}}}
)

// TestPermissionMatrix drives every cell of roles × ownership × scopes ×
// operations × blueprints through the HTTP API and asserts each, deny
// cells included.
func TestPermissionMatrix(t *testing.T) {
	t.Parallel()
	e := newAccessEnv(t, access.Options{})
	e.must(201, "PUT", "/api/v1/blueprints/_team/entities/payments", M{})
	e.must(201, "PUT", "/api/v1/blueprints/_team/entities/platform", M{})
	e.must(201, "PUT", "/api/v1/blueprints/guarded", guardedBlueprint)
	e.must(201, "PUT", "/api/v1/blueprints/open", openBlueprint)

	roles := []string{catalog.RoleAdmin, catalog.RoleMember, catalog.RoleViewer}
	scopeSets := [][]string{{"read"}, {"read", "write"}, {"write"}}
	tokens := map[string]string{}
	for _, role := range roles {
		email := role + "@example.com"
		e.user(email, role, "payments")
		for _, sc := range scopeSets {
			_, tokens[role+"/"+strings.Join(sc, "+")] = e.mint(email, sc...)
		}
	}
	ops := []string{"create", "read", "update", "update-tier", "delete"}

	// want says whether a cell is allowed, and what a denial names.
	want := func(role string, owned bool, scopes []string, op, bp string) (bool, string) {
		if op == "read" {
			if !slices.Contains(scopes, "read") {
				return false, "scope: read"
			}
			return role == "admin" || bp == "open" || owned, ""
		}
		if !slices.Contains(scopes, "write") {
			return false, "scope: write"
		}
		switch {
		case role != "admin" && bp == "guarded" && !owned && op != "create":
			return false, "" // hidden by read.ownedOnly: a write finds nothing
		case role == "admin":
			return true, ""
		case role == "viewer":
			return false, "read-only"
		case bp == "open":
			return true, ""
		case !owned:
			return false, "missing permission: " + strings.TrimSuffix(op, "-tier") + " guarded (owning team)"
		case op == "update-tier":
			return false, "missing permission: update guarded.tier (teams platform)"
		}
		return owned, "owning team"
	}

	n := 0
	for _, bp := range []string{"open", "guarded"} {
		for _, role := range roles {
			for _, owned := range []bool{true, false} {
				for _, sc := range scopeSets {
					for _, op := range ops {
						n++
						team := "payments"
						if !owned {
							team = "other"
						}
						id := fmt.Sprintf("e%d", n)
						name := fmt.Sprintf("%s/%s/owned=%v/%s/%s", bp, role, owned, strings.Join(sc, "+"), op)
						tok := tokens[role+"/"+strings.Join(sc, "+")]
						allowed, why := want(role, owned, sc, op, bp)
						path := "/api/v1/blueprints/" + bp + "/entities/" + id
						if op != "create" {
							e.must(201, "PUT", path, M{"team": []string{team}, "properties": M{"tier": 1}})
						}
						var r resp
						okStatus := http.StatusOK
						switch op {
						case "create":
							r, okStatus = e.as(tok, "POST", "/api/v1/blueprints/"+bp+"/entities", M{"identifier": id, "team": []string{team}, "properties": M{"tier": 1}}), http.StatusCreated
						case "read":
							r = e.as(tok, "GET", path, nil)
						case "update":
							r = e.as(tok, "PATCH", path, M{"title": "changed"})
						case "update-tier":
							r = e.as(tok, "PATCH", path, M{"properties": M{"tier": 2}})
						case "delete":
							r = e.as(tok, "DELETE", path, nil)
						}
						t.Run(name, func(t *testing.T) {
							switch {
							case allowed && r.Status != okStatus:
								t.Fatalf("allowed cell: status %d, want %d: %s", r.Status, okStatus, r.Raw)
							case !allowed && why == "":
								// Hidden by read.ownedOnly: indistinguishable from missing.
								checkError(t, r, http.StatusNotFound, "not_found", nil)
							case !allowed:
								forbidden(t, r, why)
							}
						})
						// A denied write changed nothing.
						if !allowed && op != "read" {
							got := e.do("GET", path, nil)
							switch {
							case op == "create" && got.Status != 404:
								t.Errorf("%s: denied create left an entity (%d)", name, got.Status)
							case op == "delete" && got.Status != 200:
								t.Errorf("%s: denied delete removed the entity (%d)", name, got.Status)
							case op == "update" && got.obj(t)["title"] != nil:
								t.Errorf("%s: denied update changed the title", name)
							case op == "update-tier" && got.obj(t)["properties"].(M)["tier"] != 1.0:
								t.Errorf("%s: denied tier update changed it", name)
							}
						}
					}
				}
			}
		}
	}
	if n != 2*3*2*3*5 {
		t.Fatalf("matrix has %d cells", n)
	}
}

// TestBulkFailsForbiddenItemsIndividually: one 403 item, the rest written.
func TestBulkFailsForbiddenItemsIndividually(t *testing.T) {
	t.Parallel()
	e := newAccessEnv(t, access.Options{})
	e.must(201, "PUT", "/api/v1/blueprints/_team/entities/payments", M{})
	e.must(201, "PUT", "/api/v1/blueprints/guarded", guardedBlueprint)
	e.user("m@example.com", "member", "payments")
	_, tok := e.mint("m@example.com", "read", "write")
	r := e.as(tok, "POST", "/api/v1/entities/bulk", M{"entities": []M{
		{"blueprint": "guarded", "identifier": "mine", "team": []string{"payments"}},
		{"blueprint": "guarded", "identifier": "theirs", "team": []string{"other"}},
	}})
	res := decodeBulk(t, r)
	if r.Status != http.StatusMultiStatus || res[0].Status != "created" || res[1].Status != "error" || res[1].Error.Error.Code != "forbidden" ||
		!strings.Contains(res[1].Error.Error.Message, "missing permission: create guarded (owning team)") {
		t.Fatalf("bulk: %d %s", r.Status, r.Raw)
	}
	e.must(404, "GET", "/api/v1/blueprints/guarded/entities/theirs", nil)
}

func TestProtectedBlueprints(t *testing.T) {
	t.Parallel()
	e := newAccessEnv(t, access.Options{})
	e.user("m@example.com", "member")
	e.user("a@example.com", "admin")
	_, member := e.mint("m@example.com", "read", "write")
	_, adminRW := e.mint("a@example.com", "read", "write")
	_, adminAll := e.mint("a@example.com")

	// Both built-ins exist after Bootstrap.
	for _, bp := range []string{"_user", "_team"} {
		e.must(200, "GET", "/api/v1/blueprints/"+bp, nil)
	}
	userBP := e.must(200, "GET", "/api/v1/blueprints/_user", nil).Raw

	forbidden(t, e.as(member, "PUT", "/api/v1/blueprints/_user", userBP), "role admin")
	forbidden(t, e.as(member, "PUT", "/api/v1/blueprints/service", M{"schema": M{}}), "role admin")
	forbidden(t, e.as(member, "PUT", "/api/v1/blueprints/_user/entities/m@example.com", M{"properties": M{"role": "admin"}}), "role admin")
	forbidden(t, e.as(member, "DELETE", "/api/v1/blueprints/_team", nil), "delete blueprint _team")
	forbidden(t, e.as(adminRW, "PUT", "/api/v1/blueprints/_user", userBP), "scope: admin")
	e.must(200, "GET", "/api/v1/blueprints/_user", nil)
	if got := e.as(adminAll, "PUT", "/api/v1/blueprints/_user", userBP); got.Status != 200 {
		t.Fatalf("admin re-PUT of _user: %d %s", got.Status, got.Raw)
	}
	// Extending is fine, dropping the role is not; deleting never is.
	ext := M{"identifier": "_user", "schema": M{"properties": M{
		"name": M{"type": "string"}, "role": M{"type": "string", "enum": []string{"admin", "member", "viewer"}},
		"serviceAccount": M{"type": "boolean"}, "slack": M{"type": "string"}}},
		"relations": M{"teams": M{"target": "_team", "many": true}}}
	if got := e.as(adminAll, "PUT", "/api/v1/blueprints/_user", ext); got.Status != 200 {
		t.Fatalf("extending _user: %d %s", got.Status, got.Raw)
	}
	delete(ext["schema"].(M)["properties"].(M), "role")
	checkError(t, e.as(adminAll, "PUT", "/api/v1/blueprints/_user", ext), 422, "validation_failed", []string{"/schema/properties/role"})
	forbidden(t, e.do("DELETE", "/api/v1/blueprints/_user", nil), "built-in")
	// A member may not promote itself.
	if got := e.must(200, "GET", "/api/v1/blueprints/_user/entities/m@example.com", nil).obj(t)["properties"].(M)["role"]; got != "member" {
		t.Fatalf("role = %v", got)
	}
	// Other identifiers may not start with "_" unless an admin makes them.
	forbidden(t, e.as(member, "PUT", "/api/v1/blueprints/_mine", M{"schema": M{}}), "")
}

func TestTokens(t *testing.T) {
	t.Parallel()
	e := newAccessEnv(t, access.Options{})
	e.user("alice@example.com", "member")
	e.user("bob@example.com", "member")
	e.user("ci-bot", "member")
	e.must(200, "PATCH", "/api/v1/blueprints/_user/entities/ci-bot", M{"properties": M{"serviceAccount": true}})

	// The bootstrap admin must say whose token it mints.
	checkError(t, e.do("POST", "/api/v1/tokens", M{"name": "x"}), 422, "validation_failed", []string{"/user"})
	checkError(t, e.do("POST", "/api/v1/tokens", M{"name": "x", "user": "nobody@example.com"}), 422, "validation_failed", []string{"/user"})
	checkError(t, e.do("POST", "/api/v1/tokens", M{"name": "x", "user": "bob@example.com", "scopes": []string{"root"}}), 422, "validation_failed", []string{"/scopes/0"})
	checkError(t, e.do("POST", "/api/v1/tokens", M{"name": "x", "user": "bob@example.com", "expiresIn": "10000h"}), 422, "validation_failed", []string{"/expiresIn"})
	checkError(t, e.do("POST", "/api/v1/tokens", M{"name": "x", "user": "bob@example.com", "extra": 1}), 400, "malformed_request", nil)

	aliceID, alice := e.mint("alice@example.com", "read", "write")
	botID, bot := e.mint("ci-bot", "write", "read")

	// Alice mints her own token (shown once), may not mint for Bob or
	// grant a scope she lacks.
	r := e.as(alice, "POST", "/api/v1/tokens", M{"name": "laptop", "scopes": []string{"read"}, "expiresIn": "1h"})
	if r.Status != 201 {
		t.Fatalf("alice mints: %d %s", r.Status, r.Raw)
	}
	o := r.obj(t)
	ownID, own := o["id"].(string), o["token"].(string)
	if o["user"] != "alice@example.com" || !strings.HasPrefix(own, "pt_") || o["expiresAt"] == nil {
		t.Fatalf("new token: %s", r.Raw)
	}
	forbidden(t, e.as(alice, "POST", "/api/v1/tokens", M{"name": "x", "user": "bob@example.com"}), "role admin")
	forbidden(t, e.as(own, "POST", "/api/v1/tokens", M{"name": "x", "scopes": []string{"read"}}), "scope: write")
	forbidden(t, e.as(alice, "POST", "/api/v1/tokens", M{"name": "x", "scopes": []string{"admin"}}), "scope: admin")

	// Listing: own tokens only, never a secret; admins see all.
	list := e.as(alice, "GET", "/api/v1/tokens", nil)
	if list.Status != 200 || strings.Contains(string(list.Raw), own) || strings.Contains(string(list.Raw), `"token"`) || strings.Contains(string(list.Raw), "hash") {
		t.Fatalf("alice lists: %s", list.Raw)
	}
	if ids := tokenIDs(t, list); !slices.Equal(ids, []string{aliceID, ownID}) && !slices.Equal(ids, []string{ownID, aliceID}) {
		t.Fatalf("alice's tokens: %v", ids)
	}
	forbidden(t, e.as(alice, "GET", "/api/v1/tokens?user=bob@example.com", nil), "role admin")
	if ids := tokenIDs(t, e.must(200, "GET", "/api/v1/tokens", nil)); len(ids) != 3 {
		t.Fatalf("admin sees %v", ids)
	}
	if ids := tokenIDs(t, e.must(200, "GET", "/api/v1/tokens?user=ci-bot", nil)); !slices.Equal(ids, []string{botID}) {
		t.Fatalf("admin ?user=ci-bot: %v", ids)
	}

	// The service account works like a user; lastUsedAt is recorded.
	me := e.as(bot, "GET", "/api/v1/me", nil).obj(t)
	if me["id"] != "ci-bot" || me["role"] != "member" || me["tokenId"] != botID {
		t.Fatalf("bot /me: %v", me)
	}
	for _, tk := range tokenList(t, e.must(200, "GET", "/api/v1/tokens?user=ci-bot", nil)) {
		if tk["lastUsedAt"] == nil {
			t.Fatalf("lastUsedAt not recorded: %v", tk)
		}
	}

	// Only hashes are stored: no key or value holds a secret.
	dump := redistest.Dump(t, e.rdb)
	for _, secret := range []string{alice, bot, own} {
		if strings.Contains(dump, secret) || strings.Contains(dump, strings.TrimPrefix(secret, "pt_")) {
			t.Fatalf("a token secret is stored in Redis")
		}
		if !strings.Contains(dump, access.HashToken(secret)) {
			t.Fatalf("the hash of a token is not stored")
		}
	}

	// Revoked: 401 at once; another user's token is "not found".
	checkError(t, e.as(bot, "DELETE", "/api/v1/tokens/"+ownID, nil), 404, "not_found", nil)
	if r := e.as(alice, "DELETE", "/api/v1/tokens/"+ownID, nil); r.Status != 204 {
		t.Fatalf("revoke: %d %s", r.Status, r.Raw)
	}
	checkError(t, e.as(own, "GET", "/api/v1/blueprints", nil), 401, "unauthorized", nil)
	checkError(t, e.as(alice, "DELETE", "/api/v1/tokens/"+ownID, nil), 404, "not_found", nil)

	// Expired: 401 once the clock passes expiresAt (cache included).
	e.must(200, "GET", "/api/v1/blueprints", nil)
	r = e.as(alice, "POST", "/api/v1/tokens", M{"name": "short", "expiresIn": "1h"})
	short := r.obj(t)["token"].(string)
	if r := e.as(short, "GET", "/api/v1/blueprints", nil); r.Status != 200 {
		t.Fatalf("fresh token: %d", r.Status)
	}
	e.clock.Add(61 * time.Minute)
	checkError(t, e.as(short, "GET", "/api/v1/blueprints", nil), 401, "unauthorized", nil)
	if r := e.as(alice, "GET", "/api/v1/blueprints", nil); r.Status != 200 {
		t.Fatalf("720h token after an hour: %d", r.Status)
	}

	// A deleted user's tokens stop working (after the cache TTL).
	e.must(200, "DELETE", "/api/v1/blueprints/_user/entities/bob@example.com", nil)
	_ = e.must(422, "POST", "/api/v1/tokens", M{"name": "x", "user": "bob@example.com"})
}

func tokenList(t *testing.T, r resp) []M {
	t.Helper()
	var out []M
	for _, x := range r.obj(t)["tokens"].([]any) {
		out = append(out, x.(M))
	}
	return out
}

func tokenIDs(t *testing.T, r resp) []string {
	t.Helper()
	var ids []string
	for _, tk := range tokenList(t, r) {
		ids = append(ids, tk["id"].(string))
	}
	return ids
}

// TestReadFiltering: read.ownedOnly hides entities from list, search,
// get, history, related and totals; ownership is inherited via a relation.
func TestReadFiltering(t *testing.T) {
	t.Parallel()
	e := newAccessEnv(t, access.Options{})
	e.must(201, "PUT", "/api/v1/blueprints/_team/entities/payments", M{})
	e.must(201, "PUT", "/api/v1/blueprints/guarded", guardedBlueprint)
	e.must(201, "PUT", "/api/v1/blueprints/workload", M{
		"schema":      M{"properties": M{"replicas": M{"type": "integer"}}},
		"relations":   M{"service": M{"target": "guarded"}},
		"ownership":   M{"via": "service"},
		"permissions": M{"update": M{"owningTeam": true}, "read": M{"ownedOnly": true}},
	})
	checkError(t, e.do("PUT", "/api/v1/blueprints/bad", M{"ownership": M{"via": "nope"}, "permissions": M{"create": M{"roles": []string{"root"}}, "properties": M{"x": M{"update": M{}}}}}),
		422, "validation_failed", []string{"/ownership/via", "/permissions/create/roles/0", "/permissions/properties/x"})
	for i := range 5 {
		e.must(201, "PUT", fmt.Sprintf("/api/v1/blueprints/guarded/entities/mine-%d", i), M{"team": []string{"payments"}})
	}
	for i := range 7 {
		e.must(201, "PUT", fmt.Sprintf("/api/v1/blueprints/guarded/entities/theirs-%d", i), M{"team": []string{"other"}})
	}
	e.must(201, "PUT", "/api/v1/blueprints/workload/entities/w-mine", M{"relations": M{"service": "mine-0"}})
	e.must(201, "PUT", "/api/v1/blueprints/workload/entities/w-theirs", M{"relations": M{"service": "theirs-0"}})
	e.user("m@example.com", "member", "payments")
	e.user("v@example.com", "viewer", "payments")
	_, member := e.mint("m@example.com", "read", "write")
	_, viewer := e.mint("v@example.com", "read")

	for _, who := range []struct{ name, tok string }{{"member", member}, {"viewer", viewer}} {
		// List: five visible, total five, paged.
		p := decodePage(t, e.as(who.tok, "GET", "/api/v1/blueprints/guarded/entities?limit=2", nil))
		if p.Total != 5 || len(p.Entities) != 2 || p.Next == nil {
			t.Fatalf("%s list page 1: total %d, %d entities, next %v", who.name, p.Total, len(p.Entities), p.Next)
		}
		var seen []string
		for cursor := ""; ; {
			path := "/api/v1/blueprints/guarded/entities?limit=2"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			p := decodePage(t, e.as(who.tok, "GET", path, nil))
			seen = append(seen, identifiers(p)...)
			if p.Next == nil {
				break
			}
			cursor = *p.Next
		}
		if want := []string{"mine-0", "mine-1", "mine-2", "mine-3", "mine-4"}; !slices.Equal(seen, want) {
			t.Fatalf("%s paged list: %v", who.name, seen)
		}
		// Search: only owned, total counted after filtering (also with an
		// index-only plan and paging).
		for _, q := range []M{
			{"query": M{"combinator": "and", "rules": []M{{"property": "$blueprint", "operator": "=", "value": "guarded"}}}, "limit": 2},
			{"query": M{"combinator": "and", "rules": []M{{"property": "$identifier", "operator": "beginsWith", "value": "theirs"}}}},
			{},
		} {
			p := decodePage(t, e.as(who.tok, "POST", "/api/v1/entities/search", q))
			for _, x := range p.Entities {
				if strings.Contains(x["identifier"].(string), "theirs") {
					t.Fatalf("%s: search leaked %s", who.name, x["identifier"])
				}
			}
			all := M{"limit": 1000}
			if q["query"] != nil {
				all["query"] = q["query"]
			}
			full := decodePage(t, e.must(200, "POST", "/api/v1/entities/search", all))
			hidden := 0
			for _, x := range full.Entities {
				if strings.Contains(x["identifier"].(string), "theirs") {
					hidden++
				}
			}
			if p.Total != full.Total-hidden {
				t.Fatalf("%s: search total %d, admin sees %d of which %d hidden", who.name, p.Total, full.Total, hidden)
			}
		}
		// Get, history, related: hidden is not found.
		checkError(t, e.as(who.tok, "GET", "/api/v1/blueprints/guarded/entities/theirs-1", nil), 404, "not_found", nil)
		checkError(t, e.as(who.tok, "GET", "/api/v1/blueprints/guarded/entities/theirs-1/history", nil), 404, "not_found", nil)
		e.must(200, "GET", "/api/v1/blueprints/guarded/entities/theirs-1", nil)
		rel := e.as(who.tok, "GET", "/api/v1/blueprints/guarded/entities/mine-0/related", nil)
		if rel.Status != 200 || strings.Contains(string(rel.Raw), "w-theirs") || !strings.Contains(string(rel.Raw), "w-mine") {
			t.Fatalf("%s related: %s", who.name, rel.Raw)
		}
		// Inherited ownership: the workload of my service is mine.
		e.as(who.tok, "GET", "/api/v1/blueprints/workload/entities/w-mine", nil)
		checkError(t, e.as(who.tok, "GET", "/api/v1/blueprints/workload/entities/w-theirs", nil), 404, "not_found", nil)
	}
	if r := e.as(member, "PATCH", "/api/v1/blueprints/workload/entities/w-mine", M{"properties": M{"replicas": 3}}); r.Status != 200 {
		t.Fatalf("member updates inherited-owned workload: %d %s", r.Status, r.Raw)
	}
	// Hidden from the member, so a write finds nothing either.
	checkError(t, e.as(member, "PATCH", "/api/v1/blueprints/workload/entities/w-theirs", M{"properties": M{"replicas": 3}}), 404, "not_found", nil)

	// "My" entities: $me.teams expands to the caller's teams.
	my := M{"query": M{"combinator": "and", "rules": []M{
		{"property": "$blueprint", "operator": "=", "value": "guarded"},
		{"property": "$team", "operator": "containsAny", "value": []string{"$me.teams"}},
	}}}
	if p := decodePage(t, e.as(member, "POST", "/api/v1/entities/search", my)); p.Total != 5 {
		t.Fatalf("my entities: %d", p.Total)
	}
	if p := decodePage(t, e.do("POST", "/api/v1/entities/search", my)); p.Total != 0 {
		t.Fatalf("the bootstrap admin has no teams, got %d", p.Total)
	}
	// /me names the principal and its teams.
	me := e.as(member, "GET", "/api/v1/me", nil).obj(t)
	if me["id"] != "m@example.com" || me["role"] != "member" || !jsonEqual(me["teams"], []any{"payments"}) || me["user"] == nil {
		t.Fatalf("/me: %v", me)
	}
}

// TestEventStreamIsFiltered: SSE clients do not see hidden entities' events.
func TestEventStreamIsFiltered(t *testing.T) {
	t.Parallel()
	e := newAccessEnv(t, access.Options{})
	e.must(201, "PUT", "/api/v1/blueprints/_team/entities/payments", M{})
	e.must(201, "PUT", "/api/v1/blueprints/guarded", guardedBlueprint)
	e.must(201, "PUT", "/api/v1/blueprints/guarded/entities/theirs", M{"team": []string{"other"}})
	e.must(201, "PUT", "/api/v1/blueprints/guarded/entities/mine", M{"team": []string{"payments"}})
	e.user("m@example.com", "member", "payments")
	_, member := e.mint("m@example.com", "read")
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/events?after=0", nil)
	req.Header.Set("Authorization", "Bearer "+member)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := e.srv.Client().Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	buf := make([]byte, 1<<16)
	var got strings.Builder
	for !strings.Contains(got.String(), `"identifier":"mine"`) {
		n, err := res.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if !strings.Contains(got.String(), `"identifier":"mine"`) || strings.Contains(got.String(), "theirs") {
		t.Fatalf("stream: %s", got.String())
	}
}

func TestAudit(t *testing.T) {
	t.Parallel()
	e := newAccessEnv(t, access.Options{})
	e.must(201, "PUT", "/api/v1/blueprints/open", openBlueprint)
	e.user("m@example.com", "member")
	memberID, member := e.mint("m@example.com", "read", "write")
	e.as(member, "PUT", "/api/v1/blueprints/open/entities/a", M{"properties": M{"tier": 1}})
	e.as(member, "PATCH", "/api/v1/blueprints/open/entities/a", M{"properties": M{"tier": 2}})
	e.as(member, "PUT", "/api/v1/blueprints/open", openBlueprint) // denied: audited too
	e.as(member, "POST", "/api/v1/entities/search", M{})          // a read: not audited
	shortID, short := e.mint("m@example.com", "read")
	e.as(short, "GET", "/api/v1/blueprints", nil)
	e.must(204, "DELETE", "/api/v1/tokens/"+shortID, nil)

	forbidden(t, e.as(member, "GET", "/api/v1/audit", nil), "role admin")
	all := auditEntries(t, e.must(200, "GET", "/api/v1/audit", nil))
	for i := 1; i < len(all); i++ {
		if all[i]["id"].(string) == all[i-1]["id"].(string) || streamIDLess(all[i-1]["id"].(string), all[i]["id"].(string)) {
			t.Fatalf("not newest first: %v then %v", all[i-1]["id"], all[i]["id"])
		}
	}
	byKind := map[string]int{}
	for _, x := range all {
		byKind[x["kind"].(string)]++
		if x["route"] == "/api/v1/entities/search" {
			t.Fatalf("a read was audited: %v", x)
		}
	}
	// three tokens minted, one revoked; two tokens used (login) by m@.
	if byKind["token.created"] != 2 || byKind["token.revoked"] != 1 || byKind["login"] != 2 {
		t.Fatalf("kinds: %v", byKind)
	}

	mine := auditEntries(t, e.must(200, "GET", "/api/v1/audit?actor=m@example.com&kind=request&blueprint=open&identifier=a", nil))
	if len(mine) != 2 {
		t.Fatalf("entries for open/a by m@: %d", len(mine))
	}
	patch := mine[0]
	if patch["method"] != "PATCH" || patch["status"] != 200.0 || patch["tokenId"] != memberID || patch["resource"] != "entity/open/a" ||
		patch["remoteIp"] == "" || patch["at"] == nil {
		t.Fatalf("patch entry: %v", patch)
	}
	if patch["before"].(M)["properties"].(M)["tier"] != 1.0 || patch["after"].(M)["properties"].(M)["tier"] != 2.0 {
		t.Fatalf("patch before/after: %v / %v", patch["before"], patch["after"])
	}
	denied := auditEntries(t, e.must(200, "GET", "/api/v1/audit?resource=blueprint/open&actor=m@example.com", nil))
	if len(denied) != 1 || denied[0]["status"] != 403.0 || denied[0]["kind"] != "blueprint" {
		t.Fatalf("denied blueprint change: %v", denied)
	}
	if got := auditEntries(t, e.must(200, "GET", "/api/v1/audit?limit=1", nil)); len(got) != 1 {
		t.Fatalf("limit=1: %d", len(got))
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if got := auditEntries(t, e.must(200, "GET", "/api/v1/audit?from="+future, nil)); len(got) != 0 {
		t.Fatalf("from the future: %d", len(got))
	}
	checkError(t, e.do("GET", "/api/v1/audit?from=yesterday&limit=0", nil), 422, "validation_failed", []string{"/from", "/limit"})
}

func auditEntries(t *testing.T, r resp) []M {
	t.Helper()
	var out []M
	for _, x := range r.obj(t)["entries"].([]any) {
		out = append(out, x.(M))
	}
	return out
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	e := newAccessEnv(t, access.Options{RateLimit: 1, RateBurst: 3})
	e.user("m@example.com", "member")
	_, member := e.mint("m@example.com", "read")
	for i := range 3 {
		if r := e.as(member, "GET", "/api/v1/blueprints", nil); r.Status != 200 {
			t.Fatalf("request %d: %d", i, r.Status)
		}
	}
	r := e.as(member, "GET", "/api/v1/blueprints", nil)
	checkError(t, r, http.StatusTooManyRequests, "rate_limited", nil)
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	e.clock.Add(2 * time.Second)
	if r := e.as(member, "GET", "/api/v1/blueprints", nil); r.Status != 200 {
		t.Fatalf("after refill: %d", r.Status)
	}
	for range 10 { // the bootstrap admin is not limited
		e.must(200, "GET", "/api/v1/blueprints", nil)
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newAccessEnv(t, access.Options{})
	check := func(r resp) {
		t.Helper()
		for h, want := range map[string]string{
			"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
		} {
			if got := r.Header.Get(h); got != want {
				t.Errorf("%s = %q", h, got)
			}
		}
		if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("CSP = %q", csp)
		}
		for h := range r.Header {
			if strings.HasPrefix(h, "Access-Control-") {
				t.Errorf("CORS header %s without configuration", h)
			}
		}
	}
	check(e.do("GET", "/healthz", nil))
	check(e.do("GET", "/api/v1/blueprints", nil))
	check(e.doAuth("GET", "/api/v1/blueprints", nil, ""))
	check(e.do("GET", "/nope", nil))
	req, _ := http.NewRequest("OPTIONS", e.srv.URL+"/api/v1/blueprints", nil)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("CORS answered without configuration")
	}

	// Configured: the allowed origin gets CORS, others do not.
	c := newAccessEnv(t, access.Options{}, "https://portal.example")
	for origin, want := range map[string]string{"https://portal.example": "https://portal.example", "https://evil.example": ""} {
		req, _ := http.NewRequest("OPTIONS", c.srv.URL+"/api/v1/blueprints", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "PUT")
		res, err := c.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.Header.Get("Access-Control-Allow-Origin"); got != want {
			t.Errorf("origin %s: Allow-Origin %q", origin, got)
		}
	}
}
