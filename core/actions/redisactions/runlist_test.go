package redisactions_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/actions/redisactions"
	"github.com/portico-dev/portico/devredis/devredistest"
)

// readCounter counts what a client reads: index entries returned by
// ZREVRANGEBYSCORE, run records fetched, and round trips.
type readCounter struct {
	mu                      sync.Mutex
	entries, records, trips int
}

func (c *readCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *readCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		c.count(cmd)
		if n := cmd.Name(); n != "hello" && n != "client" { // a new connection's setup
			c.trip()
		}
		return err
	}
}

func (c *readCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			c.count(cmd)
		}
		c.trip()
		return err
	}
}

func (c *readCounter) trip() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trips++
}

func (c *readCounter) count(cmd redis.Cmder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch cmd.Name() {
	case "zrevrangebyscore":
		if z, ok := cmd.(*redis.ZSliceCmd); ok {
			c.entries += len(z.Val())
		}
	case "hget":
		if key, _ := cmd.Args()[1].(string); strings.Contains(key, "|run|") {
			c.records++
		}
	}
}

// reset zeroes the counts and returns what they were.
func (c *readCounter) reset() (entries, records, trips int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	entries, records, trips = c.entries, c.records, c.trips
	c.entries, c.records, c.trips = 0, 0, 0
	return
}

func newCountedStore(t *testing.T) (*redisactions.Store, *readCounter) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	devredistest.Check(t, rdb)
	c := &readCounter{}
	rdb.AddHook(c)
	return redisactions.New(rdb, redisactions.Options{}), c
}

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// saveRuns stores runs run_<from>…run_<to-1>; at(i) is each one's
// creation time.
func saveRuns(t *testing.T, s *redisactions.Store, from, to int, at func(i int) time.Time, mod func(*actions.Run)) {
	t.Helper()
	for i := from; i < to; i++ {
		r := &actions.Run{ID: fmt.Sprintf("run_%05d", i), Action: "deploy", Blueprint: "service", Entity: "checkout",
			Status: actions.StatusSuccess, TriggeredBy: "alice@example.com", Revision: 1, CreatedAt: at(i)}
		if mod != nil {
			mod(r)
		}
		if err := s.SaveRun(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
}

// listAll pages through f, failing on a repeated run or more pages than
// maxPages; it returns the ids in order and the number of pages.
func listAll(t *testing.T, s *redisactions.Store, f actions.RunFilter, maxPages int, between func()) ([]string, int) {
	t.Helper()
	var ids []string
	seen := map[string]bool{}
	for pages := 1; ; pages++ {
		page, err := s.ListRuns(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Runs {
			if seen[r.ID] {
				t.Fatalf("page %d repeats %s", pages, r.ID)
			}
			seen[r.ID] = true
			ids = append(ids, r.ID)
		}
		if page.Next == "" {
			return ids, pages
		}
		if pages == maxPages {
			t.Fatalf("still a next page after %d pages", pages)
		}
		if between != nil {
			between()
		}
		f.Cursor = page.Next
	}
}

// TestListRunsPagesByPosition: pages follow each other exactly, newest
// first, even through runs created in one millisecond (more than a page)
// and runs created between pages.
func TestListRunsPagesByPosition(t *testing.T) {
	s, _ := newCountedStore(t)
	// run_00000..00059 one per second, run_00060..00309 in one millisecond
	// (the newest), so ties span many pages and reads.
	at := func(i int) time.Time {
		if i < 60 {
			return t0.Add(time.Duration(i) * time.Second)
		}
		return t0.Add(time.Hour)
	}
	saveRuns(t, s, 0, 310, at, nil)
	newer := 1000
	between := func() { // a run created while paging goes to the top
		saveRuns(t, s, newer, newer+1, func(int) time.Time { return t0.Add(2 * time.Hour) }, nil)
		newer++
	}
	for _, limit := range []int{3, 7, 100, 500} {
		ids, _ := listAll(t, s, actions.RunFilter{Limit: limit, Action: "deploy"}, 400, between)
		want := make([]string, 0, 310)
		for i := 309; i >= 0; i-- {
			want = append(want, fmt.Sprintf("run_%05d", i))
		}
		if strings.Join(ids[len(ids)-310:], ",") != strings.Join(want, ",") {
			t.Fatalf("limit %d: got %d runs, first %v, want newest first run_00309…run_00000", limit, len(ids), ids[:min(5, len(ids))])
		}
	}
	if _, err := s.ListRuns(context.Background(), actions.RunFilter{Cursor: "bm9wZQ"}); !errors.Is(err, actions.ErrInvalidCursor) {
		t.Fatalf("forged cursor: %v", err)
	}
}

// TestListRunsReadsABoundedPart: among thousands of runs, a listing
// that matches none (a filter, or runs the caller may not see) reads at
// most MaxRunsScanned index entries and records per call and hands back
// a cursor; following it reaches the end.
func TestListRunsReadsABoundedPart(t *testing.T) {
	s, reads := newCountedStore(t)
	const n = 2500
	saveRuns(t, s, 0, n, func(i int) time.Time { return t0.Add(time.Duration(i) * time.Millisecond) }, func(r *actions.Run) {
		if r.ID == "run_00000" { // the oldest is the one match
			r.Entity, r.TriggeredBy = "cart", "bob@example.com"
		}
	})
	hidden := func(r *actions.Run) (bool, error) { return r.TriggeredBy == "bob@example.com", nil }
	for _, f := range []actions.RunFilter{
		{Limit: 10, Entity: "cart"},
		{Limit: 10, Visible: hidden},
		{Limit: 500, Status: actions.StatusSuccess, Visible: hidden},
	} {
		reads.reset()
		var got []string
		for page := 1; ; page++ {
			p, err := s.ListRuns(context.Background(), f)
			if err != nil {
				t.Fatal(err)
			}
			entries, records, trips := reads.reset()
			if entries > actions.MaxRunsScanned || records > actions.MaxRunsScanned || trips > 2*actions.MaxRunsScanned/200+4 {
				t.Fatalf("%+v page %d: read %d entries, %d records in %d round trips", f, page, entries, records, trips)
			}
			for _, r := range p.Runs {
				got = append(got, r.ID)
			}
			if p.Next == "" {
				if page < n/actions.MaxRunsScanned {
					t.Fatalf("%+v: ended after %d pages, reading all %d runs", f, page, n)
				}
				break
			}
			if page > n/actions.MaxRunsScanned+1 {
				t.Fatalf("%+v: still a next page after %d pages", f, page)
			}
			if len(p.Runs) == 0 && entries == 0 {
				t.Fatalf("%+v: page %d read nothing yet has a next page", f, page)
			}
			f.Cursor = p.Next
		}
		if strings.Join(got, ",") != "run_00000" {
			t.Fatalf("%+v: listed %v", f, got)
		}
	}
}

// TestListRunsByRequester: the requester index lists one user's runs.
func TestListRunsByRequester(t *testing.T) {
	s, _ := newCountedStore(t)
	saveRuns(t, s, 0, 6, func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }, func(r *actions.Run) {
		if r.ID == "run_00002" || r.ID == "run_00004" {
			r.TriggeredBy = "bob@example.com"
		}
	})
	ids, _ := listAll(t, s, actions.RunFilter{TriggeredBy: "bob@example.com", Limit: 1}, 3, nil)
	if strings.Join(ids, ",") != "run_00004,run_00002" {
		t.Fatalf("bob's runs %v", ids)
	}
}
