package catalog

import (
	"bytes"
	"encoding/json"
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

// FuzzSplitBulk checks that the fast bulk splitter accepts only bodies the
// strict envelope decode accepts, with the same items.
func FuzzSplitBulk(f *testing.F) {
	for _, s := range []string{
		`{"entities":[]}`,
		` { "entities" : [ {"identifier":"a"} , 1, "x" ,null,[{"a":"]"}] ] } `,
		`{"entities":[{"identifier":"a\"]}"}]}`,
		`{"entities":[],"entities":[{}]}`,
		`{"Entities":[{}]}`,
		`{"entities":null}`,
		`{"entities":[{"a":1}],"other":1}`,
		`{"entit\u0069es":[{}]}`,
		`[{"entities":[]}]`,
		`{"entities":[1,]}`,
		`{"entities":[{"identifier":"a\u0062","blueprint":"s","relations":{"r":["b"],"s":"c"}}, {"identifier" : "x" , "relations" : null }]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		items, ok := SplitBulk(body)
		if !ok {
			return
		}
		var want struct {
			Entities []json.RawMessage `json:"entities"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&want); err != nil || dec.More() {
			t.Fatalf("SplitBulk accepted %q, which the strict decoder rejects (%v)", body, err)
		}
		if want.Entities == nil || len(items) != len(want.Entities) {
			t.Fatalf("SplitBulk(%q): %d items, strict decode %d", body, len(items), len(want.Entities))
		}
		for i := range items {
			var got, exp bytes.Buffer
			if err := json.Compact(&got, items[i]); err != nil {
				t.Fatalf("item %d %q is not JSON: %v", i, items[i], err)
			}
			_ = json.Compact(&exp, want.Entities[i])
			if got.String() != exp.String() {
				t.Fatalf("item %d: %q, strict decode %q", i, got.String(), exp.String())
			}
			checkPeek(t, items[i])
		}
	})
}

// checkPeek: whatever PeekBulkItem accepts, the full decoder reads the same
// identifier, blueprint and relations from.
func checkPeek(t *testing.T, item []byte) {
	t.Helper()
	peek, ok := PeekBulkItem(item)
	if !ok {
		return
	}
	full, err := DecodeBulkItem(item)
	if err != nil {
		return // invalid in a way chunking need not know about
	}
	if peek.Identifier != full.Identifier || peek.Blueprint != full.Blueprint {
		t.Fatalf("PeekBulkItem(%q) = %q/%q, decode %q/%q", item, peek.Blueprint, peek.Identifier, full.Blueprint, full.Identifier)
	}
	for name, v := range full.Relations {
		if !reflect.DeepEqual(RelationIDs(peek.Relations[name]), RelationIDs(v)) {
			t.Fatalf("PeekBulkItem(%q) relation %s = %v, decode %v", item, name, peek.Relations[name], v)
		}
	}
}

func TestSplitBulk(t *testing.T) {
	for _, tc := range []struct {
		body string
		ok   bool
		n    int
	}{
		{`{"entities":[]}`, true, 0},
		{` { "entities" : [ {"identifier":"a"} , 1, "x" ,null ] } `, true, 4},
		{`{"entities":[{"identifier":"a\"]}"}]}`, true, 1},
		{`{"entities":[],"entities":[{}]}`, false, 0}, // repeated: strict path
		{`{"Entities":[{}]}`, false, 0},
		{`{"entities":null}`, false, 0},
		{`{"entities":[{}],"other":1}`, false, 0},
		{`{"entit\u0069es":[{}]}`, false, 0},
		{`{"entities":[1,]}`, false, 0},
		{"{\"entities\":[\"\xff\"]}", false, 0},
	} {
		items, ok := SplitBulk([]byte(tc.body))
		if ok != tc.ok || len(items) != tc.n {
			t.Errorf("SplitBulk(%q) = %d items, %v; want %d, %v", tc.body, len(items), ok, tc.n, tc.ok)
		}
	}
}

func TestPeekBulkItem(t *testing.T) {
	e, ok := PeekBulkItem([]byte(`{"identifier":"a","title":5,"blueprint":"svc","properties":{"x":[1]},"relations":{"r":["b"],"s":"c"}}`))
	if !ok || e.Identifier != "a" || e.Blueprint != "svc" || !reflect.DeepEqual(RelationIDs(e.Relations["r"]), []string{"b"}) || e.Relations["s"] != "c" {
		t.Fatalf("PeekBulkItem = %+v, %v", e, ok)
	}
	for _, doc := range []string{`{"identifier":"a","colour":"red"}`, `{"identifier":1}`, `{"identifier":"a","identifier":"b"}`, `[1]`,
		`{"identifier":"a","relations":[1]}`, `{"identifier":"a","blueprint":true}`} {
		if _, ok := PeekBulkItem([]byte(doc)); ok {
			t.Errorf("PeekBulkItem accepted %s", doc)
		}
	}
	for _, doc := range []string{
		`{"identifier":"a\u0062","blueprint":"s\"vc","relations":{"r":"x\ty"}}`,
		`{ "identifier" : "a" , "relations" : null , "blueprint" : "svc" }`,
		`{"relations":{"r":["b","c"],"s":null},"identifier":"a"}`,
		`{"identifier":null,"blueprint":"svc"}`,
	} {
		if _, ok := PeekBulkItem([]byte(doc)); !ok {
			t.Errorf("PeekBulkItem refused %s", doc)
		}
		checkPeek(t, []byte(doc))
	}
}
