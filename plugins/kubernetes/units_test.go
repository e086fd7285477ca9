package main

import (
	"context"
	"testing"
	"time"
)

func TestIsLatest(t *testing.T) {
	for _, tc := range []struct {
		image string
		want  bool
	}{
		{"nginx", true},
		{"nginx:latest", true},
		{"nginx:1.25", false},
		{"registry.example:5000/team/app", true},
		{"registry.example:5000/team/app:2.0", false},
		{"registry.example:5000/team/app:latest", true},
		{"nginx@sha256:0123abcd", false},
		{"nginx:latest@sha256:0123abcd", false},
	} {
		if got := isLatest(tc.image); got != tc.want {
			t.Errorf("isLatest(%q) = %v, want %v", tc.image, got, tc.want)
		}
	}
}

func TestChangeQueue(t *testing.T) {
	ctx := context.Background()
	q := newChangeQueue()
	q.push(change{key: "a", item: 1})
	q.push(change{key: "b", item: 1})
	q.push(change{key: "a", item: 2}) // replaces a, keeps its place
	batch, seq := q.take(ctx, time.Second, 0, 10)
	if len(batch) != 2 || batch[0].key != "a" || batch[0].item != 2 || batch[1].key != "b" {
		t.Fatalf("batch = %+v", batch)
	}

	// The answer was lost: the host passes the older cursor; the batch
	// comes again, except what changed since.
	q.push(change{key: "b", deleted: true})
	q.ack(seq - 1)
	batch, seq2 := q.take(ctx, time.Second, 0, 10)
	got := map[string]change{}
	for _, c := range batch {
		got[c.key] = c
	}
	if len(batch) != 2 || got["a"].item != 2 || !got["b"].deleted || seq2 != seq+1 {
		t.Fatalf("redelivered batch = %+v (seq %d)", batch, seq2)
	}

	// Acknowledged: nothing comes again; an idle take returns empty after
	// its wait, keeping the number.
	q.ack(seq2)
	start := time.Now()
	batch, seq3 := q.take(ctx, 50*time.Millisecond, 0, 10)
	if len(batch) != 0 || seq3 != seq2 || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("idle take = %+v, seq %d", batch, seq3)
	}

	// At most max per batch, in order.
	for _, k := range []string{"1", "2", "3"} {
		q.push(change{key: k})
	}
	batch, _ = q.take(ctx, time.Second, time.Second, 2)
	if len(batch) != 2 || batch[0].key != "1" || batch[1].key != "2" || q.Len() != 1 {
		t.Fatalf("capped batch = %+v, left %d", batch, q.Len())
	}
}

// TestChangeQueueWakes: a waiting take returns as soon as a change
// arrives, not at the end of its wait.
func TestChangeQueueWakes(t *testing.T) {
	q := newChangeQueue()
	done := make(chan []change)
	go func() {
		b, _ := q.take(context.Background(), time.Minute, 0, 10)
		done <- b
	}()
	q.push(change{key: "x"})
	select {
	case b := <-done:
		if len(b) != 1 {
			t.Fatalf("batch = %+v", b)
		}
	case <-time.After(deadline):
		t.Fatal("take did not wake up on a change")
	}
}
