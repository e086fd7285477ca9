package catalog

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Aggregate functions.
const (
	FuncCount  = "count"
	FuncSum    = "sum"
	FuncAvg    = "avg"
	FuncMin    = "min"
	FuncMax    = "max"
	FuncMedian = "median"
)

var aggregateFuncs = []string{FuncCount, FuncSum, FuncAvg, FuncMin, FuncMax, FuncMedian}

// Bucket intervals.
const (
	IntervalDay   = "day"
	IntervalWeek  = "week"
	IntervalMonth = "month"
)

// AggregateQuery is an aggregation request (DESIGN §4): Func over
// Property of the entities matching Query, grouped by GroupBy (a
// property, a meta-property, a relation or "scorecards.<id>.level") and
// bucketed over time by Bucket.
type AggregateQuery struct {
	Query    *Rule            `json:"query"`
	Func     string           `json:"func"`
	Property string           `json:"property,omitempty"`
	GroupBy  string           `json:"groupBy,omitempty"`
	Bucket   *AggregateBucket `json:"bucket,omitempty"`
}

// AggregateBucket buckets entities by a date-time property (or
// $createdAt, $updatedAt) truncated, in UTC, to a day, an ISO week
// (from Monday) or a month.
type AggregateBucket struct {
	Property string `json:"property"`
	Interval string `json:"interval"`
}

// AggregateResult is an aggregation's answer, its groups sorted by key
// (null first, then false, true, numbers, strings), then bucket.
type AggregateResult struct {
	Groups []AggregateGroup `json:"groups"`
}

// AggregateGroup is one group: Key is the groupBy value (nil: entities
// lacking it; absent groupBy: nil), Bucket the start of the time bucket
// (only with a bucket), Value the count (an int) or the number (nil when
// no entity of the group holds one; a sum of none is 0).
type AggregateGroup struct {
	Key    any        `json:"key"`
	Bucket *time.Time `json:"bucket,omitempty"`
	Value  any        `json:"value"`
}

// Aggregate computes q over the entities the actor may read: grouping
// puts an entity in each of its groupBy values (each distinct element of
// a list, each of its teams for $team; under key nil when it has none),
// entities lacking the bucket value are left out, and avg, min, max and
// median ignore entities without a numeric value of the property.
func (s *Service) Aggregate(ctx context.Context, q AggregateQuery) (*AggregateResult, error) {
	expandMe(q.Query, ActorFrom(ctx))
	bps, err := s.blueprintMap(ctx)
	if err != nil {
		return nil, err
	}
	if err := validateAggregate(&q, bps); err != nil {
		return nil, err
	}
	res, err := s.compute(ctx, q, bps)
	if err != nil {
		return nil, err
	}
	if id, ok := scorecardLevelProperty(q.GroupBy); ok {
		orderLevels(res.Groups, id, bps)
	}
	return res, nil
}

// compute answers a valid query from the indexes when they can, else from
// the documents.
func (s *Service) compute(ctx context.Context, q AggregateQuery, bps map[string]*Blueprint) (*AggregateResult, error) {
	computed := computedProperties(bps)
	fields := aggregateFields(q)
	visible := s.newReadFilter(ctx, bps)
	stored := !slices.ContainsFunc(fields, func(f string) bool { return computed[f] })
	if visible == nil && stored && q.Func != FuncCount && q.GroupBy != "" && q.Property != "" && q.GroupBy != q.Property && q.Bucket == nil {
		// A number by group: no rows needed (see Store.GroupedNumbers).
		grouped, ok, err := s.store.GroupedNumbers(ctx, ColumnsRequest{Query: q.Query, Computed: computed, Fields: fields})
		if err != nil {
			return nil, err
		}
		if ok {
			accs := make(map[groupID]*groupAcc, len(grouped.Present))
			for key := range grouped.Present {
				accs[groupID{key: key}] = &groupAcc{key: key, nums: grouped.Groups[key]}
			}
			return aggregateResult(q, accs), nil
		}
	}
	var rows *Columns
	if visible == nil && stored {
		cols, ok, err := s.store.Columns(ctx, ColumnsRequest{Query: q.Query, Computed: computed, Fields: fields,
			CountOnly: q.Func == FuncCount && q.Property == "" && len(fields) <= 1})
		if err != nil {
			return nil, err
		}
		if ok {
			rows = cols
		}
	}
	if rows == nil {
		var err error
		if rows, err = s.columnsFromDocuments(ctx, q.Query, fields, bps, computed, visible); err != nil {
			return nil, err
		}
	}
	return aggregate(q, fields, rows), nil
}

