package jqeval

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"sync"

	"github.com/itchyny/gojq"
)

// reserved prefixes the names of the guards and of their budget variable;
// expressions may not mention it, so they cannot call around a guard.
const reserved = "_jqeval"

// budgetVar is the variable through which the guards find the evaluation's
// budget.
const budgetVar = "$__jqeval"

//go:embed prelude.jq
var preludeSrc string

// prelude is the parsed prelude.jq with, for each definition, the names
// its body calls. gojq's compiler does not modify the queries it compiles
// (it compiles its own builtins from one parse), so every Compile shares
// them.
type prelude struct {
	defs  []*gojq.FuncDef
	calls []map[string]bool
}

var loadPrelude = sync.OnceValues(func() (*prelude, error) {
	q, err := gojq.Parse(preludeSrc + " .")
	if err != nil {
		return nil, fmt.Errorf("jq prelude: %w", err)
	}
	p := &prelude{defs: q.FuncDefs, calls: make([]map[string]bool, len(q.FuncDefs))}
	for i, fd := range q.FuncDefs {
		p.calls[i] = calls(fd.Body)
	}
	return p, nil
})

// guardedOps are the operators Compile turns into calls to the guarded
// definitions of the prelude (the names gojq gives them).
var guardedOps = map[gojq.Operator]string{
	gojq.OpAdd:    "_add",
	gojq.OpSub:    "_subtract",
	gojq.OpMul:    "_multiply",
	gojq.OpDiv:    "_divide",
	gojq.OpEq:     "_equal",
	gojq.OpNe:     "_notequal",
	gojq.OpLt:     "_less",
	gojq.OpGt:     "_greater",
	gojq.OpLe:     "_lesseq",
	gojq.OpGe:     "_greatereq",
	gojq.OpAssign: "_assign",
}

// rewrite replaces, everywhere in q, the operators of guardedOps by calls
// to their (shadowed) functions. The update operators (|=, +=, ...) need no
// rewrite: gojq compiles them into calls by name to _modify and _add etc.
func rewrite(q *gojq.Query) {
	walk(q, func(q *gojq.Query) {
		if name, ok := guardedOps[q.Op]; ok && len(q.Patterns) == 0 {
			q.Term = &gojq.Term{Type: gojq.TermTypeFunc, Func: &gojq.Func{Name: name, Args: []*gojq.Query{q.Left, q.Right}}}
			q.Left, q.Right, q.Op = nil, nil, 0
		}
	}, nil)
}

// formatFuncs are the functions gojq compiles @formats into.
var formatFuncs = []string{"tostring", "tojson", "_tohtml", "_touri", "_tourid", "_tocsv", "_totsv", "_tosh",
	"_tobase64", "_tobase64d", "format"}

// calls returns the names of the functions q calls, those gojq calls for
// it (updates, string interpolation, @formats) included.
func calls(q *gojq.Query) map[string]bool {
	names := map[string]bool{}
	walk(q, func(q *gojq.Query) {
		switch q.Op {
		case gojq.OpModify, gojq.OpUpdateAdd, gojq.OpUpdateSub, gojq.OpUpdateMul, gojq.OpUpdateDiv,
			gojq.OpUpdateMod, gojq.OpUpdateAlt:
			names["_modify"] = true
			for _, n := range guardedOps {
				names[n] = true
			}
		}
	}, func(t *gojq.Term) {
		if t.Func != nil {
			names[t.Func.Name] = true
		}
		if t.Format != "" || t.Str != nil && len(t.Str.Queries) > 0 {
			for _, n := range formatFuncs {
				names[n] = true
			}
		}
	})
	return names
}

// needed returns the prelude definitions that q calls, directly or
// through other definitions, in their order: compiling the others would
// cost every Compile for nothing.
func (p *prelude) needed(q *gojq.Query) []*gojq.FuncDef {
	want := calls(q)
	keep := make([]bool, len(p.defs))
	for changed := true; changed; {
		changed = false
		for i := len(p.defs) - 1; i >= 0; i-- {
			if !keep[i] && want[p.defs[i].Name] {
				keep[i], changed = true, true
				for n := range p.calls[i] {
					want[n] = true
				}
			}
		}
	}
	var out []*gojq.FuncDef
	for i, fd := range p.defs {
		if keep[i] {
			out = append(out, fd)
		}
	}
	return out
}

// walk calls fq on every query of q after visiting its parts, and ft on
// every term; either may be nil.
func walk(q *gojq.Query, fq func(*gojq.Query), ft func(*gojq.Term)) {
	if q == nil {
		return
	}
	for _, fd := range q.FuncDefs {
		walk(fd.Body, fq, ft)
	}
	walk(q.Left, fq, ft)
	walk(q.Right, fq, ft)
	walkPatterns(q.Patterns, fq, ft)
	walkTerm(q.Term, fq, ft)
	if fq != nil {
		fq(q)
	}
}

