package redisstore

import "strings"

// Key layout. "|" never appears in identifiers, so keys cannot collide.
//
//	<p>|bps                      set of blueprint identifiers
//	<p>|bp|<bp>                  blueprint JSON
//	<p>|e|<bp>|<id>              entity JSON
//	<p>|ids|<bp>                 zset (lex) of the blueprint's identifiers
//	<p>|ix|<bp>|<prop>|=|<tv>    set: ids whose value is tv (tagged: s<string>, n<number>, b<bool>)
//	<p>|ix|<bp>|<prop>|v         zset (lex): the property's distinct tagged string values
//	<p>|ix|<bp>|<prop>|n         zset: numeric values (member id, or id\x00k for array elements)
//	<p>|ix|<bp>|<prop>|l         set: ids whose string value is too long to index
//	<p>|in|<bp>|<id>             set of referrers: <bp>\x1f<relation>\x1f<id>
//	<p>|events                   stream of change events
//	<p>|hist|<bp>|<id>           list of the entity's events (JSON), newest last
type keys struct{ prefix string }

func (k keys) blueprints() string           { return k.prefix + "|bps" }
func (k keys) blueprint(bp string) string   { return k.prefix + "|bp|" + bp }
func (k keys) entity(bp, id string) string  { return k.prefix + "|e|" + bp + "|" + id }
func (k keys) ids(bp string) string         { return k.prefix + "|ids|" + bp }
func (k keys) events() string               { return k.prefix + "|events" }
func (k keys) history(bp, id string) string { return k.prefix + "|hist|" + bp + "|" + id }
func (k keys) referrers(bp, id string) string {
	return k.prefix + "|in|" + bp + "|" + id
}
func (k keys) eqIndex(bp, prop, tagged string) string {
	return k.prefix + "|ix|" + bp + "|" + prop + "|=|" + tagged
}
func (k keys) valuesIndex(bp, prop string) string { return k.prefix + "|ix|" + bp + "|" + prop + "|v" }
func (k keys) numIndex(bp, prop string) string    { return k.prefix + "|ix|" + bp + "|" + prop + "|n" }
func (k keys) longIndex(bp, prop string) string   { return k.prefix + "|ix|" + bp + "|" + prop + "|l" }

func (k keys) indexKey(bp string, e indexEntry) string {
	switch e.kind {
	case eqIndex:
		return k.eqIndex(bp, e.prop, e.value)
	case valuesIndex:
		return k.valuesIndex(bp, e.prop)
	case numIndex:
		return k.numIndex(bp, e.prop)
	default:
		return k.longIndex(bp, e.prop)
	}
}

const refSep = "\x1f"

func referrerMember(bp, relation, id string) string {
	return bp + refSep + relation + refSep + id
}

func parseReferrerMember(m string) (bp, relation, id string, ok bool) {
	parts := strings.SplitN(m, refSep, 3)
	if len(parts) != 3 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}
