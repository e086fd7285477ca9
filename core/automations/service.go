package automations

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/internal/errkind"
)

// ErrNotFound: no such automation.
var ErrNotFound = errkind.New(errkind.NotFound, "not found")

// Store keeps definitions, signing secrets, the dispatcher's position in
// the change stream and delivery records.
type Store interface {
	// Put stores a new version of a unless it is unchanged (Version,
	// CreatedAt and UpdatedAt are set); created reports a new identifier.
	Put(ctx context.Context, a *Automation) (out *Automation, created bool, err error)
	Get(ctx context.Context, id string) (*Automation, error)
	List(ctx context.Context) ([]*Automation, error)
	Delete(ctx context.Context, id string) error
	// Generation grows with every Put and Delete: a reader caching the
	// list reloads it when it changed.
	Generation(ctx context.Context) (int64, error)
	// InitSecret stores an automation's signing secret unless it has one;
	// it reports whether it stored it.
	InitSecret(ctx context.Context, id, secret string) (bool, error)
	Secret(ctx context.Context, id string) (string, error)
	Cursor(ctx context.Context) (string, error)
	SetCursor(ctx context.Context, id string) error
	// SaveDelivery writes a delivery record (a newer one replaces it;
	// a finished one is never replaced by a started one).
	SaveDelivery(ctx context.Context, d *Delivery) error
	// Deliveries returns an automation's most recent deliveries, newest
	// first (the store keeps a bounded number).
	Deliveries(ctx context.Context, id string, limit int) ([]*Delivery, error)
}

// Scheduler keeps the cron schedules of automations (Temporal Schedules,
// in package workflows).
type Scheduler interface {
	// Schedule creates or updates the schedule firing a.
	Schedule(ctx context.Context, a *Automation) error
	// Unschedule removes it (no error when there is none).
	Unschedule(ctx context.Context, id string) error
}

// Webhook is one signed delivery a WebhookSender sends.
type Webhook struct {
	URL     string
	Method  string
	Headers map[string]string
	Body    []byte
	// Secret signs the body; IdempotencyKey lets the receiver drop
	// the duplicates a retry may cause.
	Secret         string
	IdempotencyKey string
}

// WebhookSender sends signed webhooks (package workflows, with the
// signing and egress rules of action webhooks). An error that retrying
// cannot fix is a *PermanentError.
type WebhookSender interface {
	Send(ctx context.Context, w Webhook) (status int, err error)
}

// PluginActor runs a plugin action (the integrations host).
type PluginActor func(ctx context.Context, integration, action string, entity *catalog.Ref, inputs []byte) error

// PermanentError is a delivery failure that retrying cannot fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

func permanent(format string, args ...any) error {
	return &PermanentError{Err: fmt.Errorf(format, args...)}
}

// Service is the automations API and the executor of deliveries.
type Service struct {
	store   Store
	cat     *catalog.Service
	actions *actions.Service
	opts    Options
}

