// Package jqeval compiles and runs jq expressions (gojq) within bounds: a
// wall-clock deadline, a budget of interpreter steps, a cap on the size of
// any value the expression builds, a budget of bytes it may build in total,
// and caps on the number and encoded size of its results. Every jq
// expression the portal runs goes through it, so an expression written by a
// plugin author or an editor can fail, but cannot pin a CPU or exhaust the
// process's memory.
//
// gojq checks the context between interpreter steps; the step budget rides
// on that check (see fuel). A single step, though, can build a huge value
// ("x" * 1e9, .[1e9] = 1, tojson of a structure that shares itself) or walk
// one for ever (== on such a structure). Compile therefore rewrites the
// operators and shadows the builtins that can do so with guarded
// definitions (prelude.jq) that check, in Go, the sizes of their operands
// before the real operation runs and charge what it builds to the
// evaluation's budget.
package jqeval

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/itchyny/gojq"
)

// ErrLimit is matched (errors.Is) by every *LimitError.
var ErrLimit = errors.New("jq limit exceeded")

// Limits bound one evaluation. A zero field takes the value of Default.
type Limits struct {
	// Timeout is the wall-clock time one evaluation may take.
	Timeout time.Duration
	// Steps is the number of interpreter steps one evaluation may take;
	// unlike Timeout it does not depend on the machine's load.
	Steps int
	// Size caps the encoded JSON size in bytes of every value a guarded
	// operation reads or builds (a string, array or object) and of the
	// results together.
	Size int
	// Alloc is the number of bytes the guarded operations of one
	// evaluation may build in total.
	Alloc int
	// Results caps the number of results All collects.
	Results int
}

// Default bounds an evaluation when a Limits field is zero. An evaluation
// of a mapping or template over one item is typically under 10,000 steps
// and a few kilobytes; the step budget allows 100 times that, and at most
// about 100 bytes are kept per step (a non-tail recursion), so steps alone
// keep an evaluation under ~100 MiB.
var Default = Limits{
	Timeout: time.Second,
	Steps:   1_000_000,
	Size:    1 << 20,
	Alloc:   32 << 20,
	Results: 1000,
}

func (l Limits) withDefaults() Limits {
	if l.Timeout <= 0 {
		l.Timeout = Default.Timeout
	}
	if l.Steps <= 0 {
		l.Steps = Default.Steps
	}
	if l.Size <= 0 {
		l.Size = Default.Size
	}
	if l.Alloc <= 0 {
		l.Alloc = Default.Alloc
	}
	if l.Results <= 0 {
		l.Results = Default.Results
	}
	return l
}

// LimitError reports an evaluation stopped by one of its Limits.
type LimitError struct {
	Expr  string // the expression, truncated
	Limit string // "time", "steps", "value size", "alloc", "output size" or "results"
	Max   string // the bound, human-readable
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("jq %q: %s limit exceeded (%s)", e.Expr, e.Limit, e.Max)
}

// Is makes errors.Is(err, ErrLimit) hold.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// Program is a compiled expression; it is safe for concurrent use.
type Program struct {
	src  string
	code *gojq.Code
	lim  Limits
}

// maxExprInErrors is how much of an expression errors quote.
const maxExprInErrors = 80

// Compile parses and compiles src (its surrounding space trimmed) with
// lim; zero fields of lim take Default's.
func Compile(src string, lim Limits) (*Program, error) {
	src = strings.TrimSpace(src)
	if strings.Contains(src, reserved) {
		return nil, fmt.Errorf("jq %q: names containing %q are reserved", Truncate(src), reserved)
	}
	q, err := gojq.Parse(src)
	if err != nil {
		return nil, err
	}
	pre, err := loadPrelude()
	if err != nil {
		return nil, err
	}
	rewrite(q)
	q.FuncDefs = append(pre.needed(q), q.FuncDefs...)
	code, err := gojq.Compile(q, compilerOptions()...)
	if err != nil {
		return nil, err
	}
	return &Program{src: src, code: code, lim: lim.withDefaults()}, nil
}

