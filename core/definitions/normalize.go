package definitions

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/portico-dev/portico/core/catalog"
)

// serverManaged are the top-level fields each kind's API answers carry
// but a definition does not: versions, timestamps, authors, computed
// values, statuses, secrets shown once.
var serverManaged = map[Kind][]string{
	Blueprint:   {"scorecards", "dependents", "change"},
	Workflow:    {"version"},
	Action:      {"version", "signingSecret"},
	Integration: {"datasource", "entities", "lastSync", "lastError", "watch", "scheduleState"},
	Scorecard:   {"evaluation"},
	Automation:  {"version", "signingSecret"},
	Initiative:  {"progress"},
	Token:       {"id", "createdBy", "expiresAt", "expiresIn", "lastUsedAt", "secretFile"},
	Entity:      {"datasource", "scorecards", "aggregations"},
}

// everywhere are the server-managed fields of every kind.
var everywhere = []string{"createdAt", "updatedAt", "createdBy", "updatedBy"}

// Normalize returns the canonical form of a definition of kind, whether
// it comes from a file or from the API (doc: any value that encodes to a
// JSON object): the fields the server manages are dropped; write-only
// maps (an integration's secrets, webhook headers) become the sorted list
// of their names, as the API shows them (secretsSet, headersSet); empty
// values (null, "", false, [], {}) are dropped at every depth; a token's
// scopes are sorted. For an entity, bp (its blueprint; nil: unknown)
// names the computed properties, which are dropped.
func Normalize(kind Kind, doc any, bp *catalog.Blueprint) (map[string]any, error) {
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("normalise %s: %w", kind, err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("normalise %s: not a JSON object: %w", kind, err)
	}
	if m == nil {
		return nil, fmt.Errorf("normalise %s: not a JSON object", kind)
	}
	for _, f := range append(slices.Clone(everywhere), serverManaged[kind]...) {
		delete(m, f)
	}
	switch kind {
	case Integration:
		writeOnly(m, "secrets", "secretsSet")
		if t, ok := m["deletionThreshold"].(float64); ok && t == DefaultDeletionThreshold {
			delete(m, "deletionThreshold")
		}
	case Action, Workflow, Automation:
		walkObjects(m, func(o map[string]any) { writeOnly(o, "headers", "headersSet") })
	case Token:
		if s, ok := m["scopes"].([]any); ok {
			sort.Slice(s, func(i, j int) bool { return fmt.Sprint(s[i]) < fmt.Sprint(s[j]) })
		}
	case Entity:
		if props, ok := m["properties"].(map[string]any); ok && bp != nil {
			for name := range props {
				if isComputed(bp, name) {
					delete(props, name)
				}
			}
		}
	}
	out, _ := dropEmpty(m).(map[string]any)
	if out == nil {
		out = map[string]any{}
	}
	return out, nil
}

// Align fits now (a normalised current state) to what want (the
// normalised definition as written) states, where the portal resolves a
// value the definition may leave open: an integration's plugin named
// without a version is installed at a version ("pagerduty" →
// "pagerduty@0.1.0"), which is no difference. now is changed in place.
func Align(kind Kind, want, now map[string]any) {
	if kind != Integration {
		return
	}
	w, _ := want["plugin"].(string)
	n, _ := now["plugin"].(string)
	if w != "" && !strings.Contains(w, "@") && strings.HasPrefix(n, w+"@") {
		now["plugin"] = w
	}
}

// DefaultDeletionThreshold is the deletion threshold an integration has
// when its spec names none (the API shows it).
const DefaultDeletionThreshold = 0.5

func isComputed(bp *catalog.Blueprint, name string) bool {
	_, calc := bp.CalculationProperties[name]
	_, mirror := bp.MirrorProperties[name]
	_, agg := bp.AggregationProperties[name]
	return calc || mirror || agg
}

// writeOnly replaces o[field], a map of write-only values, with o[names]:
// their sorted names (an absent or empty map leaves o[names] as it is).
func writeOnly(o map[string]any, field, names string) {
	v, ok := o[field]
	if !ok {
		return
	}
	delete(o, field)
	secrets, _ := v.(map[string]any)
	if len(secrets) == 0 {
		return
	}
	list := make([]any, 0, len(secrets))
	for _, k := range slices.Sorted(maps.Keys(secrets)) {
		list = append(list, k)
	}
	o[names] = list
}

// walkObjects calls fn on every object within v, outermost first.
func walkObjects(v any, fn func(map[string]any)) {
	switch t := v.(type) {
	case map[string]any:
		fn(t)
		for _, x := range t {
			walkObjects(x, fn)
		}
	case []any:
		for _, x := range t {
			walkObjects(x, fn)
		}
	}
}

// dropEmpty removes null, "", false, [] and {} values from objects, at
// every depth (array elements stay where they are: their position counts).
func dropEmpty(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			x = dropEmpty(x)
			if isEmpty(x) {
				delete(t, k)
				continue
			}
			t[k] = x
		}
		return t
	case []any:
		for i, x := range t {
			t[i] = dropEmpty(x)
		}
		return t
	}
	return v
}

func isEmpty(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case string:
		return t == ""
	case bool:
		return !t
	case map[string]any:
		return len(t) == 0
	case []any:
		return len(t) == 0
	}
	return false
}

// ID is the identity of a definition of kind within its kind: the
// identifier, "<blueprint>/<identifier>" for scorecards and entities,
// "<user>/<name>" for tokens, the id of an integration. Empty when spec
// lacks it.
func ID(kind Kind, spec map[string]any) string {
	str := func(k string) string { s, _ := spec[k].(string); return s }
	switch kind {
	case Scorecard, Entity:
		if str("blueprint") == "" || str("identifier") == "" {
			return ""
		}
		return str("blueprint") + "/" + str("identifier")
	case Token:
		if str("user") == "" || str("name") == "" {
			return ""
		}
		return str("user") + "/" + str("name")
	case Integration:
		return str("id")
	}
	return str("identifier")
}

// Change is one difference between two normalised specs: at Path (a JSON
// pointer), Old became New (nil: absent).
type Change struct {
	Path string `json:"path"`
	Old  any    `json:"old,omitempty"`
	New  any    `json:"new,omitempty"`
}

// Diff lists, field by field, what differs from old to new (both
// normalised), ordered by path.
func Diff(old, new map[string]any) []Change {
	var out []Change
	diffValue("", old, new, &out)
	return out
}

func diffValue(path string, a, b any, out *[]Change) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := slices.Sorted(maps.Keys(am))
		for k := range bm {
			if _, ok := am[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			diffValue(path+"/"+escapePointer(k), am[k], bm[k], out)
		}
		return
	}
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok && len(as) == len(bs) {
		for i := range as {
			diffValue(path+"/"+strconv.Itoa(i), as[i], bs[i], out)
		}
		return
	}
	if !reflect.DeepEqual(a, b) {
		*out = append(*out, Change{Path: path, Old: a, New: b})
	}
}

// escapePointer escapes a key for a JSON pointer (RFC 6901).
func escapePointer(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}
