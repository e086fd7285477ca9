package catalog

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"time"
)

// Match reports whether entity e satisfies the rule tree r. props is the
// entity's property view (stored plus computed properties; pass
// e.Properties when there are none computed), now decides isExpired and
// isNotExpired, related holds the resolved relatedTo sets. A nil rule
// matches everything; an unknown combinator or operator matches nothing.
//
// Semantics, per leaf operator (an "array" is a list property, e.g. $team):
//   - = < <= > >= between in beginsWith endsWith: true if the value, or any
//     element of an array, satisfies it. between is inclusive.
//   - != notIn: true if neither the value nor any element equals; a missing
//     property is != anything.
//   - contains: substring of a string, or an element equal to the value of
//     an array. containsAny: contains holds for any listed value.
//   - isEmpty: missing, null, "", empty array or empty object.
//   - isExpired: an RFC 3339 string (or time.Time) before now.
//     isNotExpired: such a time not before now. A missing or non-time
//     property is neither expired nor not expired.
//   - relatedTo: e.Ref() is in related[r].
//
// Comparisons follow CompareValues: types never coerce.
func Match(r *Rule, e *Entity, props map[string]any, now time.Time, related Related) bool {
	if r == nil {
		return true
	}
	if e == nil {
		return false
	}
	if r.IsCombinator() {
		switch r.Combinator {
		case "and":
			for i := range r.Rules {
				if !Match(&r.Rules[i], e, props, now, related) {
					return false
				}
			}
			return true
		case "or":
			for i := range r.Rules {
				if Match(&r.Rules[i], e, props, now, related) {
					return true
				}
			}
		}
		return false
	}
	return r.matchLeaf(e, props, now, related)
}

func (r *Rule) matchLeaf(e *Entity, props map[string]any, now time.Time, related Related) bool {
	if r.Operator == "relatedTo" {
		_, ok := related[r][e.Ref()]
		return ok
	}
	val, found := Lookup(e, props, r.Property)
	switch r.Operator {
	case "isEmpty":
		return !found || queryIsEmpty(val)
	case "isNotEmpty":
		return found && !queryIsEmpty(val)
	case "isExpired", "isNotExpired":
		if !found {
			return false
		}
		t, ok := queryAsTime(val)
		if !ok {
			return false
		}
		return t.Before(now) == (r.Operator == "isExpired")
	case "!=":
		return !found || !queryAny(val, func(x any) bool { return queryEqual(x, r.Value) })
	case "notIn":
		list, ok := queryAsList(r.Value)
		if !ok {
			return false
		}
		return !found || !queryAny(val, func(x any) bool { return queryIn(x, list) })
	}
	if !found {
		return false
	}
	switch r.Operator {
	case "=":
		return queryAny(val, func(x any) bool { return queryEqual(x, r.Value) })
	case "<", "<=", ">", ">=":
		op := r.Operator
		return queryAny(val, func(x any) bool {
			c, ok := CompareValues(x, r.Value)
			if !ok {
				return false
			}
			switch op {
			case "<":
				return c < 0
			case "<=":
				return c <= 0
			case ">":
				return c > 0
			}
			return c >= 0
		})
	case "between":
		lo, hi, ok := queryBounds(r.Value)
		if !ok {
			return false
		}
		return queryAny(val, func(x any) bool {
			c1, ok1 := CompareValues(x, lo)
			c2, ok2 := CompareValues(x, hi)
			return ok1 && ok2 && c1 >= 0 && c2 <= 0
		})
	case "in":
		list, ok := queryAsList(r.Value)
		if !ok {
			return false
		}
		return queryAny(val, func(x any) bool { return queryIn(x, list) })
	case "contains":
		return queryContains(val, r.Value)
	case "containsAny":
		list, ok := queryAsList(r.Value)
		if !ok {
			return false
		}
		for _, want := range list {
			if queryContains(val, want) {
				return true
			}
		}
		return false
	case "beginsWith", "endsWith":
		want, ok := r.Value.(string)
		if !ok {
			return false
		}
		has := strings.HasPrefix
		if r.Operator == "endsWith" {
			has = strings.HasSuffix
		}
		return queryAny(val, func(x any) bool {
			s, ok := x.(string)
			return ok && has(s, want)
		})
	}
	return false
}

// Lookup returns the value property names for an entity. Meta-properties:
// $identifier, $title, $blueprint and $datasource are strings, $team is a
// []string, $createdAt and $updatedAt are time.Time (missing when zero).
// Any other name is looked up in props, then in e.Aggregations, then
// "scorecards.<id>.level" in e.Scorecards, falling back to e.Relations (a
// string or []string). Unknown "$" names are
// missing.
func Lookup(e *Entity, props map[string]any, property string) (any, bool) {
	if e == nil {
		return nil, false
	}
	if strings.HasPrefix(property, "$") {
		if f := metaFields[property]; f != nil && f.queryable {
			return f.lookup(e)
		}
		return nil, false
	}
	if v, ok := props[property]; ok {
		return v, true
	}
	if v, ok := e.Aggregations[property]; ok {
		return v, true
	}
	if id, ok := scorecardLevelProperty(property); ok {
		if lv := ScorecardLevelOf(e, id); lv != "" {
			return lv, true
		}
		return nil, false
	}
	v, ok := e.Relations[property]
	if !ok {
		return nil, false
	}
	if list, isList := v.([]any); isList {
		ids := make([]string, 0, len(list))
		for _, x := range list {
			if s, ok := x.(string); ok && s != "" {
				ids = append(ids, s)
			}
		}
		return ids, true
	}
	return v, true
}

