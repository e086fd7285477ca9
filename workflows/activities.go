package workflows

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/host/integrations"
	"github.com/portico-dev/portico/internal/egress"
	"github.com/portico-dev/portico/internal/jqeval"
)

// RunStore is what activities need of the actions store.
type RunStore interface {
	SaveRun(ctx context.Context, r *actions.Run) error
	Secret(ctx context.Context, action string) (string, error)
	// WebhookHeaders returns the (opened) header values of a run's
	// webhook step.
	WebhookHeaders(ctx context.Context, ref actions.HeaderRef) (map[string]string, error)
}

// PluginActor runs plugin actions and applies their changes (the
// integrations Manager).
type PluginActor interface {
	Act(ctx context.Context, id, action string, entity *catalog.Ref, inputs json.RawMessage) (*integrations.ActResult, error)
}

// Activities hold the dependencies of every activity; register one value
// with a worker.
type Activities struct {
	Store   RunStore
	Catalog *catalog.Service
	Plugins PluginActor // nil: plugin steps fail
	// Resyncs runs scheduled resyncs (nil: Resync workflows fail).
	Resyncs Resyncer
	// WebhookTimeout bounds each webhook delivery (zero:
	// DefaultWebhookTimeout) besides the step's own timeout.
	WebhookTimeout time.Duration
	// Actions triggers expiry actions of TTL timers (nil: timers only
	// record the event).
	Actions *actions.Service

	jq          sync.Map // expression → *jqeval.Program
	webhookOnce sync.Once
	webhooks    *http.Client
}

// SaveRun mirrors a run record to the store (a local activity).
// A run's final record is followed by its run.finished catalog event.
func (a *Activities) SaveRun(ctx context.Context, r *actions.Run) error {
	if err := a.Store.SaveRun(ctx, r); err != nil {
		return err
	}
	if r.Finished() && a.Actions != nil {
		return a.Actions.RunFinished(ctx, r)
	}
	return nil
}

// WebhookRequest is one signed webhook delivery.
type WebhookRequest struct {
	RunID   string            `json:"runId"`
	Step    string            `json:"step"`
	Action  string            `json:"action"`
	URL     string            `json:"url"`
	Method  string            `json:"method,omitempty"`
	Headers map[string]string `json:"headers,omitempty"` // plans recorded before headers were write-only
	// HeadersFrom locates the step's header values in the store: they
	// are read when sending, never carried through the workflow's history.
	HeadersFrom *actions.HeaderRef `json:"headersFrom,omitempty"`
	// Body is a jq expression over Context; empty sends {"run", "step"}.
	Body    string          `json:"body,omitempty"`
	Context json.RawMessage `json:"context"`
	Run     map[string]any  `json:"run"`
}

// WebhookResult is a delivered webhook's answer. It is the step's output,
// also when the answer fails the step.
type WebhookResult struct {
	Status int `json:"status"`
	// Body is the response body: JSON as received, anything else as a
	// JSON string; at most MaxWebhookOutput bytes (see webhookOutput).
	Body json.RawMessage `json:"body,omitempty"`
	// Truncated marks a body cut to MaxWebhookOutput (kept as a string).
	Truncated bool `json:"truncated,omitempty"`
	Attempt   int  `json:"attempt"`
}

// Webhook delivery limits.
const (
	// MaxWebhookOutput caps the encoded response body a step keeps.
	MaxWebhookOutput = 64 << 10
	// DefaultWebhookTimeout bounds a delivery when Activities does not say.
	DefaultWebhookTimeout = 2 * time.Minute
)

// ErrNoSigningSecret: the run's action has no signing secret (it was
// deleted while the run was in flight), so its webhooks are not sent.
var ErrNoSigningSecret = errors.New("no signing secret")

