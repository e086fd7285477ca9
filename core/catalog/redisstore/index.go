package redisstore

import (
	"strconv"
	"strings"

	"github.com/portico-dev/portico/core/catalog"
)

// maxLexValue is the longest string kept in a lexical index; longer values
// go to the property's "long" set and are always re-checked.
const maxLexValue = 256

type indexKind byte

const (
	numIndex  indexKind = 'n'
	lexIndex  indexKind = 's'
	longIndex indexKind = 'l'
)

// indexEntry is one member of one secondary index.
type indexEntry struct {
	kind   indexKind
	prop   string
	member string
	score  float64
}

// Lex index member tags: values of different JSON types never compare equal.
const (
	tagString = 's'
	tagBool   = 'b'
)

func lexMember(tag byte, value, id string) string {
	var b strings.Builder
	b.Grow(len(value) + len(id) + 2)
	b.WriteByte(tag)
	b.WriteString(value)
	b.WriteByte(0)
	b.WriteString(id)
	return b.String()
}

// idFromLexMember extracts the identifier: everything after the last NUL.
func idFromLexMember(m string) string {
	return m[strings.LastIndexByte(m, 0)+1:]
}

// idFromNumMember strips the array-element suffix of a numeric member.
func idFromNumMember(m string) string {
	if i := strings.IndexByte(m, 0); i >= 0 {
		return m[:i]
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
	out := make([]indexEntry, 0, len(e.Properties)+6)
	for name, v := range e.Properties {
		out = appendValueEntries(out, name, e.Identifier, v)
	}
	if e.Title != "" {
		out = appendValueEntries(out, "$title", e.Identifier, e.Title)
	}
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
			out = appendScalarEntry(out, prop, id, x, i, true)
		}
		return out
	case []string:
		for i, x := range t {
			out = appendScalarEntry(out, prop, id, x, i, true)
		}
		return out
	}
	return appendScalarEntry(out, prop, id, v, 0, false)
}

func appendScalarEntry(out []indexEntry, prop, id string, v any, i int, inArray bool) []indexEntry {
	switch t := v.(type) {
	case string:
		if len(t) > maxLexValue {
			return append(out, indexEntry{kind: longIndex, prop: prop, member: id})
		}
		return append(out, indexEntry{kind: lexIndex, prop: prop, member: lexMember(tagString, t, id)})
	case bool:
		return append(out, indexEntry{kind: lexIndex, prop: prop, member: lexMember(tagBool, strconv.FormatBool(t), id)})
	case float64:
		m := id
		if inArray {
			m = id + "\x00" + strconv.Itoa(i)
		}
		return append(out, indexEntry{kind: numIndex, prop: prop, member: m, score: t})
	case int:
		return appendScalarEntry(out, prop, id, float64(t), i, inArray)
	}
	return out
}

// indexDiff returns the entries to remove and to add to go from before to
// after (either may be nil).
func indexDiff(before, after *catalog.Entity) (remove, add []indexEntry) {
	old := indexEntries(before)
	cur := indexEntries(after)
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
		if _, ok := keep[e]; !ok {
			remove = append(remove, e)
		}
	}
	return remove, add
}

func (k keys) indexKey(bp string, e indexEntry) string {
	switch e.kind {
	case numIndex:
		return k.numIndex(bp, e.prop)
	case lexIndex:
		return k.lexIndex(bp, e.prop)
	default:
		return k.longIndex(bp, e.prop)
	}
}
