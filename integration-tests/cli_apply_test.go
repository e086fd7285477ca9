package integrationtests

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// applyCLI runs the portico client against p (see cli): its stdout,
// stderr and exit code.
func applyCLI(t *testing.T, p *proc, args ...string) (string, string, int) {
	t.Helper()
	r := cli(t, p, args...)
	return r.stdout, r.stderr, r.code
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const blueprintsYAML = `kind: Blueprint
spec:
  identifier: team
  title: Team
  schema:
    properties:
      slackChannel: {type: string}
---
kind: Blueprint
spec:
  identifier: service
  title: Service
  schema:
    properties:
      language: {type: string, enum: [go, python]}
      tier: {type: integer, minimum: 1, maximum: 3}
    required: [language]
  relations:
    owner: {target: team}
    dependsOn: {target: service, many: true}
  calculationProperties:
    url: {type: string, jq: '"https://svc/" + .identifier'}
  mirrorProperties:
    ownerSlack: {path: owner.slackChannel}
---
kind: Blueprint
spec:
  identifier: scratch
  schema: {}
`

const restYAML = `kind: Scorecard
spec:
  blueprint: service
  identifier: readiness
  rules:
    - identifier: owned
      level: Bronze
      query: {combinator: and, rules: [{property: owner, operator: isNotEmpty}]}
---
kind: Action
spec:
  identifier: deploy
  blueprint: service
  operation: DAY-2
  userInputs: {properties: {version: {type: string}}, required: [version]}
  invocation: {type: webhook, url: "https://ci.example/deploy", headers: {Authorization: {fromEnv: CLI_APPLY_CI_TOKEN}}}
---
kind: Workflow
spec:
  identifier: announce
  steps: [{id: post, type: webhook, url: "https://chat.example/hook"}]
---
kind: Entity
spec: {blueprint: team, identifier: payments, properties: {slackChannel: "#payments"}}
---
kind: Entity
spec:
  blueprint: service
  identifier: checkout
  properties: {language: go, tier: 1}
  relations: {owner: payments, dependsOn: [cart]}
---
kind: Entity
spec: {blueprint: service, identifier: cart, properties: {language: python, tier: 2}}
---
kind: Entity
spec: {blueprint: _user, identifier: ci@example.com, properties: {name: CI, role: member, serviceAccount: true}}
---
kind: Token
spec: {name: ci, user: ci@example.com, scopes: [read], secretFile: SECRET_FILE}
`

// serverState is what the test compares to see that nothing changed:
// blueprints (with their scorecards), actions, workflows and entities as
// the API shows them, versions and timestamps included.
func serverState(t *testing.T, p *proc) string {
	t.Helper()
	var b strings.Builder
	for _, path := range []string{"/api/v1/blueprints", "/api/v1/actions", "/api/v1/workflows",
		"/api/v1/blueprints/service/entities/checkout", "/api/v1/blueprints/team/entities/payments"} {
		code, out := p.call("GET", path, nil)
		b.WriteString(path + " " + http.StatusText(code) + " " + string(out) + "\n")
	}
	return b.String()
}

// TestCLIApplyDiffExport runs the real binary against a real `portico
// dev`: apply, a second apply that changes nothing (by its output and by
// the server's versions and timestamps), a dry run that changes nothing,
// an edit that diff shows as exactly that field (exit 1), apply, export,
// and an apply of the export that changes nothing; the service account's
// token is created once, its secret written to its file.
func TestCLIApplyDiffExport(t *testing.T) {
	t.Setenv("CLI_APPLY_CI_TOKEN", "ci-secret")
	p := start(t, freeAddr(t), "dev", "--data-dir", t.TempDir())
	dir := t.TempDir()
	defs := filepath.Join(dir, "platform")
	secretFile := filepath.Join(dir, "ci-token")
	writeFile(t, filepath.Join(defs, "blueprints.yaml"), blueprintsYAML)
	writeFile(t, filepath.Join(defs, "more", "rest.yaml"), strings.Replace(restYAML, "SECRET_FILE", secretFile, 1))

	out, errOut, code := applyCLI(t, p, "apply", "-f", defs)
	if code != 0 || !strings.Contains(out, "apply (set platform): 11 created, 0 changed, 0 deleted, 0 unchanged") {
		t.Fatalf("first apply: exit %d\n%s%s", code, out, errOut)
	}
	secret, err := os.ReadFile(secretFile)
	if err != nil || len(strings.TrimSpace(string(secret))) < 16 {
		t.Fatalf("token secret file: %q, %v", secret, err)
	}
	// The token works, as the service account (a member: the ledger is refused).
	req, _ := http.NewRequest("GET", p.base+"/api/v1/definitions/drift", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(secret)))
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("drift as a member: %v %v, want 403", res, err)
	}
	if res, err := http.Get(p.base + "/api/v1/definitions/drift"); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("drift anonymously: %v %v, want 401", res, err)
	}

	before := serverState(t, p)
	out, errOut, code = applyCLI(t, p, "apply", "-f", defs)
	if code != 0 || !strings.Contains(out, "0 created, 0 changed, 0 deleted, 11 unchanged") {
		t.Fatalf("second apply: exit %d\n%s%s", code, out, errOut)
	}
	if after := serverState(t, p); after != before {
		t.Fatalf("a second apply changed the server:\nbefore %s\nafter  %s", before, after)
	}

	edited := strings.Replace(blueprintsYAML, "maximum: 3", "maximum: 4", 1)
	writeFile(t, filepath.Join(defs, "blueprints.yaml"), edited)
	out, _, code = applyCLI(t, p, "apply", "--dry-run", "-f", defs)
	if code != 0 || !strings.Contains(out, "~ Blueprint service") || !strings.Contains(out, "nothing applied") {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
	if after := serverState(t, p); after != before {
		t.Fatal("a dry run changed the server")
	}
	out, _, code = applyCLI(t, p, "diff", "-f", defs)
	want := "~ Blueprint service\n    /schema/properties/tier/maximum: 3 → 4\n"
	if code != 1 || out != want {
		t.Fatalf("diff: exit %d\n%s\nwant exit 1 and\n%s", code, out, want)
	}
	out, errOut, code = applyCLI(t, p, "apply", "-f", defs)
	if code != 0 || !strings.Contains(out, "updated Blueprint service") || !strings.Contains(out, "0 created, 1 changed") {
		t.Fatalf("apply of the edit: exit %d\n%s%s", code, out, errOut)
	}
	if out, _, code = applyCLI(t, p, "diff", "-f", defs); code != 0 || !strings.Contains(out, "no differences") {
		t.Fatalf("diff after apply: exit %d\n%s", code, out)
	}

	exported := filepath.Join(dir, "exported")
	out, errOut, code = applyCLI(t, p, "export", "--entities", "-d", exported)
	if code != 0 {
		t.Fatalf("export: exit %d\n%s%s", code, out, errOut)
	}
	raw, _ := os.ReadFile(filepath.Join(exported, "actions.yaml"))
	if strings.Contains(string(raw), "ci-secret") || !strings.Contains(string(raw), "fromEnv: PORTICO_DEPLOY_AUTHORIZATION") {
		t.Fatalf("exported action: the header must be a placeholder, never its value:\n%s", raw)
	}
	before = serverState(t, p)
	out, errOut, code = applyCLI(t, p, "apply", "-f", exported)
	if code != 0 || !strings.Contains(out, "0 created, 0 changed, 0 deleted") {
		t.Fatalf("apply of the export: exit %d\n%s%s", code, out, errOut)
	}
	if after := serverState(t, p); after != before {
		t.Fatalf("applying the export changed the server:\nbefore %s\nafter  %s", before, after)
	}
}

