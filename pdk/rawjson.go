package pdk

import (
	"encoding/json"
	"fmt"
)

// Raw JSON helpers. In a Wasm guest every loop iteration and function call
// of the guest costs an exit to the host's runtime when the plugin is loop
// protected (the default), so encoding/json — several calls per byte — is
// what a resync spends its time on. These helpers find where raw values
// start and end in one tight pass without decoding them, so a plugin can
// pass upstream items through to the host, which decodes them natively:
//
//	// {"items": [...], "next": "..."}: the raw items and the other fields
//	items, fields, err := pdk.SplitPage(resp.Body, "items")
//
// SplitObject and SplitArray split one level of any object or array. The
// helpers check the structure (brackets, strings, separators) but not the
// contents of numbers and literals; the host rejects an invalid item when it
// decodes it.

// SplitObject returns the members of the JSON object doc as raw values, like
// json.Unmarshal into a map[string]json.RawMessage but without validating
// or copying the values. A key that appears twice keeps its last value.
func SplitObject(doc []byte) (map[string]json.RawMessage, error) {
	_, fields, err := splitObject(doc, "", nil)
	return fields, err
}

// SplitPage splits a page of a typical list API, an object holding an array
// of items and paging fields such as {"items": [...], "next": "..."}, in one
// pass: it returns the elements of the array member named itemsKey (nil when
// it is missing or null) and every other member, raw. It is SplitObject and
// SplitArray in half the time.
func SplitPage(doc []byte, itemsKey string) (items []json.RawMessage, fields map[string]json.RawMessage, err error) {
	return splitObject(doc, itemsKey, nil)
}

// splitObject splits the object doc; the array member arrayKey (when not
// empty) is split into its elements on the way instead of being returned.
// When spans is not nil it also receives each member's [start, end).
func splitObject(doc []byte, arrayKey string, spans map[string][2]int) ([]json.RawMessage, map[string]json.RawMessage, error) {
	var elems []json.RawMessage
	out := map[string]json.RawMessage{}
	i := skipSpace(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		return nil, nil, syntaxError(i, "expected an object")
	}
	i = skipSpace(doc, i+1)
	if i < len(doc) && doc[i] == '}' {
		return nil, out, trailing(doc, i+1)
	}
	for {
		if i >= len(doc) || doc[i] != '"' {
			return nil, nil, syntaxError(i, "expected a string key")
		}
		end, err := skipString(doc, i)
		if err != nil {
			return nil, nil, err
		}
		key, err := decodeKey(doc[i:end])
		if err != nil {
			return nil, nil, err
		}
		i = skipSpace(doc, end)
		if i >= len(doc) || doc[i] != ':' {
			return nil, nil, syntaxError(i, "expected ':' after a key")
		}
		i = skipSpace(doc, i+1)
		if arrayKey != "" && key == arrayKey {
			elems, end, err = splitArray(doc, i)
		} else if end, err = skipValue(doc, i); err == nil {
			out[key] = doc[i:end:end]
			if spans != nil {
				spans[key] = [2]int{i, end}
			}
		}
		if err != nil {
			return nil, nil, err
		}
		i = skipSpace(doc, end)
		if i >= len(doc) {
			return nil, nil, syntaxError(i, "unterminated object")
		}
		switch doc[i] {
		case ',':
			i = skipSpace(doc, i+1)
		case '}':
			return elems, out, trailing(doc, i+1)
		default:
			return nil, nil, syntaxError(i, "expected ',' or '}'")
		}
	}
}

// fieldSpans returns the byte spans of the values of the top-level members
// of the JSON object doc, or nil when doc is not one.
func fieldSpans(doc []byte) map[string][2]int {
	spans := map[string][2]int{}
	if _, _, err := splitObject(doc, "", spans); err != nil {
		return nil
	}
	return spans
}

// SplitArray returns the elements of the JSON array doc as raw values, like
// json.Unmarshal into a []json.RawMessage but without validating or copying
// them. A JSON null gives a nil slice.
func SplitArray(doc []byte) ([]json.RawMessage, error) {
	i := skipSpace(doc, 0)
	elems, end, err := splitArray(doc, i)
	if err != nil {
		return nil, err
	}
	return elems, trailing(doc, end)
}

