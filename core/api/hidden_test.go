package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/portico-dev/portico/core/access"
)

// hiddenEnv is a portal where guarded/theirs and secret/theirs (team
// other) are hidden from the member m@example.com (team payments) by
// read.ownedOnly, and guarded/mine and secret/mine are not. guarded
// restricts writes to the owning team too, secret does not (members may
// write any entity of it). member is the member's read+write token.
type hiddenEnv struct {
	*accessEnv
	member string
}

func newHiddenEnv(t *testing.T) *hiddenEnv {
	t.Helper()
	e := newAccessEnv(t, access.Options{})
	e.must(201, "PUT", "/api/v1/blueprints/_team/entities/payments", M{})
	e.must(201, "PUT", "/api/v1/blueprints/guarded", guardedBlueprint)
	e.must(201, "PUT", "/api/v1/blueprints/secret", M{"schema": M{"properties": M{"tier": M{"type": "integer"}}}, "permissions": M{"read": M{"ownedOnly": true}}})
	for _, bp := range []string{"guarded", "secret"} {
		e.must(201, "PUT", "/api/v1/blueprints/"+bp+"/entities/theirs", M{"title": "Secret", "team": []string{"other"}, "properties": M{"tier": 3}})
		e.must(201, "PUT", "/api/v1/blueprints/"+bp+"/entities/mine", M{"title": "Mine", "team": []string{"payments"}, "properties": M{"tier": 1}})
	}
	e.user("m@example.com", "member", "payments")
	_, member := e.mint("m@example.com", "read", "write")
	return &hiddenEnv{accessEnv: e, member: member}
}

// sameAnswer asserts that got (about the hidden identifier) is exactly
// the answer want gave about a missing one, identifiers aside.
func sameAnswer(t *testing.T, got, want resp, hidden, missing string) {
	t.Helper()
	if got.Status != want.Status || string(got.Raw) != strings.ReplaceAll(string(want.Raw), missing, hidden) {
		t.Fatalf("hidden %s answered %d %s\nmissing %s answered %d %s", hidden, got.Status, got.Raw, missing, want.Status, want.Raw)
	}
}

