package rediscatalog

import (
	"testing"
	"time"

	"github.com/portico-dev/portico/core/catalog"
)

func BenchmarkIndexEntries(b *testing.B) {
	bp := &catalog.Blueprint{Identifier: "service", Schema: catalog.Schema{Properties: map[string]catalog.Property{
		"language": {Type: "string"}, "tier": {Type: "number"}, "homepage": {Type: "string", Format: "url"},
		"tags": {Type: "array", Items: &catalog.Property{Type: "string"}},
	}}}
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	e := &catalog.Entity{Identifier: "checkout-service", Title: "Checkout service", Blueprint: "service",
		Team: []string{"payments", "platform"}, Datasource: "integration:github", CreatedAt: at, UpdatedAt: at,
		Properties: map[string]any{"language": "go", "tier": 2.0, "homepage": "https://checkout.example.com",
			"tags": []any{"web", "api", "pci"}},
		Relations: map[string]any{}}
	var out []indexEntry
	b.ReportAllocs()
	for b.Loop() {
		out = indexEntries(out[:0], bp, e)
		if len(out) == 0 {
			b.Fatal("no entries")
		}
	}
}
