package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/internal/errkind"
)

// errorBody is the one error shape of the API (DESIGN §4).
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string              `json:"code"`
	Message string              `json:"message"`
	Details []catalog.Violation `json:"details,omitempty"`
}

// Errors a handler reports that are not catalog errors.
var (
	ErrUnauthorized = errkind.New(errkind.Unauthenticated, "missing or invalid bearer token")
)

// answer is how the API reports a kind of error: its status, and the code
// unless the error names its own.
type answer struct {
	kind   errkind.Kind
	status int
	code   string
}

// answers maps each kind of error to its answer. The order is precedence:
// when one error carries several kinds (a purge's errors.Join of failures),
// the first kind listed here that it carries decides. It follows the list
// of cases it replaced, so those errors keep their answers (see
// TestErrorResponseSeveralKinds).
var answers = []answer{
	{errkind.TooLarge, http.StatusRequestEntityTooLarge, "body_too_large"},
	{errkind.Invalid, http.StatusUnprocessableEntity, "validation_failed"},
	{errkind.Malformed, http.StatusBadRequest, "malformed_request"},
	{errkind.Upstream, http.StatusBadGateway, "upstream_failed"},
	{errkind.Unauthenticated, http.StatusUnauthorized, "unauthorized"},
	{errkind.Forbidden, http.StatusForbidden, "forbidden"},
	{errkind.RateLimited, http.StatusTooManyRequests, "rate_limited"},
	{errkind.Timeout, http.StatusRequestTimeout, "request_timeout"},
	{errkind.Unavailable, http.StatusServiceUnavailable, "unavailable"},
	{errkind.NotFound, http.StatusNotFound, "not_found"},
	{errkind.NotAllowed, http.StatusMethodNotAllowed, "method_not_allowed"},
	{errkind.Conflict, http.StatusConflict, "conflict"},
}

// internal answers an error of no kind; its message hides the error.
var internal = answer{errkind.Internal, http.StatusInternalServerError, "internal"}

// bodyTooLarge reports a body over a route's own limit (413).
type bodyTooLarge struct{ limit int64 }

func (e *bodyTooLarge) Error() string {
	return fmt.Sprintf("request body exceeds the %d MiB limit", e.limit>>20)
}

func (e *bodyTooLarge) Kind() errkind.Kind { return errkind.TooLarge }

// badRequest marks malformed input (400).
type badRequest struct{ msg string }

func (e *badRequest) Error() string      { return e.msg }
func (e *badRequest) Kind() errkind.Kind { return errkind.Malformed }

// routeError is a request no route serves: an unknown path (404) or a
// method its path does not allow (405).
type routeError struct {
	kind errkind.Kind
	msg  string
}

func (e *routeError) Error() string      { return e.msg }
func (e *routeError) Kind() errkind.Kind { return e.kind }

// fail records err for the error middleware and stops the chain.
func fail(c *gin.Context, err error) {
	_ = c.Error(err)
	c.Abort()
}

// renderErrors maps the first error a handler recorded to a status and the
// error body. Unknown errors are logged and reported as a bare 500.
func renderErrors(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		if len(c.Errors) == 0 || c.Writer.Written() {
			return
		}
		err := c.Errors[0].Err
		status, body := errorResponse(err)
		if status == http.StatusInternalServerError {
			log.Error("request failed", "method", c.Request.Method, "path", c.FullPath(), "err", err)
		}
		c.JSON(status, body)
	}
}

// errorResponse is the status and body the API answers err with: by the
// kind of the error in err's tree that decides (see answers), under that
// error's own code if it has one. The message is err's text, led by the
// deciding error's lead; a 403 drops the "forbidden: " prefix, a 422 from
// a catalog.ValidationError carries its violations.
func errorResponse(err error) (int, errorBody) {
	decider, a := deciding(err)
	if a.kind == errkind.Internal {
		return a.status, body(a.code, "internal error", nil)
	}
	code := a.code
	if c, ok := decider.(interface{ Code() string }); ok && c.Code() != "" {
		code = c.Code()
	}
	msg := err.Error()
	if l, ok := decider.(interface{ Lead() string }); ok && l.Lead() != "" {
		msg = l.Lead() + ": " + msg
	}
	var details []catalog.Violation
	switch a.kind {
	case errkind.TooLarge:
		msg = decider.Error()
	case errkind.Forbidden:
		msg = strings.TrimPrefix(msg, catalog.ErrForbidden.Error()+": ")
	case errkind.Invalid:
		if verr, ok := decider.(*catalog.ValidationError); ok {
			msg, details = verr.Message, verr.Violations
		}
	}
	return a.status, body(code, msg, details)
}

// deciding returns the error in err's tree, walked in errors.As order, whose
// kind comes first in answers, with that kind's answer; among several of
// that kind, the first with a code of its own. It returns a nil error and
// the internal answer when nothing in the tree has a kind.
func deciding(err error) (error, answer) {
	var (
		decider error
		best    = internal
		rank    = len(answers)
		coded   bool
	)
	walk(err, func(e error) {
		e, k := kindOf(e)
		if k == errkind.Internal {
			return
		}
		for r, a := range answers {
			if a.kind != k {
				continue
			}
			c, _ := e.(interface{ Code() string })
			hasCode := c != nil && c.Code() != ""
			if r < rank || r == rank && hasCode && !coded {
				decider, best, rank, coded = e, a, r, hasCode
			}
			return
		}
	})
	return decider, best
}

// kindOf is the kind e declares itself (not through what it wraps), with
// e as the API reports it: the standard library's *http.MaxBytesError
// becomes a bodyTooLarge over MaxBodyBytes.
func kindOf(e error) (error, errkind.Kind) {
	switch k := e.(type) {
	case interface{ Kind() errkind.Kind }:
		return e, k.Kind()
	case *http.MaxBytesError:
		return &bodyTooLarge{limit: MaxBodyBytes}, errkind.TooLarge
	}
	return e, errkind.Internal
}

// walk calls f on err and everything it wraps, depth first, in the order
// errors.Is and errors.As visit them.
func walk(err error, f func(error)) {
	for err != nil {
		f(err)
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e, f)
			}
			return
		default:
			return
		}
	}
}

func body(code, msg string, details []catalog.Violation) errorBody {
	return errorBody{Error: errorDetail{Code: code, Message: msg, Details: details}}
}