// Signature is the hex HMAC-SHA256 of timestamp + "." + body.
func Signature(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Webhook delivers a signed webhook: X-Portico-Timestamp,
// X-Portico-Signature and Idempotency-Key "<run id>:<step id>", so a
// receiver can drop the duplicates a retry may cause. 5xx, 408 and 429
// answers are retried, other non-2xx answers fail the step; redirects are
// not followed (a 3xx is the answer). The result rides on the failure as
// its details, so the step output shows the answer either way. A webhook
// whose action has no signing secret is not sent, nor one that would dial
// a link-local, unspecified or multicast address (see webhookClient).
func (a *Activities) Webhook(ctx context.Context, req WebhookRequest) (*WebhookResult, error) {
	var body []byte
	var err error
	if req.Body != "" {
		v, err := a.eval(ctx, req.Body, req.Context)
		if err != nil {
			return nil, temporal.NewNonRetryableApplicationError("webhook body: "+err.Error(), "TemplateError", nil)
		}
		body, err = json.Marshal(v)
		if err != nil {
			return nil, temporal.NewNonRetryableApplicationError("webhook body: "+err.Error(), "TemplateError", nil)
		}
	} else if body, err = json.Marshal(map[string]any{"run": req.Run, "step": req.Step}); err != nil {
		return nil, err
	}
	secret, err := a.Store.Secret(ctx, req.Action)
	switch {
	case errors.Is(err, actions.ErrNotFound) || err == nil && secret == "":
		// Signing with an empty key would let anyone forge the portal's
		// deliveries to this receiver.
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("webhook not sent: action %q has no signing secret (was it deleted?)", req.Action),
			"NoSigningSecret", ErrNoSigningSecret)
	case err != nil:
		return nil, err
	}
	method := req.Method
	if method == "" {
		method = http.MethodPost
	}
	hreq, err := http.NewRequestWithContext(ctx, method, req.URL, bytes.NewReader(body))
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError("webhook request: "+err.Error(), "BadRequest", nil)
	}
	headers := req.Headers
	if req.HeadersFrom != nil {
		if headers, err = a.Store.WebhookHeaders(ctx, *req.HeadersFrom); err != nil {
			if errors.Is(err, actions.ErrNotFound) {
				return nil, temporal.NewNonRetryableApplicationError("webhook headers: "+err.Error(), "HeadersGone", nil)
			}
			return nil, fmt.Errorf("webhook headers: %w", err)
		}
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	for k, v := range headers {
		hreq.Header.Set(k, v)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("User-Agent", "Portico-Webhook/1")
	hreq.Header.Set("X-Portico-Timestamp", ts)
	hreq.Header.Set("X-Portico-Signature", Signature(secret, ts, body))
	hreq.Header.Set("Idempotency-Key", req.RunID+":"+req.Step)
	resp, err := a.webhookClient().Do(hreq)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in our message already
		}
		if errors.Is(err, egress.ErrRefused) {
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("webhook %s: %v", req.URL, err), "AddressRefused", err)
		}
		return nil, fmt.Errorf("webhook %s: %w", req.URL, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, MaxWebhookOutput+1))
	res := &WebhookResult{Status: resp.StatusCode, Attempt: int(activity.GetInfo(ctx).Attempt)}
	res.Body, res.Truncated = webhookOutput(raw, len(raw) > MaxWebhookOutput)
	msg := fmt.Sprintf("webhook %s answered %d", req.URL, resp.StatusCode)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return res, nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return nil, temporal.NewNonRetryableApplicationError(msg+" (redirects are not followed)", "WebhookRedirected", nil, res)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		return nil, temporal.NewApplicationError(msg, "WebhookFailed", res)
	}
	return nil, temporal.NewNonRetryableApplicationError(msg, "WebhookRejected", nil, res)
}

// webhookOutput is a response body as a step output keeps it: JSON as it
// came, anything else (or a body cut at MaxWebhookOutput) as a JSON string
// of its first bytes. Its encoding, HTML-escaped as the run record stores
// it, never exceeds MaxWebhookOutput bytes; truncated reports a cut.
func webhookOutput(raw []byte, truncated bool) (json.RawMessage, bool) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, truncated
	}
	raw = raw[:min(len(raw), MaxWebhookOutput)]
	if !truncated && json.Valid(raw) {
		var b bytes.Buffer
		json.HTMLEscape(&b, raw)
		if b.Len() <= MaxWebhookOutput {
			return raw, false
		}
	}
	for {
		enc, _ := json.Marshal(string(raw)) // invalid UTF-8 becomes U+FFFD
		if len(enc) <= MaxWebhookOutput {
			return enc, truncated
		}
		// Escapes made it longer than the bytes: keep proportionally less.
		raw, truncated = raw[:len(raw)*MaxWebhookOutput/len(enc)], true
	}
}

