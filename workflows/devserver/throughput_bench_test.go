package devserver_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"golang.org/x/sync/errgroup"

	"github.com/portico-dev/portico/workflows/devserver"
)

func empty(ctx workflow.Context) error { return nil }

// BenchmarkEmptyWorkflows is the ceiling of anything that starts a
// workflow per event on the embedded server (an action run per
// automation delivery): 32 clients start 3,000 workflows that do nothing
// as fast as the server accepts them, and one worker completes them.
// It reports starts/s (StartWorkflowExecution answered) and
// completions/s (every workflow closed). Run with -benchtime 1x
// (make bench-temporal).
func BenchmarkEmptyWorkflows(b *testing.B) {
	const total, clients = 3000, 32
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	srv, err := devserver.Start(devserver.Options{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Stop()
	c, err := srv.Dial(ctx, client.Options{Logger: tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	w := worker.New(c, "bench", worker.Options{})
	w.RegisterWorkflow(empty)
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	for b.Loop() {
		runs := make([]client.WorkflowRun, total)
		var next atomic.Int64
		start := time.Now()
		g, gctx := errgroup.WithContext(ctx)
		for range clients {
			g.Go(func() error {
				for i := next.Add(1) - 1; i < total; i = next.Add(1) - 1 {
					run, err := c.ExecuteWorkflow(gctx, client.StartWorkflowOptions{ID: fmt.Sprintf("empty-%d-%d", start.UnixNano(), i), TaskQueue: "bench"}, empty)
					if err != nil {
						return err
					}
					runs[i] = run
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		started := time.Since(start)
		for _, run := range runs {
			if err := run.Get(ctx, nil); err != nil {
				b.Fatal(err)
			}
		}
		done := time.Since(start)
		b.ReportMetric(total/started.Seconds(), "starts/s")
		b.ReportMetric(total/done.Seconds(), "completions/s")
	}
}
