package integrationtests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// backstageFixtures is the Backstage example catalog the cli/backstage
// tests hold (a copy of shared/fixtures/backstage, see its SOURCES.md).
func backstageFixtures(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "cli", "backstage", "testdata", "example-catalog"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// cliOut runs a client command of the real binary against p (cli in
// cli_test.go); it returns stdout, stderr and the exit code.
func cliOut(t *testing.T, p *proc, args ...string) (string, string, int) {
	t.Helper()
	r := cli(t, p, args...)
	return r.stdout, r.stderr, r.code
}

// relations reads an entity's relations through the API, each as a
// sorted list of identifiers.
func relations(p *proc, bp, id string) map[string][]string {
	var e struct {
		Relations map[string]any `json:"relations"`
	}
	if err := json.Unmarshal(p.must("GET", entityPath(bp, id), nil, 200), &e); err != nil {
		p.t.Fatal(err)
	}
	out := map[string][]string{}
	for name, v := range e.Relations {
		switch t := v.(type) {
		case string:
			out[name] = []string{t}
		case []any:
			for _, x := range t {
				out[name] = append(out[name], x.(string))
			}
			sort.Strings(out[name])
		}
	}
	return out
}

func countBlueprint(p *proc, bp string) int {
	out := p.must("GET", "/api/v1/blueprints/"+bp+"/entities?limit=1", nil, 200)
	var res struct{ Total int }
	if err := json.Unmarshal(out, &res); err != nil {
		p.t.Fatal(err)
	}
	return res.Total
}

// TestCLIImportBackstage: the example catalog imported by the real binary
// into a real `portico dev`, from the files and from a URL; every entity
// and a relation of every kind checked through the API; a second import
// changes nothing.
func TestCLIImportBackstage(t *testing.T) {
	fixtures := backstageFixtures(t)
	srv := httptest.NewServer(http.FileServer(http.Dir(fixtures)))
	defer srv.Close()
	sources := map[string][]string{
		"path": {filepath.Join(fixtures, "all.yaml"), filepath.Join(fixtures, "acme-corp.yaml")},
		"url":  {srv.URL + "/all.yaml", srv.URL + "/acme-corp.yaml"},
	}
	for _, name := range []string{"path", "url"} {
		t.Run(name, func(t *testing.T) {
			p := start(t, freeAddr(t), "dev", "--data-dir", t.TempDir())
			out, errOut, code := cliOut(t, p, append([]string{"import", "backstage"}, sources[name]...)...)
			if code != 0 || !strings.Contains(out, "56 entities: created 56, updated 0, unchanged 0, failed 0") {
				t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
			}
			for _, w := range []string{
				`hello-world-api.yaml`,
				`spec.providesApis: "hello-world": no such entity (api hello-world)`,
				`spec.owner: "guest": no such entity (group guest)`,
			} {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks the warning %q:\n%s", w, errOut)
				}
			}
			counts := map[string]int{"component": 13, "api": 10, "system": 3, "domain": 3, "resource": 1, "group": 9, "user": 17}
			for bp, n := range counts {
				if got := countBlueprint(p, bp); got != n {
					t.Errorf("%d %s entities, want %d", got, bp, n)
				}
			}
			checks := []struct {
				bp, id string
				want   map[string][]string
			}{
				{"component", "wayback-search", map[string][]string{"owner": {"team-a"}, "providesApis": {"wayback-search"}, "consumesApis": {"wayback-archive"}}},
				{"component", "wayback-archive-ingestion", map[string][]string{"owner": {"team-d"}, "subcomponentOf": {"wayback-archive"}}},
				{"component", "petstore", map[string][]string{"owner": {"team-c"}, "providesApis": {"petstore", "streetlights"}}},
				{"component", "shuffle-api", map[string][]string{"ownerUser": {"guest"}, "system": {"audio-playback"}}},
				{"component", "playback-order", map[string][]string{}},
				{"api", "starwars-graphql", map[string][]string{"owner": {"team-b"}}},
				{"resource", "artists-db", map[string][]string{"owner": {"team-a"}, "system": {"artist-engagement-portal"}}},
				{"system", "audio-playback", map[string][]string{"owner": {"team-c"}, "domain": {"playback"}}},
				{"domain", "artists", map[string][]string{"owner": {"team-a"}, "subdomainOf": {"audio"}}},
				{"domain", "playback", map[string][]string{"ownerUser": {"frank.tiernan"}}},
				{"group", "infrastructure", map[string][]string{"parent": {"acme-corp"}, "children": {"backstage", "boxoffice"}}},
				{"group", "team-e", map[string][]string{"parent": {"boxoffice"}}},
				{"user", "development/guest", map[string][]string{"memberOf": {"team-a"}}},
				{"user", "lucy.sheehan", map[string][]string{"memberOf": {"team-d"}}},
			}
			for _, c := range checks {
				if got := relations(p, c.bp, c.id); !reflect.DeepEqual(got, c.want) {
					t.Errorf("%s/%s: relations %v, want %v", c.bp, c.id, got, c.want)
				}
			}
			out, errOut, code = cliOut(t, p, append([]string{"import", "backstage"}, sources[name]...)...)
			if code != 0 || !strings.Contains(out, "created 0, updated 0, unchanged 56, failed 0") {
				t.Fatalf("second import: exit %d\n%s\n%s", code, out, errOut)
			}
		})
	}
}