// orderLevels puts groups keyed by a level of scorecard id in the
// scorecard's order (Basic, Bronze, Silver, Gold), the ungraded last;
// groups of one level keep their bucket order.
func orderLevels(groups []AggregateGroup, id string, bps map[string]*Blueprint) {
	rank := map[string]int{}
	for _, name := range sortedKeys(bps) {
		if sc := bps[name].Scorecards[id]; sc != nil {
			for _, l := range sc.LevelsOrDefault() {
				if _, ok := rank[l.Title]; !ok {
					rank[l.Title] = len(rank)
				}
			}
		}
	}
	of := func(k any) int {
		if r, ok := rank[fmt.Sprint(k)]; ok && k != nil {
			return r
		}
		return len(rank)
	}
	sort.SliceStable(groups, func(i, j int) bool { return of(groups[i].Key) < of(groups[j].Key) })
}

// computedProperties names the properties the store does not hold:
// calculation and mirror properties (aggregation values and scorecard
// levels are stored and indexed).
func computedProperties(bps map[string]*Blueprint) map[string]bool {
	computed := map[string]bool{}
	for _, bp := range bps {
		for name := range bp.CalculationProperties {
			computed[name] = true
		}
		for name := range bp.MirrorProperties {
			computed[name] = true
		}
	}
	return computed
}