// splitArray splits the array (or null) starting at doc[i] and returns its
// elements and the index just past it.
func splitArray(doc []byte, i int) ([]json.RawMessage, int, error) {
	if i+4 <= len(doc) && string(doc[i:i+4]) == "null" {
		return nil, i + 4, nil
	}
	if i >= len(doc) || doc[i] != '[' {
		return nil, 0, syntaxError(i, "expected an array")
	}
	out := make([]json.RawMessage, 0, 16)
	i = skipSpace(doc, i+1)
	if i < len(doc) && doc[i] == ']' {
		return out, i + 1, nil
	}
	for {
		end, err := skipValue(doc, i)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, doc[i:end:end])
		i = skipSpace(doc, end)
		if i >= len(doc) {
			return nil, 0, syntaxError(i, "unterminated array")
		}
		switch doc[i] {
		case ',':
			i = skipSpace(doc, i+1)
		case ']':
			return out, i + 1, nil
		default:
			return nil, 0, syntaxError(i, "expected ',' or ']'")
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

func trailing(b []byte, i int) error {
	if i = skipSpace(b, i); i < len(b) {
		return syntaxError(i, "unexpected data after the top-level value")
	}
	return nil
}

// Byte classes. In a loop-protected Wasm guest each loop iteration costs an
// exit to the runtime, so the scanners test eight bytes per iteration with
// straight-line code and only stop on a byte that matters.
var (
	// structural marks the bytes that matter outside strings.
	structural = [256]bool{'"': true, '{': true, '}': true, '[': true, ']': true}
	// stringEnd marks the bytes that matter inside strings.
	stringEnd = [256]bool{'"': true, '\\': true}
)

// next returns the index of the first byte at or after i that class marks,
// or len(b).
func next(b []byte, i int, class *[256]bool) int {
	for i+8 <= len(b) {
		switch {
		case class[b[i]]:
			return i
		case class[b[i+1]]:
			return i + 1
		case class[b[i+2]]:
			return i + 2
		case class[b[i+3]]:
			return i + 3
		case class[b[i+4]]:
			return i + 4
		case class[b[i+5]]:
			return i + 5
		case class[b[i+6]]:
			return i + 6
		case class[b[i+7]]:
			return i + 7
		}
		i += 8
	}
	for i < len(b) && !class[b[i]] {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i] ('"').
func skipString(b []byte, i int) (int, error) {
	start := i
	for i++; ; i += 2 { // past an escape: the backslash and the escaped byte
		if i = next(b, i, &stringEnd); i >= len(b) {
			return 0, syntaxError(start, "unterminated string")
		}
		if b[i] == '"' {
			return i + 1, nil
		}
	}
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, syntaxError(i, "expected a value")
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{' || c == '[':
	case c == '-' || c >= '0' && c <= '9' || c == 't' || c == 'f' || c == 'n':
		start := i
		for i < len(b) {
			switch b[i] {
			case ',', ']', '}', ' ', '\n', '\r', '\t':
				return i, nil
			case '"', '[', '{', ':':
				return 0, syntaxError(i, "invalid literal")
			}
			i++
		}
		if i == start {
			return 0, syntaxError(i, "expected a value")
		}
		return i, nil
	default:
		return 0, syntaxError(i, "expected a value")
	}
	// An object or array: jump from one structural byte to the next,
	// tracking nesting (bit d of objects: level d is an object; deeper than
	// 64 levels only the depth is checked).
	start := i
	depth, objects := 1, uint64(0)
	if b[i] == '{' {
		objects = 1
	}
	for i++; ; i++ {
		if i = next(b, i, &structural); i >= len(b) {
			break
		}
		switch c := b[i]; c {
		case '"':
			end, err := skipString(b, i)
			if err != nil {
				return 0, err
			}
			i = end - 1
		case '{', '[':
			if depth < 64 {
				objects &^= 1 << depth
				if c == '{' {
					objects |= 1 << depth
				}
			}
			depth++
		default: // '}' or ']'
			depth--
			if depth < 64 && (objects>>depth&1 == 1) != (c == '}') {
				return 0, syntaxError(i, "mismatched '"+string(c)+"'")
			}
			if depth == 0 {
				return i + 1, nil
			}
		}
	}
	if objects&1 == 1 {
		return 0, syntaxError(start, "unterminated object")
	}
	return 0, syntaxError(start, "unterminated array")
}

func decodeKey(quoted []byte) (string, error) {
	hasEscape := false
	for _, c := range quoted[1 : len(quoted)-1] {
		if c == '\\' {
			hasEscape = true
			break
		}
	}
	if !hasEscape {
		return string(quoted[1 : len(quoted)-1]), nil
	}
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return "", fmt.Errorf("json: invalid key %s: %w", quoted, err)
	}
	return s, nil
}

// SyntaxError reports malformed JSON met by SplitObject or SplitArray.
type SyntaxError struct {
	Offset int // byte offset in the document
	Msg    string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("json: %s at offset %d", e.Msg, e.Offset) }

func syntaxError(i int, msg string) error { return &SyntaxError{Offset: i, Msg: msg} }
