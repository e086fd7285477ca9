// Package schema compiles the JSON Schemas plugins declare (installation
// config, action inputs) and validates documents against them, reporting
// problems as catalog violations with JSON-pointer paths.
//
// Schemas come from plugins, so they are untrusted: a $ref can only point
// inside the schema itself (nothing is loaded from files or the network).
package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/portico-dev/portico/core/catalog"
)

// Schema is a compiled JSON Schema; it is safe for concurrent use.
type Schema struct{ s *jsonschema.Schema }

// location is the base URL of a compiled schema (it appears in messages).
const location = "portico:schema.json"

// errNoLoad refuses every $ref outside the schema.
var errNoLoad = errors.New("schemas may not reference other documents")

type noLoader struct{}

func (noLoader) Load(url string) (any, error) { return nil, fmt.Errorf("%w: %s", errNoLoad, url) }

// Compile compiles a JSON Schema (draft 2020-12 unless it says otherwise),
// asserting formats such as "uri" and "email". When raw is not a valid
// schema it returns a *catalog.ValidationError whose paths are base
// followed by JSON pointers into raw.
func Compile(raw json.RawMessage, base string) (*Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, invalidSchema(catalog.Violation{Path: base, Message: "not valid JSON: " + err.Error()})
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(noLoader{})
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(location, doc); err != nil {
		return nil, invalidSchema(catalog.Violation{Path: base, Message: err.Error()})
	}
	s, err := c.Compile(location)
	if err == nil {
		return &Schema{s}, nil
	}
	var serr *jsonschema.SchemaValidationError
	if errors.As(err, &serr) {
		var verr *jsonschema.ValidationError
		if errors.As(serr.Err, &verr) {
			return nil, invalidSchema(violations(verr, base, "not a valid JSON Schema: ")...)
		}
	}
	return nil, invalidSchema(catalog.Violation{Path: base, Message: strings.ReplaceAll(err.Error(), location, "schema")})
}

func invalidSchema(vs ...catalog.Violation) error {
	return &catalog.ValidationError{Message: "invalid JSON Schema", Violations: vs}
}

// Validate validates the JSON document doc and returns its violations,
// each path being base followed by the JSON pointer of the offending value
// (base itself for the whole document).
func (s *Schema) Validate(doc json.RawMessage, base string) []catalog.Violation {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return []catalog.Violation{{Path: base, Message: "not valid JSON"}}
	}
	err = s.s.Validate(v)
	if err == nil {
		return nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return []catalog.Violation{{Path: base, Message: err.Error()}}
	}
	return violations(verr, base, "")
}

// violations flattens a validation error into one violation per failed
// leaf keyword, at base + the failing value's JSON pointer.
func violations(verr *jsonschema.ValidationError, base, prefix string) []catalog.Violation {
	var out []catalog.Violation
	seen := map[catalog.Violation]bool{}
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		vi := catalog.Violation{Path: base + pointer(e.InstanceLocation), Message: prefix + e.ErrorKind.LocalizedString(printer)}
		if vi.Path == "" {
			vi.Path = "/"
		}
		if !seen[vi] {
			seen[vi] = true
			out = append(out, vi)
		}
	}
	walk(verr)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

var printer = message.NewPrinter(language.English)

// pointer returns the JSON pointer of a path of tokens.
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	return b.String()
}
