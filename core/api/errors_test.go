package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/host/integrations"
	"github.com/portico-dev/portico/host/registry"
	"github.com/portico-dev/portico/internal/errkind"
)

// sentinel is one error the API may be handed, and its answer today.
type sentinel struct {
	name   string // as the source spells it, package-qualified outside core/api
	err    error
	status int
	code   string
	msg    string
}

// sentinels lists every sentinel error of the domain packages and core/api
// (TestSentinelsListed keeps it complete) and the error types with a kind.
var sentinels = []sentinel{
	{"catalog.ErrNotFound", catalog.ErrNotFound, 404, "not_found", "not found"},
	{"catalog.ErrAlreadyExists", catalog.ErrAlreadyExists, 409, "already_exists", "already exists"},
	{"catalog.ErrInUse", catalog.ErrInUse, 409, "in_use", "in use"},
	{"catalog.ErrConflict", catalog.ErrConflict, 409, "conflict", "concurrent modification"},
	{"catalog.ErrForbidden", catalog.ErrForbidden, 403, "forbidden", "forbidden"},
	{"catalog.ErrMalformed", catalog.ErrMalformed, 400, "malformed_request", "malformed"},
	{"access.ErrUnauthenticated", access.ErrUnauthenticated, 401, "unauthorized", "invalid or expired token"},
	{"actions.ErrNotFound", actions.ErrNotFound, 404, "not_found", "not found"},
	{"actions.ErrUnavailable", actions.ErrUnavailable, 503, "temporal_unavailable", "runs need the Temporal workflow engine: workflow engine unavailable"},
	{"actions.ErrNotWaiting", actions.ErrNotWaiting, 409, "not_waiting", "run is not waiting for this approval"},
	{"actions.ErrFinished", actions.ErrFinished, 409, "run_finished", "run already finished"},
	// The actions service answers a bad cursor with a ValidationError; the
	// Store's own error has no kind.
	{"actions.ErrInvalidCursor", actions.ErrInvalidCursor, 500, "internal", "internal error"},
	{"integrations.ErrNotFound", integrations.ErrNotFound, 404, "not_found", "integration not found"},
	{"integrations.ErrWebhookRejected", integrations.ErrWebhookRejected, 401, "webhook_rejected", "webhook rejected"},
	{"integrations.ErrNoWebhook", integrations.ErrNoWebhook, 404, "webhook_not_supported", "integration does not accept webhooks"},
	{"integrations.ErrActionFailed", integrations.ErrActionFailed, 422, "action_failed", "action failed"},
	{"integrations.ErrPluginFailed", integrations.ErrPluginFailed, 502, "plugin_failed", "plugin call failed"},
	{"integrations.ErrOutsideLane", integrations.ErrOutsideLane, 403, "forbidden", "outside the integration's lane"},
	{"integrations.ErrSyncRunning", integrations.ErrSyncRunning, 409, "conflict", "concurrent modification: a resync is already running"},
	{"integrations.ErrNoSchedule", integrations.ErrNoSchedule, 409, "no_schedule", "integration has no resync schedule"},
	{"integrations.ErrSchedulesUnavailable", integrations.ErrSchedulesUnavailable, 503, "temporal_unavailable", "resync schedules need the Temporal workflow engine"},
	{"registry.ErrNotFound", registry.ErrNotFound, 404, "not_found", "plugin not found"},
	{"registry.ErrVersionConflict", registry.ErrVersionConflict, 409, "version_conflict", "plugin version already published with different content"},
	{"ErrUnauthorized", ErrUnauthorized, 401, "unauthorized", "missing or invalid bearer token"},
	{"errRateLimited", errRateLimited, 429, "rate_limited", "rate limit exceeded, retry later"},
	{"errAddressLimited", errAddressLimited, 429, "rate_limited", "too many unauthenticated requests from this address, retry later"},
	{"errBodyTimeout", errBodyTimeout, 408, "request_timeout", "request body not received in time"},

	{"*catalog.ValidationError", &catalog.ValidationError{Message: "invalid entity", Violations: []catalog.Violation{{Path: "/properties/port", Message: "expected integer"}}},
		422, "validation_failed", "invalid entity"},
	{"*integrations.RateLimitError", &integrations.RateLimitError{RetryAfter: 2 * time.Second}, 429, "rate_limited", "webhook rate limit exceeded, retry after 2s"},
	{"*bodyTooLarge", &bodyTooLarge{limit: 1 << 20}, 413, "body_too_large", "request body exceeds the 1 MiB limit"},
	{"*http.MaxBytesError", &http.MaxBytesError{Limit: 10 << 20}, 413, "body_too_large", "request body exceeds the 10 MiB limit"},
	{"*badRequest", &badRequest{msg: "expected a JSON object"}, 400, "malformed_request", "expected a JSON object"},
	{"*routeError", &routeError{kind: errkind.NotFound, msg: "no route GET /nope"}, 404, "not_found", "no route GET /nope"},
	{"*routeError", &routeError{kind: errkind.NotAllowed, msg: "PATCH is not allowed on /api/v1/blueprints"}, 405, "method_not_allowed", "PATCH is not allowed on /api/v1/blueprints"},
}

