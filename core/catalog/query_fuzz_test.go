package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// FuzzDecodeQuery checks that DecodeQuery never panics, reports every
// failure as a *ValidationError, and that what it accepts validates, matches
// without panicking and survives a marshal/decode round trip unchanged.
func FuzzDecodeQuery(f *testing.F) {
	f.Add([]byte(`{"combinator":"and","rules":[{"property":"tier","operator":"<=","value":2}]}`))
	f.Add([]byte(`{"operator":"relatedTo","blueprint":"team","identifier":"payments","direction":"upstream"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := DecodeQuery(data)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("DecodeQuery error %v is a %T, not a *ValidationError", err, err)
			}
			if len(ve.Violations) == 0 {
				t.Fatalf("DecodeQuery error %v has no violations", err)
			}
			return
		}
		if err := q.Validate(""); err != nil {
			t.Fatalf("decoded query does not validate: %v", err)
		}

		e := queryTestEntity()
		related := Related{}
		q.Walk(func(r *Rule) {
			if r.Operator == "relatedTo" {
				related[r] = map[Ref]struct{}{e.Ref(): {}}
			}
		})
		Match(q, e, e.Properties, time.Now(), related)
		Match(q, &Entity{}, nil, time.Now(), nil)

		out, err := json.Marshal(q)
		if err != nil {
			t.Fatalf("marshal decoded query: %v", err)
		}
		q2, err := DecodeQuery(out)
		if err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
		out2, err := json.Marshal(q2)
		if err != nil {
			t.Fatalf("marshal re-decoded query: %v", err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the query\n first %s\nsecond %s", out, out2)
		}
	})
}
