// Package backstage reads Backstage catalog descriptor files (following
// Location entities) and maps them onto Portico blueprints, entities and
// relations, resolving entity references as Backstage's catalog does.
package backstage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Entity is one Backstage descriptor.
type Entity struct {
	APIVersion string         `yaml:"apiVersion"`
	Kind       string         `yaml:"kind"`
	Metadata   Metadata       `yaml:"metadata"`
	Spec       map[string]any `yaml:"spec"`
	// Source says where it was read: file or URL, and the document's
	// number in it ("acme/org.yaml#2").
	Source string `yaml:"-"`
}

// Metadata is an entity's metadata block.
type Metadata struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Title       string            `yaml:"title"`
	Description string            `yaml:"description"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
	Tags        []string          `yaml:"tags"`
	Links       []map[string]any  `yaml:"links"`
}

// Ref is the entity's own reference.
func (e *Entity) Ref() Ref {
	ns := e.Metadata.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	return Ref{Kind: e.Kind, Namespace: ns, Name: e.Metadata.Name}
}

// Fetch reads a file path or an http(s) URL.
type Fetch func(ctx context.Context, location string) ([]byte, error)

// Set is what a root location leads to: every entity (Locations
// excepted) and the warnings met on the way.
type Set struct {
	Entities []*Entity
	Warnings []string
}

// Load reads the descriptors at each root (a path or URL) and, through every
// Location's target and targets (relative ones against the location that
// names them), all the descriptors it leads to; each location is read
// once, so cycles end. A root that cannot be read, a document that is
// not YAML or not a descriptor, or an entity defined twice is an error;
// a Location target that cannot be read is a warning, as Backstage
// carries on without it.
func Load(ctx context.Context, roots []string, fetch Fetch) (*Set, error) {
	set := &Set{}
	seen := map[string]string{} // entity ref → its source
	visited := map[string]bool{}
	isRoot := map[string]bool{}
	var queue []string
	for _, r := range roots {
		if !visited[r] {
			visited[r], isRoot[r] = true, true
			queue = append(queue, r)
		}
	}
	for len(queue) > 0 {
		loc := queue[0]
		queue = queue[1:]
		raw, err := fetch(ctx, loc)
		if err != nil {
			if isRoot[loc] {
				return nil, err
			}
			set.Warnings = append(set.Warnings, fmt.Sprintf("location %s: %v (skipped)", loc, err))
			continue
		}
		docs, err := parse(loc, raw)
		if err != nil {
			return nil, err
		}
		for _, e := range docs {
			if strings.EqualFold(e.Kind, "Location") {
				for _, t := range targets(e) {
					next, err := resolve(loc, t)
					if err != nil {
						return nil, fmt.Errorf("%s: target %q: %w", e.Source, t, err)
					}
					if !visited[next] {
						visited[next] = true
						queue = append(queue, next)
					}
				}
				continue
			}
			key := e.Ref().String()
			if first, dup := seen[key]; dup {
				return nil, fmt.Errorf("%s: %s is already defined in %s", e.Source, key, first)
			}
			seen[key] = e.Source
			set.Entities = append(set.Entities, e)
		}
	}
	return set, nil
}

// parse decodes the documents of one file and checks each is a
// descriptor.
func parse(loc string, raw []byte) ([]*Entity, error) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var out []*Entity
	for n := 1; ; n++ {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", loc, n, err)
		}
		if len(node.Content) == 0 || node.Content[0].Tag == "!!null" {
			continue // an empty document
		}
		line := node.Content[0].Line
		var e Entity
		if err := node.Decode(&e); err != nil {
			return nil, fmt.Errorf("%s: document %d (line %d): not a Backstage descriptor: %w", loc, n, line, err)
		}
		e.Source = fmt.Sprintf("%s#%d", loc, n)
		var missing []string
		if e.APIVersion == "" {
			missing = append(missing, "apiVersion")
		}
		if e.Kind == "" {
			missing = append(missing, "kind")
		}
		if e.Metadata.Name == "" {
			missing = append(missing, "metadata.name")
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("%s: document %d (line %d): %s required", loc, n, line, strings.Join(missing, ", "))
		}
		out = append(out, &e)
	}
}

// targets lists a Location's spec.target and spec.targets.
func targets(e *Entity) []string {
	var out []string
	if t, ok := e.Spec["target"].(string); ok && t != "" {
		out = append(out, t)
	}
	if ts, ok := e.Spec["targets"].([]any); ok {
		for _, t := range ts {
			if s, ok := t.(string); ok && s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// resolve places target relative to the location base that names it.
func resolve(base, target string) (string, error) {
	if isURL(target) {
		return target, nil
	}
	if isURL(base) {
		b, err := url.Parse(base)
		if err != nil {
			return "", err
		}
		t, err := url.Parse(target)
		if err != nil {
			return "", err
		}
		return b.ResolveReference(t).String(), nil
	}
	if filepath.IsAbs(target) {
		return filepath.Clean(target), nil
	}
	return filepath.Join(filepath.Dir(base), target), nil
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// Read is the Fetch of files and http(s) URLs.
func Read(ctx context.Context, location string) ([]byte, error) {
	if !isURL(location) {
		return os.ReadFile(location)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, location, nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", location, res.Status)
	}
	return io.ReadAll(io.LimitReader(res.Body, 32<<20))
}