func walkTerm(t *gojq.Term, fq func(*gojq.Query), ft func(*gojq.Term)) {
	if t == nil {
		return
	}
	if ft != nil {
		ft(t)
	}
	w := func(q *gojq.Query) { walk(q, fq, ft) }
	walkIndex(t.Index, fq, ft)
	if t.Func != nil {
		for _, a := range t.Func.Args {
			w(a)
		}
	}
	if t.Object != nil {
		for _, kv := range t.Object.KeyVals {
			walkString(kv.KeyString, fq, ft)
			w(kv.KeyQuery)
			w(kv.Val)
		}
	}
	if t.Array != nil {
		w(t.Array.Query)
	}
	if t.Unary != nil {
		walkTerm(t.Unary.Term, fq, ft)
	}
	walkString(t.Str, fq, ft)
	if t.If != nil {
		w(t.If.Cond)
		w(t.If.Then)
		for _, e := range t.If.Elif {
			w(e.Cond)
			w(e.Then)
		}
		w(t.If.Else)
	}
	if t.Try != nil {
		w(t.Try.Body)
		w(t.Try.Catch)
	}
	if t.Reduce != nil {
		w(t.Reduce.Query)
		walkPatterns(t.Reduce.Patterns, fq, ft)
		w(t.Reduce.Start)
		w(t.Reduce.Update)
	}
	if t.Foreach != nil {
		w(t.Foreach.Query)
		walkPatterns(t.Foreach.Patterns, fq, ft)
		w(t.Foreach.Start)
		w(t.Foreach.Update)
		w(t.Foreach.Extract)
	}
	if t.Label != nil {
		w(t.Label.Body)
	}
	w(t.Query)
	for _, s := range t.SuffixList {
		walkIndex(s.Index, fq, ft)
	}
}

func walkIndex(x *gojq.Index, fq func(*gojq.Query), ft func(*gojq.Term)) {
	if x != nil {
		walkString(x.Str, fq, ft)
		walk(x.Start, fq, ft)
		walk(x.End, fq, ft)
	}
}

func walkString(s *gojq.String, fq func(*gojq.Query), ft func(*gojq.Term)) {
	if s != nil {
		for _, q := range s.Queries {
			walk(q, fq, ft)
		}
	}
}

func walkPatterns(ps []*gojq.Pattern, fq func(*gojq.Query), ft func(*gojq.Term)) {
	for _, p := range ps {
		if p == nil {
			continue
		}
		walkPatterns(p.Array, fq, ft)
		for _, o := range p.Object {
			walkString(o.KeyString, fq, ft)
			walk(o.KeyQuery, fq, ft)
			walkPatterns([]*gojq.Pattern{o.Val}, fq, ft)
		}
	}
}

// compilerOptions declare the budget variable and the guards.
func compilerOptions() []gojq.CompilerOption {
	return []gojq.CompilerOption{
		gojq.WithVariables([]string{budgetVar}),
		gojq.WithFunction("_jqeval_add", 3, 3, pairGuard((*budget).add)),
		gojq.WithFunction("_jqeval_mul", 3, 3, pairGuard((*budget).mul)),
		gojq.WithFunction("_jqeval_div", 3, 3, pairGuard((*budget).div)),
		gojq.WithFunction("_jqeval_cmp", 3, 3, pairGuard((*budget).cmp)),
		gojq.WithFunction("_jqeval_text", 1, 1, selfGuard((*budget).text)),
		gojq.WithFunction("_jqeval_deep", 1, 1, selfGuard((*budget).deep)),
		gojq.WithFunction("_jqeval_transpose", 1, 1, selfGuard((*budget).transpose)),
		gojq.WithFunction("_jqeval_regex", 1, 1, selfGuard((*budget).regex)),
		gojq.WithFunction("_jqeval_deep2", 2, 2, argGuard((*budget).deep2)),
		gojq.WithFunction("_jqeval_join", 2, 2, argGuard((*budget).join)),
		gojq.WithFunction("_jqeval_paths", 2, 2, argGuard((*budget).paths)),
	}
}

// guardError is what a guard returns when an operation would exceed a
// bound; Program.explain turns it into a LimitError.
type guardError struct{ limit, max string }

func (e *guardError) Error() string { return e.limit + " limit exceeded (" + e.max + ")" }

var errNoBudget = &guardError{limit: "budget", max: "missing"}

// pairGuard adapts a check of an operator's operands: the guard yields
// [l, r] for the prelude to apply the operator to.
func pairGuard(check func(b *budget, l, r any) error) func(any, []any) any {
	return func(_ any, args []any) any {
		b, ok := args[2].(*budget)
		if !ok {
			return errNoBudget
		}
		if err := check(b, args[0], args[1]); err != nil {
			return err
		}
		return []any{args[0], args[1]}
	}
}

