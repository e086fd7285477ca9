// Package bulkwrite cuts a set of entities into bulk requests so that
// every relation between them points at an entity of the same or an
// earlier request: the catalog resolves relations inside one request in
// any order, across requests only to entities already written.
package bulkwrite

import (
	"fmt"
	"slices"

	"github.com/portico-dev/portico/core/catalog"
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
	edges := make([][]int, n)
	for i := range edges {
		for _, t := range targets(i) {
			if t >= 0 && t < n { // others are written already, or never
				edges[i] = append(edges[i], t)
			}
		}
	}
	for _, comp := range catalog.DependencyOrder(edges) {
		if len(comp) > limit {
			return nil, fmt.Errorf("%d entities point at each other in a cycle of relations: more than the %d one request takes", len(comp), limit)
		}
		slices.Sort(comp)
		if len(cur) > 0 && len(cur)+len(comp) > size {
			out = append(out, cur)
			cur = nil
		}
		cur = append(cur, comp...)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out, nil
}
