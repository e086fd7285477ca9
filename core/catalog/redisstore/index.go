package redisstore

import (
	"strconv"

	"github.com/portico-dev/portico/core/catalog"
)

// maxIndexedValue is the longest string with its own equality set; longer
// values go to the property's "long" set and are always re-checked.
const maxIndexedValue = 256

type indexKind byte

const (
	// eqIndex: a set of the identifiers holding one value (equality, in,
	// contains — intersected server-side with SINTER).
	eqIndex indexKind = '='
	// valuesIndex: a lexical zset of a property's distinct string values
	// (ranges and prefixes over strings pick values here, then union their
	// equality sets). Members are not removed when the last entity drops a
	// value: a stale value's equality set is simply empty.
	valuesIndex indexKind = 'v'
	// numIndex: a zset of numeric values (ranges, sorting).
	numIndex indexKind = 'n'
	// longIndex: identifiers whose string value is too long to index.
	longIndex indexKind = 'l'
)

// indexEntry is one member of one secondary index.
type indexEntry struct {
	kind   indexKind
	prop   string
	value  string // tagged value, for eqIndex
	member string
	score  float64
}

// Value tags keep JSON types apart: "2" never equals 2, nor "true" true.
const (
	tagString = 's'
	tagBool   = 'b'
	tagNumber = 'n'
)

func taggedString(s string) string { return string(rune(tagString)) + s }

func taggedNumber(f float64) string {
	return string(rune(tagNumber)) + strconv.FormatFloat(f, 'g', -1, 64)
}

func taggedBool(b bool) string { return string(rune(tagBool)) + strconv.FormatBool(b) }

// idFromNumMember strips the array-element suffix of a numeric member.
func idFromNumMember(m string) string {
	for i := 0; i < len(m); i++ {
		if m[i] == 0 {
			return m[:i]
		}
	}
	return m
}

// indexEntries lists every index member an entity contributes: each
// top-level scalar property (and each scalar element of an array property)
// and the indexed meta-properties.
func indexEntries(e *catalog.Entity) []indexEntry {
	if e == nil {
		return nil
	}
	out := make([]indexEntry, 0, 2*len(e.Properties)+8)
	for name, v := range e.Properties {
		out = appendValueEntries(out, name, e.Identifier, v)
	}
	// An untitled entity has $title "" (catalog.Lookup): index it too, or
	// `$title = ""` and ranges reaching "" would miss it.
	out = appendValueEntries(out, "$title", e.Identifier, e.Title)
	for _, t := range e.Team {
		out = appendValueEntries(out, "$team", e.Identifier, t)
	}
	if e.Datasource != "" {
		out = appendValueEntries(out, "$datasource", e.Identifier, e.Datasource)
	}
	out = append(out,
		indexEntry{kind: numIndex, prop: "$createdAt", member: e.Identifier, score: float64(e.CreatedAt.UnixMilli())},
		indexEntry{kind: numIndex, prop: "$updatedAt", member: e.Identifier, score: float64(e.UpdatedAt.UnixMilli())},
	)
	return out
}

func appendValueEntries(out []indexEntry, prop, id string, v any) []indexEntry {
	switch t := v.(type) {
	case []any:
		for i, x := range t {
			out = appendScalarEntries(out, prop, id, x, i, true)
		}
		return out
	case []string:
		for i, x := range t {
			out = appendScalarEntries(out, prop, id, x, i, true)
		}
		return out
	}
	return appendScalarEntries(out, prop, id, v, 0, false)
}

func appendScalarEntries(out []indexEntry, prop, id string, v any, i int, inArray bool) []indexEntry {
	switch t := v.(type) {
	case string:
		if len(t) > maxIndexedValue {
			return append(out, indexEntry{kind: longIndex, prop: prop, member: id})
		}
		tv := taggedString(t)
		return append(out,
			indexEntry{kind: eqIndex, prop: prop, value: tv, member: id},
			indexEntry{kind: valuesIndex, prop: prop, member: tv})
	case bool:
		return append(out, indexEntry{kind: eqIndex, prop: prop, value: taggedBool(t), member: id})
	case float64:
		m := id
		if inArray {
			m = id + "\x00" + strconv.Itoa(i)
		}
		return append(out,
			indexEntry{kind: eqIndex, prop: prop, value: taggedNumber(t), member: id},
			indexEntry{kind: numIndex, prop: prop, member: m, score: t})
	case int:
		return appendScalarEntries(out, prop, id, float64(t), i, inArray)
	}
	return out
}

// indexDiff returns the entries to remove and to add to go from before to
// after (either may be nil). Values-index members are never removed.
func indexDiff(before, after *catalog.Entity) (remove, add []indexEntry) {
	cur := indexEntries(after)
	if before == nil {
		return nil, cur
	}
	old := indexEntries(before)
	seen := make(map[indexEntry]struct{}, len(old))
	for _, e := range old {
		seen[e] = struct{}{}
	}
	keep := make(map[indexEntry]struct{}, len(cur))
	for _, e := range cur {
		keep[e] = struct{}{}
		if _, ok := seen[e]; !ok {
			add = append(add, e)
		}
	}
	for _, e := range old {
		if _, ok := keep[e]; !ok && e.kind != valuesIndex {
			remove = append(remove, e)
		}
	}
	return remove, add
}
