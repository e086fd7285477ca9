package jqeval

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/itchyny/gojq"
)

// plain runs src with gojq unbounded, the reference for the guarded
// evaluation's results.
func plain(t *testing.T, src string, input any) ([]any, string) {
	t.Helper()
	q, err := gojq.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	code, err := gojq.Compile(q)
	if err != nil {
		t.Fatal(err)
	}
	var out []any
	iter := code.Run(input)
	for {
		v, ok := iter.Next()
		if !ok {
			return out, ""
		}
		if err, isErr := v.(error); isErr {
			return out, err.Error()
		}
		out = append(out, v)
	}
}

// TestSameResults checks that the guarded operators and builtins answer
// what gojq answers, results and their order included.
func TestSameResults(t *testing.T) {
	input := map[string]any{
		"name": "svc-a", "n": 3, "tags": []any{"b", "a", "c", "a"},
		"labels": map[string]any{"env": "prod", "tier": "web"},
		"items":  []any{map[string]any{"id": 2, "v": "x"}, map[string]any{"id": 1, "v": "y"}},
		"text":   "a1b22c333",
	}
	exprs := []string{
		`.name`, `.n + 1`, `.name + "-" + .labels.env`, `[(1,2) + (10,20)]`, `[(1,2) * (10,20)]`,
		`[(1,2) - (10,20)]`, `[(1,2) < (2,1)]`, `"ab" * 3`, `3 * "ab"`, `"ab" * 0`, `"ab" * 0.5`,
		`{a:{b:1}} * {a:{c:2}}`, `.tags - ["a"]`, `.tags + ["d"]`, `.labels + {x: 1}`, `null + 1`,
		`"a,b,c" / ","`, `10 / 4`, `.n == 3`, `.tags != []`, `.n >= 3 and .n <= 3`, `.n > 2`,
		`.tags | sort`, `.tags | unique`, `.items | sort_by(.id) | map(.v)`, `.items | group_by(.id)`,
		`.items | min_by(.id)`, `.items | max_by(.id)`, `.items | unique_by(.v)`,
		`.labels | keys`, `.labels | to_entries`, `.labels | with_entries(.value |= ascii_upcase)`,
		`.tags | reverse`, `.tags | min`, `.tags | max`, `.tags | contains(["a"])`, `["a"] | inside(["a","b"])`,
		`.tags | indices("a")`, `.tags | index("a")`, `.tags | rindex("a")`, `[1,2,3] | bsearch(2)`,
		`.tags | join(",")`, `.tags | add`, `add(.tags[])`, `[[1,[2]],3] | flatten`, `[[1,[2]],3] | flatten(1)`,
		`.text | explode | implode`, `.text | split("2")`, `.text | ascii_upcase`, `.labels | tojson`, `.labels | tostring`,
		`.labels | tojson | fromjson`, `"\(.name) is \(.n)"`, `@base64 "x\(.name)"`, `.name | @base64 | @base64d`,
		`.tags | @csv`, `.tags | @tsv`, `.name | @sh`, `.name | @uri`, `"<\(.name)>" | @html`, `.name | @base32`,
		`.name | @json`, `.name | @text`, `.text | test("[0-9]+")`, `[.text | match("[0-9]+"; "g") | .string]`,
		`.text | capture("(?<d>[0-9]+)")`, `[.text | scan("[0-9]+")]`, `[.text | splits("[0-9]+")]`, `.text | split("[0-9]+"; null)`,
		`.text | sub("[0-9]+"; "#")`, `.text | gsub("[0-9]+"; "#")`, `.text | gsub("(?<d>[0-9])"; "<\(.d)>")`,
		`.text | sub("x"; "y")`, `.text | [match("a"; "g")] | length`,
		`.n = 5`, `.tags[1] = "z"`, `.labels.env |= ascii_upcase`, `.n += 2`, `.n -= 1`, `.n *= 2`, `.n /= 2`,
		`.tags[0] += "!"`, `.x.y = 1`, `setpath(["a", 0]; 1)`, `del(.labels)`, `.tags |= map(. + "!")`,
		`.items[] | select(.id == 1) | .v`, `"a" | IN("a", "b")`, `IN(.tags[]; "c")`, `[limit(3; range(10))]`,
		`[range(5)] | transpose? // "err"`, `[[1,2],[3]] | transpose`, `reduce range(5) as $i (0; . + $i)`,
		`[foreach range(5) as $i (0; . + $i)]`, `.items | map(.id) | add`, `try error("x") catch .`,
		`if .n > 2 then "big" else "small" end`, `{(.name): .n}`, `[.[] | numbers]`, `. as {name: $n} | $n + "!"`,
		`[paths] | length`, `tostream | select(length == 2) | .[0] | join(".")?`, `def f(x): x + x; f(.n)`,
		`[splits("a")]?`, `"x" | ltrimstr("x")`, `.tags | .[1:] + .[:1]`, `label $out | 1, break $out`,
		`[.tags[] | select(IN("a", "c"))]`, `any(.tags[]; . == "c")`, `all(.tags[]; . != "q")`,
		`.labels | map_values(. + "!")`, `walk(if type == "string" then ascii_downcase else . end) | .name`,
		`[combinations(2)]? // 0`, `[[1,2],[3,4]] | [combinations]`, `now | type`, `"1" | tonumber + 1`,
		`1e1000 | . * 1`, `100000000000000000000 * 100000000000000000000`, `-(.n)`, `.n % 2`,
		`getpath(["labels", "env"])`, `. as {$name, labels: {$env}} | $name + $env`, `[.items[] as {$id} | $id + 1]`, `[.[] | length]`, `.items | map(.id * 2)`, `{} | .a += 1`,
		`halt_error`, `error`, `error(null)`, `[.tags[] | ascii_downcase] | unique | length`,
	}
	for _, src := range exprs {
		want, wantErr := plain(t, src, input)
		p, err := Compile(src, Limits{})
		if err != nil {
			t.Errorf("%s: compile: %v", src, err)
			continue
		}
		got, err := p.All(context.Background(), input)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if gotErr != wantErr || !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %v %q\nwant %v %q", src, got, gotErr, want, wantErr)
		}
	}
}

