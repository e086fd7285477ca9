package integrationtests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// cliResult is what one run of a client command printed and its exit code.
type cliResult struct {
	stdout, stderr string
	code           int
}

// cli runs the real portico binary as a client of p (PORTICO_SERVER,
// PORTICO_TOKEN=T) with args.
func cli(t *testing.T, p *proc, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, portico(t), args...)
	cmd.Env = append(os.Environ(), "PORTICO_SERVER="+p.base, "PORTICO_TOKEN=T")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	res := cliResult{stdout: out.String(), stderr: errOut.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("portico %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// ok runs a client command that must succeed and returns its stdout.
func ok(t *testing.T, p *proc, args ...string) string {
	t.Helper()
	r := cli(t, p, args...)
	if r.code != 0 {
		t.Fatalf("portico %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// identifiers are the identifiers of an entity page (JSON), sorted.
func identifiers(t *testing.T, raw []byte) []string {
	t.Helper()
	var page struct {
		Entities []struct{ Identifier string }
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	ids := []string{}
	for _, e := range page.Entities {
		ids = append(ids, e.Identifier)
	}
	sort.Strings(ids)
	return ids
}

// TestCLI drives every everyday client command against a real `portico
// dev`: get in the three outputs, search, describe, runs followed to
// success and to failure, approvals, plugin publish + ls, resync --wait,
// completion of real names, and the errors for a bad token and no server.
func TestCLI(t *testing.T) {
	p := start(t, freeAddr(t), "dev", "--data-dir", t.TempDir())
	waitReady(t, p)

	p.must("PUT", "/api/v1/blueprints/team", map[string]any{"title": "Team", "schema": map[string]any{}}, 201)
	p.must("PUT", "/api/v1/blueprints/service", map[string]any{"title": "Service", "schema": map[string]any{"properties": map[string]any{
		"language": map[string]any{"type": "string"}, "tier": map[string]any{"type": "integer"}}},
		"relations": map[string]any{"owner": map[string]any{"target": "team"}}}, 201)
	p.must("POST", "/api/v1/entities/bulk", map[string]any{"entities": []any{
		map[string]any{"blueprint": "team", "identifier": "payments"},
		map[string]any{"blueprint": "service", "identifier": "checkout", "title": "Checkout", "team": []string{"payments"},
			"properties": map[string]any{"language": "go", "tier": 1}, "relations": map[string]any{"owner": "payments"}},
		map[string]any{"blueprint": "service", "identifier": "cart", "properties": map[string]any{"language": "python", "tier": 2}},
		map[string]any{"blueprint": "service", "identifier": "edge/proxy", "properties": map[string]any{"language": "go", "tier": 3}},
	}}, 200)

	t.Run("get", func(t *testing.T) {
		table := ok(t, p, "get", "entities", "service")
		lines := strings.Split(strings.TrimSpace(table), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "IDENTIFIER") {
			t.Fatalf("table:\n%s", table)
		}
		col := strings.Index(lines[0], "TEAM")
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, "checkout ") && !strings.HasPrefix(l[col:], "payments ") {
				t.Errorf("TEAM column not aligned:\n%s", table)
			}
		}
		want := []string{"cart", "checkout", "edge/proxy"}
		if got := identifiers(t, []byte(ok(t, p, "get", "entities", "service", "-o", "json"))); !slices.Equal(got, want) {
			t.Errorf("-o json: %v, want %v", got, want)
		}
		asJSON, err := yaml.YAMLToJSON([]byte(ok(t, p, "get", "entities", "service", "-o", "yaml")))
		if err != nil {
			t.Fatal(err)
		}
		if got := identifiers(t, asJSON); !slices.Equal(got, want) {
			t.Errorf("-o yaml: %v, want %v", got, want)
		}
		if got := identifiers(t, []byte(ok(t, p, "get", "entities", "service", "--limit", "2", "-o", "json"))); len(got) != 2 {
			t.Errorf("--limit 2: %v", got)
		}
		var e struct{ Identifier, Blueprint string }
		_ = json.Unmarshal([]byte(ok(t, p, "get", "entity", "service/edge/proxy", "-o", "json")), &e)
		if e.Blueprint != "service" || e.Identifier != "edge/proxy" {
			t.Errorf("get entity service/edge/proxy: %+v", e)
		}
		if out := ok(t, p, "get", "blueprints"); !regexp.MustCompile(`(?m)^service +Service +language,tier +owner→team`).MatchString(out) {
			t.Errorf("get blueprints:\n%s", out)
		}
		r := cli(t, p, "get", "entities", "service", "-o", "xml")
		if r.code == 0 || !strings.Contains(r.stderr, `-o "xml": the output format is table, json or yaml`) {
			t.Errorf("-o xml: exit %d, %s", r.code, r.stderr)
		}
		r = cli(t, p, "get", "entity", "service/nope")
		if r.code == 0 || !strings.Contains(r.stderr, "get entity service/nope: HTTP 404") {
			t.Errorf("a missing entity: exit %d, %s", r.code, r.stderr)
		}
	})

	t.Run("search", func(t *testing.T) {
		for _, tt := range []struct {
			args []string
			want []string
		}{
			{[]string{"--blueprint", "service", "tier <= 2", "language = go"}, []string{"checkout"}},
			{[]string{"-b", "service", "language in go,python", "tier>=2"}, []string{"cart", "edge/proxy"}},
			{[]string{"-b", "service", "relatedTo team/payments"}, []string{"checkout"}},
			{[]string{"$team contains payments"}, []string{"checkout"}},
			{[]string{"-b", "service", "owner missing", "language != python"}, []string{"edge/proxy"}},
			{[]string{"-b", "service", "tier between 5,9"}, []string{}},
		} {
			got := identifiers(t, []byte(ok(t, p, append([]string{"search", "-o", "json"}, tt.args...)...)))
			if !slices.Equal(got, tt.want) {
				t.Errorf("search %q: %v, want %v", tt.args, got, tt.want)
			}
		}
		out := ok(t, p, "search", "-b", "service", "--sort", "-tier", "--limit", "2")
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[1], "edge/proxy") || !strings.HasPrefix(lines[2], "cart") {
			t.Errorf("--sort -tier --limit 2:\n%s", out)
		}
		r := cli(t, p, "search", "-b", "service", "tier <== 2")
		if r.code != 2 || !strings.Contains(r.stderr, `filter "tier <== 2", column 6: unknown operator "<=="`) {
			t.Errorf("a syntax error: exit %d, %s", r.code, r.stderr)
		}
	})

	// Actions: a webhook that succeeds (and records the inputs it got),
	// one that fails, one gated by an approval.
	var got atomic.Value
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/fail" {
			http.Error(w, `{"error": "deploy target on fire"}`, http.StatusInternalServerError)
			return
		}
		got.Store(body)
		w.Write([]byte(`{"ok": true}`))
	}))
	defer hooks.Close()
	inputs := map[string]any{"properties": map[string]any{"version": map[string]any{"type": "string"}, "replicas": map[string]any{"type": "integer"}}, "required": []string{"version"}}
	p.must("PUT", "/api/v1/actions/deploy", map[string]any{"title": "Deploy", "blueprint": "service", "operation": "DAY-2", "userInputs": inputs,
		"invocation": map[string]any{"type": "webhook", "url": hooks.URL + "/ok"}}, 201)
	p.must("PUT", "/api/v1/actions/break", map[string]any{"blueprint": "service", "operation": "DAY-2",
		"invocation": map[string]any{"type": "webhook", "url": hooks.URL + "/fail", "retry": map[string]any{"maximumAttempts": 1}}}, 201)
	p.must("PUT", "/api/v1/actions/gated", map[string]any{"blueprint": "service", "operation": "DAY-2",
		"invocation": map[string]any{"type": "webhook", "url": hooks.URL + "/ok"},
		"approval":   map[string]any{"count": 1, "approvers": map[string]any{"roles": []string{"member"}}, "timeout": "72h"}}, 201)
	p.must("PUT", "/api/v1/blueprints/_user/entities/bob@example.com", map[string]any{"properties": map[string]any{"name": "Bob", "role": "member"}, "relations": map[string]any{"teams": []string{}}}, 201)
	var tok struct{ Token string }
	_ = json.Unmarshal(p.must("POST", "/api/v1/tokens", map[string]any{"name": "bob", "user": "bob@example.com", "scopes": []string{"read", "approve"}}, 201), &tok)

	var deployRun string
	t.Run("run --follow", func(t *testing.T) {
		out := ok(t, p, "run", "deploy", "--entity", "service/checkout", "--input", "version=1.20", "--input", "replicas=3", "--follow")
		deployRun = strings.SplitN(out, "\n", 2)[0]
		if !strings.HasPrefix(deployRun, "run_") || !strings.Contains(out, "status: SUCCESS") || !strings.Contains(out, "run "+deployRun+" succeeded") {
			t.Errorf("run --follow:\n%s", out)
		}
		var hook struct {
			Run struct {
				Inputs map[string]any
				Entity any
			}
		}
		raw, _ := got.Load().([]byte)
		if err := json.Unmarshal(raw, &hook); err != nil {
			t.Fatalf("webhook body %s: %v", raw, err)
		}
		if hook.Run.Inputs["version"] != "1.20" || hook.Run.Inputs["replicas"] != 3.0 {
			t.Errorf("inputs the webhook got: %v (want version \"1.20\", a string, and replicas 3, a number)", hook.Run.Inputs)
		}

		r := cli(t, p, "run", "break", "--entity", "checkout", "--follow")
		if r.code != 1 || !strings.Contains(r.stderr, "ended FAILURE") || !strings.Contains(r.stderr, "500") {
			t.Errorf("a failing run: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		r = cli(t, p, "run", "deploy", "--entity", "service/checkout", "--input", "replicas=three")
		if r.code != 2 || !strings.Contains(r.stderr, `--input replicas=three: replicas is an integer, not "three"`) {
			t.Errorf("a mistyped input: exit %d, %s", r.code, r.stderr)
		}
		r = cli(t, p, "run", "deploy", "--entity", "service/checkout")
		if r.code == 0 || !strings.Contains(r.stderr, "/inputs") || !strings.Contains(r.stderr, "version") {
			t.Errorf("a missing required input: exit %d, %s", r.code, r.stderr)
		}
	})

	t.Run("approve and decline", func(t *testing.T) {
		approved := strings.TrimSpace(ok(t, p, "run", "gated", "--entity", "service/checkout"))
		declined := strings.TrimSpace(ok(t, p, "run", "gated", "--entity", "service/cart"))
		waitFor(t, "both runs to wait for approval", time.Minute, func() bool {
			c := ok(t, p, "get", "runs", "--status", "WAITING_FOR_APPROVAL", "-o", "json")
			return strings.Contains(c, approved) && strings.Contains(c, declined)
		})
		// completion offers the waiting runs to approve
		if out := ok(t, p, "__complete", "approve", ""); !strings.Contains(out, approved) || !strings.Contains(out, declined) {
			t.Errorf("__complete approve:\n%s", out)
		}
		if out := ok(t, p, "approve", approved, "--comment", "lgtm", "--token", tok.Token); !strings.Contains(out, "approved "+approved) {
			t.Errorf("approve: %s", out)
		}
		if out := ok(t, p, "runs", "logs", approved, "-f"); !strings.Contains(out, "succeeded") {
			t.Errorf("runs logs -f of the approved run:\n%s", out)
		}
		ok(t, p, "decline", declined, "--comment", "not today", "--token", tok.Token)
		r := cli(t, p, "runs", "logs", declined, "-f")
		if r.code != 1 || !strings.Contains(r.stderr, "ended DECLINED: declined by bob@example.com: not today") {
			t.Errorf("runs logs -f of the declined run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if out := ok(t, p, "runs", "logs", approved); !strings.Contains(out, "status: SUCCESS") {
			t.Errorf("runs logs:\n%s", out)
		}
	})

	t.Run("describe", func(t *testing.T) {
		p.must("PUT", "/api/v1/blueprints/service/scorecards/readiness", map[string]any{"rules": []any{
			map[string]any{"identifier": "owned", "level": "Bronze", "query": map[string]any{"combinator": "and", "rules": []any{map[string]any{"property": "owner", "operator": "isNotEmpty"}}}},
			map[string]any{"identifier": "rust", "level": "Silver", "query": map[string]any{"combinator": "and", "rules": []any{map[string]any{"property": "language", "operator": "=", "value": "rust"}}}},
		}}, 201)
		waitFor(t, "checkout graded", time.Minute, func() bool {
			return strings.Contains(ok(t, p, "get", "entity", "service/checkout", "-o", "json"), "readiness")
		})
		out := ok(t, p, "describe", "entity", "service/checkout")
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`(?m)^Title: +Checkout$`),
			regexp.MustCompile(`(?m)^  tier +1$`),
			regexp.MustCompile(`(?m)^  owner +team/payments$`),
			regexp.MustCompile(`(?m)^  readiness +Bronze +failing: rust \(Silver\)$`),
			regexp.MustCompile(`(?m)^  ` + deployRun + ` +deploy +SUCCESS`),
		} {
			if !want.MatchString(out) {
				t.Errorf("describe lacks %s:\n%s", want, out)
			}
		}
		var d struct {
			Entity struct{ Identifier string }
			Runs   []struct{ ID string }
		}
		_ = json.Unmarshal([]byte(ok(t, p, "describe", "entity", "service/checkout", "-o", "json")), &d)
		if d.Entity.Identifier != "checkout" || !slices.ContainsFunc(d.Runs, func(r struct{ ID string }) bool { return r.ID == deployRun }) {
			t.Errorf("describe -o json: %+v", d)
		}
	})

	t.Run("plugin and resync", func(t *testing.T) {
		dir := t.TempDir()
		buildExample(t, dir, "example.wasm", true)
		module := filepath.Join(dir, "example.wasm")
		if out := ok(t, p, "plugin", "publish", module); !strings.Contains(out, "example@0.1.0 published") {
			t.Errorf("publish: %s", out)
		}
		if out := ok(t, p, "plugin", "publish", module); !strings.Contains(out, "example@0.1.0 already published") {
			t.Errorf("publish again: %s", out)
		}
		if out := ok(t, p, "plugin", "ls"); !regexp.MustCompile(`(?m)^example +0\.1\.0 +wasm `).MatchString(out) {
			t.Errorf("plugin ls:\n%s", out)
		}
		r := cli(t, p, "plugin", "publish", filepath.Join("..", "go.mod"))
		if r.code == 0 || !strings.Contains(r.stderr, "go.mod is not a WebAssembly module") {
			t.Errorf("publish go.mod: exit %d, %s", r.code, r.stderr)
		}

		var broken atomic.Bool
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.URL.Path == "/changes": // the watch: nothing new
				select {
				case <-r.Context().Done():
				case <-time.After(time.Second):
				}
				w.Write([]byte(`{"changes": [], "next": "0"}`))
			case broken.Load():
				http.Error(w, "down", http.StatusBadGateway)
			default:
				w.Write([]byte(`{"items": [{"id": "a", "name": "A", "size": 1}, {"id": "b", "name": "B", "size": 2}, {"id": "c", "name": "C", "size": 3}], "next": ""}`))
			}
		}))
		defer api.Close()
		p.must("PUT", "/api/v1/integrations/ex", map[string]any{"plugin": "example", "config": map[string]any{"baseUrl": api.URL}, "secrets": map[string]any{"apiToken": "x"},
			"allowedHosts": []string{strings.TrimPrefix(api.URL, "http://")}}, 201)
		waitFor(t, "the install's first sync to end", time.Minute, func() bool {
			var st struct{ LastSync *struct{ Status string } }
			_ = json.Unmarshal(p.must("GET", "/api/v1/integrations/ex", nil, 200), &st)
			return st.LastSync != nil && st.LastSync.Status != "running"
		})
		r = cli(t, p, "integration", "resync", "ex", "--wait")
		if r.code != 0 || !regexp.MustCompile(`(?m)^\S+ +succeeded +3 `).MatchString(r.stdout) || !strings.Contains(r.stderr, "resync ex") {
			t.Errorf("resync --wait: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		if out := ok(t, p, "get", "integrations"); !regexp.MustCompile(`(?m)^ex +example@0\.1\.0 +3 `).MatchString(out) {
			t.Errorf("get integrations:\n%s", out)
		}
		broken.Store(true)
		r = cli(t, p, "integration", "resync", "ex", "--wait")
		if r.code != 1 || !strings.Contains(r.stderr, "failed") || !strings.Contains(r.stderr, "502") {
			t.Errorf("a failing resync --wait: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}

		// An integration as code, its plugin named without a version: the
		// portal installs example@0.1.0, which is no difference.
		defs := filepath.Join(dir, "integration.yaml")
		writeFile(t, defs, fmt.Sprintf(`kind: Integration
spec:
  id: ex-code
  plugin: example
  config: {baseUrl: %q}
  secrets: {apiToken: {fromEnv: CLI_EX_TOKEN}}
  allowedHosts: [%q]
`, api.URL, strings.TrimPrefix(api.URL, "http://")))
		t.Setenv("CLI_EX_TOKEN", "x")
		if out := ok(t, p, "apply", "-f", defs); !strings.Contains(out, "1 created") {
			t.Errorf("apply an integration: %s", out)
		}
		if r := cli(t, p, "diff", "-f", defs); r.code != 0 {
			t.Errorf("diff after applying an integration: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if out := ok(t, p, "apply", "-f", defs); !strings.Contains(out, "0 changed, 0 deleted, 1 unchanged") {
			t.Errorf("apply an integration again: %s", out)
		}
	})

	t.Run("completion", func(t *testing.T) {
		for _, tt := range []struct {
			args []string
			want []string
		}{
			{[]string{"get", "blueprints", ""}, []string{"service\tService", "team\tTeam"}},
			{[]string{"get", "entities", "se"}, []string{"service/"}},
			{[]string{"describe", "entity", "service/"}, []string{"service/cart", "service/checkout\tCheckout", "service/edge/proxy"}},
			{[]string{"run", "de"}, []string{"deploy\tDeploy"}},
			{[]string{"run", "deploy", "--entity", "service/c"}, []string{"service/cart", "service/checkout\tCheckout"}},
			{[]string{"search", "--blueprint", "t"}, []string{"team\tTeam"}},
			{[]string{"runs", "logs", deployRun[:6]}, []string{deployRun + "\tdeploy SUCCESS"}},
			{[]string{"integration", "resync", ""}, []string{"ex\texample@0.1.0"}},
		} {
			out := ok(t, p, append([]string{"__complete"}, tt.args...)...)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			names := lines[:len(lines)-1] // the last line is the directive
			for _, w := range tt.want {
				if !slices.Contains(names, w) {
					t.Errorf("__complete %q: %q lacks %q", tt.args, names, w)
				}
			}
		}
		if out := ok(t, p, "completion", "bash"); !strings.Contains(out, "__start_portico") {
			t.Errorf("completion bash: %.200s", out)
		}
	})

	t.Run("errors", func(t *testing.T) {
		r := cli(t, p, "get", "blueprints", "--token", "wrong")
		if r.code == 0 || !strings.Contains(r.stderr, "refused the token (HTTP 401") || !strings.Contains(r.stderr, "PORTICO_TOKEN") {
			t.Errorf("a bad token: exit %d, %s", r.code, r.stderr)
		}
		r = cli(t, p, "get", "blueprints", "--server", "http://"+freeAddr(t))
		if r.code != 2 || !strings.Contains(r.stderr, "cannot reach the portal at http://127.0.0.1:") || !strings.Contains(r.stderr, "connection refused") {
			t.Errorf("no server: exit %d, %s", r.code, r.stderr)
		}
	})
}
