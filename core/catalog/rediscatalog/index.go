package rediscatalog

import (
	"strconv"
	"strings"

	"github.com/portico-dev/portico/core/catalog"
)

// maxIndexedValue is the longest string with its own equality set; longer
// values go to the property's "long" set and are always re-checked.
const maxIndexedValue = 256

type indexKind byte

const (
	// eqIndex: a set of the identifiers holding one value (equality, in,
	// contains — intersected server-side with SINTER). Low-cardinality
	// strings and booleans.
	eqIndex indexKind = '='
	// valuesIndex: a lexical zset of a low-cardinality property's distinct
	// string values (ranges and prefixes over strings pick values here,
	// then union their equality sets). Members are not removed when the
	// last entity drops a value: a stale value's equality set is simply
	// empty.
	valuesIndex indexKind = 'v'
	// pairIndex: a lexical zset of "<tagged value>\x00<id>" for a
	// high-cardinality string property (catalog.Property.HighCardinality):
	// one member per value instead of a Redis key per distinct value.
	// Equality, ranges and prefixes are ZRANGEBYLEX over it.
	pairIndex indexKind = 'x'
	// numIndex: a zset of numeric values (equality, ranges, sorting).
	numIndex indexKind = 'n'
	// longIndex: identifiers whose string value is too long to index (or,
	// in a pair index, holds a NUL): always re-checked.
	longIndex indexKind = 'l'
	// noneIndex: identifiers holding no value of a list meta-property
	// ($team, see hasNoneIndex): grouping by it counts, and reads, the
	// entities without one from their own set instead of subtracting
	// the union of all the others.
	noneIndex indexKind = '0'
)

// hasNoneIndex reports whether prop keeps a noneIndex: the list
// meta-properties indexed as labels (every entity has them, so the set
// never needs a backfill when a blueprint changes).
func hasNoneIndex(prop string) bool {
	m, ok := catalog.LookupMeta(prop)
	return ok && m.Index() == catalog.IndexedAsLabel && m.IsList()
}

// indexEntry is one member of one secondary index.
type indexEntry struct {
	kind   indexKind
	prop   string
	value  string // tagged value, for eqIndex
	member string
	score  float64
}

// Value tags keep JSON types apart in equality sets: "true" never equals
// true. (Numbers live in score indexes only.)
const (
	tagString = 's'
	tagBool   = 'b'
)

func taggedString(s string) string { return string(rune(tagString)) + s }

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

// indexEntries appends to out every index member an entity contributes
// under blueprint bp's layout: each top-level scalar property (and each
// scalar element of an array property) and the indexed meta-properties.
func indexEntries(out []indexEntry, bp *catalog.Blueprint, e *catalog.Entity) []indexEntry {
	if e == nil {
		return out
	}
	for name, v := range e.Properties {
		high := false
		if def, ok := bp.Schema.Properties[name]; ok {
			high = def.HighCardinality()
		}
		out = appendValueEntries(out, name, e.Identifier, v, high)
	}
	for m := range catalog.MetaProperties() {
		out = appendMetaEntries(out, m, e)
	}
	return appendDerivedEntries(out, e)
}

// appendDerivedEntries appends the index members of e's derived values,
// searchable like properties: aggregation values under their names,
// scorecard levels as "scorecards.<id>.level".
func appendDerivedEntries(out []indexEntry, e *catalog.Entity) []indexEntry {
	for name, v := range e.Aggregations {
		out = appendValueEntries(out, name, e.Identifier, v, false)
	}
	for id := range e.Scorecards {
		if lv := catalog.ScorecardLevelOf(e, id); lv != "" {
			out = appendValueEntries(out, catalog.ScorecardLevelProperty(id), e.Identifier, lv, false)
		}
	}
	return out
}

// derivedIndexEntries are the index members that a change of derived
// values alone (which may move UpdatedAt) can change.
func derivedIndexEntries(out []indexEntry, e *catalog.Entity) []indexEntry {
	if m, ok := catalog.LookupMeta("$updatedAt"); ok {
		out = appendMetaEntries(out, m, e)
	}
	return appendDerivedEntries(out, e)
}

