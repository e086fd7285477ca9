package integrations_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/host/integrations"
)

// trespasserPkg is a hostile plugin that tries to write and read outside
// its lane (see its doc comment).
const trespasserPkg = "./host/integrations/testdata/trespasser"

// installTrespasser installs the hostile plugin as id with config (its
// resync items) and the extra spec fields.
func (p *portal) installTrespasser(id string, config, extra map[string]any) {
	p.t.Helper()
	spec := map[string]any{"plugin": "trespasser", "config": config, "limits": map[string]any{"memoryMiB": 64, "timeoutMs": 10000}}
	for k, v := range extra {
		spec[k] = v
	}
	if r := p.do("PUT", "/api/v1/integrations/"+id, spec); r.status != http.StatusCreated && r.status != http.StatusOK {
		p.t.Fatalf("install %s: %d %s", id, r.status, r.body)
	}
}

// entity returns an entity read as the admin, nil when absent.
func (p *portal) entity(bp, id string) *catalog.Entity {
	p.t.Helper()
	r := p.do("GET", "/api/v1/blueprints/"+bp+"/entities/"+id, nil)
	if r.status == http.StatusNotFound {
		return nil
	}
	if r.status != http.StatusOK {
		p.t.Fatalf("get %s/%s: %d %s", bp, id, r.status, r.body)
	}
	var e catalog.Entity
	r.json(p.t, &e)
	return &e
}

// seed creates blueprints (PUT documents) and entities as the admin. The
// portal without access gets a _user blueprint like the built-in one.
func (p *portal) seed(blueprints []map[string]any, entities ...*catalog.Entity) {
	p.t.Helper()
	if r := p.do("GET", "/api/v1/blueprints/_user", nil); r.status == http.StatusNotFound {
		blueprints = append(blueprints, map[string]any{"identifier": "_user", "schema": map[string]any{"properties": map[string]any{
			"name": map[string]any{"type": "string"}, "role": map[string]any{"type": "string"}}}})
	}
	for _, bp := range blueprints {
		p.must(http.StatusCreated, "PUT", "/api/v1/blueprints/"+bp["identifier"].(string), bp)
	}
	for _, e := range entities {
		p.must(http.StatusCreated, "PUT", "/api/v1/blueprints/"+e.Blueprint+"/entities/"+e.Identifier, e)
	}
}

// hasError reports whether errs refuses bp/id with a message containing
// want ("lane": outside the installation's lane, whichever check refused).
func hasError(errs []integrations.SyncError, bp, id, want string) bool {
	for _, e := range errs {
		if e.Blueprint == bp && e.Identifier == id && strings.Contains(e.Message, want) {
			return true
		}
	}
	return false
}

// portals runs f against a portal without the access layer (the host's
// checks alone) and one wired as in production (plus the Authorizer's).
func portals(t *testing.T, f func(t *testing.T, p *portal)) {
	for _, tt := range []struct {
		name string
		new  func(testing.TB) *portal
	}{
		{"host", func(t testing.TB) *portal { return newPortal(t, nil, integrations.Options{}) }},
		{"host and authorizer", newAccessPortal},
	} {
		t.Run(tt.name, func(t *testing.T) { f(t, tt.new(t)) })
	}
}

// TestHostilePluginCannotCreateAdmin: a plugin whose default mapping
// makes admin _user entities creates none; the sync says so and writes
// the rest.
func TestHostilePluginCannotCreateAdmin(t *testing.T) {
	portals(t, func(t *testing.T, p *portal) {
		p.seed(nil)
		p.publish(trespasserPkg)
		p.installTrespasser("evil", map[string]any{
			"users": []map[string]any{{"email": "mallory@example.com"}},
			"own":   []map[string]any{{"id": "o1", "name": "mine"}},
		}, nil)
		s := p.resync("evil")
		if !hasError(s.Errors, "_user", "mallory@example.com", "lane") {
			t.Fatalf("sync errors %+v do not refuse the _user write", s.Errors)
		}
		if e := p.entity("_user", "mallory@example.com"); e != nil {
			t.Fatalf("the plugin created a user: %+v", e)
		}
		if s.Upserts != 1 || p.entity("trespass", "o1") == nil {
			t.Fatalf("the rest of the sync did not proceed: %+v", s)
		}
	})
}

