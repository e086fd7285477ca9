package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/portico-dev/portico/internal/errkind"
)

// ErrMalformed marks input that is not a well-formed JSON object of the
// expected shape: syntax errors, unknown, duplicate or mistyped fields,
// trailing data. The HTTP layer answers it with 400.
var ErrMalformed = errkind.New(errkind.Malformed, "malformed")

// schemaJsonIgnored accepts and discards any JSON value.
type schemaJsonIgnored struct{}

func (*schemaJsonIgnored) UnmarshalJSON([]byte) error { return nil }

// DecodeEntity strictly decodes one entity JSON object. Field names must
// match exactly; unknown and duplicate fields, non-objects and trailing
// data are rejected with an error wrapping ErrMalformed. "blueprint" is
// decoded into Entity.Blueprint (the bulk API needs it); the other
// server-managed fields (createdAt, updatedAt, createdBy, updatedBy,
// datasource) are accepted and dropped; the computed ones (scorecards,
// aggregations) are refused unless null. Properties and Relations are never
// nil. Numbers decode as float64. The result still needs ValidateEntity.
func DecodeEntity(data []byte) (*Entity, error) {
	if e, ok := decodeEntityFast(data); ok {
		return e, nil
	}
	return decodeEntityStrict(data)
}

// decodeEntityStrict is the token-by-token decoder that explains exactly
// what is wrong with a document.
func decodeEntityStrict(data []byte) (*Entity, error) {
	if err := schemaExpectJSONObject(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // '{'
		return nil, schemaMalformedJSON(err)
	}
	e := &Entity{}
	var seen [len(entityFields)]bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, schemaMalformedJSON(err)
		}
		key, _ := tok.(string)
		i, known := fieldPositions[key]
		if !known {
			return nil, fmt.Errorf("%w: unknown field %q", ErrMalformed, key)
		}
		if seen[i] {
			return nil, fmt.Errorf("%w: duplicate field %q", ErrMalformed, key)
		}
		seen[i] = true
		var target any = &schemaJsonIgnored{}
		if f := &entityFields[i]; f.fromClient {
			target = f.pointer(e)
		} else if f.computed {
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return nil, schemaMalformedField(key, err)
			}
			if string(bytes.TrimSpace(v)) != "null" {
				return nil, fmt.Errorf("%w: field %q is computed by the portal and cannot be written", ErrMalformed, key)
			}
			continue
		}
		if err := dec.Decode(target); err != nil {
			return nil, schemaMalformedField(key, err)
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, schemaMalformedJSON(err)
	}
	if err := schemaExpectEOF(dec); err != nil {
		return nil, err
	}
	initObjects(e)
	return e, nil
}

// schemaBlueprintFields is Blueprint without its methods, so decoding it does not
// recurse into a custom UnmarshalJSON should one appear.
type schemaBlueprintFields Blueprint

// schemaBlueprintWire shadows the server-managed fields so any value is accepted
// and dropped.
type schemaBlueprintWire struct {
	schemaBlueprintFields
	CreatedAt schemaJsonIgnored `json:"createdAt"`
	UpdatedAt schemaJsonIgnored `json:"updatedAt"`
	Change    schemaJsonIgnored `json:"change"`
}

// DecodeBlueprint strictly decodes one blueprint JSON object: unknown fields
// (at any depth), mistyped fields, non-objects and trailing data are
// rejected with an error wrapping ErrMalformed; the server-managed
// createdAt/updatedAt and the read-only change are accepted and dropped. The result still needs
// CompileBlueprint.
func DecodeBlueprint(data []byte) (*Blueprint, error) {
	if err := schemaExpectJSONObject(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var w schemaBlueprintWire
	if err := dec.Decode(&w); err != nil {
		return nil, schemaMalformedField("", err)
	}
	if err := schemaExpectEOF(dec); err != nil {
		return nil, err
	}
	bp := Blueprint(w.schemaBlueprintFields)
	return &bp, nil
}

func schemaExpectJSONObject(data []byte) error {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return fmt.Errorf("%w: empty body, expected a JSON object", ErrMalformed)
	}
	if trimmed[0] != '{' {
		return fmt.Errorf("%w: expected a JSON object", ErrMalformed)
	}
	return nil
}

func schemaExpectEOF(dec *json.Decoder) error {
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: unexpected data after the JSON object", ErrMalformed)
	}
	return nil
}

func schemaMalformedJSON(err error) error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("%w: invalid JSON at byte %d: %s", ErrMalformed, syn.Offset, syn.Error())
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: unexpected end of JSON input", ErrMalformed)
	}
	return fmt.Errorf("%w: %s", ErrMalformed, strings.TrimPrefix(err.Error(), "json: "))
}

// schemaMalformedField describes a decoding error of field (or of the document
// when field is "").
func schemaMalformedField(field string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		name := field
		if te.Field != "" {
			name = strings.TrimPrefix(te.Field, "schemaBlueprintFields.")
			if field != "" {
				name = field + "." + name
			}
		}
		if name == "" {
			name = "value"
		}
		return fmt.Errorf("%w: field %s: expected %s, got %s", ErrMalformed, name, schemaGoTypeJSONName(te.Type.String()), te.Value)
	}
	return schemaMalformedJSON(err)
}

// schemaGoTypeJSONName names the JSON shape a Go type decodes from.
func schemaGoTypeJSONName(t string) string {
	switch {
	case t == "string":
		return "string"
	case t == "bool":
		return "boolean"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "integer"
	case strings.HasPrefix(t, "float"):
		return "number"
	case strings.HasPrefix(t, "[]"):
		return "array"
	case strings.HasPrefix(t, "map["), strings.HasPrefix(t, "catalog."), strings.HasPrefix(t, "struct"):
		return "object"
	case strings.HasPrefix(t, "*"):
		return schemaGoTypeJSONName(t[1:])
	}
	return t
}