// appendMetaEntries appends the index members of one meta-property of e,
// as its catalog.MetaIndex says.
func appendMetaEntries(out []indexEntry, m catalog.MetaProperty, e *catalog.Entity) []indexEntry {
	switch m.Index() {
	case catalog.IndexedAsText:
		// An untitled entity has $title "" (catalog.Lookup): index it
		// too, or `$title = ""` and ranges reaching "" would miss it.
		return appendValueEntries(out, m.Name(), e.Identifier, m.Text(e), true)
	case catalog.IndexedAsLabel:
		if m.IsList() {
			labels := m.Labels(e)
			for _, v := range labels {
				out = appendValueEntries(out, m.Name(), e.Identifier, v, false)
			}
			if len(labels) == 0 {
				out = append(out, indexEntry{kind: noneIndex, prop: m.Name(), member: e.Identifier})
			}
		} else if v := m.Text(e); v != "" {
			out = appendValueEntries(out, m.Name(), e.Identifier, v, false)
		}
	case catalog.IndexedAsTime:
		out = append(out, indexEntry{kind: numIndex, prop: m.Name(), member: e.Identifier, score: float64(m.Time(e).UnixMilli())})
	}
	return out
}

// highCardinality tells which layout a string property of bp uses.
func highCardinality(bp *catalog.Blueprint, prop string) bool {
	if m, ok := catalog.LookupMeta(prop); ok {
		return m.Index() == catalog.IndexedAsText
	}
	def, ok := bp.Schema.Properties[prop]
	return ok && def.HighCardinality()
}

func appendValueEntries(out []indexEntry, prop, id string, v any, high bool) []indexEntry {
	switch t := v.(type) {
	case []any:
		for i, x := range t {
			out = appendScalarEntries(out, prop, id, x, i, true, high)
		}
		return out
	case []string:
		for i, x := range t {
			out = appendScalarEntries(out, prop, id, x, i, true, high)
		}
		return out
	}
	return appendScalarEntries(out, prop, id, v, 0, false, high)
}

func appendScalarEntries(out []indexEntry, prop, id string, v any, i int, inArray, high bool) []indexEntry {
	switch t := v.(type) {
	case string:
		if len(t) > maxIndexedValue || (high && strings.IndexByte(t, 0) >= 0) {
			return append(out, indexEntry{kind: longIndex, prop: prop, member: id})
		}
		if high {
			return append(out, indexEntry{kind: pairIndex, prop: prop, member: pairMember(t, id)})
		}
		tv := taggedString(t)
		return append(out,
			indexEntry{kind: eqIndex, prop: prop, value: tv, member: id},
			indexEntry{kind: valuesIndex, prop: prop, member: tv})
	case bool:
		return append(out, indexEntry{kind: eqIndex, prop: prop, value: taggedBool(t), member: id})
	case float64:
		// Numeric equality is a score range on this zset: a set per
		// number would cost a key per distinct value (costs, ports, ...).
		m := id
		if inArray {
			m = id + "\x00" + strconv.Itoa(i)
		}
		return append(out, indexEntry{kind: numIndex, prop: prop, member: m, score: t})
	case int:
		return appendScalarEntries(out, prop, id, float64(t), i, inArray, high)
	}
	return out
}

// pairMember is a pair-index member: the tagged value, NUL, the identifier
// (values holding a NUL are not pair-indexed, so the first NUL splits).
func pairMember(value, id string) string {
	return string(rune(tagString)) + value + "\x00" + id
}

// idFromPairMember returns the identifier of a pair-index member.
func idFromPairMember(m string) string {
	return m[strings.IndexByte(m, 0)+1:]
}

// indexDiff returns the entries to remove and to add to go from old (the
// entries of the stored version) to cur (those of the new one). Values-index
// members are never removed.
func indexDiff(old, cur []indexEntry) (remove, add []indexEntry) {
	if len(old) == 0 {
		return nil, cur
	}
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