// TestPluginWritesOnlyItsLane: a plugin writing or deleting into another
// blueprint, a protected one or another installation's entities fails item
// by item (resync, webhook and act); an admin-listed blueprint is writable.
func TestPluginWritesOnlyItsLane(t *testing.T) {
	p := newAccessPortal(t)
	api := newStandIn(t, 3)
	p.publish(examplePkg)
	p.install("items", "example", api, nil)
	p.resync("items")
	p.seed([]map[string]any{{"identifier": "service", "schema": map[string]any{"properties": map[string]any{"name": map[string]any{"type": "string"}}}}},
		&catalog.Entity{Identifier: "web", Blueprint: "service", Properties: map[string]any{"name": "Web"}})
	p.publish(trespasserPkg)

	loot := map[string]any{"loot": []map[string]any{
		{"id": "web", "bp": "service", "name": "pwned"},
		{"id": "item-00000", "bp": "exampleItem", "name": "pwned"},
	}}
	p.installTrespasser("evil", loot, nil)
	s := p.resync("evil")
	if !hasError(s.Errors, "service", "web", "lane") || !hasError(s.Errors, "exampleItem", "item-00000", "lane") {
		t.Fatalf("sync errors %+v", s.Errors)
	}
	if e := p.entity("service", "web"); e.Properties["name"] != "Web" {
		t.Fatalf("service/web changed: %+v", e)
	}

	// Listed by an admin, service becomes writable; the other
	// installation's item stays out of reach.
	p.installTrespasser("evil", loot, map[string]any{"blueprints": []string{"service", "exampleItem"}})
	s = p.resync("evil")
	if e := p.entity("service", "web"); e.Properties["name"] != "pwned" || e.Datasource != "integration:evil" {
		t.Fatalf("admin-listed blueprint not written: %+v (sync %+v)", e, s)
	}
	if !hasError(s.Errors, "exampleItem", "item-00000", "owned by integration:items") {
		t.Fatalf("sync errors %+v do not refuse another installation's entity", s.Errors)
	}
	if e := p.entity("exampleItem", "item-00000"); e.Title != "Item 0" || e.Datasource != "integration:items" {
		t.Fatalf("another installation's entity changed: %+v", e)
	}
	var st integrations.Status
	p.must(http.StatusOK, "GET", "/api/v1/integrations/evil", nil).json(t, &st)
	if strings.Join(st.Blueprints, ",") != "service,exampleItem" {
		t.Fatalf("status blueprints = %v", st.Blueprints)
	}

	// Webhook: no delete of another installation's entity, no write to a
	// protected blueprint.
	hook := []byte(`{"deletes": [{"kind": "loot", "item": {"id": "item-00001", "bp": "exampleItem"}}],
		"upserts": [{"kind": "loot", "item": {"id": "root", "bp": "_team", "name": "Root"}},
		            {"kind": "user", "item": {"email": "mallory@example.com"}}]}`)
	p.do("POST", "/api/v1/integrations/evil/webhook", hook, "Authorization", "")
	if p.entity("exampleItem", "item-00001") == nil || p.entity("_team", "root") != nil || p.entity("_user", "mallory@example.com") != nil {
		t.Fatal("a webhook delivery left the lane")
	}

	// Act: the same, and the result says why.
	var res integrations.ActResult
	p.must(http.StatusOK, "POST", "/api/v1/integrations/evil/actions/apply", map[string]any{"inputs": json.RawMessage(hook)}).json(t, &res)
	if len(res.Deleted) != 0 || len(res.Upserted) != 0 || !hasError(res.Errors, "exampleItem", "item-00001", "owned by integration:items") ||
		!hasError(res.Errors, "_team", "root", "lane") || !hasError(res.Errors, "_user", "mallory@example.com", "lane") {
		t.Fatalf("act result %+v", res)
	}
	if p.entity("exampleItem", "item-00001") == nil || p.entity("_team", "root") != nil {
		t.Fatal("an action left the lane")
	}

	// Reconciliation deletes only the installation's own entities.
	p.installTrespasser("evil", map[string]any{}, map[string]any{"blueprints": []string{"service", "exampleItem"}, "deletionThreshold": 1})
	s = p.resync("evil")
	if p.entity("service", "web") != nil || len(p.search("items")) != 3 || s.Deletes != 1 {
		t.Fatalf("reconcile: %+v; items left %d", s, len(p.search("items")))
	}
}

// TestMappingOverrideNeedsListedBlueprint: an admin's mapping override may
// target another blueprint only when the installation lists it.
func TestMappingOverrideNeedsListedBlueprint(t *testing.T) {
	p := newPortal(t, nil, integrations.Options{})
	api := newStandIn(t, 2)
	p.seed([]map[string]any{{"identifier": "service", "schema": map[string]any{"properties": map[string]any{"name": map[string]any{"type": "string"}}}}})
	p.publish(examplePkg)
	override := map[string]any{"resources": []map[string]any{{"kind": "item",
		"entity": map[string]any{"identifier": ".id", "blueprint": `"service"`, "properties": map[string]string{"name": ".name"}}}}}
	p.install("items", "example", api, map[string]any{"mapping": override})
	s := p.resync("items")
	if s.ErrorCount != 2 || !hasError(s.Errors, "service", "item-00000", "lane") || p.entity("service", "item-00000") != nil {
		t.Fatalf("unlisted override target written: %+v", s)
	}
	p.install("items", "example", api, map[string]any{"mapping": override, "blueprints": []string{"service"}})
	if s := p.resync("items"); s.Upserts != 2 || p.entity("service", "item-00001") == nil {
		t.Fatalf("listed override target not written: %+v", s)
	}
}

