package catalog

import (
	"bytes"
	"iter"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
)

// decodeEntityFast decodes a well-formed entity document about three times
// faster than encoding/json (bulk ingest decodes thousands per request).
// ok is false for anything unusual — invalid JSON, unknown, duplicate or
// escaped top-level keys, wrong types — and DecodeEntity then takes the
// strict path, which produces the precise error.
func decodeEntityFast(data []byte) (*Entity, bool) {
	// goccy is laxer than encoding/json (control characters in strings,
	// invalid UTF-8): validate with the standard scanner first.
	if !validJSON(data) {
		return nil, false
	}
	return decodeValidEntity(data)
}

// validJSON is what goccy needs checked before it decodes: valid UTF-8
// and valid JSON by encoding/json's rules.
func validJSON(data []byte) bool { return utf8.Valid(data) && jsonValid(data) }

// decodeValidEntity is decodeEntityFast for a document already known to
// pass validJSON.
func decodeValidEntity(data []byte) (*Entity, bool) {
	fields, ok := plainFields(data)
	if !ok {
		return nil, false
	}
	e := &Entity{}
	for i := range entityFields {
		v := fields.value(data, i)
		if v != nil && entityFields[i].computed && string(v) != "null" {
			return nil, false // refused: the strict path says why
		}
		if v != nil && entityFields[i].fromClient && !fields.decode(e, data, i) {
			return nil, false
		}
	}
	initObjects(e)
	return e, true
}

// SplitBulk splits a bulk request body, {"entities": [item, ...]}, into
// its items (sub-slices of body), validating the body once instead of item
// by item (see DecodeBulkItem). ok is false for anything unusual — invalid JSON,
// another or escaped key, a repeated key, no array — and the caller then
// decodes the body strictly for a precise error; an item that does not
// decode quickly is decoded by DecodeEntity.
func SplitBulk(body []byte) (items [][]byte, ok bool) {
	if !validJSON(body) {
		return nil, false
	}
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil, false
	}
	i = skipSpace(body, i+1)
	const key = `"entities"`
	if !bytes.HasPrefix(body[i:], []byte(key)) {
		return nil, false
	}
	i = skipSpace(body, i+len(key))
	if body[i] != ':' { // valid JSON: a key is followed by ':'
		return nil, false
	}
	i = skipSpace(body, i+1)
	if body[i] != '[' {
		return nil, false
	}
	items = [][]byte{}
	i = skipSpace(body, i+1)
	for body[i] != ']' {
		end := skipValue(body, i)
		items = append(items, body[i:end])
		i = skipSpace(body, end)
		if body[i] == ',' {
			i = skipSpace(body, i+1)
		}
	}
	// Only the closing brace of the envelope may follow: a second key
	// (unknown, or "entities" again) takes the strict path.
	if i = skipSpace(body, i+1); body[i] != '}' {
		return nil, false
	}
	return items, true
}

// DecodeBulkItem decodes one item returned by SplitBulk (already validated
// as part of the body), like DecodeEntity.
func DecodeBulkItem(item []byte) (*Entity, error) {
	if e, ok := decodeValidEntity(item); ok {
		return e, nil
	}
	return decodeEntityStrict(item)
}

// PeekBulkItem decodes only what chunking a bulk write needs from an item
// returned by SplitBulk — blueprint, identifier, relations — for a
// WriteItem whose Raw is decoded later. ok is false when the item does not
// decode plainly (DecodeBulkItem then names the problem). The rest of the
// document is only stepped over: peeking costs a fraction of a decode.
func PeekBulkItem(item []byte) (*Entity, bool) {
	fields, ok := plainFields(item)
	if !ok {
		return nil, false
	}
	e := &Entity{}
	if e.Identifier, ok = fields.str(item, fieldIdentifier); !ok {
		return nil, false
	}
	if e.Blueprint, ok = fields.str(item, fieldBlueprint); !ok {
		return nil, false
	}
	if v := fields.value(item, fieldRelations); v != nil && string(v) != "null" {
		if err := gojson.Unmarshal(v, &e.Relations); err != nil {
			return nil, false
		}
	}
	return e, true
}

// Positions of the fields PeekBulkItem reads.
var (
	fieldIdentifier = fieldAt("identifier")
	fieldBlueprint  = fieldAt("blueprint")
	fieldRelations  = fieldAt("relations")
)