// TestWritesDoNotWidenReads: every write to an entity the caller may not
// read answers as a GET does (404) and changes nothing, however the write
// is made and whatever it would change.
func TestWritesDoNotWidenReads(t *testing.T) {
	t.Parallel()
	e := newHiddenEnv(t)
	e.user("v@example.com", "viewer", "payments")
	e.user("w@example.com", "member", "payments")
	_, viewer := e.mint("v@example.com", "read", "write")
	_, writeOnly := e.mint("w@example.com", "write")
	// answer is an error as status, code and message; a bulk item's
	// status is the one its code maps to.
	type answer struct {
		status        int
		code, message string
	}
	of := func(r resp) answer {
		t.Helper()
		if r.Status < 400 {
			t.Fatalf("the write succeeded: %d %.300s", r.Status, r.Raw)
		}
		a := decodeError(t, r.Raw)
		return answer{r.Status, a.Error.Code, a.Error.Message}
	}
	for _, bp := range []string{"guarded", "secret"} {
		path := "/api/v1/blueprints/" + bp + "/entities/theirs"
		stored := string(e.must(200, "GET", path, nil).Raw)
		storedHistory := string(e.must(200, "GET", path+"/history", nil).Raw)
		want := of(e.as(e.member, "GET", path, nil))
		if want.status != http.StatusNotFound {
			t.Fatalf("GET %s: %+v", path, want)
		}
		bulkItem := func(tok string, item M) answer {
			r := e.as(tok, "POST", "/api/v1/entities/bulk", M{"entities": []M{item}})
			res := decodeBulk(t, r)
			if r.Status != http.StatusMultiStatus || res[0].Status != "error" {
				t.Fatalf("bulk: %d %s", r.Status, r.Raw)
			}
			status := 0
			if res[0].Error.Error.Code == want.code {
				status = want.status
			}
			return answer{status, res[0].Error.Error.Code, res[0].Error.Error.Message}
		}
		takeOver := M{"team": []string{"payments"}, "properties": M{"tier": 1}}
		for _, tc := range []struct {
			name string
			do   func() answer
		}{
			{"PATCH {}", func() answer { return of(e.as(e.member, "PATCH", path, M{})) }},
			{"PATCH team", func() answer { return of(e.as(e.member, "PATCH", path, M{"team": []string{"payments"}})) }},
			{"PATCH property", func() answer { return of(e.as(e.member, "PATCH", path, M{"properties": M{"tier": 1}})) }},
			{"PUT replace", func() answer { return of(e.as(e.member, "PUT", path, takeOver)) }},
			{"POST create", func() answer {
				return of(e.as(e.member, "POST", "/api/v1/blueprints/"+bp+"/entities", M{"identifier": "theirs", "team": []string{"payments"}}))
			}},
			{"DELETE", func() answer { return of(e.as(e.member, "DELETE", path, nil)) }},
			{"DELETE cascade", func() answer { return of(e.as(e.member, "DELETE", path+"?cascade=true", nil)) }},
			{"bulk upsert", func() answer {
				return bulkItem(e.member, M{"blueprint": bp, "identifier": "theirs", "team": []string{"payments"}})
			}},
			{"viewer PATCH {}", func() answer { return of(e.as(viewer, "PATCH", path, M{})) }},
			{"write-only token PATCH team", func() answer { return of(e.as(writeOnly, "PATCH", path, M{"team": []string{"payments"}})) }},
			{"write-only token DELETE", func() answer { return of(e.as(writeOnly, "DELETE", path, nil)) }},
		} {
			t.Run(bp+"/"+tc.name, func(t *testing.T) {
				if got := tc.do(); got != want {
					t.Fatalf("answer %+v differs from the GET's %+v", got, want)
				}
				if got := string(e.must(200, "GET", path, nil).Raw); got != stored {
					t.Fatalf("the hidden entity changed:\n%s\nwas\n%s", got, stored)
				}
			})
		}
		if got := string(e.must(200, "GET", path+"/history", nil).Raw); got != storedHistory {
			t.Fatalf("the hidden entity's history changed: %s", got)
		}
	}
	// What the member can read it can still write.
	if r := e.as(e.member, "PATCH", "/api/v1/blueprints/guarded/entities/mine", M{}); r.Status != 200 {
		t.Fatalf("PATCH {} on a visible entity: %d %s", r.Status, r.Raw)
	}
	// Deleting what a hidden entity requires neither names it nor, with
	// cascade, deletes it.
	e.must(201, "PUT", "/api/v1/blueprints/pinned", M{
		"relations":   M{"to": M{"target": "guarded", "required": true}},
		"permissions": M{"read": M{"ownedOnly": true}},
	})
	e.must(201, "PUT", "/api/v1/blueprints/pinned/entities/hidden-pin", M{"team": []string{"other"}, "relations": M{"to": "mine"}})
	for _, q := range []string{"", "?cascade=true"} {
		r := e.as(e.member, "DELETE", "/api/v1/blueprints/guarded/entities/mine"+q, nil)
		msg := checkError(t, r, http.StatusConflict, "in_use", nil).Error.Message
		if strings.Contains(msg, "hidden-pin") || !strings.Contains(msg, "1 entity you cannot read") {
			t.Fatalf("DELETE%s: %s", q, msg)
		}
	}
	e.must(200, "GET", "/api/v1/blueprints/pinned/entities/hidden-pin", nil)
	e.must(200, "GET", "/api/v1/blueprints/guarded/entities/mine", nil)
}