func TestErrorResponseSentinels(t *testing.T) {
	for _, s := range sentinels {
		t.Run(s.name, func(t *testing.T) {
			status, b := errorResponse(s.err)
			if status != s.status || b.Error.Code != s.code || b.Error.Message != s.msg {
				t.Errorf("got %d %q %q, want %d %q %q", status, b.Error.Code, b.Error.Message, s.status, s.code, s.msg)
			}
			var verr *catalog.ValidationError
			if errors.As(s.err, &verr) != (b.Error.Details != nil) {
				t.Errorf("details %v for %T", b.Error.Details, s.err)
			}
			// Wrapped once or twice, the answer is the same but for the
			// message, which keeps the context.
			for _, wrapped := range []error{fmt.Errorf("get x: %w", s.err), fmt.Errorf("handler: %w", fmt.Errorf("%w: more", s.err))} {
				ws, wb := errorResponse(wrapped)
				if ws != status || wb.Error.Code != b.Error.Code || !slices.Equal(wb.Error.Details, b.Error.Details) {
					t.Errorf("%q: got %d %q %v, want %d %q %v", wrapped, ws, wb.Error.Code, wb.Error.Details, status, b.Error.Code, b.Error.Details)
				}
			}
		})
	}
}

func TestErrorResponseMessages(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		// The message is the whole error, context first.
		{fmt.Errorf("entity service/x: %w", catalog.ErrNotFound), "entity service/x: not found"},
		// A 403 drops the "forbidden: " every permission error starts with.
		{fmt.Errorf("%w: missing permission: update service (roles member)", catalog.ErrForbidden), "missing permission: update service (roles member)"},
		{fmt.Errorf("%w: blueprint x is not in the lane", integrations.ErrOutsideLane), "outside the integration's lane: blueprint x is not in the lane"},
		// A lead goes before the whole message.
		{fmt.Errorf("%w: dial temporal: refused", actions.ErrUnavailable), "runs need the Temporal workflow engine: workflow engine unavailable: dial temporal: refused"},
		// A too-large body and a validation error report their own text.
		{fmt.Errorf("read: %w", &bodyTooLarge{limit: 1 << 20}), "request body exceeds the 1 MiB limit"},
		{fmt.Errorf("put: %w", &catalog.ValidationError{Message: "invalid blueprint"}), "invalid blueprint"},
	} {
		if _, b := errorResponse(tc.err); b.Error.Message != tc.want {
			t.Errorf("%q: message %q, want %q", tc.err, b.Error.Message, tc.want)
		}
	}
}

