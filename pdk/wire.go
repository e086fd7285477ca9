package pdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// HostError is a failure reported by a host function to the plugin.
type HostError struct {
	Function string
	Message  string
}

func (e *HostError) Error() string { return e.Function + ": " + e.Message }

// errorEnvelope is how a host function reports a failure on the wire:
// {"error": "message"} instead of its normal output.
type errorEnvelope struct {
	Error *string `json:"error"`
}

// errorPrefix starts every encoded errorEnvelope: other outputs are not
// scanned twice.
var errorPrefix = []byte(`{"error":`)

// CallFunc calls a host function by name with JSON input and returns its raw
// JSON output. It is the only transport-specific part of a plugin-side Host.
type CallFunc func(ctx context.Context, fn string, input []byte) ([]byte, error)

// NewHostClient returns a Host that encodes each call as JSON, sends it
// through call and decodes the output (or the {"error": …} envelope).
func NewHostClient(call CallFunc) Host { return hostClient{call} }

type hostClient struct{ call CallFunc }

func (c hostClient) do(ctx context.Context, fn string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("%s: encode: %w", fn, err)
	}
	raw, err := c.call(ctx, fn, b)
	if err != nil {
		return fmt.Errorf("%s: %w", fn, err)
	}
	return decodeOutput(fn, raw, out)
}

// decodeOutput decodes the output of host function fn into out (nil:
// ignore it), or returns the error it reports.
func decodeOutput(fn string, raw []byte, out any) error {
	var env errorEnvelope
	if bytes.HasPrefix(raw, errorPrefix) && json.Unmarshal(raw, &env) == nil && env.Error != nil {
		return &HostError{Function: fn, Message: *env.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s: decode: %w", fn, err)
	}
	return nil
}

// httpCall is the wire form of an HTTPRequest. With RawBody the host
// answers with the JSON of the response without its body, a newline, then
// the body's bytes as they are: no base64 and no JSON string to scan, which
// matters in Wasm guests where every loop iteration is costly. Hosts that do
// not know rawBody answer with plain JSON, which the client still accepts.
type httpCall struct {
	HTTPRequest
	RawBody bool `json:"rawBody,omitempty"`
}

func (c hostClient) HTTP(ctx context.Context, req HTTPRequest) (*HTTPResponse, error) {
	b, err := json.Marshal(httpCall{HTTPRequest: req, RawBody: true})
	if err != nil {
		return nil, fmt.Errorf("%s: encode: %w", FnHTTP, err)
	}
	raw, err := c.call(ctx, FnHTTP, b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", FnHTTP, err)
	}
	// JSON output never holds a raw newline: the first one ends the head.
	head, body, framed := bytes.Cut(raw, []byte{'\n'})
	var r httpHead
	if err := decodeOutput(FnHTTP, head, &r); err != nil {
		return nil, err
	}
	if framed {
		r.Body = body
	}
	r.HTTPResponse.fields = r.Fields
	return &r.HTTPResponse, nil
}

// httpHead is the wire form of an HTTPResponse: with a request's Fields, the
// spans of the body's top-level members.
type httpHead struct {
	HTTPResponse
	Fields map[string][2]int `json:"fields,omitempty"`
}

// frameHTTP encodes resp as the head (its JSON without the body), a
// newline and the raw body.
func frameHTTP(resp *HTTPResponse, fields bool) ([]byte, error) {
	head := httpHead{HTTPResponse: *resp}
	head.Body = nil
	if fields {
		head.Fields = fieldSpans(resp.Body)
	}
	b, err := json.Marshal(&head)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(b)+1+len(resp.Body))
	out = append(out, b...)
	out = append(out, '\n')
	return append(out, resp.Body...), nil
}

func (c hostClient) HMAC(ctx context.Context, req HMACRequest) (*HMACResponse, error) {
	var r HMACResponse
	return &r, c.do(ctx, FnHMAC, req, &r)
}

func (c hostClient) Log(ctx context.Context, req LogRequest) error {
	return c.do(ctx, FnLog, req, nil)
}

func (c hostClient) KVGet(ctx context.Context, req KVGetRequest) (*KVGetResponse, error) {
	var r KVGetResponse
	return &r, c.do(ctx, FnKVGet, req, &r)
}