// TestCLIApplyRefusesInvalid: bad YAML and invalid definitions are
// reported with file, document, line and JSON path, and nothing at all
// is applied (the valid documents beside them neither).
func TestCLIApplyRefusesInvalid(t *testing.T) {
	p := start(t, freeAddr(t), "dev", "--data-dir", t.TempDir())
	dir := t.TempDir()
	before := serverState(t, p)
	cases := []struct {
		name, content string
		want          []string
	}{
		{"broken.yaml", "kind: Blueprint\nspec: [\n", []string{"broken.yaml#1:2: invalid YAML"}},
		{"invalid.yaml", `kind: Blueprint
spec: {identifier: fine, schema: {}}
---
kind: Blueprint
spec:
  identifier: svc
  schema:
    properties:
      tier: {type: integr}
---
kind: Action
spec: {identifier: go, blueprint: svc, operation: DAY-2, invocation: {type: webhook, url: "https://x"}, colour: red}
---
kind: Integration
spec: {id: pd, plugin: pagerduty, secrets: {apiToken: "plain"}}
---
kind: Dashboard
spec: {identifier: d}
`, []string{
			"invalid.yaml#2:9 /spec/schema/properties/tier/type: must be one of",
			"invalid.yaml#3:12 /spec/colour: unknown field",
			"invalid.yaml#4:15 /spec/secrets/apiToken: secrets are never inline",
			"invalid.yaml#5:17 /kind: kind Dashboard is not supported by this portal",
		}},
		{"entity.yaml", `kind: Blueprint
spec: {identifier: svc, schema: {properties: {tier: {type: integer}}}}
---
kind: Entity
spec: {blueprint: svc, identifier: a, properties: {tier: high}}
---
kind: Entity
spec: {blueprint: nowhere, identifier: b}
`, []string{
			"entity.yaml#2:5 /spec/properties/tier:",
			`entity.yaml#3:8 /spec/blueprint: blueprint "nowhere" is neither in the files nor on the portal`,
		}},
	}
	for _, c := range cases {
		path := filepath.Join(dir, c.name)
		writeFile(t, path, c.content)
		_, errOut, code := applyCLI(t, p, "apply", "-f", path)
		if code != 2 {
			t.Errorf("%s: exit %d, want 2\n%s", c.name, code, errOut)
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, strings.Replace(w, c.name, path, 1)) {
				t.Errorf("%s: the errors do not say %q:\n%s", c.name, w, errOut)
			}
		}
	}
	if after := serverState(t, p); after != before {
		t.Fatalf("invalid files changed the server:\nbefore %s\nafter  %s", before, after)
	}
}