// webhookClient is the client of every delivery: no redirects followed,
// no proxy (the dial check must see the real destination), and no
// link-local (169.254.0.0/16 with the cloud metadata services, fe80::/10),
// unspecified or multicast address dialed, whatever a name resolves to.
// Loopback and private addresses stay reachable: CI and deploy endpoints
// are often internal, and action definitions are admin-only.
func (a *Activities) webhookClient() *http.Client {
	a.webhookOnce.Do(func() {
		timeout := a.WebhookTimeout
		if timeout <= 0 {
			timeout = DefaultWebhookTimeout
		}
		dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: egress.Control(true)}
		a.webhooks = &http.Client{
			Timeout: timeout,
			Transport: &http.Transport{
				Proxy:                 nil,
				DialContext:           dialer.DialContext,
				ForceAttemptHTTP2:     true,
				MaxIdleConns:          100,
				IdleConnTimeout:       90 * time.Second,
				TLSHandshakeTimeout:   10 * time.Second,
				ExpectContinueTimeout: time.Second,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	})
	return a.webhooks
}

// ActRequest runs a plugin action.
type ActRequest struct {
	Integration string `json:"integration"`
	Action      string `json:"action"`
	// Inputs is a jq expression over Context (empty: the run's inputs).
	Inputs    string          `json:"inputs,omitempty"`
	Blueprint string          `json:"blueprint,omitempty"`
	Entity    string          `json:"entity,omitempty"`
	Context   json.RawMessage `json:"context"`
}

// ActResult is a plugin action's outcome.
type ActResult struct {
	Message  string             `json:"message,omitempty"`
	Logs     []string           `json:"logs,omitempty"`
	Outputs  json.RawMessage    `json:"outputs,omitempty"`
	Affected []actions.Affected `json:"affected,omitempty"`
	Attempt  int                `json:"attempt"`
}

// Act runs a plugin action through the plugin host, which applies the
// entity changes it returns to the catalog.
func (a *Activities) Act(ctx context.Context, req ActRequest) (*ActResult, error) {
	if a.Plugins == nil {
		return nil, temporal.NewNonRetryableApplicationError("no plugin host in this worker", "NoPluginHost", nil)
	}
	var inputs json.RawMessage
	if req.Inputs != "" {
		v, err := a.eval(ctx, req.Inputs, req.Context)
		if err != nil {
			return nil, temporal.NewNonRetryableApplicationError("plugin inputs: "+err.Error(), "TemplateError", nil)
		}
		if inputs, err = json.Marshal(v); err != nil {
			return nil, err
		}
	} else {
		var c struct {
			Inputs json.RawMessage `json:"inputs"`
		}
		_ = json.Unmarshal(req.Context, &c)
		inputs = c.Inputs
	}
	var ref *catalog.Ref
	if req.Entity != "" {
		ref = &catalog.Ref{Blueprint: req.Blueprint, Identifier: req.Entity}
	}
	ctx = catalog.WithActor(ctx, catalog.SystemActor("workflow"))
	res, err := a.Plugins.Act(ctx, req.Integration, req.Action, ref, inputs)
	if err != nil {
		if errors.Is(err, integrations.ErrActionFailed) || errors.Is(err, catalog.ErrNotFound) || errors.Is(err, integrations.ErrNotFound) {
			return nil, temporal.NewNonRetryableApplicationError(err.Error(), "ActionFailed", nil)
		}
		return nil, err
	}
	out := &ActResult{Message: res.Message, Logs: res.Logs, Outputs: res.Outputs, Attempt: int(activity.GetInfo(ctx).Attempt)}
	for _, r := range res.Upserted {
		out.Affected = append(out.Affected, actions.Affected{Blueprint: r.Blueprint, Identifier: r.Identifier, Change: "upserted"})
	}
	for _, r := range res.Deleted {
		out.Affected = append(out.Affected, actions.Affected{Blueprint: r.Blueprint, Identifier: r.Identifier, Change: "deleted"})
	}
	for _, e := range res.Errors {
		out.Logs = append(out.Logs, fmt.Sprintf("write-back error: %+v", e))
	}
	return out, nil
}

// UpdateRequest merge-patches an entity named by jq (Blueprint and
// Identifier, like a wait step's selector) with the object Patch (jq)
// yields over Context, on behalf of the run's requester.
type UpdateRequest struct {
	Blueprint  string          `json:"blueprint"`
	Identifier string          `json:"identifier"`
	Patch      string          `json:"patch"`
	Context    json.RawMessage `json:"context"`
	RunID      string          `json:"runId"`
	Action     string          `json:"action"`
	By         string          `json:"by"`
}

// UpdateResult is the patched entity's identity and whether it changed.
type UpdateResult struct {
	Blueprint  string          `json:"blueprint"`
	Identifier string          `json:"identifier"`
	Patch      json.RawMessage `json:"patch"`
	Attempt    int             `json:"attempt"`
}

// UpdateEntity applies an update step. It is a privileged write, like the
// action's webhooks: the platform team (admins define actions) grants it
// through the action's execute permission, checked when the run was
// triggered, so it writes as the system actor and the requester's own
// catalog permissions do not apply (an action may change what its
// requester may not, which is what actions are for); updatedBy records the
// requester and datasource the action. Built-in blueprints (_user, _team)
// are refused. Patching twice with the same patch is a no-op, so a retried
// attempt changes nothing more.
func (a *Activities) UpdateEntity(ctx context.Context, req UpdateRequest) (*UpdateResult, error) {
	bp, err := a.evalString(ctx, req.Blueprint, req.Context)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError("update blueprint: "+err.Error(), "TemplateError", nil)
	}
	id, err := a.evalString(ctx, req.Identifier, req.Context)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError("update identifier: "+err.Error(), "TemplateError", nil)
	}
	if strings.HasPrefix(bp, "_") {
		// Users and teams carry roles and memberships: an action must not
		// become a way around the access API.
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("update %s/%s: built-in blueprints are changed through the access API, not by actions", bp, id), "UpdateRejected", nil)
	}
	v, err := a.eval(ctx, req.Patch, req.Context)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError("update patch: "+err.Error(), "TemplateError", nil)
	}
	patch, ok := v.(map[string]any)
	if !ok {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("update patch: %q yields %T, not an object", req.Patch, v), "TemplateError", nil)
	}
	actor := catalog.SystemActor(req.By)
	actor.Datasource = "action:" + req.Action
	ctx = catalog.WithActor(ctx, actor)
	if _, err := a.Catalog.PatchEntity(ctx, catalog.Ref{Blueprint: bp, Identifier: id}, patch); err != nil {
		var verr *catalog.ValidationError
		if errors.Is(err, catalog.ErrNotFound) || errors.As(err, &verr) {
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("update %s/%s: %v", bp, id, err), "UpdateRejected", nil)
		}
		return nil, fmt.Errorf("update %s/%s: %w", bp, id, err)
	}
	raw, _ := json.Marshal(patch)
	return &UpdateResult{Blueprint: bp, Identifier: id, Patch: raw, Attempt: int(activity.GetInfo(ctx).Attempt)}, nil
}

