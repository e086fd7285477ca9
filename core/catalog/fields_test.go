package catalog

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fieldsSample returns an entity with every field set to a distinct
// non-empty value chosen by its Go type, so a new field is sampled
// without editing this test.
func fieldsSample(t *testing.T) *Entity {
	t.Helper()
	e := &Entity{}
	v := reflect.ValueOf(e).Elem()
	for i := range v.NumField() {
		name := strings.ToLower(v.Type().Field(i).Name)
		switch f := v.Field(i); f.Interface().(type) {
		case string:
			f.SetString("v-" + name)
		case []string:
			f.Set(reflect.ValueOf([]string{"a-" + name, "b-" + name}))
		case map[string]any:
			f.Set(reflect.ValueOf(map[string]any{"k-" + name: "x", "n": 1.5}))
		case time.Time:
			f.Set(reflect.ValueOf(time.Date(2024, 1, 2, 3, 4, 5, (i+1)*1_000_000, time.UTC)))
		default:
			t.Fatalf("Entity.%s is a %s: give it a fieldKind in entityFields and a sample here", v.Type().Field(i).Name, f.Type())
		}
	}
	return e
}

// fieldValue is the value of f in e, read through its accessor.
func fieldValue(f *entityField, e *Entity) any {
	return reflect.ValueOf(f.pointer(e)).Elem().Interface()
}

// fieldJSON is v as encoding/json writes it.
func fieldJSON(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// TestEntityFieldsCoverStruct fails when an Entity field has no row, a row
// names no field, rows are out of the struct's (JSON) order, or a row's
// accessor points at another field.
func TestEntityFieldsCoverStruct(t *testing.T) {
	typ := reflect.TypeFor[Entity]()
	if typ.NumField() != len(entityFields) {
		t.Fatalf("Entity has %d fields, entityFields %d rows", typ.NumField(), len(entityFields))
	}
	for i := range typ.NumField() {
		sf := typ.Field(i)
		key, opts, _ := strings.Cut(sf.Tag.Get("json"), ",")
		f := &entityFields[i]
		if f.key != key {
			t.Fatalf("row %d is %q, Entity.%s is %q: rows follow the struct", i, f.key, sf.Name, key)
		}
		if f.omitEmpty != strings.Contains(opts, "omitempty") {
			t.Errorf("%s: omitEmpty %v, json tag %q", key, f.omitEmpty, sf.Tag.Get("json"))
		}
		if fieldPositions[key] != i {
			t.Errorf("%s: fieldPositions says %d, want %d", key, fieldPositions[key], i)
		}
		var e Entity
		if got := reflect.ValueOf(f.pointer(&e)).Pointer(); got != reflect.ValueOf(&e).Elem().Field(i).Addr().Pointer() {
			t.Errorf("%s: the accessor points at another field", key)
		}
		if f.meta != "" && (metaFields[f.meta] != f || f.meta != "$"+key) {
			t.Errorf("%s: meta-property %q not found as its own name", key, f.meta)
		}
	}
}

// TestEntityFieldsRoundTrip proves every row through each reader of the
// table: the encoder, both decoders, merge patches, sameContent, Lookup
// and query validation by meta-property, mirror paths and the jq input.
func TestEntityFieldsRoundTrip(t *testing.T) {
	sample := fieldsSample(t)
	encoded := MarshalEntity(sample)
	if want := fieldJSON(t, sample); string(encoded) != want {
		t.Fatalf("MarshalEntity:\n%s\nencoding/json:\n%s", encoded, want)
	}
	// What a client may send: the computed fields are refused (below).
	client := *sample
	for i := range entityFields {
		if entityFields[i].computed {
			reflect.ValueOf(&client).Elem().Field(i).Set(reflect.Zero(reflect.TypeOf(fieldValue(&entityFields[i], sample))))
		}
	}
	clientDoc := MarshalEntity(&client)
	fast, ok := decodeEntityFast(clientDoc)
	if !ok {
		t.Fatalf("the fast decoder refused %s", clientDoc)
	}
	strict, err := decodeEntityStrict(clientDoc)
	if err != nil {
		t.Fatal(err)
	}
	jqIn := schemaEntityJQInput(sample, "")
	mirrorBP := &Blueprint{Identifier: "b", Relations: map[string]Relation{"rel": {Target: "b"}}}

	for i := range entityFields {
		f := &entityFields[i]
		t.Run(f.key, func(t *testing.T) {
			want := fieldJSON(t, fieldValue(f, sample))
			var doc map[string]json.RawMessage
			if err := json.Unmarshal(encoded, &doc); err != nil {
				t.Fatal(err)
			}
			if string(doc[f.key]) != want {
				t.Errorf("encoded as %s, want %s", doc[f.key], want)
			}

			// Both decoders keep a client field and drop a server-managed one,
			// from the whole document and from one holding only this field.
			alone := []byte(`{"` + f.key + `":` + want + `}`)
			if f.computed {
				if _, ok := decodeEntityFast(alone); ok {
					t.Errorf("the fast decoder accepted computed %s", alone)
				}
				if _, err := decodeEntityStrict(alone); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), f.key) {
					t.Errorf("strict decoder on computed %s: %v", alone, err)
				}
				if _, err := decodeEntityStrict([]byte(`{"` + f.key + `":null}`)); err != nil {
					t.Errorf("strict decoder on null %s: %v", f.key, err)
				}
				alone = []byte(`{}`)
			}
			single, ok := decodeEntityFast(alone)
			if !ok {
				t.Fatalf("the fast decoder refused %s", alone)
			}
			singleStrict, err := decodeEntityStrict(alone)
			if err != nil {
				t.Fatal(err)
			}
			for name, got := range map[string]*Entity{"fast": fast, "strict": strict, "fast alone": single, "strict alone": singleStrict} {
				gotJSON := fieldJSON(t, fieldValue(f, got))
				switch {
				case f.fromClient && gotJSON != want:
					t.Errorf("%s decoder: %s, want %s", name, gotJSON, want)
				case !f.fromClient && !reflect.ValueOf(fieldValue(f, got)).IsZero():
					t.Errorf("%s decoder kept server-managed %s", name, gotJSON)
				}
			}

			// A merge patch may set exactly the client fields.
			_, err = mergePatch(sample, map[string]any{f.key: json.RawMessage(want)})
			var ve *ValidationError
			refused := errors.As(err, &ve) && strings.Contains(ve.Error(), "cannot be patched")
			if refused == f.fromClient {
				t.Errorf("merge patch: %v (client field: %v)", err, f.fromClient)
			}

			// sameContent compares exactly the content fields.
			changed := *sample
			reflect.ValueOf(&changed).Elem().Field(i).Set(reflect.Zero(reflect.TypeOf(fieldValue(f, sample))))
			if same := sameContent(sample, &changed); same == f.content {
				t.Errorf("sameContent after clearing %s: %v (content field: %v)", f.key, same, f.content)
			}

			// The jq input holds the value under the JSON key.
			if got := fieldJSON(t, jqIn[f.key]); got != want {
				t.Errorf("jq input: %s, want %s", got, want)
			}

			if f.meta == "" {
				if _, ok := Lookup(sample, nil, "$"+f.key); ok {
					t.Errorf("Lookup answers $%s, which is no meta-property", f.key)
				}
				return
			}
			// Lookup answers a queryable meta-property with the value;
			// queries and sorts accept exactly those.
			got, found := Lookup(sample, nil, f.meta)
			switch {
			case f.queryable && (!found || fieldJSON(t, got) != want):
				t.Errorf("Lookup(%s) = %v, %v; want %s", f.meta, got, found, want)
			case !f.queryable && found:
				t.Errorf("Lookup(%s) answers a meta-property queries may not name", f.meta)
			}
			rule := &Rule{Property: f.meta, Operator: "isNotEmpty"}
			if err := rule.Validate(""); (err == nil) != f.queryable {
				t.Errorf("query on %s: %v (queryable: %v)", f.meta, err, f.queryable)
			}
			if f.queryable && !Match(rule, sample, sample.Properties, time.Now(), nil) {
				t.Errorf("%s isNotEmpty does not match the sample", f.meta)
			}
			// A mirror may read any meta-property.
			if _, _, msg := schemaSplitMirrorPath("rel."+f.meta, mirrorBP); msg != "" {
				t.Errorf("mirror path rel.%s: %s", f.meta, msg)
			}
		})
	}
}