// selfGuard adapts a check of a builtin's input, which the guard yields.
func selfGuard(check func(b *budget, v any) error) func(any, []any) any {
	return func(v any, args []any) any {
		b, ok := args[0].(*budget)
		if !ok {
			return errNoBudget
		}
		if err := check(b, v); err != nil {
			return err
		}
		return v
	}
}

// argGuard adapts a check of a builtin's input and argument; the guard
// yields the input.
func argGuard(check func(b *budget, v, x any) error) func(any, []any) any {
	return func(v any, args []any) any {
		b, ok := args[1].(*budget)
		if !ok {
			return errNoBudget
		}
		if err := check(b, v, args[0]); err != nil {
			return err
		}
		return v
	}
}

// budget is one evaluation's state: its steps (fuel) and the bytes its
// guarded operations built so far.
type budget struct {
	lim   Limits
	fuel  fuel
	alloc int
}

// Approximate memory costs, in bytes, of one array slot and one object
// entry.
const (
	slotBytes  = 16
	entryBytes = 64
	// bytesPerStep converts the bytes a guard walks into interpreter steps.
	bytesPerStep = 16
	// maxDepth is the deepest nesting a guard walks.
	maxDepth = 512
	// tooBig is the size of a value nested deeper than maxDepth.
	tooBig = math.MaxInt32
)

// charge accounts for n bytes built.
func (b *budget) charge(n int) error {
	b.alloc += n
	if n < 0 || b.alloc > b.lim.Alloc {
		b.alloc = b.lim.Alloc + 1
		return &guardError{limit: "alloc", max: bytesString(b.lim.Alloc)}
	}
	return nil
}

// work accounts for n steps done inside one interpreter step; when the
// steps are spent, the evaluation stops at its next step.
func (b *budget) work(n int) error {
	if n < 0 || n > b.fuel.left {
		b.fuel.left, b.fuel.stop = -1, errOutOfFuel
		return &guardError{limit: "steps", max: strconv.Itoa(b.lim.Steps)}
	}
	b.fuel.left -= n
	return nil
}

// length checks that a string, array or object of n bytes or elements
// fits in Size.
func (b *budget) length(n int) error {
	if n < 0 || n > b.lim.Size {
		return &guardError{limit: "value size", max: bytesString(b.lim.Size)}
	}
	return nil
}

// size is v's encoded size, checked against Size; walking it costs steps.
func (b *budget) size(v any) (int, error) {
	n, ok := encodedSize(v, b.lim.Size)
	if err := b.work(n / bytesPerStep); err != nil {
		return 0, err
	}
	if !ok {
		return 0, &guardError{limit: "value size", max: bytesString(b.lim.Size)}
	}
	return n, nil
}

func (b *budget) add(l, r any) error {
	switch l := l.(type) {
	case string:
		if r, ok := r.(string); ok {
			return b.grow(len(l)+len(r), 1)
		}
	case []any:
		if r, ok := r.([]any); ok {
			return b.grow(len(l)+len(r), slotBytes)
		}
	case map[string]any:
		if r, ok := r.(map[string]any); ok {
			return b.grow(len(l)+len(r), entryBytes)
		}
	}
	return nil
}

// grow checks and charges a value of n bytes or elements costing unit
// bytes each.
func (b *budget) grow(n, unit int) error {
	if err := b.length(n); err != nil {
		return err
	}
	return b.charge(n * unit)
}

func (b *budget) mul(l, r any) error {
	if _, ok := r.(string); ok {
		l, r = r, l
	}
	switch l := l.(type) {
	case string:
		n, ok := number(r)
		if !ok || n <= 0 || math.IsNaN(n) {
			return nil
		}
		if n > float64(b.lim.Size) {
			return b.length(-1)
		}
		return b.grow(len(l)*int(n), 1)
	case map[string]any:
		// A deep merge walks both objects.
		if _, err := b.size(l); err != nil {
			return err
		}
		if _, err := b.size(r); err != nil {
			return err
		}
		if r, ok := r.(map[string]any); ok {
			return b.charge((len(l) + len(r)) * entryBytes)
		}
	case *big.Int:
		if r, ok := r.(*big.Int); ok {
			return b.grow((l.BitLen()+r.BitLen())/8, 1)
		}
	}
	return nil
}

func (b *budget) div(l, r any) error {
	if l, ok := l.(string); ok {
		if _, ok := r.(string); ok { // split
			return b.grow(len(l), slotBytes+1)
		}
	}
	return nil
}

func (b *budget) cmp(l, r any) error {
	if _, err := b.size(l); err != nil {
		return err
	}
	if _, err := b.size(r); err != nil {
		return err
	}
	if l, ok := l.([]any); ok { // array subtraction compares every pair
		if r, ok := r.([]any); ok {
			if err := b.work(len(l) * len(r) / 4); err != nil {
				return err
			}
			return b.charge(len(l) * slotBytes)
		}
	}
	return nil
}

