package catalog

import (
	"iter"
	"time"
)

// entityFields is the one description of Entity's fields: the encoder,
// both decoders, merge patches, Lookup and query validation, mirror
// paths, the jq input and the stores' meta-property indexes all read it.
// Adding a field to Entity is adding its row here (fields_test.go fails
// until it is). Rows are in the struct's order, which is the JSON order.
var entityFields = [...]entityField{
	{key: "identifier", meta: "$identifier", kind: textField, fromClient: true, queryable: true, index: IndexedAsIdentifier,
		text: func(e *Entity) *string { return &e.Identifier }},
	{key: "title", meta: "$title", kind: textField, omitEmpty: true, fromClient: true, content: true, queryable: true, index: IndexedAsText,
		text: func(e *Entity) *string { return &e.Title }},
	{key: "blueprint", meta: "$blueprint", kind: textField, fromClient: true, queryable: true, index: IndexedByBlueprint,
		text: func(e *Entity) *string { return &e.Blueprint }},
	{key: "icon", meta: "$icon", kind: textField, omitEmpty: true, fromClient: true, content: true,
		text: func(e *Entity) *string { return &e.Icon }},
	{key: "team", meta: "$team", kind: listField, omitEmpty: true, fromClient: true, content: true, queryable: true, index: IndexedAsLabel,
		list: func(e *Entity) *[]string { return &e.Team }},
	{key: "properties", kind: objectField, fromClient: true, content: true,
		object: func(e *Entity) *map[string]any { return &e.Properties }},
	{key: "relations", kind: objectField, fromClient: true, content: true,
		object: func(e *Entity) *map[string]any { return &e.Relations }},
	{key: "createdAt", meta: "$createdAt", kind: timeField, queryable: true, index: IndexedAsTime,
		time: func(e *Entity) *time.Time { return &e.CreatedAt }},
	{key: "updatedAt", meta: "$updatedAt", kind: timeField, queryable: true, index: IndexedAsTime,
		time: func(e *Entity) *time.Time { return &e.UpdatedAt }},
	{key: "createdBy", meta: "$createdBy", kind: textField, omitEmpty: true,
		text: func(e *Entity) *string { return &e.CreatedBy }},
	{key: "updatedBy", meta: "$updatedBy", kind: textField, omitEmpty: true,
		text: func(e *Entity) *string { return &e.UpdatedBy }},
	{key: "datasource", meta: "$datasource", kind: textField, omitEmpty: true, content: true, queryable: true, index: IndexedAsLabel,
		text: func(e *Entity) *string { return &e.Datasource }},
	{key: "scorecards", kind: objectField, omitEmpty: true, content: true, computed: true,
		object: func(e *Entity) *map[string]any { return &e.Scorecards }},
	{key: "aggregations", kind: objectField, omitEmpty: true, content: true, computed: true,
		object: func(e *Entity) *map[string]any { return &e.Aggregations }},
}

// entityField is one row of entityFields.
type entityField struct {
	key  string // JSON key
	meta string // meta-property name; "" for properties and relations
	kind fieldKind

	// omitEmpty leaves the key out of the encoding when the value is
	// empty (as encoding/json's omitempty).
	omitEmpty bool
	// fromClient fields are decoded and may be merge-patched; the others
	// are server-managed: accepted in a document and dropped.
	fromClient bool
	// computed fields are derived by the server from other entities
	// (scorecards, aggregations): a client document that sets one is
	// refused rather than silently dropped.
	computed bool
	// content fields are what sameContent compares: not identity, not
	// the created/updated stamps.
	content bool
	// queryable meta-properties are answered by Lookup, so query rules
	// and sorts may name them. (A mirror may name any meta-property.)
	queryable bool
	// index is how stores index the meta-property.
	index MetaIndex

	// The accessor of the field's kind points at it in an entity.
	text   func(*Entity) *string
	list   func(*Entity) *[]string
	object func(*Entity) *map[string]any
	time   func(*Entity) *time.Time
}

// fieldKind is an entity field's Go type, and so its JSON shape.
type fieldKind uint8

const (
	textField   fieldKind = iota + 1 // string
	listField                        // []string
	objectField                      // map[string]any
	timeField                        // time.Time
)