// TestEntityFieldsJQBlueprint: the jq input's blueprint falls back to the
// compiled blueprint's for an entity without one.
func TestEntityFieldsJQBlueprint(t *testing.T) {
	for _, tc := range []struct{ entity, fallback, want string }{
		{"", "svc", "svc"},
		{"own", "svc", "own"},
	} {
		if got := schemaEntityJQInput(&Entity{Blueprint: tc.entity}, tc.fallback)["blueprint"]; got != tc.want {
			t.Errorf("entity %q, fallback %q: blueprint %v, want %q", tc.entity, tc.fallback, got, tc.want)
		}
	}
}

// TestMetaProperties: the exported view lists every meta-property once,
// in table order, and LookupMeta finds each.
func TestMetaProperties(t *testing.T) {
	var names []string
	for m := range MetaProperties() {
		names = append(names, m.Name())
		found, ok := LookupMeta(m.Name())
		if !ok || found != m {
			t.Errorf("LookupMeta(%s) = %v, %v", m.Name(), found, ok)
		}
	}
	var want []string
	for i := range entityFields {
		if entityFields[i].meta != "" {
			want = append(want, entityFields[i].meta)
		}
	}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("MetaProperties: %v, want %v", names, want)
	}
	if _, ok := LookupMeta("$nope"); ok {
		t.Error("LookupMeta found $nope")
	}
}