// fieldSpans are the [start, end) offsets of each top-level field's value
// in an entity document, by entityFields position; end is 0 when the field
// is absent.
type fieldSpans [len(entityFields)][2]int

func (f *fieldSpans) value(data []byte, field int) []byte {
	if f[field][1] == 0 {
		return nil
	}
	return data[f[field][0]:f[field][1]]
}

// str decodes a string field ("" when absent or null); ok is false for
// another type.
func (f *fieldSpans) str(data []byte, field int) (string, bool) {
	v := f.value(data, field)
	if v == nil || string(v) == "null" {
		return "", true
	}
	return unquote(v)
}

// strs decodes a list-of-strings field (nil when absent or null); ok is
// false for another type.
func (f *fieldSpans) strs(data []byte, field int) ([]string, bool) {
	v := f.value(data, field)
	if v == nil || string(v) == "null" {
		return nil, true
	}
	if v[0] != '[' {
		return nil, false
	}
	n := 0
	for i := range elements(v) {
		if v[i] != '"' {
			return nil, false
		}
		n++
	}
	out := make([]string, 0, n)
	for i := range elements(v) {
		s, ok := unquote(v[i:skipValue(v, i)])
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// elements yields the offset of each element of a valid JSON array.
func elements(array []byte) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := skipSpace(array, 1); array[i] != ']'; {
			if !yield(i) {
				return
			}
			if i = skipSpace(array, skipValue(array, i)); array[i] == ',' {
				i = skipSpace(array, i+1)
			}
		}
	}
}

// unquote decodes a JSON string (known valid); ok is false for another
// value.
func unquote(v []byte) (string, bool) {
	switch {
	case len(v) < 2 || v[0] != '"':
		return "", false
	case bytes.IndexByte(v, '\\') < 0:
		return string(v[1 : len(v)-1]), true
	}
	var out string
	err := gojson.Unmarshal(v, &out)
	return out, err == nil
}

// decode decodes field i of data into e as its kind says; false when the
// value is not of that kind (a server-managed field is never decoded).
func (f *fieldSpans) decode(e *Entity, data []byte, i int) bool {
	field := &entityFields[i]
	switch field.kind {
	case textField:
		s, ok := f.str(data, i)
		*field.text(e) = s
		return ok
	case listField:
		list, ok := f.strs(data, i)
		*field.list(e) = list
		return ok
	case objectField:
		return gojson.Unmarshal(f.value(data, i), field.object(e)) == nil
	}
	return false
}

// plainFields reports whether a valid JSON document is an object whose
// top-level keys are all known entity fields, spelt exactly, unescaped and
// not repeated, and where each field's value is.
func plainFields(data []byte) (fields fieldSpans, ok bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return fields, false
	}
	var seen [len(entityFields)]bool
	i++
	for {
		i = skipSpace(data, i)
		if i < len(data) && data[i] == '}' {
			return fields, true
		}
		if i >= len(data) || data[i] != '"' {
			return fields, false
		}
		end := i + 1
		for end < len(data) && data[end] != '"' {
			if data[end] == '\\' {
				return fields, false
			}
			end++
		}
		idx, known := fieldPositions[string(data[i+1:end])]
		if !known || seen[idx] {
			return fields, false
		}
		seen[idx] = true
		i = skipSpace(data, end+1)
		if i >= len(data) || data[i] != ':' {
			return fields, false
		}
		i = skipSpace(data, i+1)
		valueEnd := skipValue(data, i)
		end = valueEnd // a literal's span ends at the delimiter: trim
		for end > i && (data[end-1] == ' ' || data[end-1] == '\t' || data[end-1] == '\n' || data[end-1] == '\r') {
			end--
		}
		fields[idx] = [2]int{i, end}
		i = skipSpace(data, valueEnd)
		if i < len(data) && data[i] == ',' {
			i++
		}
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index after the JSON value starting at i (the
// document is known to be valid).
func skipValue(data []byte, i int) int {
	depth := 0
	for i < len(data) {
		switch c := data[i]; c {
		case '"':
			i++
			for i < len(data) && data[i] != '"' {
				if data[i] == '\\' {
					i++
				}
				i++
			}
			i++
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // the end of the enclosing object
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return i
}
