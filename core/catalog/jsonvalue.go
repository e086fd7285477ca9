package catalog

import "math/big"

// JSONValue deep-copies a value (e.g. a gojq result) into the types
// encoding/json decodes to: integers become float64, arrays []any, objects
// map[string]any. Values then compare and store like decoded JSON, and the
// copy shares no containers with its source.
func JSONValue(v any) any {
	switch t := v.(type) {
	case int:
		return float64(t)
	case int64:
		return float64(t)
	case *big.Int:
		f, _ := new(big.Float).SetInt(t).Float64()
		return f
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = JSONValue(x)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = JSONValue(x)
		}
		return out
	}
	return v
}
