package pdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
)

var (
	nameRe        = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	semverRe      = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$`)
	placeholderRe = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}`)
)

// Placeholders returns the secret names referenced by an auth template.
func Placeholders(template string) []string {
	var names []string
	for _, m := range placeholderRe.FindAllStringSubmatch(template, -1) {
		names = append(names, m[1])
	}
	return names
}

// FillTemplate replaces {{name}} placeholders with lookup(name); it fails on
// a placeholder lookup does not know.
func FillTemplate(template string, lookup func(string) (string, bool)) (string, error) {
	var missing error
	out := placeholderRe.ReplaceAllStringFunc(template, func(m string) string {
		name := placeholderRe.FindStringSubmatch(m)[1]
		v, ok := lookup(name)
		if !ok && missing == nil {
			missing = fmt.Errorf("secret %q is not set", name)
		}
		return v
	})
	return out, missing
}

// Validate checks the info a plugin reports about itself and returns every
// problem found, joined.
func (i *Info) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !nameRe.MatchString(i.Name) {
		bad("name %q: want lowercase letters, digits and dashes", i.Name)
	}
	if !semverRe.MatchString(i.Version) {
		bad("version %q: not a semantic version", i.Version)
	}
	kinds := map[string]bool{}
	for _, k := range i.Kinds {
		if k.Kind == "" {
			bad("kinds: empty kind")
		} else if kinds[k.Kind] {
			bad("kinds: duplicate kind %q", k.Kind)
		}
		kinds[k.Kind] = true
	}
	for n, bp := range i.Blueprints {
		var b struct {
			Identifier string `json:"identifier"`
		}
		if err := json.Unmarshal(bp, &b); err != nil || b.Identifier == "" {
			bad("blueprints[%d]: want a JSON object with an identifier", n)
		}
	}
	for n, m := range i.Mappings.Resources {
		if !kinds[m.Kind] {
			bad("mappings.resources[%d]: unknown kind %q", n, m.Kind)
		}
		if m.Entity.Identifier == "" || m.Entity.Blueprint == "" {
			bad("mappings.resources[%d]: entity needs identifier and blueprint", n)
		}
	}
	if len(i.Config) > 0 && !json.Valid(i.Config) {
		bad("config: not valid JSON")
	}
	for n, a := range i.Auth {
		if a.Header == "" || len(a.Hosts) == 0 {
			bad("auth[%d]: needs hosts and header", n)
		}
		for _, s := range Placeholders(a.Template) {
			if !slices.Contains(i.Secrets, s) {
				bad("auth[%d]: template uses undeclared secret %q", n, s)
			}
		}
	}
	actions := map[string]bool{}
	for n, a := range i.Actions {
		if a.Name == "" || actions[a.Name] {
			bad("actions[%d]: empty or duplicate name %q", n, a.Name)
		}
		actions[a.Name] = true
		if len(a.Inputs) > 0 && !json.Valid(a.Inputs) {
			bad("actions[%d]: inputs not valid JSON", n)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid plugin info: %w", err)
	}
	return nil
}