// TestErrorResponseSeveralKinds covers the errors that carry more than one
// sentinel, with the answers the ordered list of cases gave them before
// kinds: a sentinel defined by wrapping another, and the joins a purge or a
// failed integration delete returns, whatever the order of their parts.
func TestErrorResponseSeveralKinds(t *testing.T) {
	forbidden := fmt.Errorf("%w: missing permission: delete service (role admin)", catalog.ErrForbidden)
	inUse := fmt.Errorf("service/a: %w", catalog.ErrInUse)
	conflict := fmt.Errorf("service/b: update: %w after 10 attempts", catalog.ErrConflict)
	redisDown := errors.New("dial tcp: connection refused")
	for _, tc := range []struct {
		name   string
		parts  []error // joined in every order
		status int
		code   string
	}{
		{"outside lane wraps forbidden", []error{integrations.ErrOutsideLane}, 403, "forbidden"},
		{"sync running wraps conflict", []error{integrations.ErrSyncRunning}, 409, "conflict"},
		{"integration not found wraps catalog's", []error{integrations.ErrNotFound}, 404, "not_found"},
		{"plugin not found wraps catalog's", []error{registry.ErrNotFound}, 404, "not_found"},
		{"purge: forbidden beats in use and conflict", []error{inUse, forbidden, conflict, redisDown}, 403, "forbidden"},
		{"purge: in use beats conflict", []error{conflict, inUse}, 409, "in_use"},
		{"purge: a kind beats none", []error{redisDown, conflict}, 409, "conflict"},
		{"purge: outside the lane beats in use", []error{inUse, fmt.Errorf("x/y: %w", integrations.ErrOutsideLane)}, 403, "forbidden"},
		{"purge: validation beats forbidden", []error{forbidden, &catalog.ValidationError{Message: "invalid"}}, 422, "validation_failed"},
		{"delete: schedule not restored", []error{fmt.Errorf("delete integration x: %w", redisDown),
			fmt.Errorf("restore its schedule: %w", fmt.Errorf("%w: %v", integrations.ErrSchedulesUnavailable, redisDown))}, 503, "temporal_unavailable"},
		{"too large beats all", []error{&bodyTooLarge{limit: 1 << 20}, &catalog.ValidationError{Message: "invalid"}, forbidden}, 413, "body_too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, parts := range permutations(tc.parts) {
				err := fmt.Errorf("purge integration x: %w", errors.Join(parts...))
				status, b := errorResponse(err)
				if status != tc.status || b.Error.Code != tc.code {
					t.Errorf("%q: got %d %q, want %d %q", err, status, b.Error.Code, tc.status, tc.code)
				}
			}
		})
	}
}

func permutations(s []error) [][]error {
	if len(s) <= 1 {
		return [][]error{s}
	}
	var out [][]error
	for i := range s {
		rest := slices.Concat(s[:i:i], s[i+1:])
		for _, p := range permutations(rest) {
			out = append(out, append([]error{s[i]}, p...))
		}
	}
	return out
}

// TestErrorWithoutKindIsInternal proves an error of no kind — or of a kind
// the API has no answer for — reaches the client as a bare 500 that leaks
// nothing, and is logged whole.
func TestErrorWithoutKindIsInternal(t *testing.T) {
	const secret = "redis://admin:hunter2@10.0.0.7:6379"
	for _, err := range []error{
		errors.New("dial " + secret),
		fmt.Errorf("get entity: %w", errors.New("dial "+secret)),
		errkind.New(errkind.Internal, "dial "+secret),
		errkind.New(errkind.Kind(200), "dial "+secret),
		errors.Join(errors.New("dial "+secret), errors.New("also "+secret)),
	} {
		var logged bytes.Buffer
		r := gin.New()
		r.Use(renderErrors(slog.New(slog.NewTextHandler(&logged, nil))))
		r.GET("/x", func(c *gin.Context) { fail(c, err) })
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/x", nil))

		if w.Code != http.StatusInternalServerError {
			t.Errorf("%q: status %d, want 500", err, w.Code)
		}
		var got map[string]map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatalf("body %s: %v", w.Body, err)
		}
		want := map[string]map[string]any{"error": {"code": "internal", "message": "internal error"}}
		if fmt.Sprint(got) != fmt.Sprint(want) || strings.Contains(w.Body.String(), "hunter2") {
			t.Errorf("%q: body %s, want %v", err, w.Body, want)
		}
		if !strings.Contains(logged.String(), "hunter2") {
			t.Errorf("%q: not logged: %s", err, logged.String())
		}
	}
}

