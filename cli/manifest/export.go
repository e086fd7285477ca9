package manifest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/definitions"
)

// exportFiles names the file each kind is exported to.
var exportFiles = map[definitions.Kind]string{
	definitions.Blueprint:   "blueprints.yaml",
	definitions.Workflow:    "workflows.yaml",
	definitions.Action:      "actions.yaml",
	definitions.Integration: "integrations.yaml",
	definitions.Scorecard:   "scorecards.yaml",
	definitions.Automation:  "automations.yaml",
	definitions.Initiative:  "initiatives.yaml",
	definitions.Entity:      "entities.yaml",
}

// Export reads the portal's definitions (entities too when entities)
// and writes them to dir, one multi-document YAML file per kind, so that
// applying dir changes nothing. Built-in blueprints (named "_…") and
// tokens (whose secrets exist only at creation) are left out; write-only
// values (an integration's secrets, webhook headers) are written as
// {"fromEnv": "PORTICO_…"} placeholders. It returns how many documents
// of each kind it wrote.
func Export(ctx context.Context, api API, dir string, entities bool) (map[definitions.Kind]int, error) {
	docs := map[definitions.Kind][]map[string]any{}
	add := func(kind definitions.Kind, v map[string]any, bp *catalog.Blueprint) error {
		spec, err := definitions.Normalize(kind, v, bp)
		if err != nil {
			return err
		}
		placeholders(kind, spec)
		docs[kind] = append(docs[kind], map[string]any{"kind": string(kind), "spec": spec})
		return nil
	}
	list := func(path, field string) ([]map[string]any, error) {
		var out map[string][]map[string]any
		if err := api.Do(ctx, http.MethodGet, path, nil, &out); err != nil {
			return nil, fmt.Errorf("list %s: %w", path, err)
		}
		return out[field], nil
	}
	var bps []*catalog.Blueprint
	{
		var out struct {
			Blueprints []*catalog.Blueprint `json:"blueprints"`
		}
		if err := api.Do(ctx, http.MethodGet, "/api/v1/blueprints", nil, &out); err != nil {
			return nil, fmt.Errorf("list blueprints: %w", err)
		}
		for _, bp := range out.Blueprints {
			if strings.HasPrefix(bp.Identifier, "_") {
				continue
			}
			bps = append(bps, bp)
			if err := add(definitions.Blueprint, asMap(bp), nil); err != nil {
				return nil, err
			}
		}
	}
	for _, k := range []struct {
		kind        definitions.Kind
		path, field string
	}{
		{definitions.Workflow, "/api/v1/workflows", "workflows"},
		{definitions.Action, "/api/v1/actions", "actions"},
		{definitions.Integration, "/api/v1/integrations", "integrations"},
		{definitions.Automation, "/api/v1/automations", "automations"},
		{definitions.Initiative, "/api/v1/initiatives", "initiatives"},
	} {
		items, err := list(k.path, k.field)
		if isNotFound(err) {
			continue // a portal without that part
		}
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if err := add(k.kind, it, nil); err != nil {
				return nil, err
			}
		}
	}
	for _, bp := range bps {
		items, err := list("/api/v1/blueprints/"+url.PathEscape(bp.Identifier)+"/scorecards", "scorecards")
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			it["blueprint"] = bp.Identifier
			if err := add(definitions.Scorecard, it, nil); err != nil {
				return nil, err
			}
		}
		if !entities {
			continue
		}
		cursor := ""
		for {
			var page struct {
				Entities []map[string]any `json:"entities"`
				Next     *string          `json:"next"`
			}
			path := "/api/v1/blueprints/" + url.PathEscape(bp.Identifier) + "/entities?limit=1000"
			if cursor != "" {
				path += "&cursor=" + url.QueryEscape(cursor)
			}
			if err := api.Do(ctx, http.MethodGet, path, nil, &page); err != nil {
				return nil, fmt.Errorf("list entities of %s: %w", bp.Identifier, err)
			}
			for _, e := range page.Entities {
				e["blueprint"] = bp.Identifier
				if err := add(definitions.Entity, e, bp); err != nil {
					return nil, err
				}
			}
			if page.Next == nil || *page.Next == "" {
				break
			}
			cursor = *page.Next
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	counts := map[definitions.Kind]int{}
	for kind, list := range docs {
		var b strings.Builder
		for i, d := range list {
			raw, err := yaml.Marshal(d)
			if err != nil {
				return nil, fmt.Errorf("export %s: %w", kind, err)
			}
			if i > 0 {
				b.WriteString("---\n")
			}
			b.Write(raw)
		}
		if err := os.WriteFile(filepath.Join(dir, exportFiles[kind]), []byte(b.String()), 0o644); err != nil {
			return nil, err
		}
		counts[kind] = len(list)
	}
	return counts, nil
}

func asMap(v any) map[string]any {
	var m map[string]any
	raw := mustJSON(v)
	_ = yaml.Unmarshal(raw, &m) // JSON is YAML; numbers stay float64 through JSON
	return m
}

var envUnsafe = regexp.MustCompile(`[^A-Z0-9]+`)

// placeholders turns the names of write-only values (secretsSet,
// headersSet) back into references to environment variables.
func placeholders(kind definitions.Kind, spec map[string]any) {
	env := func(parts ...string) string {
		return "PORTICO_" + strings.Trim(envUnsafe.ReplaceAllString(strings.ToUpper(strings.Join(parts, "_")), "_"), "_")
	}
	swap := func(o map[string]any, names, field string, prefix ...string) {
		list, ok := o[names].([]any)
		if !ok {
			return
		}
		delete(o, names)
		m := map[string]any{}
		for _, n := range list {
			s := fmt.Sprint(n)
			m[s] = map[string]any{"fromEnv": env(append(prefix, s)...)}
		}
		o[field] = m
	}
	switch kind {
	case definitions.Integration:
		id, _ := spec["id"].(string)
		swap(spec, "secretsSet", "secrets", id)
	case definitions.Action, definitions.Workflow, definitions.Automation:
		id, _ := spec["identifier"].(string)
		walkPaths(spec, "", func(_ string, o map[string]any) {
			step, _ := o["id"].(string)
			swap(o, "headersSet", "headers", id, step)
		})
	}
}