// Options configure a Service; nil fields leave their feature out.
type Options struct {
	// Scheduler keeps cron schedules (nil: schedule triggers are refused).
	Scheduler Scheduler
	// Webhooks sends webhook invocations (nil: they fail).
	Webhooks WebhookSender
	// Plugins runs plugin invocations (nil: they fail).
	Plugins PluginActor
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// NewService returns the service over store; act runs action invocations.
func NewService(store Store, cat *catalog.Service, act *actions.Service, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{store: store, cat: cat, actions: act, opts: opts}
}

// WithDelivery returns a copy of s whose deliveries send webhooks and
// run plugins with w and p (the worker has them; the API does not).
func (s *Service) WithDelivery(w WebhookSender, p PluginActor) *Service {
	c := *s
	c.opts.Webhooks, c.opts.Plugins = w, p
	return &c
}

// Put validates and stores a new version of an automation, and keeps its
// schedule. On creation it returns the automation's webhook signing
// secret: the only time it is ever shown. Omitted webhook headers (nil)
// keep the stored ones; the automation comes back redacted.
func (s *Service) Put(ctx context.Context, a *Automation) (*Automation, string, bool, error) {
	if err := a.Validate(); err != nil {
		return nil, "", false, err
	}
	var p problems
	for path, bp := range map[string]string{"/trigger/blueprint": a.Trigger.Blueprint, "/invoke/blueprint": a.Invoke.Blueprint} {
		if bp == "" {
			continue
		}
		if _, err := s.cat.GetBlueprint(ctx, bp); errors.Is(err, catalog.ErrNotFound) {
			p.add(path, "blueprint %q does not exist", bp)
		} else if err != nil {
			return nil, "", false, err
		}
	}
	for path, id := range map[string]string{"/trigger/action": a.Trigger.Action, "/invoke/action": a.Invoke.Action} {
		if id == "" || path == "/invoke/action" && a.Invoke.Type != InvokeAction {
			continue
		}
		if _, err := s.actions.GetAction(ctx, id); errors.Is(err, actions.ErrNotFound) {
			p.add(path, "action %q does not exist", id)
		} else if err != nil {
			return nil, "", false, err
		}
	}
	if a.Trigger.Schedule != "" && s.opts.Scheduler == nil {
		p.add("/trigger/schedule", "schedules need the Temporal workflow engine, which is not configured")
	}
	if err := p.err(); err != nil {
		return nil, "", false, err
	}
	prev, err := s.store.Get(ctx, a.Identifier)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, "", false, err
	}
	if a.Invoke.Headers == nil && prev != nil && prev.Invoke.Type == InvokeWebhook {
		a.Invoke.Headers = prev.Invoke.Headers
	}
	a.Invoke.HeadersSet = nil
	secret := "whsec_" + randomHex(24)
	fresh, err := s.store.InitSecret(ctx, a.Identifier, secret)
	if err != nil {
		return nil, "", false, err
	}
	if !fresh {
		secret = ""
	}
	out, created, err := s.store.Put(ctx, a)
	if err != nil {
		return nil, "", false, err
	}
	if err := s.keepSchedule(ctx, out, prev); err != nil {
		return nil, "", false, err
	}
	return out.Redacted(), secret, created, nil
}

func (s *Service) keepSchedule(ctx context.Context, a, prev *Automation) error {
	switch {
	case a.Trigger.Schedule != "":
		if err := s.opts.Scheduler.Schedule(ctx, a); err != nil {
			return fmt.Errorf("schedule automation %s: %w", a.Identifier, err)
		}
	case prev != nil && prev.Trigger.Schedule != "" && s.opts.Scheduler != nil:
		if err := s.opts.Scheduler.Unschedule(ctx, a.Identifier); err != nil {
			return fmt.Errorf("unschedule automation %s: %w", a.Identifier, err)
		}
	}
	return nil
}

// Get returns an automation, redacted.
func (s *Service) Get(ctx context.Context, id string) (*Automation, error) {
	a, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return a.Redacted(), nil
}

// List returns every automation, redacted.
func (s *Service) List(ctx context.Context) ([]*Automation, error) {
	list, err := s.store.List(ctx)
	for i, a := range list {
		list[i] = a.Redacted()
	}
	return list, err
}

// Delete removes an automation and its schedule; its delivery records
// stay until they age out.
func (s *Service) Delete(ctx context.Context, id string) error {
	a, err := s.store.Get(ctx, id)
	if err != nil {
		return err
	}
	if a.Trigger.Schedule != "" && s.opts.Scheduler != nil {
		if err := s.opts.Scheduler.Unschedule(ctx, id); err != nil {
			return fmt.Errorf("unschedule automation %s: %w", id, err)
		}
	}
	return s.store.Delete(ctx, id)
}

// MaxDeliveries is how many deliveries GET .../runs lists at most.
const MaxDeliveries = 1000

// Deliveries lists an automation's recent deliveries, newest first.
func (s *Service) Deliveries(ctx context.Context, id string, limit int) ([]*Delivery, error) {
	if _, err := s.store.Get(ctx, id); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > MaxDeliveries {
		limit = MaxDeliveries
	}
	list, err := s.store.Deliveries(ctx, id, limit)
	if list == nil {
		list = []*Delivery{}
	}
	return list, err
}

// Redacted returns a copy without header values (their names in
// HeadersSet).
func (a *Automation) Redacted() *Automation {
	c := *a
	c.Invoke.HeadersSet = nil
	for k := range a.Invoke.Headers {
		c.Invoke.HeadersSet = append(c.Invoke.HeadersSet, k)
	}
	slices.Sort(c.Invoke.HeadersSet)
	c.Invoke.Headers = nil
	return &c
}

func randomHex(n int) string {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(buf)
}