// MustCompile is Compile for constant expressions; it panics on error.
func MustCompile(src string, lim Limits) *Program {
	p, err := Compile(src, lim)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the expression as compiled.
func (p *Program) String() string { return p.src }

// Truncate shortens an expression for error messages.
func Truncate(src string) string {
	if len(src) <= maxExprInErrors {
		return src
	}
	cut := maxExprInErrors
	for cut > 0 && src[cut]&0xC0 == 0x80 { // keep UTF-8 whole
		cut--
	}
	return src[:cut] + "…"
}

// First returns the first result of the expression over input. ok is false
// when it yields nothing. A jq error (error/1, a type error, a halt) is
// returned as gojq returns it; a bound that is hit as a *LimitError.
func (p *Program) First(ctx context.Context, input any) (v any, ok bool, err error) {
	err = p.run(ctx, input, 1, func(x any) bool {
		v, ok = x, true
		return false
	})
	if err != nil {
		return nil, false, err
	}
	return v, ok, nil
}

// All returns every result of the expression over input, at most
// Limits.Results of them.
func (p *Program) All(ctx context.Context, input any) ([]any, error) {
	var out []any
	err := p.run(ctx, input, p.lim.Results, func(x any) bool {
		out = append(out, x)
		return true
	})
	return out, err
}

// run feeds results to yield until it returns false or max results were
// yielded (a further result is a "results" LimitError).
func (p *Program) run(ctx context.Context, input any, max int, yield func(any) bool) (err error) {
	b := &budget{lim: p.lim, fuel: fuel{Context: ctx, left: p.lim.Steps, deadline: time.Now().Add(p.lim.Timeout)}}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("jq %q: %v", Truncate(p.src), r)
		}
	}()
	iter := p.code.RunWithContext(&b.fuel, input, b)
	size, n := 0, 0
	for {
		v, ok := iter.Next()
		if !ok {
			return nil
		}
		if e, isErr := v.(error); isErr {
			return p.explain(e)
		}
		if n == max {
			return p.limit("results", fmt.Sprint(max))
		}
		n++
		s, ok := encodedSize(v, p.lim.Size-size)
		if !ok {
			return p.limit("output size", bytesString(p.lim.Size))
		}
		size += s
		if !yield(v) {
			return nil
		}
	}
}

// explain turns the error an evaluation stopped with into a LimitError when
// a bound stopped it.
func (p *Program) explain(e error) error {
	var g *guardError
	switch {
	case errors.Is(e, errOutOfFuel):
		return p.limit("steps", fmt.Sprint(p.lim.Steps))
	case errors.Is(e, errOutOfTime):
		return p.limit("time", p.lim.Timeout.String())
	case errors.As(e, &g):
		return &LimitError{Expr: Truncate(p.src), Limit: g.limit, Max: g.max}
	}
	// error/1 and halt_error/1 carry a value that the message encodes.
	var ve interface{ Value() any }
	if errors.As(e, &ve) {
		if _, ok := encodedSize(ve.Value(), maxErrorValue); !ok {
			return fmt.Errorf("jq %q: error with a value over %s", Truncate(p.src), bytesString(maxErrorValue))
		}
	}
	return e
}

// maxErrorValue caps the encoded size of an error's value.
const maxErrorValue = 4 << 10

func (p *Program) limit(what, max string) error {
	return &LimitError{Expr: Truncate(p.src), Limit: what, Max: max}
}

func bytesString(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// What fuel.Err returns once the steps or the time are spent.
var (
	errOutOfFuel = errors.New("out of steps")
	errOutOfTime = errors.New("out of time")
)

// clockEvery is how many steps pass between two looks at the clock.
const clockEvery = 1024

// fuel is the evaluation's context: gojq calls Done before every
// interpreter step of one evaluation (from one goroutine), so counting the
// calls counts the steps; every clockEvery steps it also checks the
// deadline (cheaper than a timer per evaluation). The caller's context
// still cancels.
type fuel struct {
	context.Context
	left     int
	deadline time.Time
	stop     error // errOutOfFuel or errOutOfTime once stopped
}

var closedDone = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Done counts one step.
func (f *fuel) Done() <-chan struct{} {
	f.left--
	switch {
	case f.stop != nil:
	case f.left < 0:
		f.stop = errOutOfFuel
	case f.left%clockEvery == 0 && time.Now().After(f.deadline):
		f.stop = errOutOfTime
	default:
		return f.Context.Done()
	}
	return closedDone
}

// Err says why the evaluation stopped.
func (f *fuel) Err() error {
	if f.stop != nil {
		return f.stop
	}
	return f.Context.Err()
}