func TestAnswersCoverEveryKind(t *testing.T) {
	seen := map[errkind.Kind]bool{}
	for _, a := range answers {
		if seen[a.kind] || a.kind == errkind.Internal {
			t.Errorf("answers lists %v twice, or the internal kind", a.kind)
		}
		seen[a.kind] = true
		if a.status < 400 || a.status == http.StatusInternalServerError || !regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`).MatchString(a.code) {
			t.Errorf("%v: status %d, code %q", a.kind, a.status, a.code)
		}
	}
	for k := errkind.Internal + 1; !strings.HasPrefix(k.String(), "kind("); k++ {
		if !seen[k] {
			t.Errorf("no answer for kind %v", k)
		}
	}
}

// TestSentinelsListed fails when a domain package or core/api defines a
// sentinel error (a package-level Err… variable) that sentinels lacks.
func TestSentinelsListed(t *testing.T) {
	listed := map[string]bool{}
	for _, s := range sentinels {
		listed[s.name] = true
	}
	dirs := map[string]string{
		"../catalog": "catalog.", "../access": "access.", "../actions": "actions.",
		"../../host/integrations": "integrations.", "../../host/registry": "registry.", ".": "",
	}
	name := regexp.MustCompile(`^[Ee]rr[A-Z]`)
	for dir, prefix := range dirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		if len(files) == 0 {
			t.Fatalf("no Go files in %s", dir)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			file, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range file.Decls {
				gd, ok := d.(*ast.GenDecl)
				if !ok || gd.Tok != token.VAR {
					continue
				}
				for _, spec := range gd.Specs {
					for _, id := range spec.(*ast.ValueSpec).Names {
						if name.MatchString(id.Name) && !listed[prefix+id.Name] {
							t.Errorf("%s: sentinel %s%s is not in sentinels", f, prefix, id.Name)
						}
					}
				}
			}
		}
	}
}

// TestHandlersWriteNoErrors fails when core/api writes an error status
// anywhere but renderErrors: a handler reports its error with fail.
func TestHandlersWriteNoErrors(t *testing.T) {
	errorStatus := map[string]bool{}
	for code := 400; code < 600; code++ {
		if text := http.StatusText(code); text != "" {
			errorStatus["Status"+strings.Map(func(r rune) rune {
				if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
					return r
				}
				return -1
			}, text)] = true
		}
	}
	if !errorStatus["StatusNotFound"] || !errorStatus["StatusRequestEntityTooLarge"] {
		t.Fatal("status names not derived")
	}
	writers := map[string]bool{"JSON": true, "AbortWithStatusJSON": true, "AbortWithStatus": true, "AbortWithError": true,
		"Status": true, "String": true, "Data": true, "IndentedJSON": true, "PureJSON": true, "WriteHeader": true}
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			if id, ok := call.Fun.(*ast.Ident); ok && id.Name == "body" && f != "errors.go" {
				t.Errorf("%s: builds an error body; report the error with fail", fset.Position(call.Pos()))
			}
			fn, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !writers[fn.Sel.Name] {
				return true
			}
			if fn.Sel.Name == "AbortWithStatusJSON" || fn.Sel.Name == "AbortWithError" {
				t.Errorf("%s: %s writes its own answer; report the error with fail", fset.Position(call.Pos()), fn.Sel.Name)
				return true
			}
			switch a := call.Args[0].(type) {
			case *ast.SelectorExpr:
				if errorStatus[a.Sel.Name] {
					t.Errorf("%s: %s(%s…) writes an error; report it with fail", fset.Position(call.Pos()), fn.Sel.Name, a.Sel.Name)
				}
			case *ast.BasicLit:
				if n, err := strconv.Atoi(a.Value); err == nil && n >= 400 {
					t.Errorf("%s: %s(%d…) writes an error; report it with fail", fset.Position(call.Pos()), fn.Sel.Name, n)
				}
			}
			return true
		})
	}
}
