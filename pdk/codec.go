package pdk

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// The export codec. The inputs and outputs of the ABI's exports are JSON;
// in a loop-protected Wasm guest encoding/json's reflection costs tens of
// microseconds even for a tiny document, so the request types are decoded
// and the result types encoded by hand. Transports (pdk/wasm, pdk/rpc) use
// DecodeInput and EncodeOutput; both fall back to encoding/json for any
// other type and for any input the fast path does not expect.

// DecodeInput decodes the JSON input of an export into v, as json.Unmarshal
// does. *ResyncRequest and *ActRequest are decoded without reflection; their
// raw fields may then alias in, and, unlike json.Unmarshal, the contents of
// those raw fields are not validated (the host only sends valid JSON).
func DecodeInput(in []byte, v any) error {
	switch r := v.(type) {
	case *ResyncRequest:
		if r.decode(in) {
			return nil
		}
		*r = ResyncRequest{}
	case *ActRequest:
		if r.decode(in) {
			return nil
		}
		*r = ActRequest{}
	case *WebhookRequest:
		if r.decode(in) {
			return nil
		}
		*r = WebhookRequest{}
	}
	return json.Unmarshal(in, v)
}

func (r *ResyncRequest) decode(in []byte) bool {
	return members(in, func(key, val []byte) bool {
		switch string(key) {
		case "kind":
			return decodeString(val, &r.Kind)
		case "cursor":
			return decodeString(val, &r.Cursor)
		case "config":
			r.Config = val
			return true
		}
		return false
	})
}

func (r *ActRequest) decode(in []byte) bool {
	return members(in, func(key, val []byte) bool {
		switch string(key) {
		case "action":
			return decodeString(val, &r.Action)
		case "inputs":
			r.Inputs = val
		case "entity":
			r.Entity = val
		case "config":
			r.Config = val
		default:
			return false
		}
		return true
	})
}

// decode decodes a delivery: the body's base64 without encoding/json's
// reflection (a webhook body is often tens of kilobytes), the few headers
// with it.
func (r *WebhookRequest) decode(in []byte) bool {
	return members(in, func(key, val []byte) bool {
		switch string(key) {
		case "headers":
			return json.Unmarshal(val, &r.Headers) == nil
		case "body":
			return decodeBase64(val, &r.Body)
		case "config":
			r.Config = val
			return true
		}
		return false
	})
}

// decodeBase64 decodes a JSON string of standard base64 (or null).
func decodeBase64(val []byte, b *[]byte) bool {
	if string(val) == "null" {
		return true
	}
	if len(val) < 2 || val[0] != '"' || val[len(val)-1] != '"' {
		return false
	}
	enc := val[1 : len(val)-1]
	out := make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
	n, err := base64.StdEncoding.Decode(out, enc) // an escape is not base64: an error, then encoding/json
	if err != nil {
		return false
	}
	*b = out[:n]
	return true
}

// members calls fn with the key and raw value of each member of the JSON
// object doc. It returns false when doc is not an object, a key needs
// unescaping or fn returns false: the caller then falls back to
// encoding/json, which handles every case exactly.
func members(doc []byte, fn func(key, val []byte) bool) bool {
	i := skipSpace(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		return false
	}
	i = skipSpace(doc, i+1)
	if i < len(doc) && doc[i] == '}' {
		return skipSpace(doc, i+1) == len(doc)
	}
	for {
		if i >= len(doc) || doc[i] != '"' {
			return false
		}
		end, err := skipString(doc, i)
		if err != nil {
			return false
		}
		key := doc[i+1 : end-1]
		i = skipSpace(doc, end)
		if i >= len(doc) || doc[i] != ':' {
			return false
		}
		i = skipSpace(doc, i+1)
		if end, err = skipValue(doc, i); err != nil || !fn(key, doc[i:end:end]) {
			return false
		}
		if i = skipSpace(doc, end); i >= len(doc) {
			return false
		}
		switch doc[i] {
		case ',':
			i = skipSpace(doc, i+1)
		case '}':
			return skipSpace(doc, i+1) == len(doc)
		default:
			return false
		}
	}
}

// decodeString decodes a JSON string (or null, which leaves *s alone);
// strings with escapes or non-ASCII bytes go through encoding/json.
func decodeString(val []byte, s *string) bool {
	if string(val) == "null" {
		return true
	}
	if len(val) < 2 || val[0] != '"' {
		return false
	}
	for _, c := range val[1 : len(val)-1] {
		if c < 0x20 || c == '\\' || c >= utf8.RuneSelf {
			return json.Unmarshal(val, s) == nil
		}
	}
	*s = string(val[1 : len(val)-1])
	return true
}