// CompareValues orders two scalar values: -1, 0 or +1, with ok false when
// they are not comparable. Numbers (any Go numeric type) compare as float64,
// strings byte-wise, booleans false < true. A time.Time compares with
// another time.Time or with an RFC 3339 string, as instants truncated to
// milliseconds (the precision the store indexes). Nothing else coerces:
// "2" and 2, or "true" and true, are not comparable.
func CompareValues(a, b any) (int, bool) {
	if ta, ok := a.(time.Time); ok {
		tb, ok := queryAsTime(b)
		if !ok {
			return 0, false
		}
		return queryCompareInstants(ta, tb), true
	}
	if tb, ok := b.(time.Time); ok {
		ta, ok := queryAsTime(a)
		if !ok {
			return 0, false
		}
		return queryCompareInstants(ta, tb), true
	}
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(x, y), true
	case bool:
		y, ok := b.(bool)
		if !ok {
			return 0, false
		}
		switch {
		case x == y:
			return 0, true
		case !x:
			return -1, true
		}
		return 1, true
	}
	x, ok := queryNumber(a)
	if !ok {
		return 0, false
	}
	y, ok := queryNumber(b)
	if !ok {
		return 0, false
	}
	switch {
	case x < y:
		return -1, true
	case x > y:
		return 1, true
	case x == y:
		return 0, true
	}
	return 0, false // NaN
}

func queryCompareInstants(a, b time.Time) int {
	x, y := a.UnixMilli(), b.UnixMilli()
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func queryEqual(a, b any) bool {
	c, ok := CompareValues(a, b)
	return ok && c == 0
}

func queryIn(x any, list []any) bool {
	for _, y := range list {
		if queryEqual(x, y) {
			return true
		}
	}
	return false
}

// queryAny reports whether pred holds for v or, when v is an array, for any
// of its elements.
func queryAny(v any, pred func(any) bool) bool {
	if list, ok := queryAsList(v); ok {
		for _, x := range list {
			if pred(x) {
				return true
			}
		}
		return false
	}
	return pred(v)
}

func queryContains(v, want any) bool {
	if s, ok := v.(string); ok {
		sub, ok := want.(string)
		return ok && strings.Contains(s, sub)
	}
	list, ok := queryAsList(v)
	if !ok {
		return false
	}
	return queryIn(want, list)
}

// queryBounds returns the two ends of a between value.
func queryBounds(v any) (lo, hi any, ok bool) {
	if m, isMap := v.(map[string]any); isMap {
		lo, ok1 := m["from"]
		hi, ok2 := m["to"]
		return lo, hi, ok1 && ok2
	}
	list, isList := queryAsList(v)
	if !isList || len(list) != 2 {
		return nil, nil, false
	}
	return list[0], list[1], true
}

// queryAsList returns the elements of an array value ([]any, []string or
// any other slice).
func queryAsList(v any) ([]any, bool) {
	switch t := v.(type) {
	case []any:
		return t, true
	case []string:
		out := make([]any, len(t))
		for i, s := range t {
			out[i] = s
		}
		return out, true
	case nil, string, float64, bool, map[string]any:
		return nil, false
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, false
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, true
}

func queryIsScalar(v any) bool {
	switch v.(type) {
	case string, bool:
		return true
	}
	f, ok := queryNumber(v)
	return ok && !math.IsNaN(f) && !math.IsInf(f, 0)
}

func queryNumber(v any) (float64, bool) {
	switch t := v.(type) {
	case float64:
		return t, true
	case float32:
		return float64(t), true
	case int:
		return float64(t), true
	case int8:
		return float64(t), true
	case int16:
		return float64(t), true
	case int32:
		return float64(t), true
	case int64:
		return float64(t), true
	case uint:
		return float64(t), true
	case uint8:
		return float64(t), true
	case uint16:
		return float64(t), true
	case uint32:
		return float64(t), true
	case uint64:
		return float64(t), true
	case json.Number:
		f, err := t.Float64()
		return f, err == nil
	}
	return 0, false
}

func queryAsTime(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, true
	case string:
		ts, err := time.Parse(time.RFC3339, t)
		return ts, err == nil
	}
	return time.Time{}, false
}

func queryIsEmpty(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case string:
		return t == ""
	case []any:
		return len(t) == 0
	case []string:
		return len(t) == 0
	case map[string]any:
		return len(t) == 0
	case float64, bool, time.Time:
		return false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Map, reflect.Array:
		return rv.Len() == 0
	}
	return false
}
