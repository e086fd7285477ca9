package catalog

import (
	"testing"
	"time"
)

// fieldsBenchEntity is schemaBenchEntity decoded, with every meta field set.
func fieldsBenchEntity(b *testing.B) *Entity {
	b.Helper()
	e, err := DecodeEntity([]byte(schemaBenchEntity))
	if err != nil {
		b.Fatal(err)
	}
	e.Blueprint = "service"
	e.Icon = "go"
	e.CreatedAt = time.Date(2024, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	e.UpdatedAt = e.CreatedAt.Add(time.Hour)
	e.CreatedBy, e.UpdatedBy, e.Datasource = "alice@example.com", "bob@example.com", "integration:github"
	return e
}

func BenchmarkMarshalEntity(b *testing.B) {
	e := fieldsBenchEntity(b)
	b.ReportAllocs()
	for b.Loop() {
		if len(MarshalEntity(e)) == 0 {
			b.Fatal("empty")
		}
	}
}

func BenchmarkMatchMeta(b *testing.B) {
	e := fieldsBenchEntity(b)
	q := &Rule{Combinator: "and", Rules: []Rule{
		{Property: "$identifier", Operator: "=", Value: "checkout-service"},
		{Property: "$title", Operator: "beginsWith", Value: "Checkout"},
		{Property: "$team", Operator: "contains", Value: "payments"},
		{Property: "$createdAt", Operator: "<", Value: "2025-01-01T00:00:00Z"},
		{Property: "$datasource", Operator: "!=", Value: "x"},
		{Property: "language", Operator: "=", Value: "go"},
	}}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if !Match(q, e, e.Properties, now, nil) {
			b.Fatal("no match")
		}
	}
}

func BenchmarkCalculate(b *testing.B) {
	bp, err := DecodeBlueprint([]byte(`{"identifier": "service", "calculationProperties": {
		"label": {"type": "string", "jq": ".title + \"/\" + .identifier"}}}`))
	if err != nil {
		b.Fatal(err)
	}
	c, err := CompileBlueprint(bp)
	if err != nil {
		b.Fatal(err)
	}
	e := fieldsBenchEntity(b)
	b.ReportAllocs()
	for b.Loop() {
		if c.Calculate(e)["label"] != "Checkout service/checkout-service" {
			b.Fatal("wrong label")
		}
	}
}

func BenchmarkDecodeEntityStrict(b *testing.B) {
	data := []byte(schemaBenchEntity)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeEntityStrict(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPeekBulkItem(b *testing.B) {
	data := []byte(schemaBenchEntity)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := PeekBulkItem(data); !ok {
			b.Fatal("not peeked")
		}
	}
}
