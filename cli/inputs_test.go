package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/catalog"
)

func TestRunInputs(t *testing.T) {
	prop := func(typ string, items string) actions.Input {
		var in actions.Input
		in.Type = typ
		if items != "" {
			in.Items = &catalog.Property{Type: items}
		}
		return in
	}
	schema := &actions.Inputs{Properties: map[string]actions.Input{
		"version": prop("string", ""), "replicas": prop("integer", ""), "ratio": prop("number", ""),
		"force": prop("boolean", ""), "regions": prop("array", "string"), "ports": prop("array", "integer"),
		"labels": prop("object", ""),
	}}
	tests := []struct {
		pairs []string
		want  map[string]any
		err   string
	}{
		{pairs: []string{"version=1.20"}, want: map[string]any{"version": "1.20"}},
		{pairs: []string{"version=42"}, want: map[string]any{"version": "42"}},
		{pairs: []string{"replicas=3", "ratio=0.5", "force=true"}, want: map[string]any{"replicas": int64(3), "ratio": 0.5, "force": true}},
		{pairs: []string{"regions=eu, us"}, want: map[string]any{"regions": []any{"eu", "us"}}},
		{pairs: []string{`regions=["eu"]`}, want: map[string]any{"regions": []any{"eu"}}},
		{pairs: []string{"ports=80,443"}, want: map[string]any{"ports": []any{int64(80), int64(443)}}},
		{pairs: []string{`labels={"a": "b"}`}, want: map[string]any{"labels": map[string]any{"a": "b"}}},
		{pairs: []string{"unknown=7", "other=x y"}, want: map[string]any{"unknown": 7.0, "other": "x y"}},
		{pairs: []string{"version=a=b"}, want: map[string]any{"version": "a=b"}},
		{pairs: []string{"replicas=many"}, err: `--input replicas=many: replicas is an integer, not "many"`},
		{pairs: []string{"force=maybe"}, err: `--input force=maybe: force is a boolean (true or false), not "maybe"`},
		{pairs: []string{"ports=80,x"}, err: `--input ports=80,x: an item of ports is an integer, not "x"`},
		{pairs: []string{"labels=x"}, err: "--input labels=x: labels is an object"},
		{pairs: []string{"novalue"}, err: `--input "novalue": write it as NAME=VALUE`},
	}
	for _, tt := range tests {
		got, err := runInputs("", tt.pairs, schema)
		if tt.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
				t.Errorf("%v: error %v, want %q", tt.pairs, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%v = %#v, %v; want %#v", tt.pairs, got, err, tt.want)
		}
	}
}

func TestRunInputsFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "inputs.yaml")
	if err := os.WriteFile(file, []byte("version: \"1.2\"\nreplicas: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := runInputs(file, []string{"replicas=5"}, nil)
	if err != nil || !reflect.DeepEqual(got, map[string]any{"version": "1.2", "replicas": 5.0}) {
		t.Errorf("got %#v, %v", got, err)
	}
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte(`[1, 2]`), 0o600)
	if _, err := runInputs(bad, nil, nil); err == nil || !strings.Contains(err.Error(), bad+": the inputs file holds one object") {
		t.Errorf("a list in the inputs file: %v", err)
	}
}
