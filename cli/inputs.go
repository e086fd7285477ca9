package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/portico-dev/portico/core/actions"
)

// runInputs builds a run's inputs: the object in file (JSON or YAML;
// none when ""), then each KEY=VALUE of pairs over it, typed by the
// action's userInputs schema.
func runInputs(file string, pairs []string, schema *actions.Inputs) (map[string]any, error) {
	inputs := map[string]any{}
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		if raw, err = yaml.YAMLToJSON(raw); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if err := json.Unmarshal(raw, &inputs); err != nil || inputs == nil {
			return nil, fmt.Errorf("%s: the inputs file holds one object of input names to values", file)
		}
	}
	for _, kv := range pairs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--input %q: write it as NAME=VALUE", kv)
		}
		typed, err := inputValue(k, v, schema)
		if err != nil {
			return nil, fmt.Errorf("--input %s: %w", kv, err)
		}
		inputs[k] = typed
	}
	return inputs, nil
}

// inputValue types v as input name's schema says: a string as is, a
// number, integer or boolean parsed, an array or object as JSON (an
// array also as comma-separated values). An input the schema does not
// know is read as JSON when it parses, else as a string (the server
// says what is wrong with it).
func inputValue(name, v string, schema *actions.Inputs) (any, error) {
	var typ string
	var items string
	if schema != nil {
		if in, ok := schema.Properties[name]; ok {
			typ = in.Type
			if in.Items != nil {
				items = in.Items.Type
			}
		}
	}
	switch typ {
	case "string":
		return v, nil
	case "integer":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s is an integer, not %q", name, v)
		}
		return n, nil
	case "number":
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("%s is a number, not %q", name, v)
		}
		return f, nil
	case "boolean":
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%s is a boolean (true or false), not %q", name, v)
		}
		return b, nil
	case "array":
		var out []any
		if json.Unmarshal([]byte(v), &out) == nil {
			return out, nil
		}
		var item actions.Input
		item.Type = items
		itemSchema := &actions.Inputs{Properties: map[string]actions.Input{name: item}}
		out = []any{}
		for _, part := range strings.Split(v, ",") {
			item, err := inputValue(name, strings.TrimSpace(part), itemSchema)
			if err != nil {
				return nil, fmt.Errorf("an item of %w", err)
			}
			out = append(out, item)
		}
		return out, nil
	case "object":
		var out map[string]any
		if err := json.Unmarshal([]byte(v), &out); err != nil || out == nil {
			return nil, fmt.Errorf("%s is an object: give it as JSON ({\"k\": \"v\"})", name)
		}
		return out, nil
	}
	var out any
	if json.Unmarshal([]byte(v), &out) == nil {
		return out, nil
	}
	return v, nil
}