// TestAttacks runs expressions that, unbounded, pin a CPU or exhaust
// memory; each must fail with the expected bound within a few seconds
// (the test timeout is the backstop if a bound does not hold).
func TestAttacks(t *testing.T) {
	cases := []struct{ src, limit string }{
		{`def f: f; f`, "steps"},
		{`def f: 1 + f; f`, "steps|time"}, // deep recursion makes steps slower
		{`repeat(1)`, "results"},
		{`[repeat(1)]`, "steps"},
		{`range(1e18) | select(. < 0)`, "steps"},
		{`last(range(1e12))`, "steps"},
		{`[range(1e8)]`, "steps"},
		{`[range(1e8)] | length`, "steps"},
		{`reduce range(1e9) as $i (0; . + 1)`, "steps"},
		{`"x" * 1e9`, "value size"},
		{`"x" * 1e9 | length`, "value size"},
		{`1e9 * "x"`, "value size"},
		{`"x" * 2147483646 | length`, "value size"},
		{`"xxxxxxxxxx" | .x = 1 | .`, ""}, // a plain type error, not a bound
		{`def f: (. + .) | f; "x" | f`, "value size"},
		{`def f: [.[], .[]] | f; [1] | f`, "steps"},
		{`def f: (. + .) | f; [1] | f`, "value size"},
		{`def f: ("\(.)\(.)") | f; "x" | f`, "value size"},
		{`def f: .a += .a | f; {a: "x"} | f`, "value size"},
		{`def f: .a |= . + . | f; {a: [1]} | f`, "value size|alloc"},
		{`def f: @base64 "\(.)\(.)" | f; "x" | f`, "value size"},
		{`[range(40)] | reduce .[] as $i ("x"; [., .] | add)`, "value size"},
		{`[range(40)] | reduce .[] as $i ("x"; [., .] | join(""))`, "value size"},
		{`[range(40)] | reduce .[] as $i ([1]; [., .]) | tojson`, "value size"},
		{`[range(40)] | reduce .[] as $i ([1]; [., .]) | tostring`, "value size"},
		{`[range(40)] | reduce .[] as $i ([1]; [., .]) | @base64`, "value size"},
		{`[range(40)] | reduce .[] as $i ([1]; [., .]) | flatten`, "value size"},
		{`[range(64)] | reduce .[] as $i ([1]; [., .]) | . == .`, "value size"},
		{`[range(64)] | reduce .[] as $i ([1]; [., .]) | [.] | sort`, "value size"},
		{`[range(64)] | reduce .[] as $i ([1]; [., .]) | contains(.)`, "value size"},
		{`[range(64)] | reduce .[] as $i ({a: 1}; {a: ., b: .}) | . * .`, "value size"},
		{`[range(64)] | reduce .[] as $i ([1]; [., .]) | [.]`, "output size"},
		{`[range(64)] | reduce .[] as $i ([1]; [., .]) | error`, "error value"},
		{`[] | .[1e9] = 1`, "value size"},
		{`null | .[100000000] = 1`, "value size"},
		{`setpath([1e9]; 1)`, "value size"},
		{`[] | .[1e9] |= 1`, "value size"},
		{`[range(60000) | 0] as $a | [range(100) | $a | reverse]`, "alloc"},
		{`("x" * 100000) as $s | [range(1000) | $s + "y"]`, "alloc"},
		{`("x" * 200000) | [match(""; "g")]`, "alloc"},
		{`("x" * 1000) as $s | "y" * 1000 | gsub(""; $s)`, "alloc"},
		{`[range(1e5)] as $a | $a - $a`, "steps"},
		{`([[range(1000)]] + [range(1000) | []]) as $m | [range(3) | $m | transpose]`, "alloc"},
		{`[range(3000) | "x"] | join("y" * 100000)`, "value size"},
		{`("x" * 100) as $s | [range(12000) | $s]`, "output size"},
		{`range(2000)`, "results"},
	}
	lim := Limits{Timeout: 5 * time.Second} // steps and sizes must stop these, not the clock
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			p, err := Compile(c.src, lim)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = p.All(context.Background(), map[string]any{"a": 1})
			took := time.Since(start)
			var le *LimitError
			switch {
			case c.limit == "":
				if err == nil || errors.As(err, &le) {
					t.Fatalf("want a plain jq error, got %v", err)
				}
			case c.limit == "error value":
				if err == nil || !strings.Contains(err.Error(), "error with a value over") {
					t.Fatalf("want an oversized error value refused, got %v", err)
				}
			case !errors.As(err, &le) || !slices.Contains(strings.Split(c.limit, "|"), le.Limit) && !(c.limit == "steps" && le.Limit == "time") ||
				!errors.Is(err, ErrLimit): // a loaded machine may reach the time bound first
				t.Fatalf("want a %s limit error, got %v", c.limit, err)
			case !strings.Contains(err.Error(), fmt.Sprintf("%q", Truncate(c.src))):
				t.Fatalf("error does not name the expression: %v", err)
			}
			if took > 10*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
}

