package rediscatalog

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portico-dev/portico/core/catalog"
)

// TestMetaPropertyIndexes proves every meta-property of catalog's field
// table through the indexer and the planner: each is indexed, and planned,
// as its catalog.MetaIndex says, with the entity's value.
func TestMetaPropertyIndexes(t *testing.T) {
	// Every string field a distinct value, every list two, every time its
	// own millisecond: a new field is sampled without editing this test.
	e := &catalog.Entity{}
	v := reflect.ValueOf(e).Elem()
	for i := range v.NumField() {
		name := strings.ToLower(v.Type().Field(i).Name)
		switch f := v.Field(i); f.Interface().(type) {
		case string:
			f.SetString("v-" + name)
		case []string:
			f.Set(reflect.ValueOf([]string{"a-" + name, "b-" + name}))
		case time.Time:
			f.Set(reflect.ValueOf(time.Date(2024, 1, 2, 3, 4, 5, (i+1)*1_000_000, time.UTC)))
		}
	}
	bp := &catalog.Blueprint{Identifier: e.Blueprint}
	entries := indexEntries(nil, bp, e)
	p := &planner{bp: bp}

	for m := range catalog.MetaProperties() {
		t.Run(m.Name(), func(t *testing.T) {
			var got []indexEntry
			for _, x := range entries {
				if x.prop == m.Name() {
					got = append(got, x)
				}
			}
			var want []indexEntry
			typ, indexed := p.indexedType(m.Name())
			wantType := ""
			switch m.Index() {
			case catalog.IndexedAsText:
				want = []indexEntry{{kind: pairIndex, prop: m.Name(), member: pairMember(m.Text(e), e.Identifier)}}
				wantType = "string"
			case catalog.IndexedAsLabel:
				values := m.Labels(e)
				wantType = "array"
				if !m.IsList() {
					values = []string{m.Text(e)}
					wantType = "string"
				}
				for _, s := range values {
					want = append(want,
						indexEntry{kind: eqIndex, prop: m.Name(), value: taggedString(s), member: e.Identifier},
						indexEntry{kind: valuesIndex, prop: m.Name(), member: taggedString(s)})
				}
			case catalog.IndexedAsTime:
				want = []indexEntry{{kind: numIndex, prop: m.Name(), member: e.Identifier, score: float64(m.Time(e).UnixMilli())}}
				wantType = "time"
			case catalog.IndexedAsIdentifier:
				wantType = "$identifier"
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("index entries %+v, want %+v", got, want)
			}
			if typ != wantType || indexed != (wantType != "") {
				t.Errorf("planned as %q (%v), want %q", typ, indexed, wantType)
			}
			if high := highCardinality(bp, m.Name()); high != (m.Index() == catalog.IndexedAsText) {
				t.Errorf("highCardinality %v for index %d", high, m.Index())
			}
		})
	}
}