func (c hostClient) KVSet(ctx context.Context, req KVSetRequest) error {
	return c.do(ctx, FnKVSet, req, nil)
}

func (c hostClient) CatalogGet(ctx context.Context, req CatalogGetRequest) (json.RawMessage, error) {
	var r json.RawMessage
	if err := c.do(ctx, FnCatalogGet, req, &r); err != nil {
		return nil, err
	}
	if string(r) == "null" {
		return nil, nil
	}
	return r, nil
}

// Secret calls portico_secret (only native plugins are offered it).
func (c hostClient) Secret(ctx context.Context, req SecretRequest) (*SecretResponse, error) {
	var r SecretResponse
	return &r, c.do(ctx, FnSecret, req, &r)
}

// ErrUnknownFunction is returned for a host function name Portico does not offer.
var ErrUnknownFunction = errors.New("unknown host function")

// ServeHost decodes a host function call, runs it on h and encodes its output.
// A failure of h is encoded as {"error": "message"} so the plugin can handle
// it; only an unknown function name is returned as an error.
func ServeHost(ctx context.Context, h Host, fn string, input []byte) ([]byte, error) {
	var (
		out any
		err error
	)
	switch fn {
	case FnHTTP:
		var call httpCall
		if err = json.Unmarshal(input, &call); err != nil {
			err = fmt.Errorf("decode input: %w", err)
			break
		}
		var resp *HTTPResponse
		if resp, err = h.HTTP(ctx, call.HTTPRequest); err == nil && call.RawBody {
			if resp == nil {
				resp = &HTTPResponse{}
			}
			return frameHTTP(resp, call.Fields)
		}
		if err == nil && resp != nil && call.Fields {
			out = httpHead{HTTPResponse: *resp, Fields: fieldSpans(resp.Body)}
			break
		}
		out = resp
	case FnHMAC:
		out, err = serve(ctx, input, h.HMAC)
	case FnLog:
		out, err = serve(ctx, input, func(ctx context.Context, r LogRequest) (struct{}, error) {
			return struct{}{}, h.Log(ctx, r)
		})
	case FnKVGet:
		out, err = serve(ctx, input, h.KVGet)
	case FnKVSet:
		out, err = serve(ctx, input, func(ctx context.Context, r KVSetRequest) (struct{}, error) {
			return struct{}{}, h.KVSet(ctx, r)
		})
	case FnCatalogGet:
		out, err = serve(ctx, input, h.CatalogGet)
	case FnSecret:
		sh, ok := h.(SecretHost)
		if !ok {
			err = ErrNoSecrets
			break
		}
		out, err = serve(ctx, input, sh.Secret)
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnknownFunction, fn)
	}
	if err != nil {
		msg := err.Error()
		return json.Marshal(errorEnvelope{Error: &msg})
	}
	return json.Marshal(out)
}

func serve[Req, Resp any](ctx context.Context, input []byte, fn func(context.Context, Req) (Resp, error)) (any, error) {
	var req Req
	if len(input) > 0 {
		if err := DecodeInput(input, &req); err != nil {
			return nil, fmt.Errorf("decode input: %w", err)
		}
	}
	return fn(ctx, req)
}

// ErrUnknownExport is returned by Dispatch for an export impl does not have.
var ErrUnknownExport = errors.New("unknown export")

// Dispatch decodes the input of export, calls the matching method of impl and
// encodes its output. Transports without per-export entry points use it.
func Dispatch(ctx context.Context, impl Integration, export string, input []byte) ([]byte, error) {
	var (
		out any
		err error
	)
	switch export {
	case ExportInfo:
		out, err = impl.Info(ctx)
	case ExportResync:
		out, err = serve(ctx, input, impl.Resync)
	case ExportWebhook:
		out, err = serve(ctx, input, impl.Webhook)
	case ExportAct:
		out, err = serve(ctx, input, impl.Act)
	case ExportWatch:
		w, ok := impl.(Watcher)
		if !ok {
			return nil, fmt.Errorf("%w %q", ErrUnknownExport, export)
		}
		out, err = serve(ctx, input, w.Watch)
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownExport, export)
	}
	if err != nil {
		return nil, err
	}
	return EncodeOutput(out)
}