// TestAttackMemory checks that the attacks leave the heap small: each may
// build at most Alloc bytes through guarded operations and about 100
// bytes per step otherwise.
func TestAttackMemory(t *testing.T) {
	for _, src := range []string{
		`[range(1e8)]`, `"x" * 1e9`, `def f: (. + .) | f; "x" | f`,
		`("x" * 100000) as $s | [range(1000) | $s + "y"]`, `[range(60000) | 0] as $a | [range(100) | $a | reverse]`,
	} {
		p := MustCompile(src, Limits{Timeout: 30 * time.Second})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		if _, _, err := p.First(context.Background(), nil); !errors.Is(err, ErrLimit) {
			t.Fatalf("%s: want a limit error, got %v", src, err)
		}
		runtime.ReadMemStats(&after)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 512<<20 {
			t.Errorf("%s: allocated %d MiB", src, grew>>20)
		}
	}
}

func TestTimeout(t *testing.T) {
	p := MustCompile(`def f: f; f`, Limits{Timeout: 50 * time.Millisecond, Steps: 1 << 40})
	_, _, err := p.First(context.Background(), nil)
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "time" {
		t.Fatalf("want a time limit error, got %v", err)
	}
	// A cancelled caller is not a time limit.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := p.First(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
}

func TestReservedNames(t *testing.T) {
	for _, src := range []string{`$__jqeval`, `"x" | _jqeval_tojson`, `_jqeval_add(1; 2; null)`} {
		if _, err := Compile(src, Limits{}); err == nil || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("%s: want reserved-name error, got %v", src, err)
		}
	}
}