// TestCLIImportCSV: coercions and relations written; a second import
// changes nothing; a file with bad rows names each line and column and
// writes nothing.
func TestCLIImportCSV(t *testing.T) {
	p := start(t, freeAddr(t), "dev", "--data-dir", t.TempDir())
	p.must("PUT", "/api/v1/blueprints/team", map[string]any{"schema": map[string]any{}}, 201)
	p.must("PUT", "/api/v1/blueprints/service", map[string]any{
		"schema": map[string]any{"properties": map[string]any{
			"language": map[string]any{"type": "string", "enum": []any{"go", "python"}},
			"tier":     map[string]any{"type": "integer", "minimum": 1, "maximum": 3},
			"cost":     map[string]any{"type": "number"},
			"public":   map[string]any{"type": "boolean"},
			"ports":    map[string]any{"type": "array", "items": map[string]any{"type": "integer"}},
			"meta":     map[string]any{"type": "object"},
		}, "required": []any{"language"}},
		"relations": map[string]any{"owner": map[string]any{"target": "team"}, "dependsOn": map[string]any{"target": "service", "many": true}},
	}, 201)
	p.must("PUT", "/api/v1/blueprints/team/entities/payments", map[string]any{}, 201)
	dir := t.TempDir()
	good := filepath.Join(dir, "services.csv")
	write(t, good, "identifier,title,language,tier,cost,public,ports,meta,rel:owner,rel:dependsOn\n"+
		"checkout,Checkout,go,1,2.5,yes,80;443,\"{\"\"k\"\": \"\"v\"\"}\",payments,cart;pricing\n"+
		"cart,Cart,python,2,,no,,,payments,\n"+
		"pricing,,go,,,,,,,cart\n")
	out, errOut, code := cliOut(t, p, "import", "csv", "--blueprint", "service", good)
	if code != 0 || !strings.Contains(out, "3 entities: created 3, updated 0, unchanged 0, failed 0") {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
	}
	var e struct {
		Title      string         `json:"title"`
		Properties map[string]any `json:"properties"`
	}
	if err := json.Unmarshal(p.must("GET", entityPath("service", "checkout"), nil, 200), &e); err != nil {
		t.Fatal(err)
	}
	wantProps := map[string]any{"language": "go", "tier": 1.0, "cost": 2.5, "public": true, "ports": []any{80.0, 443.0}, "meta": map[string]any{"k": "v"}}
	if e.Title != "Checkout" || !reflect.DeepEqual(e.Properties, wantProps) {
		t.Fatalf("checkout: title %q, properties %v, want %v", e.Title, e.Properties, wantProps)
	}
	if got := relations(p, "service", "checkout"); !reflect.DeepEqual(got, map[string][]string{"owner": {"payments"}, "dependsOn": {"cart", "pricing"}}) {
		t.Fatalf("checkout relations %v", got)
	}
	if got := relations(p, "service", "pricing"); !reflect.DeepEqual(got, map[string][]string{"dependsOn": {"cart"}}) {
		t.Fatalf("pricing relations %v", got)
	}

	out, errOut, code = cliOut(t, p, "import", "csv", "--blueprint", "service", good, "-o", "json")
	var rep struct {
		Results []struct{ Identifier, Status string }
	}
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || len(rep.Results) != 3 {
		t.Fatalf("second import: exit %d, %v\n%s\n%s", code, err, out, errOut)
	}
	for _, r := range rep.Results {
		if r.Status != "unchanged" {
			t.Errorf("second import: %s %s, want unchanged", r.Identifier, r.Status)
		}
	}

	bad := filepath.Join(dir, "bad.csv")
	write(t, bad, "identifier,language,tier,rel:owner\n"+
		"ok-one,go,1,payments\n"+
		"two,go,abc,payments\n"+
		"three,rust,2,\n"+
		"four,go,2,nobody\n"+
		"ok-five,go,3,\n")
	out, errOut, code = cliOut(t, p, "import", "csv", "--blueprint", "service", bad)
	if code != 1 {
		t.Fatalf("bad rows: exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	for _, w := range []string{
		`bad.csv:3: column tier: "abc" is not an integer`,
		`bad.csv:4: column language: must be one of`,
		`bad.csv:5: column rel:owner: no team "nobody" in the file or the portal`,
		`bad.csv: 3 invalid rows: nothing written`,
	} {
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errOut)
		}
	}
	if n := countBlueprint(p, "service"); n != 3 {
		t.Fatalf("%d services after a refused import, want the 3 from before", n)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(fmt.Errorf("write %s: %w", path, err))
	}
}