// TestRelationsDoNotRevealHiddenEntities: a relation to an entity the
// writer may not read fails exactly as one to a missing entity, in every
// kind of write.
func TestRelationsDoNotRevealHiddenEntities(t *testing.T) {
	t.Parallel()
	e := newHiddenEnv(t)
	e.must(201, "PUT", "/api/v1/blueprints/dep", M{
		"relations": M{"service": M{"target": "guarded"}, "uses": M{"target": "guarded", "many": true}},
	})
	e.must(201, "PUT", "/api/v1/blueprints/dep/entities/d", M{"relations": M{"service": "mine"}})
	for _, tc := range []struct {
		name string
		do   func(target string) resp
	}{
		{"PUT", func(target string) resp {
			return e.as(e.member, "PUT", "/api/v1/blueprints/dep/entities/d-"+target, M{"relations": M{"service": target}})
		}},
		{"POST", func(target string) resp {
			return e.as(e.member, "POST", "/api/v1/blueprints/dep/entities", M{"identifier": "p-" + target, "relations": M{"uses": []string{"mine", target}}})
		}},
		{"PATCH", func(target string) resp {
			return e.as(e.member, "PATCH", "/api/v1/blueprints/dep/entities/d", M{"relations": M{"service": target}})
		}},
		{"bulk", func(target string) resp {
			return e.as(e.member, "POST", "/api/v1/entities/bulk", M{"entities": []M{
				{"blueprint": "dep", "identifier": "b-" + target, "relations": M{"service": target}},
				{"blueprint": "dep", "identifier": "ok-" + target, "relations": M{"service": "mine"}},
			}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			missing := tc.do("ghost1")
			if missing.Status != http.StatusUnprocessableEntity && missing.Status != http.StatusMultiStatus {
				t.Fatalf("relation to a missing entity: %d %s", missing.Status, missing.Raw)
			}
			sameAnswer(t, tc.do("theirs"), missing, "theirs", "ghost1")
		})
	}
	if got := e.must(200, "GET", "/api/v1/blueprints/dep/entities/d", nil).obj(t)["relations"].(M)["service"]; got != "mine" {
		t.Fatalf("dep/d now points at %v", got)
	}
	// The admin may point at it.
	e.must(201, "PUT", "/api/v1/blueprints/dep/entities/by-admin", M{"relations": M{"service": "theirs"}})
}

// TestMirrorsDoNotRevealHiddenEntities: a mirror property reads nothing
// from an entity the reader may not read, wherever the entity is shown or
// matched.
func TestMirrorsDoNotRevealHiddenEntities(t *testing.T) {
	t.Parallel()
	e := newHiddenEnv(t)
	e.must(201, "PUT", "/api/v1/blueprints/dep", M{
		"relations": M{"service": M{"target": "guarded"}, "uses": M{"target": "guarded", "many": true}},
		"mirrorProperties": M{
			"serviceTier":  M{"path": "service.tier"},
			"serviceTitle": M{"path": "service.$title"},
			"usesTier":     M{"path": "uses.tier"},
		},
		"calculationProperties": M{"tierPlusOne": M{"type": "number", "jq": ".properties.serviceTier + 1"}},
	})
	e.must(201, "PUT", "/api/v1/blueprints/dep/entities/d", M{"relations": M{"service": "theirs", "uses": []string{"mine", "theirs"}}})

	check := func(who string, d M, tier, title, uses, plusOne any) {
		t.Helper()
		p := d["properties"].(M)
		if !jsonEqual(p["serviceTier"], tier) || !jsonEqual(p["serviceTitle"], title) || !jsonEqual(p["usesTier"], uses) || !jsonEqual(p["tierPlusOne"], plusOne) {
			t.Fatalf("%s sees %v", who, p)
		}
	}
	const path = "/api/v1/blueprints/dep/entities/d"
	check("admin GET", e.must(200, "GET", path, nil).obj(t), 3.0, "Secret", []any{1.0, 3.0}, 4.0)
	member := func(method, path string, body any) resp {
		t.Helper()
		r := e.as(e.member, method, path, body)
		if r.Status != 200 {
			t.Fatalf("%s %s: %d %s", method, path, r.Status, r.Raw)
		}
		if strings.Contains(string(r.Raw), "Secret") {
			t.Fatalf("%s %s shows the hidden title: %s", method, path, r.Raw)
		}
		return r
	}
	check("member GET", member("GET", path, nil).obj(t), nil, nil, []any{1.0}, 1.0)
	check("member PATCH", member("PATCH", path, M{}).obj(t), nil, nil, []any{1.0}, 1.0)
	check("member list", decodePage(t, member("GET", "/api/v1/blueprints/dep/entities", nil)).Entities[0], nil, nil, []any{1.0}, 1.0)
	byDep := M{"query": M{"combinator": "and", "rules": []M{{"property": "$blueprint", "operator": "=", "value": "dep"}}}}
	check("member search", decodePage(t, member("POST", "/api/v1/entities/search", byDep)).Entities[0], nil, nil, []any{1.0}, 1.0)
	member("GET", path+"/history", nil)

	// Matching and sorting on a mirror see what the reader sees.
	for _, rule := range []M{
		{"property": "serviceTier", "operator": "=", "value": 3},
		{"property": "serviceTitle", "operator": "beginsWith", "value": "Sec"},
		{"property": "usesTier", "operator": "contains", "value": 3},
		{"property": "tierPlusOne", "operator": "=", "value": 4},
	} {
		q := M{"query": M{"combinator": "and", "rules": []M{rule}}}
		if p := decodePage(t, e.must(200, "POST", "/api/v1/entities/search", q)); p.Total != 1 {
			t.Fatalf("admin search %v: %d", rule, p.Total)
		}
		if p := decodePage(t, member("POST", "/api/v1/entities/search", q)); p.Total != 0 {
			t.Fatalf("member search %v matched through a hidden entity: %v", rule, p.Entities)
		}
	}
}

// TestGraphDoesNotRevealHiddenEntities: the related endpoint and relatedTo
// rules neither show nor walk through an entity the reader may not read,
// nor start from one.
func TestGraphDoesNotRevealHiddenEntities(t *testing.T) {
	t.Parallel()
	e := newHiddenEnv(t)
	// a (mine) → h (hidden) → c (mine); a → b (mine)
	e.must(201, "PUT", "/api/v1/blueprints/chain", M{
		"relations":   M{"next": M{"target": "chain", "many": true}},
		"permissions": M{"read": M{"ownedOnly": true}},
	})
	mine, other := []string{"payments"}, []string{"other"}
	e.must(200, "POST", "/api/v1/entities/bulk", M{"entities": []M{
		{"blueprint": "chain", "identifier": "c", "team": mine},
		{"blueprint": "chain", "identifier": "h", "team": other, "relations": M{"next": []string{"c"}}},
		{"blueprint": "chain", "identifier": "b", "team": mine},
		{"blueprint": "chain", "identifier": "a", "team": mine, "relations": M{"next": []string{"h", "b"}}},
	}})
	// related lists the hops' entities and vias, in order.
	related := func(tok, id, dir string) string {
		t.Helper()
		r := e.as(tok, "GET", "/api/v1/blueprints/chain/entities/"+id+"/related?depth=3&direction="+dir, nil)
		if r.Status != 200 {
			t.Fatalf("related %s: %d %s", id, r.Status, r.Raw)
		}
		var hops []string
		for _, h := range r.obj(t)[dir].([]any) {
			hop := h.(M)
			if via := hop["via"].(M)["identifier"]; via != id && !strings.Contains(string(r.Raw), `"ref":{"blueprint":"chain","identifier":"`+via.(string)+`"}`) {
				t.Fatalf("related %s names via %s, not a hop: %s", id, via, r.Raw)
			}
			hops = append(hops, hop["ref"].(M)["identifier"].(string))
		}
		return strings.Join(hops, " ")
	}
	for _, x := range []struct {
		id, dir       string
		admin, member string
	}{
		{"a", "downstream", "h b c", "b"}, // c only through h, which no hop may name as via
		{"c", "upstream", "h a", ""},
		{"b", "upstream", "a", "a"},
	} {
		if got := related(token, x.id, x.dir); got != x.admin {
			t.Fatalf("admin related %s %s: %q", x.id, x.dir, got)
		}
		if got := related(e.member, x.id, x.dir); got != x.member {
			t.Fatalf("member related %s %s: %q, want %q", x.id, x.dir, got, x.member)
		}
	}
	checkError(t, e.as(e.member, "GET", "/api/v1/blueprints/chain/entities/h/related", nil), http.StatusNotFound, "not_found", nil)

	relatedTo := func(tok, id, dir string) []string {
		t.Helper()
		q := M{"query": M{"combinator": "and", "rules": []M{{"operator": "relatedTo", "blueprint": "chain", "identifier": id, "direction": dir, "depth": 3}}}}
		r := e.as(tok, "POST", "/api/v1/entities/search", q)
		if r.Status != 200 {
			t.Fatalf("relatedTo %s: %d %s", id, r.Status, r.Raw)
		}
		return identifiers(decodePage(t, r))
	}
	for _, x := range []struct {
		id, dir       string
		admin, member string
	}{
		{"a", "downstream", "b c h", "b"}, // what a points at, c through h
		{"h", "downstream", "c", ""},      // from a hidden entity: nothing
		{"c", "upstream", "a h", ""},      // what points at c: only through h
		{"ghost", "upstream", "", ""},     // from a missing one: nothing either
		{"b", "upstream", "a", "a"},       // visible all the way
	} {
		if got := strings.Join(relatedTo(token, x.id, x.dir), " "); got != x.admin {
			t.Fatalf("admin relatedTo %s %s: %q", x.id, x.dir, got)
		}
		if got := strings.Join(relatedTo(e.member, x.id, x.dir), " "); got != x.member {
			t.Fatalf("member relatedTo %s %s: %q, want %q", x.id, x.dir, got, x.member)
		}
	}
}
