package api

import (
	"bytes"
	"testing"
)

// BenchmarkReadAll reads a 5 MiB body (a 5,000-entity bulk request): one
// allocation of its size, the chunks come from the pool.
func BenchmarkReadAll(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 5<<20)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		raw, err := readAll(bytes.NewReader(body))
		if err != nil || len(raw) != len(body) {
			b.Fatal(len(raw), err)
		}
	}
}