func TestErrorNamesTruncatedExpression(t *testing.T) {
	src := `def f: f; ` + strings.Repeat(" ", 200) + `f`
	_, _, err := MustCompile(src, Limits{}).First(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), `jq "def f: f;`) || !strings.Contains(err.Error(), "…") ||
		len(err.Error()) > 200 {
		t.Fatalf("got %v", err)
	}
}

func TestFirstAndHalt(t *testing.T) {
	p := MustCompile(`empty`, Limits{})
	if _, ok, err := p.First(context.Background(), nil); ok || err != nil {
		t.Fatalf("empty: ok=%v err=%v", ok, err)
	}
	_, _, err := MustCompile(`halt`, Limits{}).First(context.Background(), nil)
	var halt *gojq.HaltError
	if !errors.As(err, &halt) || halt.Value() != nil {
		t.Fatalf("halt: %v", err)
	}
}

// BenchmarkOverhead compares a typical mapping expression guarded and not.
func BenchmarkOverhead(b *testing.B) {
	src := `.name + "-" + (.labels.env // "none") | ascii_downcase`
	input := map[string]any{"name": "Svc", "labels": map[string]any{"env": "Prod"}}
	q, _ := gojq.Parse(src)
	code, _ := gojq.Compile(q)
	p := MustCompile(src, Limits{})
	b.Run("gojq", func(b *testing.B) {
		for b.Loop() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			code.RunWithContext(ctx, input).Next()
			cancel()
		}
	})
	b.Run("jqeval", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := p.First(context.Background(), input); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("compile", func(b *testing.B) {
		for b.Loop() {
			MustCompile(src, Limits{})
		}
	})
}

func Example() {
	p := MustCompile(`.name + "!"`, Limits{Timeout: 100 * time.Millisecond})
	v, _, err := p.First(context.Background(), map[string]any{"name": "svc"})
	fmt.Println(v, err)
	_, _, err = MustCompile(`"x" * 1e9`, Limits{}).First(context.Background(), nil)
	fmt.Println(err)
	// Output:
	// svc! <nil>
	// jq "\"x\" * 1e9": value size limit exceeded (1 MiB)
}

// TestConcurrentCompile compiles and runs from many goroutines: the
// prelude's parsed definitions are shared (run with -race).
func TestConcurrentCompile(t *testing.T) {
	srcs := []string{`.a + 1`, `.s | gsub("a"; "b")`, `.x |= 1`, `"\(.a)" | @base64`, `[.[]] | sort_by(.)`, `.a == 1`}
	in := map[string]any{"a": 1, "s": "aa"}
	done := make(chan error)
	for i := range 8 {
		go func() {
			var err error
			for j := range 20 {
				src := srcs[(i+j)%len(srcs)]
				if _, err = MustCompile(src, Limits{}).All(context.Background(), in); err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
