package plugintest

import (
	"slices"
	"testing"
	"time"
)

// Timer records per-call durations and reports their median.
type Timer struct{ d []time.Duration }

// Time runs f b.N times, timing each call, and reports p50 and p99 in µs.
func Time(b *testing.B, f func() error) {
	t := &Timer{d: make([]time.Duration, 0, b.N)}
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		t.d = append(t.d, time.Since(start))
	}
	b.StopTimer()
	t.Report(b)
}

// Report reports p50 and p99 of the recorded durations in µs.
func (t *Timer) Report(b *testing.B) {
	if len(t.d) == 0 {
		return
	}
	slices.Sort(t.d)
	b.ReportMetric(float64(t.d[len(t.d)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(t.d[len(t.d)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// Add records one duration.
func (t *Timer) Add(d time.Duration) { t.d = append(t.d, d) }
