// Package bulkwrite cuts a set of entities into bulk requests so that
// every relation between them points at an entity of the same or an
// earlier request: the catalog resolves relations inside one request in
// any order, across requests only to entities already written.
package bulkwrite

import (
	"fmt"
	"slices"
)

// Batches returns the indexes 0..n-1 in write order, cut into batches of
// at most size. targets(i) lists the indexes entity i has a relation to.
// Entities on a cycle of relations stay in one batch, which may then be
// larger than size but never than limit (an error).
func Batches(n int, targets func(i int) []int, size, limit int) ([][]int, error) {
	if size < 1 {
		size = 1
	}
	var out [][]int
	var cur []int
	var err error
	eachComponent(n, targets, func(comp []int) {
		if err != nil {
			return
		}
		if len(comp) > limit {
			err = fmt.Errorf("%d entities point at each other in a cycle of relations: more than the %d one request takes", len(comp), limit)
			return
		}
		if len(cur) > 0 && len(cur)+len(comp) > size {
			out = append(out, cur)
			cur = nil
		}
		cur = append(cur, comp...)
	})
	if err != nil {
		return nil, err
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out, nil
}

// eachComponent calls emit with the strongly connected components of the
// graph (Tarjan), each sorted, targets before the components pointing at
// them.
func eachComponent(n int, targets func(i int) []int, emit func([]int)) {
	const unvisited = -1
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = unvisited
	}
	var stack []int
	next := 0
	var visit func(v int)
	visit = func(v int) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range targets(v) {
			switch {
			case w < 0 || w >= n:
			case index[w] == unvisited:
				visit(w)
				low[v] = min(low[v], low[w])
			case onStack[w]:
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] != index[v] {
			return
		}
		var comp []int
		for {
			w := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[w] = false
			comp = append(comp, w)
			if w == v {
				break
			}
		}
		slices.Sort(comp)
		emit(comp)
	}
	for v := range n {
		if index[v] == unvisited {
			visit(v)
		}
	}
}
