package bulkwrite

import (
	"reflect"
	"testing"
)

func TestBatches(t *testing.T) {
	tests := []struct {
		name  string
		edges map[int][]int
		n     int
		size  int
		want  [][]int
	}{
		{"no relations keep file order", nil, 5, 2, [][]int{{0, 1}, {2, 3}, {4}}},
		{"a target comes first", map[int][]int{0: {3}}, 4, 2, [][]int{{3, 0}, {1, 2}}},
		{"a chain is written from its end", map[int][]int{0: {1}, 1: {2}}, 3, 1, [][]int{{2}, {1}, {0}}},
		{"a cycle stays in one batch even over size", map[int][]int{0: {1}, 1: {2}, 2: {0}}, 4, 2, [][]int{{0, 1, 2}, {3}}},
		{"a self relation is no problem", map[int][]int{1: {1}}, 2, 1, [][]int{{0}, {1}}},
		{"targets outside the set are ignored", map[int][]int{0: {-1, 7}}, 1, 10, [][]int{{0}}},
		{"one batch when everything fits", map[int][]int{0: {2}, 1: {2}}, 3, 10, [][]int{{2, 0, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Batches(tt.n, func(i int) []int { return tt.edges[i] }, tt.size, 100)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			// Every target inside the set is written no later than its source.
			at := map[int]int{}
			for b, batch := range got {
				for _, i := range batch {
					at[i] = b
				}
			}
			for from, tos := range tt.edges {
				for _, to := range tos {
					if bt, ok := at[to]; ok && bt > at[from] {
						t.Fatalf("%d (batch %d) points at %d written later (batch %d)", from, at[from], to, bt)
					}
				}
			}
		})
	}
}

func TestBatchesCycleOverLimit(t *testing.T) {
	edges := map[int][]int{0: {1}, 1: {2}, 2: {0}}
	if _, err := Batches(3, func(i int) []int { return edges[i] }, 1, 2); err == nil {
		t.Fatal("a cycle of 3 over a limit of 2: no error")
	}
}
