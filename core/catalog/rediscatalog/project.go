package rediscatalog

import (
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

// doc is a stored document as read: a string from Redis (walked without
// a copy) or bytes.
type doc interface{ ~string | ~[]byte }

// decodeProjected decodes the identifier and the parts only names of a
// stored entity.
func decodeProjected[D doc](raw D, only *catalog.Projection) (*catalog.Entity, error) {
	e := &catalog.Entity{Properties: map[string]any{}, Relations: map[string]any{}}
	err := eachMember(raw, func(key, val D) error {
		switch string(key) {
		case "identifier":
			return gojson.Unmarshal([]byte(val), &e.Identifier)
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
func pickMembers[D doc](obj D, names []string, to map[string]any) error {
	if len(names) == 0 || string(obj) == "null" {
		return nil
	}
	return eachMember(obj, func(key, val D) error {
		if !slices.Contains(names, string(key)) {
			return nil
		}
		var x any
		if err := gojson.Unmarshal([]byte(val), &x); err != nil {
			return err
		}
		to[string(key)] = x
		return nil
	})
}

// eachMember calls fn with each key (raw, between its quotes) and value
// (raw JSON) of the object b. Keys holding an escape are refused: stored
// keys are field names and identifiers, which need none.
func eachMember[D doc](b D, fn func(key, val D) error) error {
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
		if hasByte(key, '\\') {
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

func hasByte[D doc](b D, c byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] == c {
			return true
		}
	}
	return false
}

func skipSpace[D doc](b D, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index past the string starting at b[i] (a
// quote), or -1.
func skipString[D doc](b D, i int) int {
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
func skipValue[D doc](b D, i int) int {
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
