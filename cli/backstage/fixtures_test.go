package backstage

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/portico-dev/portico/core/catalog"
)

// fixtures is the Backstage example catalog, copied into testdata (see
// its SOURCES.md).
var fixtures = filepath.Join("testdata", "example-catalog")

// want is every entity of the example catalog reached from all.yaml and
// acme-corp.yaml with every relation it states, written down by reading
// the files (not by running the import): blueprint/identifier →
// relation → targets.
var want = map[string]map[string][]string{
	// apis/*.yaml (hello-world-api.yaml is listed but absent)
	"api/backstage-mcp-server":   {"owner": {"team-a"}},
	"api/local-inference-server": {"owner": {"team-a"}},
	"api/hello-world-trpc":       {"owner": {"team-c"}},
	"api/petstore":               {"owner": {"team-c"}},
	"api/petstore-webhook":       {"owner": {"team-c"}},
	"api/spotify":                {"owner": {"team-a"}},
	"api/streetlights":           {"owner": {"team-c"}},
	"api/starwars-graphql":       {"owner": {"team-b"}},
	"api/wayback-archive":        {"owner": {"team-a"}},
	"api/wayback-search":         {"owner": {"team-a"}},
	// components/*.yaml
	"component/artist-lookup": {"owner": {"team-a"}, "system": {"artist-engagement-portal"}},
	// providesApis hello-world: no such API (a warning)
	"component/petstore": {"owner": {"team-c"}, "providesApis": {"petstore", "streetlights"}},
	// owner: guest defaults to group:default/guest, which does not exist (a warning)
	"component/playback-order":            {},
	"component/podcast-api":               {"owner": {"team-b"}, "system": {"podcast"}},
	"component/queue-proxy":               {"owner": {"team-b"}, "system": {"podcast"}},
	"component/searcher":                  {"ownerUser": {"guest"}},
	"component/playback-sdk":              {"owner": {"team-c"}, "system": {"audio-playback"}},
	"component/www-artist":                {"owner": {"team-a"}, "system": {"artist-engagement-portal"}},
	"component/shuffle-api":               {"ownerUser": {"guest"}, "system": {"audio-playback"}},
	"component/wayback-archive":           {"owner": {"team-a"}, "providesApis": {"wayback-archive"}},
	"component/wayback-archive-ingestion": {"owner": {"team-d"}, "subcomponentOf": {"wayback-archive"}},
	"component/wayback-archive-storage":   {"owner": {"team-a"}, "subcomponentOf": {"wayback-archive"}},
	"component/wayback-search":            {"owner": {"team-a"}, "providesApis": {"wayback-search"}, "consumesApis": {"wayback-archive"}},
	// domains/*.yaml
	"domain/artists":  {"owner": {"team-a"}, "subdomainOf": {"audio"}},
	"domain/audio":    {"owner": {"acme-corp"}},
	"domain/playback": {"ownerUser": {"frank.tiernan"}},
	// resources/*.yaml
	"resource/artists-db": {"owner": {"team-a"}, "system": {"artist-engagement-portal"}},
	// systems/*.yaml
	"system/artist-engagement-portal": {"owner": {"team-a"}, "domain": {"artists"}},
	"system/audio-playback":           {"owner": {"team-c"}, "domain": {"playback"}},
	"system/podcast":                  {"owner": {"team-b"}, "domain": {"playback"}},
	// acme/*.yaml
	"group/acme-corp":      {"children": {"infrastructure"}},
	"group/infrastructure": {"parent": {"acme-corp"}, "children": {"backstage", "boxoffice"}},
	"group/backstage":      {"parent": {"infrastructure"}, "children": {"team-a", "team-b"}},
	"group/boxoffice":      {"parent": {"infrastructure"}, "children": {"team-c", "team-d"}},
	"group/team-a":         {"parent": {"backstage"}},
	"group/team-b":         {"parent": {"backstage"}},
	"group/team-c":         {"parent": {"boxoffice"}},
	"group/team-d":         {"parent": {"boxoffice"}},
	"group/team-e":         {"parent": {"boxoffice"}},
	"user/breanna.davison": {"memberOf": {"team-a"}},
	"user/janelle.dawe":    {"memberOf": {"team-a"}},
	"user/nigel.manning":   {"memberOf": {"team-a"}},
	"user/guest":           {"memberOf": {"team-a"}},
	// namespace development; memberOf group:default/team-a
	"user/development/guest": {"memberOf": {"team-a"}},
	"user/amelia.park":       {"memberOf": {"team-b"}},
	"user/colette.brock":     {"memberOf": {"team-b"}},
	"user/jenny.doe":         {"memberOf": {"team-b"}},
	"user/jonathon.page":     {"memberOf": {"team-b"}},
	"user/justine.barrow":    {"memberOf": {"team-b"}},
	"user/calum.leavy":       {"memberOf": {"team-c"}},
	"user/frank.tiernan":     {"memberOf": {"team-c"}},
	"user/peadar.macmahon":   {"memberOf": {"team-c"}},
	"user/sarah.gilroy":      {"memberOf": {"team-c"}},
	"user/tara.macgovern":    {"memberOf": {"team-c"}},
	"user/eva.macdowell":     {"memberOf": {"team-d"}},
	"user/lucy.sheehan":      {"memberOf": {"team-d"}},
}

