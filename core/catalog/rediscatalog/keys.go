package rediscatalog

import (
	"crypto/rand"
	"sort"

	"github.com/portico-dev/portico/core/catalog"
)

// Key layout. "|" never appears in identifiers, so keys cannot collide.
//
//	<p>|bps                      set of blueprint identifiers
//	<p>|bp|<bp>                  blueprint JSON
//	<p>|e|<bp>|<id>              entity JSON
//	<p>|ids|<bp>                 zset (lex) of the blueprint's identifiers
//	<p>|ix|<bp>|<prop>|=|<tv>    set: ids whose value is tv (tagged: s<string>, n<number>, b<bool>)
//	<p>|ix|<bp>|<prop>|v         zset (lex): the property's distinct tagged string values
//	<p>|ix|<bp>|<prop>|x         zset (lex): s<value>\x00<id> of a high-cardinality string property
//	<p>|ix|<bp>|<prop>|n         zset: numeric values (member id, or id\x00k for array elements)
//	<p>|ix|<bp>|<prop>|l         set: ids whose string value is too long to index
//	<p>|in|<bp>|<id>|<src>|<rel> set of the <src> identifiers whose relation <rel> points at <bp>/<id>
//	<p>|indexlayout              version of the index layout (UpgradeIndexes)
//	<p>|chgs                     set of the blueprints with a change in progress
//	<p>|chg|<bp>                 the blueprint's change in progress (catalog.BlueprintChange JSON)
//	<p>|chgp|<bp>                its progress (changeProgress JSON)
//	<p>|chgoff|<bp>              set: ids written during a validation that the proposed definition refuses
//	<p>|dirty                    zset: derived values to recompute, <kind><bp>|<id> → times marked
//	<p>|claimed                  zset: marks being recomputed → the claim's last heartbeat (unix ms)
//	<p>|mdepth|<mark>            the automation depth of the change that made a mark (expires)
//	<p>|mchg|<bp>|<id>           set: properties of the entity its readers read that changed since they were told
//	<p>|dprog|<bp>               progress of a whole blueprint's recomputation (catalog.DeriveProgress JSON)
//	<p>|events                   stream of change events
//	<p>|hist|<bp>|<id>           list of the entity's events (JSON), newest last
//	<p>|tmp|<random>             scratch set of one read (an aggregate's union), deleted at once
type keys struct{ prefix string }

func (k keys) blueprints() string           { return k.prefix + "|bps" }
func (k keys) blueprint(bp string) string   { return k.prefix + "|bp|" + bp }
func (k keys) entity(bp, id string) string  { return k.prefix + "|e|" + bp + "|" + id }
func (k keys) ids(bp string) string         { return k.prefix + "|ids|" + bp }
func (k keys) events() string               { return k.prefix + "|events" }
func (k keys) indexLayout() string          { return k.prefix + "|indexlayout" }
func (k keys) history(bp, id string) string { return k.prefix + "|hist|" + bp + "|" + id }
func (k keys) changes() string              { return k.prefix + "|chgs" }
func (k keys) change(bp string) string      { return k.prefix + "|chg|" + bp }
func (k keys) changeProgress(bp string) string {
	return k.prefix + "|chgp|" + bp
}
func (k keys) offenders(bp string) string     { return k.prefix + "|chgoff|" + bp }
func (k keys) dirty() string                  { return k.prefix + "|dirty" }
func (k keys) markDepth(member string) string { return k.prefix + "|mdepth|" + member }
func (k keys) claimed() string                { return k.prefix + "|claimed" }
func (k keys) changedProps(bp, id string) string {
	return k.prefix + "|mchg|" + bp + "|" + id
}
func (k keys) deriveProgress(bp string) string { return k.prefix + "|dprog|" + bp }
func (k keys) scratch() string                 { return k.prefix + "|tmp|" + rand.Text() }
func (k keys) referrers(bp, id, srcBP, relation string) string {
	return k.prefix + "|in|" + bp + "|" + id + "|" + srcBP + "|" + relation
}
func (k keys) eqIndex(bp, prop, tagged string) string {
	return k.prefix + "|ix|" + bp + "|" + prop + "|=|" + tagged
}
func (k keys) valuesIndex(bp, prop string) string { return k.prefix + "|ix|" + bp + "|" + prop + "|v" }
func (k keys) numIndex(bp, prop string) string    { return k.prefix + "|ix|" + bp + "|" + prop + "|n" }
func (k keys) pairIndex(bp, prop string) string   { return k.prefix + "|ix|" + bp + "|" + prop + "|x" }
func (k keys) longIndex(bp, prop string) string   { return k.prefix + "|ix|" + bp + "|" + prop + "|l" }
func (k keys) noneIndex(bp, prop string) string   { return k.prefix + "|ix|" + bp + "|" + prop + "|0" }

func (k keys) indexKey(bp string, e indexEntry) string {
	switch e.kind {
	case eqIndex:
		return k.eqIndex(bp, e.prop, e.value)
	case valuesIndex:
		return k.valuesIndex(bp, e.prop)
	case numIndex:
		return k.numIndex(bp, e.prop)
	case pairIndex:
		return k.pairIndex(bp, e.prop)
	case noneIndex:
		return k.noneIndex(bp, e.prop)
	default:
		return k.longIndex(bp, e.prop)
	}
}

// edgeKind is one relation that can point at a blueprint: relation Name of
// blueprint From.
type edgeKind struct{ From, Name string }

// incoming lists, in a stable order, the relations of all blueprints that
// target the blueprint target: the reverse index keeps one set per kind.
func incoming(bps []*catalog.Blueprint, target string) []edgeKind {
	var out []edgeKind
	for _, bp := range bps {
		for name, rel := range bp.Relations {
			if rel.Target == target {
				out = append(out, edgeKind{From: bp.Identifier, Name: name})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].From != out[j].From {
			return out[i].From < out[j].From
		}
		return out[i].Name < out[j].Name
	})
	return out
}
