package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"time"

	"github.com/portico-dev/portico/internal/jqeval"
)

// CalcLimits bound one calculation-property evaluation: it runs on every
// read of an entity, so it gets a tenth of a mapping's steps.
var CalcLimits = jqeval.Limits{Timeout: 100 * time.Millisecond, Steps: 100_000}

// Calculate evaluates the calculation properties with gojq over the entity
// as JSON: every field under its JSON key (see entityFields), empty ones
// included, times in RFC 3339 (null when unset). The first output
// of each expression is its value; an expression that fails, yields
// nothing, exceeds CalcLimits or yields a value of the wrong declared type
// gives nil, never an error. It returns nil when there are no
// calculation properties.
func (c *CompiledBlueprint) Calculate(e *Entity) map[string]any {
	if len(c.calcs) == 0 {
		return nil
	}
	in := schemaEntityJQInput(e, c.Blueprint.Identifier)
	out := make(map[string]any, len(c.calcs))
	for _, cr := range c.calcs {
		out[cr.name] = cr.eval(in)
	}
	return out
}

// checkCalculations evaluates every calculation property over an entity
// without properties and rejects those that exceed CalcLimits there: they
// would on every read. (One that exceeds them only for some entities gives
// nil for those.)
func (c *CompiledBlueprint) checkCalculations() error {
	var vs violations
	in := schemaEntityJQInput(&Entity{Identifier: "probe"}, c.Blueprint.Identifier)
	for _, cr := range c.calcs {
		if _, _, err := cr.prog.First(context.Background(), in); errors.Is(err, jqeval.ErrLimit) {
			vs.add(pointer("calculationProperties", cr.name)+"/jq", "%v", err)
		}
	}
	return vs.err("invalid blueprint")
}

func (cr *schemaCalcRule) eval(in any) (result any) {
	defer func() {
		if recover() != nil {
			result = nil
		}
	}()
	v, ok, err := cr.prog.First(context.Background(), in)
	if !ok || err != nil {
		return nil
	}
	switch n := v.(type) {
	case int:
		v = float64(n)
	case *big.Int:
		f, _ := new(big.Float).SetInt(n).Float64()
		v = f
	}
	switch cr.kind {
	case 0:
		return v
	case schemaKindString:
		if _, ok := v.(string); ok {
			return v
		}
	case schemaKindNumber:
		if f, ok := v.(float64); ok && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return v
		}
	case schemaKindInteger:
		if f, ok := v.(float64); ok && schemaIsWhole(f) {
			return v
		}
	case schemaKindBoolean:
		if _, ok := v.(bool); ok {
			return v
		}
	case schemaKindArray:
		if _, ok := v.([]any); ok {
			return v
		}
	case schemaKindObject:
		if _, ok := v.(map[string]any); ok {
			return v
		}
	}
	return nil
}

// schemaEntityJQInput is e as a gojq value: a deep copy made of the types gojq
// accepts, so expressions can neither fail on Go types nor alias e. An
// entity without a blueprint gets blueprint.
func schemaEntityJQInput(e *Entity, blueprint string) map[string]any {
	in := make(map[string]any, len(entityFields))
	for i := range entityFields {
		f := &entityFields[i]
		switch f.kind {
		case textField:
			in[f.key] = *f.text(e)
		case listField:
			list := *f.list(e)
			copied := make([]any, len(list))
			for i, s := range list {
				copied[i] = s
			}
			in[f.key] = copied
		case objectField:
			in[f.key] = schemaJqValue(*f.object(e))
		case timeField:
			if t := *f.time(e); !t.IsZero() {
				in[f.key] = t.UTC().Format(time.RFC3339Nano)
			} else {
				in[f.key] = nil
			}
		}
	}
	if e.Blueprint == "" {
		in["blueprint"] = blueprint
	}
	return in
}

// schemaJqValue deep-copies v into the value types gojq understands.
func schemaJqValue(v any) any {
	switch t := v.(type) {
	case nil, bool, string, float64, int, json.Number:
		return v
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = schemaJqValue(x)
		}
		return m
	case []any:
		a := make([]any, len(t))
		for i, x := range t {
			a[i] = schemaJqValue(x)
		}
		return a
	case []string:
		a := make([]any, len(t))
		for i, x := range t {
			a[i] = x
		}
		return a
	case time.Time:
		return t.UTC().Format(time.RFC3339Nano)
	}
	if f, ok := schemaNumberValue(v); ok {
		return f
	}
	// Anything else goes through its JSON form.
	data, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var out any
	if json.Unmarshal(data, &out) != nil {
		return nil
	}
	return out
}