// TestExampleCatalog loads the example catalog through its Location
// files and checks every entity, every relation and every warning.
func TestExampleCatalog(t *testing.T) {
	set, err := Load(context.Background(), []string{filepath.Join(fixtures, "all.yaml"), filepath.Join(fixtures, "acme-corp.yaml")}, Read)
	if err != nil {
		t.Fatal(err)
	}
	imp := Map(set, "")
	if len(imp.Pending) != 2 {
		t.Fatalf("pending references: %+v, want hello-world and guest", imp.Pending)
	}
	warnings := append(imp.Warnings, imp.Keep(nil)...)

	got := map[string]map[string][]string{}
	for _, e := range imp.Entities {
		rels := map[string][]string{}
		for name, v := range e.Relations {
			rels[name] = catalog.RelationIDs(v)
		}
		got[e.Blueprint+"/"+e.Identifier] = rels
	}
	for key, rels := range want {
		if g, ok := got[key]; !ok {
			t.Errorf("%s: not imported", key)
		} else if !reflect.DeepEqual(g, rels) {
			t.Errorf("%s: relations %v, want %v", key, g, rels)
		}
	}
	for key := range got {
		if _, ok := want[key]; !ok {
			t.Errorf("%s: imported, but not in the catalog", key)
		}
	}
	if len(imp.Entities) != 56 {
		t.Errorf("%d entities, want 56", len(imp.Entities))
	}

	wantWarnings := []string{
		"location " + filepath.Join(fixtures, "apis", "hello-world-api.yaml") + ": open ",
		filepath.Join(fixtures, "components", "petstore-component.yaml") + `#1: component:default/petstore spec.providesApis: "hello-world": no such entity (api hello-world)`,
		filepath.Join(fixtures, "components", "playback-order-component.yaml") + `#1: component:default/playback-order spec.owner: "guest": no such entity (group guest)`,
	}
	if len(warnings) != len(wantWarnings) {
		t.Fatalf("warnings:\n%s", strings.Join(warnings, "\n"))
	}
	for i, w := range wantWarnings {
		if !strings.HasPrefix(warnings[i], w) {
			t.Errorf("warning %d: %q\nwant it to start with %q", i, warnings[i], w)
		}
	}
}

// TestExampleEntityFields checks the properties and titles of a few
// entities of every kind.
func TestExampleEntityFields(t *testing.T) {
	set, err := Load(context.Background(), []string{filepath.Join(fixtures, "all.yaml"), filepath.Join(fixtures, "acme-corp.yaml")}, Read)
	if err != nil {
		t.Fatal(err)
	}
	imp := Map(set, "bs-")
	byKey := map[string]*catalog.Entity{}
	for _, e := range imp.Entities {
		byKey[e.Blueprint+"/"+e.Identifier] = e
	}
	tests := []struct {
		key, title string
		props      map[string]any
	}{
		{"bs-component/shuffle-api", "", map[string]any{"entityRef": "component:default/shuffle-api", "description": "Shuffle API",
			"type": "service", "lifecycle": "production", "tags": []any{"go"},
			"labels": map[string]any{"goVersion": "go1.15.3", "category": "music"}}},
		{"bs-domain/artists", "Artists", nil},
		{"bs-group/backstage", "Backstage", map[string]any{"entityRef": "group:default/backstage", "description": "The backstage sub-department",
			"type": "sub-department", "email": "backstage@example.com",
			"picture": "https://api.dicebear.com/7.x/identicon/svg?seed=Fluffy&backgroundColor=ffdfbf"}},
		{"bs-user/development/guest", "Guest User", map[string]any{"entityRef": "user:development/guest", "email": "guest@example.com"}},
		{"bs-api/wayback-search", "", map[string]any{"entityRef": "api:default/wayback-search", "type": "openapi", "lifecycle": "production",
			"description":   "Search API for the wayback machine",
			"definitionRef": "$text https://github.com/APIs-guru/openapi-directory/blob/main/APIs/archive.org/search/1.0.0/openapi.yaml"}},
	}
	for _, tt := range tests {
		e := byKey[tt.key]
		if e == nil {
			t.Errorf("%s: not imported", tt.key)
			continue
		}
		if e.Title != tt.title {
			t.Errorf("%s: title %q, want %q", tt.key, e.Title, tt.title)
		}
		if tt.props != nil && !reflect.DeepEqual(e.Properties, tt.props) {
			t.Errorf("%s: properties\n got %v\nwant %v", tt.key, e.Properties, tt.props)
		}
	}
	links, _ := byKey["bs-component/artist-lookup"].Properties["links"].([]any)
	if len(links) != 7 || fmt.Sprint(links[0]) != "map[icon:user title:Examples Users url:https://example.com/user]" {
		t.Errorf("artist-lookup links: %v", links)
	}
	if def, _ := byKey["bs-api/petstore"].Properties["definition"].(string); !strings.HasPrefix(def, "openapi: \"3.0.0\"") {
		t.Errorf("petstore definition: %.40q", def)
	}
	// Every entity validates against the blueprint the import creates.
	bps := map[string]*catalog.CompiledBlueprint{}
	for _, bp := range Blueprints("bs-") {
		c, err := catalog.CompileBlueprint(bp)
		if err != nil {
			t.Fatalf("blueprint %s: %v", bp.Identifier, err)
		}
		bps[bp.Identifier] = c
	}
	for _, e := range imp.Entities {
		for name := range e.Relations {
			if _, ok := bps[e.Blueprint].Blueprint.Relations[name]; !ok {
				t.Errorf("%s/%s: relation %s not in the blueprint", e.Blueprint, e.Identifier, name)
			}
		}
		if err := bps[e.Blueprint].ValidateEntity(e); err != nil {
			t.Errorf("%s/%s: %v", e.Blueprint, e.Identifier, err)
		}
	}
	if !slices.ContainsFunc(imp.Entities, func(e *catalog.Entity) bool { return e.Blueprint == "bs-user" }) {
		t.Error("no bs-user entities")
	}
}
