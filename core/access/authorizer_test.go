package access_test

import (
	"context"
	"errors"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/access/redisaccess"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/catalog/rediscatalog"
)

// newCatalog returns a catalog with the access layer as its Authorizer,
// the built-in blueprints, a "service" blueprint and a "vault" blueprint
// whose entities only their owners read.
func newCatalog(t *testing.T) *catalog.Service {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	cat := catalog.NewService(rediscatalog.New(rdb, rediscatalog.Options{}), catalog.Options{Authorizer: access.Authorizer{}})
	acc := access.NewService(cat, redisaccess.New(rdb, redisaccess.Options{}), access.Options{})
	ctx := context.Background()
	if err := acc.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	sys := catalog.WithActor(ctx, catalog.SystemActor("test"))
	for _, bp := range []*catalog.Blueprint{
		{Identifier: "service"},
		{Identifier: "vault", Permissions: &catalog.Permissions{Read: &catalog.ReadPolicy{OwnedOnly: true}}},
	} {
		if _, _, err := cat.PutBlueprint(sys, bp, false); err != nil {
			t.Fatal(err)
		}
	}
	return cat
}

// TestNoActorFailsClosed performs writes and reads with a context nobody
// authenticated: every write is refused, every read comes back empty,
// while the system actor may do both.
func TestNoActorFailsClosed(t *testing.T) {
	cat := newCatalog(t)
	anon := context.Background()
	sys := catalog.WithActor(anon, catalog.SystemActor("test"))
	web := &catalog.Entity{Identifier: "web", Blueprint: "service"}

	if _, _, err := cat.PutEntity(anon, web, false); !errors.Is(err, catalog.ErrForbidden) {
		t.Fatalf("write without an actor: %v, want forbidden", err)
	}
	admin := &catalog.Entity{Identifier: "mallory@example.com", Blueprint: access.UserBlueprint, Properties: map[string]any{"role": "admin"}}
	if _, _, err := cat.PutEntity(anon, admin, false); !errors.Is(err, catalog.ErrForbidden) {
		t.Fatalf("admin user without an actor: %v, want forbidden", err)
	}
	if _, _, err := cat.PutBlueprint(anon, &catalog.Blueprint{Identifier: "sneaky"}, false); !errors.Is(err, catalog.ErrForbidden) {
		t.Fatalf("blueprint without an actor: %v, want forbidden", err)
	}
	if _, err := cat.GetEntity(sys, web.Ref()); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("a refused write left %v", err)
	}

	if _, _, err := cat.PutEntity(sys, &catalog.Entity{Identifier: "web", Blueprint: "service"}, false); err != nil {
		t.Fatalf("system write: %v", err)
	}
	if _, err := cat.GetEntity(anon, web.Ref()); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("read without an actor: %v, want not found", err)
	}
	page, err := cat.Search(anon, catalog.SearchQuery{})
	if err != nil || page.Total != 0 {
		t.Fatalf("search without an actor: %v total %d, want nothing", err, page.Total)
	}
	if _, err := cat.DeleteEntity(anon, web.Ref(), false); !errors.Is(err, catalog.ErrForbidden) && !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("delete without an actor: %v, want refused", err)
	}
	if _, err := cat.GetEntity(sys, web.Ref()); err != nil {
		t.Fatalf("system read after a refused delete: %v", err)
	}
}

// TestIntegrationLane writes, deletes and reads as an integration
// installation inside and outside its lane.
func TestIntegrationLane(t *testing.T) {
	cat := newCatalog(t)
	ctx := context.Background()
	sys := catalog.WithActor(ctx, catalog.SystemActor("test"))
	// _user is listed but protected: never in a lane.
	evil := catalog.WithActor(ctx, catalog.IntegrationActor("integration:evil", []string{"service", "vault", access.UserBlueprint}))
	other := catalog.WithActor(ctx, catalog.IntegrationActor("integration:other", []string{"service"}))
	for _, e := range []struct {
		ctx context.Context
		e   *catalog.Entity
	}{
		{other, &catalog.Entity{Identifier: "theirs", Blueprint: "service"}},
		{sys, &catalog.Entity{Identifier: "by-hand", Blueprint: "service"}},
		{sys, &catalog.Entity{Identifier: "secret", Blueprint: "vault"}},
		{evil, &catalog.Entity{Identifier: "mine", Blueprint: "vault"}},
	} {
		if _, _, err := cat.PutEntity(e.ctx, e.e, false); err != nil {
			t.Fatalf("seed %s: %v", e.e.Identifier, err)
		}
	}

	writes := []struct {
		name string
		e    *catalog.Entity
		ok   bool
	}{
		{"new entity of its lane", &catalog.Entity{Identifier: "new", Blueprint: "service"}, true},
		{"entity nobody's installation owns", &catalog.Entity{Identifier: "by-hand", Blueprint: "service", Title: "adopted"}, true},
		{"another installation's entity", &catalog.Entity{Identifier: "theirs", Blueprint: "service", Title: "stolen"}, false},
		{"admin user", &catalog.Entity{Identifier: "mallory@example.com", Blueprint: access.UserBlueprint, Properties: map[string]any{"role": "admin"}}, false},
		{"team", &catalog.Entity{Identifier: "root", Blueprint: access.TeamBlueprint}, false},
	}
	for _, tt := range writes {
		t.Run("write "+tt.name, func(t *testing.T) {
			_, _, err := cat.PutEntity(evil, tt.e, false)
			if tt.ok != (err == nil) || err != nil && !errors.Is(err, catalog.ErrForbidden) {
				t.Fatalf("write: %v, want ok=%v", err, tt.ok)
			}
		})
	}
	if e, _ := cat.GetEntity(sys, catalog.Ref{Blueprint: "service", Identifier: "theirs"}); e.Title != "" || e.Datasource != "integration:other" {
		t.Fatalf("another installation's entity changed: %+v", e)
	}
	if _, err := cat.DeleteEntity(evil, catalog.Ref{Blueprint: "service", Identifier: "theirs"}, false); !errors.Is(err, catalog.ErrForbidden) {
		t.Fatalf("delete another installation's entity: %v, want forbidden", err)
	}
	if _, _, err := cat.PutBlueprint(evil, &catalog.Blueprint{Identifier: "service", Title: "mine now"}, false); !errors.Is(err, catalog.ErrForbidden) {
		t.Fatalf("integration changes a blueprint: %v, want forbidden", err)
	}

	reads := []struct {
		ref  catalog.Ref
		seen bool
	}{
		{catalog.Ref{Blueprint: "service", Identifier: "theirs"}, true},
		{catalog.Ref{Blueprint: "vault", Identifier: "mine"}, true},
		{catalog.Ref{Blueprint: "vault", Identifier: "secret"}, false}, // read.ownedOnly, not written by it
	}
	for _, tt := range reads {
		if _, err := cat.GetEntity(evil, tt.ref); (err == nil) != tt.seen {
			t.Errorf("read %v: %v, want seen=%v", tt.ref, err, tt.seen)
		}
	}
	if _, err := cat.GetEntity(other, catalog.Ref{Blueprint: "vault", Identifier: "mine"}); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("read outside the lane: %v, want not found", err)
	}
}