// TestCatalogGetReadsOnlyItsLane: portico_catalog_get answers null for
// users, other blueprints and read-restricted entities it did not write.
func TestCatalogGetReadsOnlyItsLane(t *testing.T) {
	portals(t, func(t *testing.T, p *portal) {
		p.seed([]map[string]any{
			{"identifier": "service"},
			{"identifier": "vault", "schema": map[string]any{"properties": map[string]any{"name": map[string]any{"type": "string"}}},
				"permissions": map[string]any{"read": map[string]any{"ownedOnly": true}}},
		},
			&catalog.Entity{Identifier: "alice@example.com", Blueprint: "_user", Properties: map[string]any{"name": "Alice", "role": "admin"}},
			&catalog.Entity{Identifier: "web", Blueprint: "service"},
			&catalog.Entity{Identifier: "secret", Blueprint: "vault"})
		p.publish(trespasserPkg)
		p.installTrespasser("evil", map[string]any{
			"own":  []map[string]any{{"id": "o1", "name": "mine"}},
			"loot": []map[string]any{{"id": "mine", "bp": "vault", "name": "mine"}},
		}, map[string]any{"blueprints": []string{"vault"}})
		if s := p.resync("evil"); s.Upserts != 2 {
			t.Fatalf("sync %+v", s)
		}
		for _, tt := range []struct {
			bp, id string
			found  bool
		}{
			{"_user", "alice@example.com", false},
			{"service", "web", false},   // outside the lane
			{"vault", "secret", false},  // read.ownedOnly, written by someone else
			{"vault", "nothing", false}, // absent: the same answer
			{"vault", "mine", true},
			{"trespass", "o1", true},
		} {
			var res integrations.ActResult
			p.must(http.StatusOK, "POST", "/api/v1/integrations/evil/actions/peek", map[string]any{
				"inputs": map[string]string{"blueprint": tt.bp, "identifier": tt.id}}).json(t, &res)
			var out struct {
				Entity *catalog.Entity `json:"entity"`
			}
			if err := json.Unmarshal(res.Outputs, &out); err != nil {
				t.Fatalf("peek %s/%s: %s", tt.bp, tt.id, res.Outputs)
			}
			if (out.Entity != nil) != tt.found || tt.found && out.Entity.Identifier != tt.id {
				t.Errorf("peek %s/%s = %s, want found=%v", tt.bp, tt.id, res.Outputs, tt.found)
			}
		}
	})
}

// TestBlueprintsListIsAdminOnly: only an admin widens an installation's
// lane, and never to a protected blueprint.
func TestBlueprintsListIsAdminOnly(t *testing.T) {
	p := newAccessPortal(t)
	p.publish(trespasserPkg)
	p.must(http.StatusCreated, "PUT", "/api/v1/blueprints/_user/entities/m@example.com", map[string]any{"properties": map[string]any{"name": "M", "role": "member"}})
	var tok struct {
		Token string `json:"token"`
	}
	p.must(http.StatusCreated, "POST", "/api/v1/tokens", map[string]any{"name": "t", "user": "m@example.com", "scopes": []string{"read", "write"}}).json(t, &tok)

	spec := map[string]any{"plugin": "trespasser", "blueprints": []string{"service"}}
	if r := p.do("PUT", "/api/v1/integrations/evil", spec, "Authorization", "Bearer "+tok.Token); r.status != http.StatusForbidden {
		t.Fatalf("member lists blueprints: %d %s", r.status, r.body)
	}
	p.must(http.StatusNotFound, "GET", "/api/v1/integrations/evil", nil)

	// The manager refuses it too, whoever calls it.
	member := catalog.WithActor(context.Background(), catalog.Actor{ID: "m@example.com", Role: catalog.RoleMember})
	if _, _, err := p.mgr.Put(member, "evil", integrations.Spec{Plugin: "trespasser", Blueprints: []string{"service"}}); !errors.Is(err, catalog.ErrForbidden) {
		t.Fatalf("manager put as a member: %v, want forbidden", err)
	}

	r := p.do("PUT", "/api/v1/integrations/evil", map[string]any{"plugin": "trespasser", "blueprints": []string{"service", "_user"}})
	var e errorBody
	r.json(t, &e)
	if r.status != http.StatusUnprocessableEntity || len(e.Error.Details) != 1 || e.Error.Details[0].Path != "/blueprints/1" {
		t.Fatalf("protected blueprint listed: %d %s", r.status, r.body)
	}
	p.must(http.StatusNotFound, "GET", "/api/v1/integrations/evil", nil)
}
