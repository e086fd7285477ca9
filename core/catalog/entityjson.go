package catalog

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// MarshalEntity encodes an entity exactly as encoding/json does (the tests
// compare the bytes), several times faster: the write path encodes every
// entity it stores, and reflection over map[string]any is most of the cost
// of a generic encoder.
func MarshalEntity(e *Entity) []byte {
	// Encode into a pooled scratch buffer, then copy out at the exact
	// size: growing a fresh buffer allocates about three times the result.
	scratch := encodeBuffers.Get().(*[]byte)
	b := appendEntity((*scratch)[:0], e)
	out := append([]byte(nil), b...)
	if cap(b) <= 64<<10 { // do not pin huge documents
		*scratch = b
		encodeBuffers.Put(scratch)
	}
	return out
}

var encodeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// AppendEntity appends MarshalEntity's encoding of e to b: a store that
// embeds the document in a larger one (an event) encodes it in place.
func AppendEntity(b []byte, e *Entity) []byte { return appendEntity(b, e) }

// AppendJSONString appends s quoted as encoding/json quotes it.
func AppendJSONString(b []byte, s string) []byte { return appendString(b, s) }

// AppendJSONTime appends t as encoding/json encodes it.
func AppendJSONTime(b []byte, t time.Time) []byte { return appendTime(b, t) }

func appendEntity(b []byte, e *Entity) []byte {
	b = append(b, '{')
	first := true
	for i := range entityFields {
		f := &entityFields[i]
		switch f.kind {
		case textField:
			v := *f.text(e)
			if f.omitEmpty && v == "" {
				continue
			}
			b = appendKey(b, f.key, first)
			b = appendString(b, v)
		case listField:
			v := *f.list(e)
			if f.omitEmpty && len(v) == 0 {
				continue
			}
			b = appendKey(b, f.key, first)
			b = appendStrings(b, v)
		case objectField:
			v := *f.object(e)
			if f.omitEmpty && len(v) == 0 {
				continue
			}
			b = appendKey(b, f.key, first)
			b = appendObject(b, v)
		case timeField:
			b = appendKey(b, f.key, first)
			b = appendTime(b, *f.time(e))
		}
		first = false
	}
	return append(b, '}')
}

// appendKey appends an object key (a plain identifier: nothing to escape)
// and its colon, after a comma unless it is the first.
func appendKey(b []byte, key string, first bool) []byte {
	if !first {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

// sameContent reports whether two versions of an entity hold the same
// data: everything but identity and the created/updated meta fields.
func sameContent(a, b *Entity) bool {
	for i := range entityFields {
		f := &entityFields[i]
		if !f.content {
			continue
		}
		switch f.kind {
		case textField:
			if *f.text(a) != *f.text(b) {
				return false
			}
		case listField:
			if !slices.Equal(*f.list(a), *f.list(b)) {
				return false
			}
		case objectField:
			// Through the encoding, as stored: a []string relation equals
			// the []any it was decoded as, and 1 equals 1.0.
			x, y := *f.object(a), *f.object(b)
			if f.omitEmpty && len(x) == 0 && len(y) == 0 {
				continue
			}
			if string(appendObject(nil, x)) != string(appendObject(nil, y)) {
				return false
			}
		case timeField:
			if !f.time(a).Equal(*f.time(b)) {
				return false
			}
		}
	}
	return true
}

func appendTime(b []byte, t time.Time) []byte {
	raw, err := t.MarshalJSON()
	if err != nil { // a year outside [0, 9999]: as encoding/json, which fails too
		return append(b, `null`...)
	}
	return append(b, raw...)
}

func appendObject(b []byte, m map[string]any) []byte {
	if m == nil {
		return append(b, `null`...)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendValue(b, m[k])
	}
	return append(b, '}')
}

func appendStrings(b []byte, list []string) []byte { return appendList(b, list, appendString) }

// appendList encodes a list (nil: null) with item encoding each element.
func appendList[T any](b []byte, list []T, item func([]byte, T) []byte) []byte {
	if list == nil {
		return append(b, `null`...)
	}
	b = append(b, '[')
	for i, x := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = item(b, x)
	}
	return append(b, ']')
}

// appendValue encodes a decoded JSON value; other types (rare: values
// built in code) go through encoding/json.
func appendValue(b []byte, v any) []byte {
	switch t := v.(type) {
	case nil:
		return append(b, `null`...)
	case string:
		return appendString(b, t)
	case float64:
		return appendFloat(b, t)
	case bool:
		return strconv.AppendBool(b, t)
	case map[string]any:
		return appendObject(b, t)
	case []string:
		return appendStrings(b, t)
	case []any:
		return appendList(b, t, appendValue)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return append(b, `null`...)
	}
	return append(b, raw...)
}

// appendFloat formats like encoding/json: shortest representation,
// exponent form outside [1e-6, 1e21).
func appendFloat(b []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return append(b, `null`...) // not JSON; never decoded from a request
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as encoding/json does with HTML escaping on.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// sameObject compares two JSON objects as stored (nil and empty alike).
func sameObject(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || !sameValue(x, y) {
			return false
		}
	}
	return true
}

// sameValue compares two JSON values as their encodings would, without
// encoding the common shapes (numbers of any Go type are equal when
// equal as float64).
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case map[string]any:
		y, ok := b.(map[string]any)
		return ok && sameObject(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok {
			break
		}
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	if f, ok := queryNumber(a); ok {
		g, ok := queryNumber(b)
		return ok && f == g
	}
	return string(appendValue(nil, a)) == string(appendValue(nil, b))
}