// EncodeOutput encodes the output of an export: *ResyncPage and *ActResult
// by hand, anything else with encoding/json.
func EncodeOutput(v any) ([]byte, error) {
	switch r := v.(type) {
	case *ResyncPage:
		if r != nil {
			return r.AppendJSON(make([]byte, 0, 64+r.size()))
		}
	case *ActResult:
		if r != nil {
			return r.AppendJSON(nil)
		}
	case *WebhookResult:
		if r != nil {
			return r.AppendJSON(nil)
		}
	}
	return json.Marshal(v)
}

// errNil is returned when a nil result is appended.
var errNil = errors.New("pdk: nil result")

// AppendJSON appends the JSON of p to dst. Items (or ItemsJSON) are copied
// as they are, without the per-byte compaction encoding/json applies to
// every json.RawMessage (an empty item is written as null); the host
// validates and decodes them.
func (p *ResyncPage) AppendJSON(dst []byte) ([]byte, error) {
	if p == nil {
		return nil, errNil
	}
	if len(p.ItemsJSON) > 0 {
		dst = append(dst, `{"items":`...)
		dst = append(dst, p.ItemsJSON...)
	} else {
		dst = append(dst, `{"items":[`...)
		for i, it := range p.Items {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendRaw(dst, it)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"cursor":`...)
	dst = appendString(dst, p.Cursor)
	return append(dst, '}'), nil
}

func (p *ResyncPage) size() int {
	n := len(p.Cursor) + len(p.ItemsJSON)
	for _, it := range p.Items {
		n += len(it) + 1
	}
	return n
}

// AppendJSON appends the JSON of r to dst, as encoding/json would (raw
// values are copied as they are).
func (r *ActResult) AppendJSON(dst []byte) ([]byte, error) {
	if r == nil {
		return nil, errNil
	}
	o := openObject(dst)
	if r.Message != "" {
		o.field("message")
		o.dst = appendString(o.dst, r.Message)
	}
	if len(r.Logs) > 0 {
		o.field("logs")
		o.dst = append(o.dst, '[')
		for i, l := range r.Logs {
			if i > 0 {
				o.dst = append(o.dst, ',')
			}
			o.dst = appendString(o.dst, l)
		}
		o.dst = append(o.dst, ']')
	}
	if len(r.Outputs) > 0 {
		o.field("outputs")
		o.dst = append(o.dst, r.Outputs...)
	}
	o.changes(r.Upserts, r.Deletes)
	return o.close(), nil
}

// AppendJSON appends the JSON of r to dst, as encoding/json would (items
// are copied as they are).
func (r *WebhookResult) AppendJSON(dst []byte) ([]byte, error) {
	if r == nil {
		return nil, errNil
	}
	o := openObject(dst)
	o.changes(r.Upserts, r.Deletes)
	if r.Response != nil {
		o.field("response")
		o.dst = append(o.dst, `{"status":`...)
		o.dst = strconv.AppendInt(o.dst, int64(r.Response.Status), 10)
		if r.Response.Body != "" {
			o.dst = append(o.dst, `,"body":`...)
			o.dst = appendString(o.dst, r.Response.Body)
		}
		o.dst = append(o.dst, '}')
	}
	return o.close(), nil
}

// object appends a JSON object member by member.
type object struct {
	dst   []byte
	start int // len(dst) after the '{'
}

func openObject(dst []byte) *object {
	dst = append(dst, '{')
	return &object{dst: dst, start: len(dst)}
}

// field starts the member name.
func (o *object) field(name string) {
	if len(o.dst) > o.start {
		o.dst = append(o.dst, ',')
	}
	o.dst = append(o.dst, '"')
	o.dst = append(o.dst, name...)
	o.dst = append(o.dst, '"', ':')
}

// changes appends the "upserts" and "deletes" members that are not empty.
func (o *object) changes(upserts, deletes []KindItem) {
	if len(upserts) > 0 {
		o.field("upserts")
		o.dst = appendKindItems(o.dst, upserts)
	}
	if len(deletes) > 0 {
		o.field("deletes")
		o.dst = appendKindItems(o.dst, deletes)
	}
}

func (o *object) close() []byte { return append(o.dst, '}') }

func appendKindItems(dst []byte, items []KindItem) []byte {
	dst = append(dst, '[')
	for i, it := range items {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"kind":`...)
		dst = appendString(dst, it.Kind)
		dst = append(dst, `,"item":`...)
		dst = appendRaw(dst, it.Item)
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

// appendRaw appends a raw JSON value, null when it is empty.
func appendRaw(dst []byte, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, raw...)
}

// appendString appends s as a JSON string.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			b, _ := json.Marshal(s) // a string always encodes
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
