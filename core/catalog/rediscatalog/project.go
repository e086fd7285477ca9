package rediscatalog

import (
	"bytes"
	"errors"
	"slices"

	gojson "github.com/goccy/go-json"

	"github.com/portico-dev/portico/core/catalog"
)

// A validation that checks a few properties reads every entity of a
// blueprint; building every value of every document (maps, boxed numbers,
// lists) for it cost more than the check and kept the garbage collector
// busy beside the requests it runs with. decodeProjected walks a stored
// document's bytes instead and decodes only the values asked for.

var errNotJSON = errors.New("malformed stored document")

// decodeProjected decodes the identifier and the parts only names of a
// stored entity.
func decodeProjected(raw []byte, only *catalog.Projection) (*catalog.Entity, error) {
	e := &catalog.Entity{Properties: map[string]any{}, Relations: map[string]any{}}
	err := eachMember(raw, func(key, val []byte) error {
		switch string(key) {
		case "identifier":
			return gojson.Unmarshal(val, &e.Identifier)
		case "properties":
			return pickMembers(val, only.Properties, e.Properties)
		case "relations":
			return pickMembers(val, only.Relations, e.Relations)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	normaliseRelations(e)
	return e, nil
}

// pickMembers decodes into to the members of the object obj named in
// names (a null object has none).
func pickMembers(obj []byte, names []string, to map[string]any) error {
	if len(names) == 0 || bytes.Equal(obj, []byte("null")) {
		return nil
	}
	return eachMember(obj, func(key, val []byte) error {
		if !slices.Contains(names, string(key)) {
			return nil
		}
		var x any
		if err := gojson.Unmarshal(val, &x); err != nil {
			return err
		}
		to[string(key)] = x
		return nil
	})
}

// eachMember calls fn with each key (raw, between its quotes) and value
// (raw JSON) of the object b. Keys holding an escape are refused: stored
// keys are field names and identifiers, which need none.
func eachMember(b []byte, fn func(key, val []byte) error) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errNotJSON
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for i < len(b) {
		if b[i] != '"' {
			return errNotJSON
		}
		end := skipString(b, i)
		if end < 0 {
			return errNotJSON
		}
		key := b[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			return errNotJSON
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return errNotJSON
		}
		start := skipSpace(b, i+1)
		end = skipValue(b, start)
		if end < 0 {
			return errNotJSON
		}
		if err := fn(key, b[start:end]); err != nil {
			return err
		}
		i = skipSpace(b, end)
		switch {
		case i >= len(b):
			return errNotJSON
		case b[i] == '}':
			return nil
		case b[i] != ',':
			return errNotJSON
		}
		i = skipSpace(b, i+1)
	}
	return errNotJSON
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index past the string starting at b[i] (a
// quote), or -1.
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// skipValue returns the index past the JSON value starting at b[i], or
// -1. It finds the value's end, it does not validate it: the decoder of
// a value picked does.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				if j = skipString(b, j); j < 0 {
					return -1
				}
				j--
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	for j := i; j < len(b); j++ { // a number, true, false or null
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			if j == i {
				return -1
			}
			return j
		}
	}
	return -1 // a document ends with '}', never with a scalar
}
