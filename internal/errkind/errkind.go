// Package errkind classifies errors by what went wrong, so a package can
// declare, where it defines a sentinel error, how a caller should treat it
// — the HTTP API maps each Kind to a status — without importing that caller.
//
// A sentinel is made with New; an error type declares its kind with a method
// Kind() Kind. An error with no kind is an internal failure.
package errkind

import "strconv"

// Kind is the class of an error.
type Kind uint8

// The kinds of error.
const (
	// Internal is the kind of an error that declares none: a failure the
	// caller cannot act on.
	Internal Kind = iota
	// Malformed input is not well-formed: a syntax error, an unknown,
	// duplicate or mistyped field.
	Malformed
	// Invalid input is well-formed but refused: it fails validation, or the
	// action it asked for declined it.
	Invalid
	// Unauthenticated: no valid credentials, or a delivery that could not
	// be verified.
	Unauthenticated
	// Forbidden: the caller lacks a permission.
	Forbidden
	// NotFound: the thing named does not exist, or does not take this
	// request.
	NotFound
	// NotAllowed: the method is not allowed on the resource.
	NotAllowed
	// Conflict: the current state refuses the request (it exists already,
	// something uses it, it changed concurrently, it has finished…).
	Conflict
	// TooLarge: the input is over its size limit.
	TooLarge
	// Timeout: the input did not arrive in time.
	Timeout
	// RateLimited: the caller is over its rate limit; retry later.
	RateLimited
	// Upstream: a dependency (a plugin) failed while serving the request.
	Upstream
	// Unavailable: a service the request needs is not configured or not
	// reachable.
	Unavailable
)

var names = [...]string{
	Internal:        "internal",
	Malformed:       "malformed",
	Invalid:         "invalid",
	Unauthenticated: "unauthenticated",
	Forbidden:       "forbidden",
	NotFound:        "not found",
	NotAllowed:      "not allowed",
	Conflict:        "conflict",
	TooLarge:        "too large",
	Timeout:         "timeout",
	RateLimited:     "rate limited",
	Upstream:        "upstream",
	Unavailable:     "unavailable",
}

func (k Kind) String() string {
	if int(k) < len(names) {
		return names[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// sentinel is an error made by New.
type sentinel struct {
	kind       Kind
	code, lead string
	msg        string
}

func (e *sentinel) Error() string { return e.msg }

// Kind returns the error's kind.
func (e *sentinel) Kind() Kind { return e.kind }

// Code returns the stable code the error is reported under, or "" for its
// kind's.
func (e *sentinel) Code() string { return e.code }

// Lead returns what a report of the error leads with, or "".
func (e *sentinel) Lead() string { return e.lead }

// Option refines an error made by New.
type Option func(*sentinel)

// Code names the error with a stable snake_case code of its own, reported
// instead of its kind's (a Conflict that is "already_exists").
func Code(code string) Option { return func(e *sentinel) { e.code = code } }

// Lead sets what a report of the error (the API's message) puts before it,
// for context the error's own text lacks ("runs need the Temporal workflow
// engine").
func Lead(lead string) Option { return func(e *sentinel) { e.lead = lead } }

// New returns a sentinel error of kind with text msg, for callers to
// branch on with errors.Is; wrap it with context as usual.
func New(kind Kind, msg string, opts ...Option) error {
	e := &sentinel{kind: kind, msg: msg}
	for _, o := range opts {
		o(e)
	}
	return e
}
