package actions

import (
	"sort"
	"strings"

	"github.com/portico-dev/portico/core/catalog"
)

// FormatEntity is the input format that picks an entity of a blueprint.
const FormatEntity = "entity"

// compiledInputs validates user inputs with the catalog's schema engine.
type compiledInputs struct {
	bp       *catalog.CompiledBlueprint
	entities map[string]Input // inputs of format "entity", by name
}

// compileInputs turns the inputs schema into a catalog blueprint schema
// (format "entity" becomes a plain string checked separately).
func compileInputs(in *Inputs) (*compiledInputs, error) {
	out := &compiledInputs{entities: map[string]Input{}}
	bp := &catalog.Blueprint{Identifier: "inputs", Schema: catalog.Schema{Properties: map[string]catalog.Property{}, Required: in.Required}}
	var p problems
	for name, def := range in.Properties {
		prop := def.Property
		if prop.Format == FormatEntity {
			if prop.Type != "string" {
				p.add("/userInputs/properties/"+name+"/type", "an entity input must be of type string")
			}
			if def.Blueprint == "" {
				p.add("/userInputs/properties/"+name+"/blueprint", "an entity input names its blueprint")
			}
			if def.Dataset != nil {
				p.addErr("/userInputs/properties/"+name+"/dataset", def.Dataset.Validate("/userInputs/properties/"+name+"/dataset"))
			}
			prop.Format = ""
			out.entities[name] = def
		}
		bp.Schema.Properties[name] = prop
	}
	if err := p.err("invalid user inputs"); err != nil {
		return nil, err
	}
	c, err := catalog.CompileBlueprint(bp)
	if err != nil {
		return nil, rebase(err, "/schema", "/userInputs")
	}
	out.bp = c
	return out, nil
}

// validate checks inputs (defaults filled in); violation paths are
// "/inputs/<name>".
func (c *compiledInputs) validate(inputs map[string]any) error {
	e := &catalog.Entity{Identifier: "inputs", Properties: inputs}
	if err := c.bp.ValidateEntity(e); err != nil {
		return rebase(err, "/properties", "/inputs")
	}
	return nil
}

// entityInputs returns the names of entity inputs, sorted.
func (c *compiledInputs) entityInputs() []string {
	names := make([]string, 0, len(c.entities))
	for n := range c.entities {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// rebase rewrites violation path prefixes of a validation error.
func rebase(err error, from, to string) error {
	verr, ok := err.(*catalog.ValidationError)
	if !ok {
		return err
	}
	out := &catalog.ValidationError{Message: verr.Message}
	for _, v := range verr.Violations {
		if rest, ok := strings.CutPrefix(v.Path, from); ok {
			v.Path = to + rest
		}
		out.Violations = append(out.Violations, v)
	}
	return out
}