// aggregateFields lists the distinct fields q reads.
func aggregateFields(q AggregateQuery) []string {
	var out []string
	for _, f := range []string{q.GroupBy, q.Property} {
		if f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	if q.Bucket != nil && !slices.Contains(out, q.Bucket.Property) {
		out = append(out, q.Bucket.Property)
	}
	return out
}

// columnsFromDocuments reads the fields from the matching documents
// (decorated when a field or the query is computed), keeping only those
// the actor may read.
func (s *Service) columnsFromDocuments(ctx context.Context, query *Rule, fields []string, bps map[string]*Blueprint, computed map[string]bool, visible *readFilter) (*Columns, error) {
	needsComputed := slices.ContainsFunc(fields, func(f string) bool { return computed[f] })
	queryComputed := false
	query.Walk(func(r *Rule) { queryComputed = queryComputed || computed[r.Property] })
	res, err := s.store.Search(ctx, SearchRequest{
		Query:      query,
		Computed:   computed,
		Restricted: visible != nil,
		Visible:    visible.visibility(),
		Match:      s.matcher(ctx, query, bps, queryComputed, visible),
	})
	if err != nil {
		return nil, err
	}
	if needsComputed && !queryComputed {
		if err := s.decorateWith(ctx, res.Entities, bps); err != nil {
			return nil, err
		}
	}
	cols := &Columns{Refs: make([]Ref, len(res.Entities)), Values: make([][]any, len(fields))}
	for f := range fields {
		cols.Values[f] = make([]any, len(res.Entities))
	}
	for r, e := range res.Entities {
		cols.Refs[r] = e.Ref()
		for f, name := range fields {
			cols.Values[f][r] = aggregateValue(e, name)
		}
	}
	return cols, nil
}

// aggregateValue is what an aggregate reads of e's field name (nil when e
// lacks it).
func aggregateValue(e *Entity, name string) any {
	v, _ := Lookup(e, e.Properties, name)
	return v
}

// validateAggregate checks q against the blueprints, and names
// createdAt and updatedAt as the meta-properties when no blueprint
// declares them.
func validateAggregate(q *AggregateQuery, bps map[string]*Blueprint) error {
	if q.Query == nil {
		q.Query = &Rule{Combinator: "and"}
	}
	if err := q.Query.Validate("/query"); err != nil {
		return err
	}
	var vs violations
	switch {
	case q.Func == "":
		vs.add("/func", "required: one of %s", strings.Join(aggregateFuncs, ", "))
	case !slices.Contains(aggregateFuncs, q.Func):
		vs.add("/func", "unknown function %q: must be one of %s", q.Func, strings.Join(aggregateFuncs, ", "))
	case q.Func != FuncCount && q.Property == "":
		vs.add("/property", "required: %s needs a numeric property", q.Func)
	case q.Func != FuncCount:
		if msg := numericProblem(q.Property, bps); msg != "" {
			vs.add("/property", "%s", msg)
		}
	}
	if q.Func == FuncCount && q.Property != "" {
		if msg := fieldProblem(q.Property, bps); msg != "" {
			vs.add("/property", "%s", msg)
		}
	}
	if q.GroupBy != "" {
		if msg := groupProblem(q.GroupBy, bps); msg != "" {
			vs.add("/groupBy", "%s", msg)
		}
	}
	if b := q.Bucket; b != nil {
		if b.Property == "" {
			vs.add("/bucket/property", "required: a date-time property, $createdAt or $updatedAt")
		} else {
			if (b.Property == "createdAt" || b.Property == "updatedAt") && !declared(b.Property, bps) {
				b.Property = "$" + b.Property
			}
			if msg := dateProblem(b.Property, bps); msg != "" {
				vs.add("/bucket/property", "%s", msg)
			}
		}
		switch b.Interval {
		case IntervalDay, IntervalWeek, IntervalMonth:
		case "":
			vs.add("/bucket/interval", "required: day, week or month")
		default:
			vs.add("/bucket/interval", "unknown interval %q: must be day, week or month", b.Interval)
		}
	}
	return vs.err("invalid aggregate")
}

func declared(prop string, bps map[string]*Blueprint) bool {
	for _, bp := range bps {
		if _, ok := bp.Schema.Properties[prop]; ok {
			return true
		}
	}
	return false
}

// fieldProblem says why name is no field of any blueprint ("" if it is one).
func fieldProblem(name string, bps map[string]*Blueprint) string {
	if strings.HasPrefix(name, "$") {
		if !isQueryableMeta(name) {
			return fmt.Sprintf("unknown meta-property %q", name)
		}
		return ""
	}
	for _, bp := range bps {
		_, prop := bp.Schema.Properties[name]
		_, rel := bp.Relations[name]
		_, calc := bp.CalculationProperties[name]
		_, mirror := bp.MirrorProperties[name]
		_, agg := bp.AggregationProperties[name]
		if prop || rel || calc || mirror || agg {
			return ""
		}
	}
	return fmt.Sprintf("no blueprint has a property or relation %q", name)
}

// numericProblem says why name cannot be summed ("" if it can): it must
// be a number or integer property, or a computed one that may be a
// number, wherever it is defined.
func numericProblem(name string, bps map[string]*Blueprint) string {
	if strings.HasPrefix(name, "$") {
		return fmt.Sprintf("%s is not a number: use a number or integer property", name)
	}
	if msg := fieldProblem(name, bps); msg != "" {
		return msg
	}
	for _, id := range sortedKeys(bps) {
		bp := bps[id]
		if def, ok := bp.Schema.Properties[name]; ok && def.Type != "number" && def.Type != "integer" {
			return fmt.Sprintf("%q is a %s property of blueprint %s, not a number", name, def.Type, id)
		}
		if c, ok := bp.CalculationProperties[name]; ok && c.Type != "" && c.Type != "number" && c.Type != "integer" {
			return fmt.Sprintf("%q is a %s calculation property of blueprint %s, not a number", name, c.Type, id)
		}
		if _, ok := bp.Relations[name]; ok {
			return fmt.Sprintf("%q is a relation of blueprint %s, not a number", name, id)
		}
	}
	return ""
}

// groupProblem says why entities cannot be grouped by name ("" if they
// can).
func groupProblem(name string, bps map[string]*Blueprint) string {
	if _, ok := scorecardLevelProperty(name); ok {
		return ""
	}
	if strings.HasPrefix(name, "scorecards.") {
		return fmt.Sprintf("%q: group by a scorecard's level as scorecards.<scorecard>.level", name)
	}
	if m, ok := LookupMeta(name); ok && m.Index() == IndexedAsTime {
		return fmt.Sprintf("cannot group by %s: bucket by it instead", name)
	}
	for _, id := range sortedKeys(bps) {
		if def, ok := bps[id].Schema.Properties[name]; ok && def.Type == "object" {
			return fmt.Sprintf("cannot group by %q, an object property of blueprint %s", name, id)
		}
	}
	return fieldProblem(name, bps)
}

// dateProblem says why entities cannot be bucketed by name ("" if they
// can): $createdAt, $updatedAt, or a string property of format
// date-time or timer wherever it is declared.
func dateProblem(name string, bps map[string]*Blueprint) string {
	if m, ok := LookupMeta(name); ok {
		if m.Index() != IndexedAsTime {
			return fmt.Sprintf("%s is not a date: bucket by $createdAt, $updatedAt or a date-time property", name)
		}
		return ""
	}
	found := false
	for _, id := range sortedKeys(bps) {
		def, ok := bps[id].Schema.Properties[name]
		if !ok {
			continue
		}
		if def.Type != "string" || (def.Format != "date-time" && def.Format != "timer") {
			return fmt.Sprintf("%q is not a date-time property in blueprint %s", name, id)
		}
		found = true
	}
	if !found {
		return fmt.Sprintf("no blueprint declares a date-time property %q", name)
	}
	return ""
}

// groupAcc accumulates one group.
type groupAcc struct {
	key    any
	bucket time.Time
	count  int
	nums   []float64
}

type groupID struct {
	key    any
	bucket time.Time
}

// aggregate computes q over rows, whose Values follow fields.
func aggregate(q AggregateQuery, fields []string, rows *Columns) *AggregateResult {
	col := func(name string) []any {
		if name == "" {
			return nil
		}
		return rows.Values[slices.Index(fields, name)]
	}
	groups, props := col(q.GroupBy), col(q.Property)
	var buckets []any
	if q.Bucket != nil {
		buckets = col(q.Bucket.Property)
	}
	meta := strings.HasPrefix(q.GroupBy, "$")
	accs := map[groupID]*groupAcc{}
	var keys []any
	for r := range rows.Refs {
		weight := 1
		if rows.Weights != nil {
			weight = rows.Weights[r]
		}
		var bucket time.Time
		if buckets != nil {
			t, ok := asInstant(buckets[r])
			if !ok {
				continue
			}
			bucket = truncate(t, q.Bucket.Interval)
		}
		var num float64
		hasNum, hasValue := false, true
		if props != nil {
			num, hasNum = asNumber(props[r])
			hasValue = present(props[r], strings.HasPrefix(q.Property, "$"))
		}
		keys = groupKeys(keys[:0], groups, r, meta)
		for _, k := range keys {
			id := groupID{key: k, bucket: bucket}
			acc := accs[id]
			if acc == nil {
				acc = &groupAcc{key: k, bucket: bucket}
				accs[id] = acc
			}
			if q.Func == FuncCount {
				if hasValue {
					acc.count += weight
				}
			} else if hasNum {
				acc.nums = append(acc.nums, num)
			}
		}
	}
	return aggregateResult(q, accs)
}

// aggregateResult turns accumulated groups into the sorted answer.
func aggregateResult(q AggregateQuery, accs map[groupID]*groupAcc) *AggregateResult {
	out := &AggregateResult{Groups: make([]AggregateGroup, 0, len(accs))}
	for _, acc := range accs {
		g := AggregateGroup{Key: acc.key, Value: acc.value(q.Func)}
		if q.Bucket != nil {
			b := acc.bucket
			g.Bucket = &b
		}
		out.Groups = append(out.Groups, g)
	}
	sort.Slice(out.Groups, func(i, j int) bool {
		a, b := out.Groups[i], out.Groups[j]
		if c := compareKeys(a.Key, b.Key); c != 0 {
			return c < 0
		}
		return a.Bucket != nil && b.Bucket.After(*a.Bucket)
	})
	return out
}

// groupKeys appends row r's group keys: nil without grouping or when the
// row lacks a value, else each distinct scalar value (a meta-property's
// "" is no value).
func groupKeys(out []any, groups []any, r int, meta bool) []any {
	if groups == nil {
		return append(out, nil)
	}
	add := func(v any) {
		switch t := v.(type) {
		case string:
			if meta && t == "" {
				return
			}
		case float64, bool:
		case int:
			v = float64(t)
		default:
			return // nil, objects, nested lists
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	switch t := groups[r].(type) {
	case []any:
		for _, x := range t {
			add(x)
		}
	case []string:
		for _, x := range t {
			add(x)
		}
	default:
		add(t)
	}
	if len(out) == 0 {
		out = append(out, nil)
	}
	return out
}

// present reports whether v is a value: not nil, not an empty list, and
// for a meta-property not "".
func present(v any, meta bool) bool {
	switch t := v.(type) {
	case nil:
		return false
	case []any:
		return len(t) > 0
	case []string:
		return len(t) > 0
	case string:
		return !meta || t != ""
	}
	return true
}

func (a *groupAcc) value(fn string) any {
	if fn == FuncCount {
		return a.count
	}
	if fn == FuncSum {
		sum := 0.0
		for _, x := range a.nums {
			sum += x
		}
		return sum
	}
	if len(a.nums) == 0 {
		return nil
	}
	switch fn {
	case FuncAvg:
		sum := 0.0
		for _, x := range a.nums {
			sum += x
		}
		return sum / float64(len(a.nums))
	case FuncMin:
		return slices.Min(a.nums)
	case FuncMax:
		return slices.Max(a.nums)
	}
	sorted := slices.Clone(a.nums)
	slices.Sort(sorted)
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// compareKeys orders group keys: nil, false, true, numbers, strings.
func compareKeys(a, b any) int {
	rank := func(v any) int {
		switch t := v.(type) {
		case nil:
			return 0
		case bool:
			if t {
				return 2
			}
			return 1
		case float64:
			return 3
		}
		return 4
	}
	ra, rb := rank(a), rank(b)
	if ra != rb || ra < 3 {
		return ra - rb
	}
	if ra == 3 {
		x, y := a.(float64), b.(float64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	}
	return strings.Compare(a.(string), b.(string))
}

func asNumber(v any) (float64, bool) {
	switch t := v.(type) {
	case float64:
		return t, !math.IsNaN(t) && !math.IsInf(t, 0)
	case int:
		return float64(t), true
	}
	return 0, false
}

func asInstant(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, !t.IsZero()
	case string:
		ts, err := time.Parse(time.RFC3339Nano, t)
		return ts, err == nil
	}
	return time.Time{}, false
}

// truncate returns the start of t's day, ISO week (Monday) or month, in
// UTC.
func truncate(t time.Time, interval string) time.Time {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch interval {
	case IntervalWeek:
		return day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	case IntervalMonth:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return day
}