// text guards a builtin whose output is about as large as v encoded.
func (b *budget) text(v any) error {
	n, err := b.size(v)
	if err != nil {
		return err
	}
	return b.charge(n)
}

// deep guards a builtin that walks v deeply and copies it shallowly.
func (b *budget) deep(v any) error {
	if _, err := b.size(v); err != nil {
		return err
	}
	return b.charge(shallowLen(v) * slotBytes)
}

// deep2 is deep for a builtin with an argument x that it compares with
// (parts of) v.
func (b *budget) deep2(v, x any) error {
	if err := b.deep(v); err != nil {
		return err
	}
	if _, err := b.size(x); err != nil {
		return err
	}
	return b.work(shallowLen(v) * shallowLen(x) / 4)
}

func (b *budget) join(v, sep any) error {
	n, err := b.size(v)
	if err != nil {
		return err
	}
	if s, ok := sep.(string); ok {
		n += shallowLen(v) * len(s)
	}
	return b.grow(n, 1)
}

func (b *budget) transpose(v any) error {
	rows, _ := v.([]any)
	width := 0
	for _, r := range rows {
		width = max(width, shallowLen(r))
	}
	if width > 0 && len(rows) > b.lim.Size/width {
		return b.length(-1)
	}
	return b.grow(len(rows)*width, slotBytes)
}

// regex guards a match: a global match builds a match object for every
// position of the string.
func (b *budget) regex(v any) error {
	s, ok := v.(string)
	if !ok {
		return nil
	}
	if err := b.length(len(s)); err != nil {
		return err
	}
	if err := b.work(len(s) / bytesPerStep); err != nil {
		return err
	}
	return b.charge((len(s) + 1) * 256)
}

// paths guards an update of v at paths: numeric indices must stay within
// Size, and each container along a path is copied.
func (b *budget) paths(v, paths any) error {
	ps, _ := paths.([]any)
	if err := b.work(len(ps)); err != nil {
		return err
	}
	for _, p := range ps {
		p, _ := p.([]any)
		cur := v
		for _, k := range p {
			var next any
			switch c := cur.(type) {
			case []any:
				if err := b.charge(len(c) * slotBytes); err != nil {
					return err
				}
				if i, ok := number(k); ok && i >= 0 && i < float64(len(c)) {
					next = c[int(i)]
				}
			case map[string]any:
				if err := b.charge(len(c) * entryBytes); err != nil {
					return err
				}
				if s, ok := k.(string); ok {
					next = c[s]
				}
			}
			if i, ok := number(k); ok {
				if i >= float64(b.lim.Size) {
					return b.length(-1)
				}
				if _, isArray := cur.([]any); (isArray || cur == nil) && int(i) > shallowLen(cur) {
					if err := b.charge(int(i) * slotBytes); err != nil {
						return err
					}
				}
			}
			cur = next
		}
	}
	return nil
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case float64:
		return n, true
	case *big.Int:
		f, _ := new(big.Float).SetInt(n).Float64()
		return f, true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func shallowLen(v any) int {
	switch t := v.(type) {
	case string:
		return len(t)
	case []any:
		return len(t)
	case map[string]any:
		return len(t)
	}
	return 0
}

// encodedSize returns about how many bytes v takes as JSON, walking at
// most until it exceeds max (or nests deeper than maxDepth), which it then
// reports with ok false. Values that share parts count every occurrence.
func encodedSize(v any, max int) (n int, ok bool) {
	n = sizeOf(v, max, 0)
	return n, n <= max
}

// sizeOf returns v's size or a number above max once it exceeds max.
func sizeOf(v any, max, depth int) int {
	switch t := v.(type) {
	case nil:
		return 4
	case bool:
		if t {
			return 4
		}
		return 5
	case int:
		return len(strconv.Itoa(t))
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1e15 {
			return len(strconv.FormatInt(int64(t), 10))
		}
		return 24
	case *big.Int:
		return t.BitLen()/3 + 2
	case json.Number:
		return len(t)
	case string:
		return stringSize(t)
	case []any:
		if depth >= maxDepth {
			return tooBig
		}
		n := 1 + len(t)
		for _, x := range t {
			if n > max {
				break
			}
			n += sizeOf(x, max-n, depth+1)
		}
		return n
	case map[string]any:
		if depth >= maxDepth {
			return tooBig
		}
		n := 1 + len(t)
		for k, x := range t {
			if n > max {
				break
			}
			n += stringSize(k) + 1 + sizeOf(x, max-n, depth+1)
		}
		return n
	}
	return 16
}

func stringSize(s string) int {
	n := len(s) + 2
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			n += 5
		}
	}
	return n
}