// TestCLIApplyPruneAndDrift: --prune deletes only what the same set
// created (a blueprint made by hand stays, and so does one the set found
// existing); a change made outside of code shows in diff and in GET
// /api/v1/definitions/drift.
func TestCLIApplyPruneAndDrift(t *testing.T) {
	p := start(t, freeAddr(t), "dev", "--data-dir", t.TempDir())
	p.must("PUT", "/api/v1/blueprints/adopted", map[string]any{"schema": map[string]any{}}, 201)
	dir := t.TempDir()
	file := filepath.Join(dir, "set.yaml")
	doc := func(id, title string) string {
		return "kind: Blueprint\nspec: {identifier: " + id + ", title: " + title + ", schema: {}}\n"
	}
	writeFile(t, file, doc("keep", "Keep")+"---\n"+doc("gone", "Gone")+"---\n"+doc("adopted", "Adopted"))
	if out, errOut, code := applyCLI(t, p, "apply", "-f", file); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	p.must("PUT", "/api/v1/blueprints/byhand", map[string]any{"schema": map[string]any{}}, 201)

	// Drift: a title changed by hand.
	p.must("PUT", "/api/v1/blueprints/keep", map[string]any{"title": "Changed", "schema": map[string]any{}}, 200)
	var drift struct {
		Drift []struct {
			Kind, ID, Set, State string
			Changes              []struct{ Path, Old, New string }
		}
	}
	if err := json.Unmarshal(p.must("GET", "/api/v1/definitions/drift", nil, 200), &drift); err != nil {
		t.Fatal(err)
	}
	if len(drift.Drift) != 1 || drift.Drift[0].ID != "keep" || drift.Drift[0].State != "changed" || drift.Drift[0].Set != "set" ||
		len(drift.Drift[0].Changes) != 1 || drift.Drift[0].Changes[0].Path != "/title" || drift.Drift[0].Changes[0].New != "Changed" {
		t.Fatalf("drift = %+v, want the title of keep", drift)
	}
	out, _, code := applyCLI(t, p, "diff", "-f", file)
	if code != 1 || !strings.Contains(out, "! Blueprint keep changed outside of code") || !strings.Contains(out, `/title: "Keep" → "Changed"`) {
		t.Fatalf("diff with drift: exit %d\n%s", code, out)
	}

	writeFile(t, file, doc("keep", "Keep"))
	out, _, code = applyCLI(t, p, "diff", "--prune", "-f", file)
	if code != 1 || !strings.Contains(out, "- Blueprint gone") || strings.Contains(out, "- Blueprint adopted") || strings.Contains(out, "byhand") {
		t.Fatalf("diff --prune: exit %d\n%s", code, out)
	}
	out, errOut, code := applyCLI(t, p, "apply", "--prune", "-f", file)
	if code != 0 || !strings.Contains(out, "deleted Blueprint gone") || !strings.Contains(out, "1 changed, 1 deleted") {
		t.Fatalf("apply --prune: exit %d\n%s%s", code, out, errOut)
	}
	p.must("GET", "/api/v1/blueprints/gone", nil, 404)
	p.must("GET", "/api/v1/blueprints/byhand", nil, 200)
	p.must("GET", "/api/v1/blueprints/adopted", nil, 200)
	if err := json.Unmarshal(p.must("GET", "/api/v1/definitions/drift", nil, 200), &drift); err != nil || len(drift.Drift) != 0 {
		t.Fatalf("drift after apply = %+v (%v), want none", drift, err)
	}
}
