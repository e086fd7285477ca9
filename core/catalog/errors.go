package catalog

import (
	"fmt"
	"strings"

	"github.com/portico-dev/portico/internal/errkind"
)

// Sentinel errors callers branch on. Wrap them with context:
// fmt.Errorf("%w: blueprint %q", ErrNotFound, id).
var (
	// ErrNotFound: the blueprint or entity does not exist.
	ErrNotFound = errkind.New(errkind.NotFound, "not found")
	// ErrAlreadyExists: a create met an existing blueprint or entity.
	ErrAlreadyExists = errkind.New(errkind.Conflict, "already exists", errkind.Code("already_exists"))
	// ErrInUse: a delete would break something that points here.
	ErrInUse = errkind.New(errkind.Conflict, "in use", errkind.Code("in_use"))
	// ErrConflict: a concurrent write changed what this write read; retry.
	ErrConflict = errkind.New(errkind.Conflict, "concurrent modification")
	// ErrForbidden: the actor lacks a permission; the wrapping message
	// names it ("missing permission: update service (roles member)").
	ErrForbidden = errkind.New(errkind.Forbidden, "forbidden")
)

// Violation is one reason an input was rejected; Path is a JSON pointer into
// the input (e.g. "/properties/port").
type Violation struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// ValidationError reports why an input is invalid, with one Violation per
// problem found. Nothing was written.
type ValidationError struct {
	Message    string
	Violations []Violation
}

// Kind is errkind.Invalid.
func (e *ValidationError) Kind() errkind.Kind { return errkind.Invalid }

func (e *ValidationError) Error() string {
	if len(e.Violations) == 0 {
		return e.Message
	}
	parts := make([]string, 0, len(e.Violations))
	for _, v := range e.Violations {
		parts = append(parts, v.Path+": "+v.Message)
	}
	return e.Message + ": " + strings.Join(parts, "; ")
}

// violations collects problems while validating; err returns nil when there
// were none.
type violations struct {
	list []Violation
}

func (v *violations) add(path, format string, args ...any) {
	v.list = append(v.list, Violation{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (v *violations) err(message string) error {
	if len(v.list) == 0 {
		return nil
	}
	return &ValidationError{Message: message, Violations: v.list}
}

// pointerEscape escapes one JSON-pointer reference token (RFC 6901).
func pointerEscape(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// pointer joins reference tokens into a JSON pointer.
func pointer(tokens ...string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(pointerEscape(t))
	}
	return b.String()
}
