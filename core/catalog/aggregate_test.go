package catalog

import (
	"encoding/json"
	"testing"
	"time"
)

func TestAggregateFunctions(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2025, 3, d, 15, 4, 5, 0, time.UTC) }
	// Rows: groupBy "lang", property "cost", bucket "$createdAt".
	fields := []string{"lang", "cost", "$createdAt"}
	rows := &Columns{
		Refs: make([]Ref, 6),
		Values: [][]any{
			{"go", "go", "go", "go", "py", nil},
			{1.0, 2.0, 10.0, 3.0, nil, 4.0},
			{day(3), day(4), day(9), day(10), day(10), day(31)},
		},
	}
	tests := []struct {
		name string
		q    AggregateQuery
		want string
	}{
		{"count", AggregateQuery{Func: FuncCount}, `[{"key":null,"value":6}]`},
		{"count by group, null first", AggregateQuery{Func: FuncCount, GroupBy: "lang"},
			`[{"key":null,"value":1},{"key":"go","value":4},{"key":"py","value":1}]`},
		{"count of a property counts those holding it", AggregateQuery{Func: FuncCount, Property: "cost", GroupBy: "lang"},
			`[{"key":null,"value":1},{"key":"go","value":4},{"key":"py","value":0}]`},
		{"sum of none is 0", AggregateQuery{Func: FuncSum, Property: "cost", GroupBy: "lang"},
			`[{"key":null,"value":4},{"key":"go","value":16},{"key":"py","value":0}]`},
		{"avg ignores entities lacking the property; of none is null", AggregateQuery{Func: FuncAvg, Property: "cost", GroupBy: "lang"},
			`[{"key":null,"value":4},{"key":"go","value":4},{"key":"py","value":null}]`},
		{"min", AggregateQuery{Func: FuncMin, Property: "cost", GroupBy: "lang"},
			`[{"key":null,"value":4},{"key":"go","value":1},{"key":"py","value":null}]`},
		{"max", AggregateQuery{Func: FuncMax, Property: "cost", GroupBy: "lang"},
			`[{"key":null,"value":4},{"key":"go","value":10},{"key":"py","value":null}]`},
		{"median of an even count is the mean of the middle two", AggregateQuery{Func: FuncMedian, Property: "cost", GroupBy: "lang"},
			`[{"key":null,"value":4},{"key":"go","value":2.5},{"key":"py","value":null}]`},
		{"median of an odd count", AggregateQuery{Func: FuncMedian, Property: "cost"}, `[{"key":null,"value":3}]`},
		{"daily buckets", AggregateQuery{Func: FuncCount, Bucket: &AggregateBucket{Property: "$createdAt", Interval: IntervalDay}},
			`[{"key":null,"bucket":"2025-03-03T00:00:00Z","value":1},{"key":null,"bucket":"2025-03-04T00:00:00Z","value":1},` +
				`{"key":null,"bucket":"2025-03-09T00:00:00Z","value":1},{"key":null,"bucket":"2025-03-10T00:00:00Z","value":2},` +
				`{"key":null,"bucket":"2025-03-31T00:00:00Z","value":1}]`},
		// 2025-03-03 is a Monday, 03-09 a Sunday.
		{"ISO weeks start on Monday", AggregateQuery{Func: FuncCount, GroupBy: "lang", Bucket: &AggregateBucket{Property: "$createdAt", Interval: IntervalWeek}},
			`[{"key":null,"bucket":"2025-03-31T00:00:00Z","value":1},{"key":"go","bucket":"2025-03-03T00:00:00Z","value":3},` +
				`{"key":"go","bucket":"2025-03-10T00:00:00Z","value":1},{"key":"py","bucket":"2025-03-10T00:00:00Z","value":1}]`},
		{"months", AggregateQuery{Func: FuncSum, Property: "cost", Bucket: &AggregateBucket{Property: "$createdAt", Interval: IntervalMonth}},
			`[{"key":null,"bucket":"2025-03-01T00:00:00Z","value":20}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := json.Marshal(aggregate(tc.q, fields, rows).Groups)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestAggregateGrouping(t *testing.T) {
	tests := []struct {
		name   string
		field  string
		values []any
		want   string
	}{
		{"lists count once per distinct element; empty lists are null", "tags",
			[]any{[]any{"a", "b", "a"}, []any{"b"}, []any{}, nil},
			`[{"key":null,"value":2},{"key":"a","value":1},{"key":"b","value":2}]`},
		{"$team: each of an entity's teams", "$team",
			[]any{[]string{"pay", "web"}, []string{"web"}, []string(nil), []string{}},
			`[{"key":null,"value":2},{"key":"pay","value":1},{"key":"web","value":2}]`},
		{"an empty meta-property is no value", "$datasource",
			[]any{"", "github", "github", nil},
			`[{"key":null,"value":2},{"key":"github","value":2}]`},
		{"an empty property is a value", "name",
			[]any{"", "x", nil, ""},
			`[{"key":null,"value":1},{"key":"","value":2},{"key":"x","value":1}]`},
		{"keys order: null, false, true, numbers, strings", "mixed",
			[]any{"b", 10.0, true, nil, false, 2.0, "a"},
			`[{"key":null,"value":1},{"key":false,"value":1},{"key":true,"value":1},{"key":2,"value":1},{"key":10,"value":1},{"key":"a","value":1},{"key":"b","value":1}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows := &Columns{Refs: make([]Ref, len(tc.values)), Values: [][]any{tc.values}}
			got, err := json.Marshal(aggregate(AggregateQuery{Func: FuncCount, GroupBy: tc.field}, []string{tc.field}, rows).Groups)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestAggregateBucketsDateStringsAndSkipsUndated(t *testing.T) {
	rows := &Columns{Refs: make([]Ref, 4), Values: [][]any{{"2025-01-31T23:59:59-01:00", "2025-02-01T00:30:00Z", "not a date", nil}}}
	got, _ := json.Marshal(aggregate(AggregateQuery{Func: FuncCount, Bucket: &AggregateBucket{Property: "at", Interval: IntervalDay}}, []string{"at"}, rows).Groups)
	// 23:59:59 at -01:00 is 00:59:59 UTC on February 1st.
	if want := `[{"key":null,"bucket":"2025-02-01T00:00:00Z","value":2}]`; string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
