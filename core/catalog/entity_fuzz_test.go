package catalog

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzDecodeEntity checks that DecodeEntity never panics and only fails
// with ErrMalformed, and that whatever it accepts can be validated against
// the sample blueprint (and calculated) without panicking, leaving a
// normalised entity when valid. Seeds live in testdata/fuzz/FuzzDecodeEntity.
func FuzzDecodeEntity(f *testing.F) {
	c := schemaTestCompiled(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEntity(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeEntity error %v does not wrap ErrMalformed", err)
			}
			if e != nil {
				t.Fatal("DecodeEntity returned an entity with an error")
			}
			return
		}
		if e.Properties == nil || e.Relations == nil {
			t.Fatal("DecodeEntity returned nil maps")
		}
		if err := c.ValidateEntity(e); err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Violations) == 0 {
				t.Fatalf("ValidateEntity error %v (%T) is not a non-empty *ValidationError", err, err)
			}
			for _, v := range ve.Violations {
				if !strings.HasPrefix(v.Path, "/") || v.Message == "" {
					t.Fatalf("bad violation %+v", v)
				}
			}
			c.Calculate(e)
			return
		}
		for name, v := range e.Properties {
			if v == nil {
				t.Fatalf("property %q left null", name)
			}
		}
		for name, v := range e.Relations {
			switch r := v.(type) {
			case string:
			case []string:
				seen := map[string]bool{}
				for _, id := range r {
					if seen[id] {
						t.Fatalf("relation %q keeps duplicate %q", name, id)
					}
					seen[id] = true
				}
			default:
				t.Fatalf("relation %q not normalised: %#v", name, v)
			}
		}
		if err := c.ValidateEntity(e); err != nil {
			t.Fatalf("a normalised entity no longer validates: %v", err)
		}
		if _, err := json.Marshal(e); err != nil {
			t.Fatalf("valid entity does not encode: %v", err)
		}
		c.Calculate(e)
	})
}