// CheckRequest asks whether a rule holds on an entity named by jq.
type CheckRequest struct {
	Blueprint  string          `json:"blueprint"`
	Identifier string          `json:"identifier"`
	Until      *catalog.Rule   `json:"until"`
	Context    json.RawMessage `json:"context"`
}

// CheckResult is one poll of a wait step.
type CheckResult struct {
	Blueprint  string `json:"blueprint"`
	Identifier string `json:"identifier"`
	Exists     bool   `json:"exists"`
	Holds      bool   `json:"holds"`
}

// CheckEntity reads the entity (as the system: the action's definition
// names it) and matches the rule.
func (a *Activities) CheckEntity(ctx context.Context, req CheckRequest) (*CheckResult, error) {
	bp, err := a.evalString(ctx, req.Blueprint, req.Context)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError("wait blueprint: "+err.Error(), "TemplateError", nil)
	}
	id, err := a.evalString(ctx, req.Identifier, req.Context)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError("wait identifier: "+err.Error(), "TemplateError", nil)
	}
	res := &CheckResult{Blueprint: bp, Identifier: id}
	ctx = catalog.WithActor(ctx, catalog.SystemActor("workflow"))
	e, err := a.Catalog.GetEntity(ctx, catalog.Ref{Blueprint: bp, Identifier: id})
	if errors.Is(err, catalog.ErrNotFound) {
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	res.Exists = true
	res.Holds = catalog.Match(req.Until, e, e.Properties, time.Now(), nil)
	return res, nil
}

func (a *Activities) evalString(ctx context.Context, expr string, input json.RawMessage) (string, error) {
	v, err := a.eval(ctx, expr, input)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%q yields %T, not a string", expr, v)
	}
	return s, nil
}

// TemplateLimits bound one evaluation of a workflow's jq (bodies, inputs,
// selectors, patches) over its run's document.
var TemplateLimits = jqeval.Default

// eval runs a jq expression over a JSON document and returns its first
// result.
func (a *Activities) eval(ctx context.Context, expr string, input json.RawMessage) (any, error) {
	prog, ok := a.jq.Load(expr)
	if !ok {
		p, err := jqeval.Compile(expr, TemplateLimits)
		if err != nil {
			return nil, fmt.Errorf("compile %q: %w", jqeval.Truncate(expr), err)
		}
		prog, _ = a.jq.LoadOrStore(expr, p)
	}
	var doc any
	if len(input) > 0 {
		if err := json.Unmarshal(input, &doc); err != nil {
			return nil, fmt.Errorf("jq input: %w", err)
		}
	}
	v, ok, err := prog.(*jqeval.Program).First(ctx, doc)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", jqeval.Truncate(expr), err)
	}
	if !ok {
		return nil, fmt.Errorf("%q yields nothing", jqeval.Truncate(expr))
	}
	return v, nil
}
