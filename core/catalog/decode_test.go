package catalog

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// FuzzEntityDecoders checks that the fast decoder never accepts what the
// strict one rejects and, when both accept, that they agree.
func FuzzEntityDecoders(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/fuzz/FuzzDecodeEntity/*")
	for _, path := range seeds {
		raw, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		// Corpus files hold `[]byte("…")` on their second line.
		lines := strings.SplitN(string(raw), "\n", 3)
		if len(lines) > 1 {
			if s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")")); err == nil {
				f.Add([]byte(s))
			}
		}
	}
	f.Add([]byte(`{"identifier":"a","properties":{"n":1,"s":"x}","l":[1,{"a":[]}]},"relations":{"r":["b"]},"team":["t"]}`))
	f.Add([]byte(`{"identifier":"a","title":5}`))
	f.Add([]byte(`{"identifier":"a","Identifier":"b"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := decodeEntityFast(data)
		strict, err := decodeEntityStrict(data)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("fast decoder accepted what the strict one rejects (%v): %q", err, data)
		}
		if !reflect.DeepEqual(fast, strict) {
			t.Fatalf("decoders disagree on %q:\nfast   %#v\nstrict %#v", data, fast, strict)
		}
	})
}

func TestFastDecoderAcceptsOrdinaryEntities(t *testing.T) {
	for _, doc := range []string{
		`{"identifier":"a"}`,
		` {"identifier": "a", "title": "T", "team": ["x"], "properties": {"n": 1, "ok": true, "s": "q\"}"}, "relations": {"o": "b", "m": ["c"]}, "createdAt": "2020-01-01T00:00:00Z"} `,
		`{"blueprint":"service","identifier":"a","properties":{"tier":2}}`,
	} {
		if _, ok := decodeEntityFast([]byte(doc)); !ok {
			t.Errorf("fast path refused %s", doc)
		}
	}
	for _, doc := range []string{`{"Identifier":"a"}`, `{"identifier":"a","identifier":"b"}`, `{"identifier":"a","x":1}`, `{"identifier":5}`, `[1]`, `{"identifier":"a"} x`} {
		if _, ok := decodeEntityFast([]byte(doc)); ok {
			t.Errorf("fast path accepted %s", doc)
		}
	}
}
