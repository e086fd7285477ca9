package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/host/integrations"
	"github.com/portico-dev/portico/host/registry"
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
	ErrUnauthorized = errors.New("missing or invalid bearer token")
)

// bodyTooLarge reports a body over a route's own limit (413).
type bodyTooLarge struct{ limit int64 }

func (e *bodyTooLarge) Error() string {
	return fmt.Sprintf("request body exceeds the %d MiB limit", e.limit>>20)
}

// badRequest marks malformed input (400).
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

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

func errorResponse(err error) (int, errorBody) {
	var verr *catalog.ValidationError
	var bad *badRequest
	var tooBig *http.MaxBytesError
	var overLimit *bodyTooLarge
	var limited *integrations.RateLimitError
	switch {
	case errors.As(err, &overLimit):
		return http.StatusRequestEntityTooLarge, body("body_too_large", overLimit.Error(), nil)
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge, body("body_too_large", "request body exceeds the 10 MiB limit", nil)
	case errors.As(err, &verr):
		return http.StatusUnprocessableEntity, body("validation_failed", verr.Message, verr.Violations)
	case errors.As(err, &bad), errors.Is(err, catalog.ErrMalformed):
		return http.StatusBadRequest, body("malformed_request", err.Error(), nil)
	case errors.Is(err, registry.ErrVersionConflict):
		return http.StatusConflict, body("version_conflict", err.Error(), nil)
	case errors.Is(err, integrations.ErrWebhookRejected):
		return http.StatusUnauthorized, body("webhook_rejected", err.Error(), nil)
	case errors.As(err, &limited):
		return http.StatusTooManyRequests, body("rate_limited", err.Error(), nil)
	case errors.Is(err, integrations.ErrNoWebhook):
		return http.StatusNotFound, body("webhook_not_supported", err.Error(), nil)
	case errors.Is(err, integrations.ErrActionFailed):
		return http.StatusUnprocessableEntity, body("action_failed", err.Error(), nil)
	case errors.Is(err, integrations.ErrPluginFailed):
		return http.StatusBadGateway, body("plugin_failed", err.Error(), nil)
	case errors.Is(err, registry.ErrNotFound), errors.Is(err, integrations.ErrNotFound):
		return http.StatusNotFound, body("not_found", err.Error(), nil)
	case errors.Is(err, ErrUnauthorized), errors.Is(err, access.ErrUnauthenticated):
		return http.StatusUnauthorized, body("unauthorized", err.Error(), nil)
	case errors.Is(err, catalog.ErrForbidden):
		return http.StatusForbidden, body("forbidden", strings.TrimPrefix(err.Error(), catalog.ErrForbidden.Error()+": "), nil)
	case errors.Is(err, errRateLimited), errors.Is(err, errAddressLimited):
		return http.StatusTooManyRequests, body("rate_limited", err.Error(), nil)
	case errors.Is(err, errBodyTimeout):
		return http.StatusRequestTimeout, body("request_timeout", err.Error(), nil)
	case errors.Is(err, actions.ErrUnavailable):
		return http.StatusServiceUnavailable, body("temporal_unavailable", "runs need the Temporal workflow engine: "+err.Error(), nil)
	case errors.Is(err, actions.ErrNotWaiting):
		return http.StatusConflict, body("not_waiting", err.Error(), nil)
	case errors.Is(err, actions.ErrFinished):
		return http.StatusConflict, body("run_finished", err.Error(), nil)
	case errors.Is(err, actions.ErrNotFound):
		return http.StatusNotFound, body("not_found", err.Error(), nil)
	case errors.Is(err, catalog.ErrNotFound):
		return http.StatusNotFound, body("not_found", err.Error(), nil)
	case errors.Is(err, catalog.ErrAlreadyExists):
		return http.StatusConflict, body("already_exists", err.Error(), nil)
	case errors.Is(err, catalog.ErrInUse):
		return http.StatusConflict, body("in_use", err.Error(), nil)
	case errors.Is(err, catalog.ErrConflict):
		return http.StatusConflict, body("conflict", err.Error(), nil)
	}
	return http.StatusInternalServerError, body("internal", "internal error", nil)
}

func body(code, msg string, details []catalog.Violation) errorBody {
	return errorBody{Error: errorDetail{Code: code, Message: msg, Details: details}}
}