var (
	// fieldPositions maps JSON keys to entityFields positions.
	fieldPositions = func() map[string]int {
		m := make(map[string]int, len(entityFields))
		for i := range entityFields {
			m[entityFields[i].key] = i
		}
		return m
	}()
	// metaFields maps meta-property names to their rows.
	metaFields = func() map[string]*entityField {
		m := make(map[string]*entityField, len(entityFields))
		for i := range entityFields {
			if f := &entityFields[i]; f.meta != "" {
				m[f.meta] = f
			}
		}
		return m
	}()
)

// fieldAt returns the position of the field with JSON key key; it panics
// on a key not in the table (a programming error).
func fieldAt(key string) int {
	i, ok := fieldPositions[key]
	if !ok {
		panic("catalog: no entity field " + key)
	}
	return i
}

// isQueryableMeta reports whether Lookup answers the meta-property name.
func isQueryableMeta(name string) bool {
	f := metaFields[name]
	return f != nil && f.queryable
}

// lookup is Lookup of the field's meta-property: a string, a []string or a
// time.Time (missing when zero). Properties and relations are not
// meta-properties.
func (f *entityField) lookup(e *Entity) (any, bool) {
	switch f.kind {
	case textField:
		return *f.text(e), true
	case listField:
		return *f.list(e), true
	case timeField:
		t := *f.time(e)
		return t, !t.IsZero()
	}
	return nil, false
}

// initObjects gives e's nil client object fields (properties, relations) an
// empty map: a decoded entity's are never nil.
func initObjects(e *Entity) {
	for i := range entityFields {
		if f := &entityFields[i]; f.kind == objectField && f.fromClient && *f.object(e) == nil {
			*f.object(e) = map[string]any{}
		}
	}
}

// pointer returns a pointer to the field in e (*string, *[]string,
// *map[string]any or *time.Time), for a generic decoder.
func (f *entityField) pointer(e *Entity) any {
	switch f.kind {
	case textField:
		return f.text(e)
	case listField:
		return f.list(e)
	case objectField:
		return f.object(e)
	}
	return f.time(e)
}

// MetaIndex says how a store indexes an entity meta-property.
type MetaIndex uint8

// Meta-property index layouts.
const (
	// NotIndexed: searches check the documents.
	NotIndexed MetaIndex = iota
	// IndexedAsIdentifier: the blueprint's ordered identifiers answer it.
	IndexedAsIdentifier
	// IndexedByBlueprint: the blueprint searched answers it, with no index.
	IndexedByBlueprint
	// IndexedAsText: a nearly unique string (high cardinality), the empty
	// string included.
	IndexedAsText
	// IndexedAsLabel: a string shared by many entities (low cardinality),
	// or each element of a list; an empty single string is not indexed.
	IndexedAsLabel
	// IndexedAsTime: an instant, in milliseconds, the zero time included.
	IndexedAsTime
)

// MetaProperty is one meta-property of an entity ($title, $team, ...) as a
// store indexing it sees it.
type MetaProperty struct{ f *entityField }

// Name is the meta-property's name, e.g. "$title".
func (m MetaProperty) Name() string { return m.f.meta }

// Index is how stores index it.
func (m MetaProperty) Index() MetaIndex { return m.f.index }

// IsList reports whether its value is a list (Labels) rather than one
// string (Text) or time (Time).
func (m MetaProperty) IsList() bool { return m.f.kind == listField }

// Text returns its value in e when it is a string, else "".
func (m MetaProperty) Text(e *Entity) string {
	if m.f.kind != textField {
		return ""
	}
	return *m.f.text(e)
}

// Labels returns its value in e when it is a list, else nil.
func (m MetaProperty) Labels(e *Entity) []string {
	if m.f.kind != listField {
		return nil
	}
	return *m.f.list(e)
}

// Time returns its value in e when it is a time, else the zero time.
func (m MetaProperty) Time(e *Entity) time.Time {
	if m.f.kind != timeField {
		return time.Time{}
	}
	return *m.f.time(e)
}

// MetaProperties yields every meta-property of an entity, in JSON field
// order.
func MetaProperties() iter.Seq[MetaProperty] {
	return func(yield func(MetaProperty) bool) {
		for i := range entityFields {
			if f := &entityFields[i]; f.meta != "" && !yield(MetaProperty{f}) {
				return
			}
		}
	}
}

// LookupMeta returns the meta-property called name; ok is false when
// there is none.
func LookupMeta(name string) (m MetaProperty, ok bool) {
	f := metaFields[name]
	return MetaProperty{f}, f != nil
}
