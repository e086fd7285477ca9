package manifest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/automations"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/definitions"
	"github.com/portico-dev/portico/core/initiatives"
	"github.com/portico-dev/portico/host/integrations"
)

// Lookup answers what validation needs to know of the portal.
type Lookup interface {
	// Blueprint returns a blueprint of the portal (nil, nil: none).
	Blueprint(ctx context.Context, id string) (*catalog.Blueprint, error)
	// Exists says whether a definition of kind exists on the portal.
	Exists(ctx context.Context, kind definitions.Kind, id string) (bool, error)
}

// TokenSpec is a Token document's spec: a token for a (service account)
// user, created when missing; its secret is written to SecretFile (mode
// 0600) or printed once.
type TokenSpec struct {
	Name       string   `json:"name"`
	User       string   `json:"user"`
	Scopes     []string `json:"scopes"`
	ExpiresIn  string   `json:"expiresIn,omitempty"`
	SecretFile string   `json:"secretFile,omitempty"`
}

// Validate checks every document: its shape and identity, duplicates
// across files, secrets given by reference only, the definition itself
// with the portal's own validation, and references between definitions
// (to documents or to what the portal has). On success every document's
// Normalised is set; otherwise the error is Errors, one per problem.
func Validate(ctx context.Context, docs []*Document, look Lookup) error {
	var errs Errors
	seen := map[string]*Document{}
	bad := map[*Document]bool{}
	for _, d := range docs {
		es := validateOne(d)
		errs = append(errs, es...)
		if len(es) > 0 {
			bad[d] = true
			continue
		}
		key := string(d.Kind) + "|" + d.ID()
		if first, dup := seen[key]; dup {
			errs = append(errs, d.errorAt("/spec", "%s is defined twice (first in %s#%d)", d.Name(), first.File, first.Index))
			continue
		}
		seen[key] = d
	}
	r := &refs{ctx: ctx, look: look, docs: seen, blueprints: map[string]*catalog.Blueprint{}}
	for _, d := range docs {
		if bad[d] {
			continue
		}
		es, err := r.check(d)
		if err != nil {
			return err
		}
		errs = append(errs, es...)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// validateOne checks what a document says on its own.
func validateOne(d *Document) Errors {
	var errs Errors
	spec := d.Spec
	at := func(path, format string, args ...any) {
		errs = append(errs, d.errorAt("/spec"+path, format, args...))
	}
	switch d.Kind {
	case definitions.Scorecard, definitions.Entity, definitions.Action, definitions.Initiative:
		if s, _ := spec["blueprint"].(string); s == "" {
			at("/blueprint", "required: the blueprint's identifier")
		}
	}
	switch d.Kind {
	case definitions.Integration:
		if s, _ := spec["id"].(string); !catalog.IdentifierPattern.MatchString(s) {
			at("/id", "required: an identifier matching %s", catalog.IdentifierPattern)
		}
	case definitions.Token:
	default:
		if s, _ := spec["identifier"].(string); !catalog.IdentifierPattern.MatchString(s) {
			at("/identifier", "required: an identifier matching %s", catalog.IdentifierPattern)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	for _, ref := range secretRefs(d.Kind, spec) {
		if msg := ref.problem(d.Kind == definitions.Integration); msg != "" {
			at(ref.path, "%s", msg)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	body := withoutRefs(d.Kind, spec)
	fail := func(path, msg string) { at(path, "%s", msg) }
	violations := func(err error) {
		var ve *catalog.ValidationError
		if errors.As(err, &ve) && len(ve.Violations) > 0 {
			for _, v := range ve.Violations {
				p := v.Path
				if p != "" && !strings.HasPrefix(p, "/") {
					p = "/" + p
				}
				at(p, "%s", v.Message)
			}
			return
		}
		at("", "%s", err)
	}
	decode := func(out any) bool {
		if path, msg, ok := decodeStrict(body, out, ""); !ok {
			fail(path, msg)
			return false
		}
		return true
	}
	switch d.Kind {
	case definitions.Blueprint:
		var bp catalog.Blueprint
		if decode(&bp) {
			if _, err := catalog.CompileBlueprint(&bp); err != nil {
				violations(err)
			}
		}
	case definitions.Workflow:
		var w actions.Workflow
		if decode(&w) {
			if err := w.Validate(); err != nil {
				violations(err)
			}
		}
	case definitions.Action:
		var a actions.Action
		if decode(&a) {
			if err := a.Validate(); err != nil {
				violations(err)
			}
		}
	case definitions.Integration:
		var s integrations.Spec
		if decode(&s) && s.Plugin == "" {
			fail("/plugin", "required: the plugin, as name or name@version")
		}
	case definitions.Scorecard:
		var sc catalog.Scorecard
		decode(&sc)
	case definitions.Automation:
		var a automations.Automation
		if decode(&a) {
			if err := a.Validate(); err != nil {
				violations(err)
			}
		}
	case definitions.Initiative:
		var in initiatives.Initiative
		decode(&in)
	case definitions.Token:
		var t TokenSpec
		if decode(&t) {
			if t.Name == "" {
				fail("/name", "required")
			}
			if t.User == "" {
				fail("/user", "required: the (service account) user the token is for")
			}
			if len(t.Scopes) == 0 {
				fail("/scopes", "required: the token's scopes (read, write, run, approve, admin)")
			}
		}
	case definitions.Entity:
		var e catalog.Entity
		decode(&e)
	}
	return errs
}

// refs checks references between definitions.
type refs struct {
	ctx        context.Context
	look       Lookup
	docs       map[string]*Document // by kind|id
	blueprints map[string]*catalog.Blueprint
}

func (r *refs) doc(kind definitions.Kind, id string) *Document {
	return r.docs[string(kind)+"|"+id]
}

// blueprint is blueprint id as the documents define it, or as the portal
// has it (nil: neither).
func (r *refs) blueprint(id string) (*catalog.Blueprint, error) {
	if bp, ok := r.blueprints[id]; ok {
		return bp, nil
	}
	var bp *catalog.Blueprint
	if d := r.doc(definitions.Blueprint, id); d != nil {
		var b catalog.Blueprint
		if _, _, ok := decodeStrict(d.Spec, &b, ""); ok {
			bp = &b
		}
	} else if r.look != nil {
		var err error
		if bp, err = r.look.Blueprint(r.ctx, id); err != nil {
			return nil, fmt.Errorf("blueprint %s: %w", id, err)
		}
	}
	r.blueprints[id] = bp
	return bp, nil
}

func (r *refs) exists(kind definitions.Kind, id string) (bool, error) {
	if r.doc(kind, id) != nil {
		return true, nil
	}
	if kind == definitions.Blueprint {
		bp, err := r.blueprint(id)
		return bp != nil, err
	}
	if r.look == nil {
		return false, nil
	}
	ok, err := r.look.Exists(r.ctx, kind, id)
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", kind, id, err)
	}
	return ok, nil
}

// check checks d's references and, for an entity or a scorecard, d
// against its blueprint; it sets d.Normalised.
func (r *refs) check(d *Document) (Errors, error) {
	var errs Errors
	at := func(path, format string, args ...any) {
		errs = append(errs, d.errorAt("/spec"+path, format, args...))
	}
	need := func(path string, kind definitions.Kind, id string) error {
		ok, err := r.exists(kind, id)
		if err == nil && !ok {
			at(path, "%s %q is neither in the files nor on the portal", strings.ToLower(string(kind)), id)
		}
		return err
	}
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	var bp *catalog.Blueprint
	switch d.Kind {
	case definitions.Blueprint:
		rels, _ := d.Spec["relations"].(map[string]any)
		for _, name := range sortedKeys(rels) {
			rel, _ := rels[name].(map[string]any)
			if t := str(rel, "target"); t != "" && t != d.ID() {
				if err := need("/relations/"+escape(name)+"/target", definitions.Blueprint, t); err != nil {
					return nil, err
				}
			}
		}
	case definitions.Action:
		if err := need("/blueprint", definitions.Blueprint, str(d.Spec, "blueprint")); err != nil {
			return nil, err
		}
		inv, _ := d.Spec["invocation"].(map[string]any)
		if w := str(inv, "workflow"); str(inv, "type") == actions.InvokeWorkflow && w != "" {
			if err := need("/invocation/workflow", definitions.Workflow, w); err != nil {
				return nil, err
			}
		}
	case definitions.Initiative:
		if err := need("/blueprint", definitions.Blueprint, str(d.Spec, "blueprint")); err != nil {
			return nil, err
		}
	case definitions.Scorecard, definitions.Entity:
		var err error
		id := str(d.Spec, "blueprint")
		if bp, err = r.blueprint(id); err != nil {
			return nil, err
		}
		if bp == nil {
			at("/blueprint", "blueprint %q is neither in the files nor on the portal", id)
			break
		}
		if d.Kind == definitions.Scorecard {
			var sc catalog.Scorecard
			if _, _, ok := decodeStrict(withoutRefs(d.Kind, d.Spec), &sc, ""); ok {
				errs = append(errs, r.checkScorecard(d, bp, &sc)...)
			}
			break
		}
		errs = append(errs, r.checkEntity(d, bp)...)
	}
	if len(errs) > 0 {
		return errs, nil
	}
	var err error
	d.Normalised, err = definitions.Normalize(d.Kind, d.Spec, bp)
	return nil, err
}

// checkScorecard compiles the scorecard within its blueprint, as the
// portal does when it is written.
func (r *refs) checkScorecard(d *Document, bp *catalog.Blueprint, sc *catalog.Scorecard) Errors {
	b := *bp
	b.Scorecards = maps.Clone(bp.Scorecards)
	if b.Scorecards == nil {
		b.Scorecards = map[string]*catalog.Scorecard{}
	}
	b.Scorecards[sc.Identifier] = sc
	_, err := catalog.CompileBlueprint(&b)
	var ve *catalog.ValidationError
	if !errors.As(err, &ve) {
		if err != nil {
			return Errors{d.errorAt("/spec", "%s", err)}
		}
		return nil
	}
	var errs Errors
	prefix := "/scorecards/" + escape(sc.Identifier)
	for _, v := range ve.Violations {
		if p, ok := strings.CutPrefix(v.Path, prefix); ok {
			errs = append(errs, d.errorAt("/spec"+p, "%s", v.Message))
		}
	}
	return errs
}

// checkEntity validates the entity with its blueprint's schema.
func (r *refs) checkEntity(d *Document, bp *catalog.Blueprint) Errors {
	compiled, err := catalog.CompileBlueprint(bp)
	if err != nil {
		return nil // the blueprint's own document reports it
	}
	raw := mustJSON(d.Spec)
	e, err := catalog.DecodeEntity(raw)
	if err != nil {
		return Errors{d.errorAt("/spec", "%s", err)}
	}
	var errs Errors
	if err := compiled.ValidateEntity(e); err != nil {
		var ve *catalog.ValidationError
		if !errors.As(err, &ve) {
			return Errors{d.errorAt("/spec", "%s", err)}
		}
		for _, v := range ve.Violations {
			errs = append(errs, d.errorAt("/spec"+v.Path, "%s", v.Message))
		}
	}
	return errs
}

// secretRef is a value that may name a secret by reference:
// {"fromEnv": NAME} or {"fromFile": PATH}.
type secretRef struct {
	path string // JSON pointer under spec
	val  any
}

// problem says what is wrong with the reference ("" when nothing);
// inline values are refused when strict.
func (s secretRef) problem(strict bool) string {
	m, ok := s.val.(map[string]any)
	if !ok {
		if _, isStr := s.val.(string); isStr && !strict {
			return ""
		}
		return `secrets are never inline: give {"fromEnv": "NAME"} or {"fromFile": "path"}`
	}
	env, file := m["fromEnv"], m["fromFile"]
	switch {
	case len(m) != 1 || env == nil && file == nil:
		return `a secret reference is {"fromEnv": "NAME"} or {"fromFile": "path"}, exactly one`
	case env != nil:
		if s, _ := env.(string); s == "" {
			return "fromEnv: a variable name"
		}
	default:
		if s, _ := file.(string); s == "" {
			return "fromFile: a file path"
		}
	}
	return ""
}

// resolve reads the referenced secret (a plain string is its own value).
func (s secretRef) resolve() (string, error) {
	if v, ok := s.val.(string); ok {
		return v, nil
	}
	m := s.val.(map[string]any)
	if name, ok := m["fromEnv"].(string); ok {
		v, set := os.LookupEnv(name)
		if !set {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		return v, nil
	}
	raw, err := os.ReadFile(m["fromFile"].(string))
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(raw), "\r\n"), nil
}

// secretRefs lists the write-only values of a spec: an integration's
// secrets, the headers of webhooks (actions, workflow steps, automations).
func secretRefs(kind definitions.Kind, spec map[string]any) []secretRef {
	var out []secretRef
	collect := func(base string, m map[string]any) {
		for _, k := range sortedKeys(m) {
			out = append(out, secretRef{path: base + "/" + escape(k), val: m[k]})
		}
	}
	switch kind {
	case definitions.Integration:
		if m, ok := spec["secrets"].(map[string]any); ok {
			collect("/secrets", m)
		}
	case definitions.Action, definitions.Workflow, definitions.Automation:
		walkPaths(spec, "", func(path string, o map[string]any) {
			if m, ok := o["headers"].(map[string]any); ok {
				collect(path+"/headers", m)
			}
		})
	}
	return out
}

// withoutRefs is spec as the API decodes it: secret references replaced
// by placeholders, an integration's id and a scorecard's blueprint (the
// URL's) dropped.
func withoutRefs(kind definitions.Kind, spec map[string]any) map[string]any {
	out := deepCopy(spec).(map[string]any)
	switch kind {
	case definitions.Integration:
		delete(out, "id")
		if m, ok := out["secrets"].(map[string]any); ok {
			for k := range m {
				m[k] = ""
			}
		}
	case definitions.Scorecard:
		delete(out, "blueprint")
	case definitions.Action, definitions.Workflow, definitions.Automation:
		walkPaths(out, "", func(_ string, o map[string]any) {
			if m, ok := o["headers"].(map[string]any); ok {
				for k := range m {
					m[k] = ""
				}
			}
		})
	}
	return out
}

// resolved is spec as it is sent: secret references replaced by their
// values, an integration's id and a scorecard's blueprint dropped.
func resolved(kind definitions.Kind, spec map[string]any) (map[string]any, error) {
	out := withoutRefs(kind, spec)
	for _, ref := range secretRefs(kind, spec) {
		v, err := ref.resolve()
		if err != nil {
			return nil, fmt.Errorf("/spec%s: %w", ref.path, err)
		}
		setPointer(out, ref.path, v)
	}
	return out, nil
}

// walkPaths calls fn on every object within v with its JSON pointer.
func walkPaths(v any, path string, fn func(string, map[string]any)) {
	switch t := v.(type) {
	case map[string]any:
		fn(path, t)
		for _, k := range sortedKeys(t) {
			walkPaths(t[k], path+"/"+escape(k), fn)
		}
	case []any:
		for i, x := range t {
			walkPaths(x, path+"/"+strconv.Itoa(i), fn)
		}
	}
}

// setPointer sets the value at JSON pointer path in v (its parents exist).
func setPointer(v any, path string, val any) {
	toks := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i, tok := range toks {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		last := i == len(toks)-1
		switch t := v.(type) {
		case map[string]any:
			if last {
				t[tok] = val
				return
			}
			v = t[tok]
		case []any:
			n, _ := strconv.Atoi(tok)
			if last {
				t[n] = val
				return
			}
			v = t[n]
		}
	}
}
