package automations

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/internal/jqeval"
)

// Starter starts deliveries durably (Temporal, in package workflows).
type Starter interface {
	// Start starts the delivery of req, keyed by DeliveryID: starting a
	// delivery that was already started (or has finished) is a no-op
	// that returns nil.
	Start(ctx context.Context, req Request) error
}

// Dispatcher feeds deliveries from the catalog's change stream: for each
// event and each automation whose trigger matches and whose condition
// holds, it starts a delivery. Its position in the stream is stored, and
// moves only once every delivery of the events before it was started, so
// a dispatcher killed mid-batch replays the batch; the Starter's
// deterministic ids make the replay a no-op. For the same reason several
// dispatchers (one per replica) may run at once: each (automation, event)
// is delivered once whoever starts it.
type Dispatcher struct {
	Store   Store
	Catalog *catalog.Service
	Service *Service
	Starter Starter
	Logger  *slog.Logger
	// Block is how long a read waits for new events (default 2 s);
	// Batch how many it reads at once (default 500); Parallel how many
	// starts run at once (default 32).
	Block    time.Duration
	Batch    int
	Parallel int

	gen   int64
	autos []*compiled
}

type compiled struct {
	a    *Automation
	cond *jqeval.Program
}

// Run dispatches until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) error {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Block <= 0 {
		d.Block = 2 * time.Second
	}
	if d.Batch <= 0 {
		d.Batch = 500
	}
	if d.Parallel <= 0 {
		d.Parallel = 32
	}
	ctx = catalog.WithActor(ctx, catalog.SystemActor("automations"))
	d.gen = -1
	after := ""
	for ctx.Err() == nil {
		var err error
		if after == "" {
			after, err = d.start(ctx)
		} else {
			after, err = d.step(ctx, after)
		}
		if err != nil && ctx.Err() == nil {
			d.Logger.Warn("automations: dispatch", "err", err)
			sleep(ctx, time.Second)
		}
	}
	return nil
}

// start returns the stored position; a dispatcher that never ran starts
// at the end of the stream (automations react to what happens from now
// on, not to the history).
func (d *Dispatcher) start(ctx context.Context) (string, error) {
	after, err := d.Store.Cursor(ctx)
	if err != nil || after != "" {
		return after, err
	}
	_, newest, err := d.Catalog.EventBounds(ctx)
	if err != nil {
		return "", err
	}
	if newest == "" {
		newest = "0"
	}
	return newest, d.Store.SetCursor(ctx, newest)
}

// step dispatches the next batch after `after` and returns the new
// position (after itself when anything failed: the batch is replayed).
func (d *Dispatcher) step(ctx context.Context, after string) (string, error) {
	evs, err := d.Catalog.Events(ctx, after, d.Batch, d.Block)
	if err != nil {
		return after, fmt.Errorf("read events: %w", err)
	}
	if len(evs) == 0 {
		return after, nil
	}
	// Loaded after the read: an automation stored before an event was
	// written is seen with that event.
	if err := d.load(ctx); err != nil {
		return after, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.Parallel)
	for _, ev := range evs {
		for _, c := range d.autos {
			if !c.a.Trigger.Matches(ev) || ev.At.Before(c.a.CreatedAt) {
				continue
			}
			g.Go(func() error { return d.dispatch(gctx, c, ev) })
		}
	}
	if err := g.Wait(); err != nil {
		return after, err
	}
	last := evs[len(evs)-1].ID
	if err := d.Store.SetCursor(ctx, last); err != nil {
		return after, fmt.Errorf("save position: %w", err)
	}
	return last, nil
}

// dispatch starts one delivery, or records why it is not made: a depth
// over the limit or a condition that failed to evaluate. A condition
// that does not yield true is no delivery at all.
func (d *Dispatcher) dispatch(ctx context.Context, c *compiled, ev catalog.Event) error {
	req := Request{Automation: c.a.Identifier, Event: ev, Retry: DefaultRetry}
	if c.a.Invoke.Retry != nil {
		req.Retry = *c.a.Invoke.Retry
	}
	if ev.Depth >= DepthLimit {
		return d.Service.Fail(ctx, req, 0, ErrDepthLimit)
	}
	if c.cond != nil {
		input, err := InputOf(ev)
		if err != nil {
			return d.Service.Fail(ctx, req, 0, "condition input: "+err.Error())
		}
		v, ok, err := c.cond.First(ctx, input)
		if err != nil {
			return d.Service.Fail(ctx, req, 0, "condition: "+err.Error())
		}
		if !ok || v != true {
			return nil
		}
	}
	if err := d.Starter.Start(ctx, req); err != nil {
		return fmt.Errorf("start %s: %w", DeliveryID(req.Automation, ev.ID), err)
	}
	return nil
}

// load refreshes the automations when the store's generation moved.
func (d *Dispatcher) load(ctx context.Context) error {
	gen, err := d.Store.Generation(ctx)
	if err != nil {
		return fmt.Errorf("automations generation: %w", err)
	}
	if gen == d.gen {
		return nil
	}
	list, err := d.Store.List(ctx)
	if err != nil {
		return fmt.Errorf("list automations: %w", err)
	}
	autos := make([]*compiled, 0, len(list))
	for _, a := range list {
		c := &compiled{a: a}
		if a.Condition != "" {
			if c.cond, err = jqeval.Compile(a.Condition, jqeval.Limits{}); err != nil {
				d.Logger.Warn("automations: condition does not compile", "automation", a.Identifier, "err", err)
				continue
			}
		}
		autos = append(autos, c)
	}
	d.autos, d.gen = autos, gen
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
