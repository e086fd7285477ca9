package catalog

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
)

// DecodeQuery strictly decodes one query JSON object and validates it.
// Field names must match exactly (no case folding); unknown or duplicate
// fields, wrongly typed fields and trailing data are rejected. Every error
// is a *ValidationError whose paths are JSON pointers relative to the query.
func DecodeQuery(data []byte) (*Rule, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	d := queryDecoder{dec: dec}
	var r Rule
	if err := d.rule(&r, "", 1); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, queryDecodeError("", "unexpected data after the query")
	}
	if err := r.Validate(""); err != nil {
		return nil, err
	}
	return &r, nil
}

type queryDecoder struct {
	dec   *json.Decoder
	count int // rules decoded so far
}

func queryDecodeError(path, format string, args ...any) error {
	var v violations
	v.add(path, format, args...)
	return v.err("invalid query")
}

func (d *queryDecoder) token(path string) (json.Token, error) {
	tok, err := d.dec.Token()
	if err == io.EOF {
		return nil, queryDecodeError(path, "unexpected end of JSON input")
	}
	if err != nil {
		return nil, queryDecodeError(path, "invalid JSON: %v", err)
	}
	return tok, nil
}

// rule decodes one rule object at path; level is its nesting level (root 1).
func (d *queryDecoder) rule(r *Rule, path string, level int) error {
	if d.count++; d.count > MaxQueryRules {
		return queryDecodeError(path, "a query holds at most %d rules", MaxQueryRules)
	}
	tok, err := d.token(path)
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return queryDecodeError(path, "must be a JSON object")
	}
	seen := make(map[string]bool, 4)
	for d.dec.More() {
		tok, err := d.token(path)
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return queryDecodeError(path, "invalid JSON: expected a field name")
		}
		fp := path + pointer(key)
		if seen[key] {
			return queryDecodeError(fp, "duplicate field")
		}
		seen[key] = true
		switch key {
		case "combinator":
			r.Combinator, err = d.str(fp)
		case "property":
			r.Property, err = d.str(fp)
		case "operator":
			r.Operator, err = d.str(fp)
		case "blueprint":
			r.Blueprint, err = d.str(fp)
		case "identifier":
			r.Identifier, err = d.str(fp)
		case "direction":
			r.Direction, err = d.str(fp)
		case "relation":
			r.Relation, err = d.str(fp)
		case "depth":
			r.Depth, err = d.int(fp)
		case "value":
			r.Value, err = d.value(fp)
		case "rules":
			if level > MaxQueryNesting {
				return queryDecodeError(path, "combinators nest deeper than %d levels", MaxQueryNesting)
			}
			r.Rules, err = d.rules(fp, level)
		default:
			return queryDecodeError(fp, "unknown field")
		}
		if err != nil {
			return err
		}
	}
	tok, err = d.token(path)
	if err != nil {
		return err
	}
	if tok != json.Delim('}') {
		return queryDecodeError(path, "invalid JSON: unterminated object")
	}
	return nil
}

func (d *queryDecoder) str(path string) (string, error) {
	tok, err := d.token(path)
	if err != nil {
		return "", err
	}
	switch t := tok.(type) {
	case nil:
		return "", nil
	case string:
		return t, nil
	}
	return "", queryDecodeError(path, "must be a string")
}

func (d *queryDecoder) int(path string) (int, error) {
	tok, err := d.token(path)
	if err != nil {
		return 0, err
	}
	switch t := tok.(type) {
	case nil:
		return 0, nil
	case json.Number:
		n, err := strconv.Atoi(t.String())
		if err != nil {
			return 0, queryDecodeError(path, "must be an integer")
		}
		return n, nil
	}
	return 0, queryDecodeError(path, "must be an integer")
}

func (d *queryDecoder) value(path string) (any, error) {
	var v any
	if err := d.dec.Decode(&v); err != nil {
		return nil, queryDecodeError(path, "invalid JSON: %v", err)
	}
	return queryFloats(v, path)
}

// queryFloats turns the json.Numbers of a decoded value into float64, the
// type encoding/json would have produced.
func queryFloats(v any, path string) (any, error) {
	switch t := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(t.String(), 64)
		if err != nil {
			return nil, queryDecodeError(path, "number %s is out of range", t)
		}
		return f, nil
	case []any:
		for i, x := range t {
			y, err := queryFloats(x, path+pointer(strconv.Itoa(i)))
			if err != nil {
				return nil, err
			}
			t[i] = y
		}
	case map[string]any:
		for k, x := range t {
			y, err := queryFloats(x, path+pointer(k))
			if err != nil {
				return nil, err
			}
			t[k] = y
		}
	}
	return v, nil
}

func (d *queryDecoder) rules(path string, level int) ([]Rule, error) {
	tok, err := d.token(path)
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil
	}
	if tok != json.Delim('[') {
		return nil, queryDecodeError(path, "must be an array of rules")
	}
	rules := []Rule{}
	for d.dec.More() {
		rules = append(rules, Rule{})
		i := len(rules) - 1
		if err := d.rule(&rules[i], path+pointer(strconv.Itoa(i)), level+1); err != nil {
			return nil, err
		}
	}
	tok, err = d.token(path)
	if err != nil {
		return nil, err
	}
	if tok != json.Delim(']') {
		return nil, queryDecodeError(path, "invalid JSON: unterminated array")
	}
	return rules, nil
}
