package rediscatalog

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/portico-dev/portico/core/catalog"
)

// TestDecodeProjected compares the projected decoding of stored documents
// with the whole decoding, projected afterwards: documents as this package
// writes them (values with quotes, escapes, braces in strings, nesting,
// exponents, nulls) and as encoding/json indents them.
func TestDecodeProjected(t *testing.T) {
	ents := []*catalog.Entity{
		{Identifier: "a", Blueprint: "svc", Title: `ti"tle {x}`, Properties: map[string]any{
			"s": `quote " backslash \ brace } bracket ] comma ,`, "n": 1.5e-7, "b": false, "z": nil,
			"arr": []any{"x", 2.0, []any{"y", map[string]any{"k": "}"}}}, "obj": map[string]any{"a": map[string]any{"b": []any{}}},
			"u": "é ✓ \u2028", "big": 12345678901234.0,
		}, Relations: map[string]any{"owner": "t1", "deps": []any{"d1", "d2"}}},
		{Identifier: "b", Blueprint: "svc", Properties: map[string]any{}, Relations: map[string]any{}},
		{Identifier: "c/d@x", Blueprint: "svc", Properties: map[string]any{"s": ""}, Relations: map[string]any{"deps": []any{}}},
	}
	projections := []*catalog.Projection{
		{Properties: []string{"s", "n", "arr", "obj", "u", "big", "b", "z"}, Relations: []string{"owner", "deps"}},
		{Properties: []string{"missing"}},
		{Relations: []string{"deps"}},
		{},
	}
	for _, e := range ents {
		compact := catalog.MarshalEntity(e)
		indented, err := json.MarshalIndent(e, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range [][]byte{compact, indented} {
			whole, err := decodeEntity(string(raw))
			if err != nil {
				t.Fatal(err)
			}
			for _, only := range projections {
				got, err := decodeProjected(raw, only)
				if err != nil {
					t.Fatalf("%s: %v", raw, err)
				}
				if fromString, err := decodeProjected(string(raw), only); err != nil || !reflect.DeepEqual(fromString, got) {
					t.Fatalf("%s: from a string %#v, %v; from bytes %#v", raw, fromString, err, got)
				}
				want := &catalog.Entity{Identifier: whole.Identifier, Properties: map[string]any{}, Relations: map[string]any{}}
				for _, p := range only.Properties {
					if v, ok := whole.Properties[p]; ok {
						want.Properties[p] = v
					}
				}
				for _, r := range only.Relations {
					if v, ok := whole.Relations[r]; ok {
						want.Relations[r] = v
					}
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s projected to %+v:\n got %#v\nwant %#v", raw, only, got, want)
				}
			}
		}
	}
}

// TestDecodeProjectedRefusesBrokenDocuments: a truncated or malformed
// document is an error, never a panic or a silently empty entity.
func TestDecodeProjectedRefusesBrokenDocuments(t *testing.T) {
	raw := catalog.MarshalEntity(&catalog.Entity{Identifier: "a", Properties: map[string]any{"s": `x"}`, "n": 1.0, "l": []any{"a"}}, Relations: map[string]any{}})
	only := &catalog.Projection{Properties: []string{"s", "n", "l"}}
	for i := 0; i < len(raw)-1; i++ {
		if _, err := decodeProjected(raw[:i], only); err == nil {
			t.Errorf("truncated after %d bytes (%s): no error", i, raw[:i])
		}
	}
	for _, bad := range []string{`[]`, `{"identifier" "a"}`, `{"identifier":"a",}`, `{"a\"b":1}`, `{"properties":{"s":}}`} {
		if _, err := decodeProjected([]byte(bad), only); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// BenchmarkScanDecode compares what a validation's scan pays per document:
// a whole decoding against a projection to one property.
func BenchmarkScanDecode(b *testing.B) {
	raw := catalog.MarshalEntity(&catalog.Entity{Identifier: "svc-123456", Blueprint: "service", Title: "Service 123456",
		Properties: map[string]any{"lifecycle": "production", "tier": 3.0, "url": "https://svc-123456.example.com", "language": "go",
			"replicas": 6.0, "cost": 45.6, "public": true, "runbook": "https://runbooks.example.com/svc-123456"},
		Relations: map[string]any{"owner": "team-56"}})
	b.Run("whole", func(b *testing.B) {
		for b.Loop() {
			if _, err := decodeEntity(string(raw)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("projected", func(b *testing.B) {
		only := &catalog.Projection{Properties: []string{"language"}}
		for b.Loop() {
			if _, err := decodeProjected(raw, only); err != nil {
				b.Fatal(err)
			}
		}
	})
}
