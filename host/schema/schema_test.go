package schema_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/host/schema"
)

const config = `{"type": "object", "required": ["baseUrl"], "additionalProperties": false,
 "properties": {"baseUrl": {"type": "string", "format": "uri"},
                "pageSize": {"type": "integer", "minimum": 1, "maximum": 1000},
                "teams": {"type": "array", "items": {"type": "string"}}}}`

func TestValidate(t *testing.T) {
	s, err := schema.Compile(json.RawMessage(config), "/config")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		doc  string
		want []string // "path: message substring"
	}{
		{`{"baseUrl": "https://api.example.com", "pageSize": 10, "teams": ["a"]}`, nil},
		{`{}`, []string{`/config: missing property 'baseUrl'`}},
		{`{"baseUrl": "not a uri", "pageSize": 0}`, []string{`/config/baseUrl: 'not a uri' is not valid uri`, `/config/pageSize: minimum`}},
		{`{"baseUrl": "https://x", "teams": ["a", 2]}`, []string{`/config/teams/1: got number, want string`}},
		{`{"baseUrl": "https://x", "other": 1}`, []string{`/config: additional properties 'other' not allowed`}},
		{`[]`, []string{`/config: got array, want object`}},
		{`{`, []string{`/config: not valid JSON`}},
	}
	for _, tt := range tests {
		got := s.Validate(json.RawMessage(tt.doc), "/config")
		if len(got) != len(tt.want) {
			t.Errorf("%s: got %v, want %v", tt.doc, got, tt.want)
			continue
		}
		for i, v := range got {
			path, msg, _ := strings.Cut(tt.want[i], ": ")
			if v.Path != path || !strings.Contains(v.Message, msg) {
				t.Errorf("%s: violation %d = %s: %s, want %s", tt.doc, i, v.Path, v.Message, tt.want[i])
			}
		}
	}
}

func TestCompileRejects(t *testing.T) {
	tests := []struct{ raw, path, msg string }{
		{`{"type": "objekt"}`, "/info/config/type", "value must be one of"},
		{`{"properties": {"a": {"minimum": "1"}}}`, "/info/config/properties/a/minimum", "got string, want number"},
		{`{"$ref": "file:///etc/passwd"}`, "/info/config", "may not reference other documents"},
		{`{"$ref": "https://example.com/schema.json"}`, "/info/config", "may not reference other documents"},
		{`{"type": "object"`, "/info/config", "not valid JSON"},
		{`17`, "/info/config", "want boolean or object"},
	}
	for _, tt := range tests {
		_, err := schema.Compile(json.RawMessage(tt.raw), "/info/config")
		var verr *catalog.ValidationError
		if !errors.As(err, &verr) {
			t.Errorf("%s: err = %v, want a validation error", tt.raw, err)
			continue
		}
		found := false
		for _, v := range verr.Violations {
			found = found || v.Path == tt.path && strings.Contains(v.Message, tt.msg)
		}
		if !found {
			t.Errorf("%s: %+v, want %s: …%s…", tt.raw, verr.Violations, tt.path, tt.msg)
		}
	}
	if _, err := schema.Compile(json.RawMessage(`{"$defs": {"a": {"type": "string"}}, "properties": {"x": {"$ref": "#/$defs/a"}}}`), ""); err != nil {
		t.Errorf("local $ref: %v", err)
	}
}
