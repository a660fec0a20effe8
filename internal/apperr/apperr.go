// Package apperr carries an error's safe client message and HTTP status
// alongside the wrapped detail, which only the logs see.
package apperr

import (
	"errors"
	"net"
	"net/http"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"strings"

	"github.com/konstruct/konstruct/internal/store"
)

// Error is an error a client may be told about.
type Error struct {
	Status  int    // HTTP status
	Code    string // stable machine-readable code, e.g. "validation_failed"
	Message string // safe for clients
	Field   string // the offending input field, when there is one
	URL     string // where to act on it (an upgrade link for plan_limit), when there is one
	Err     error  // the detail, for logs
}

func (e *Error) Error() string {
	msg := e.Code + ": " + e.Message
	if e.Field != "" {
		msg += " (field " + e.Field + ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// New builds an error with a status, code and safe message.
func New(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// Wrap attaches the underlying cause, for logs.
func (e *Error) Wrap(err error) *Error {
	c := *e
	c.Err = err
	return &c
}

// Invalid reports a bad value in a named field.
func Invalid(field, message string) *Error {
	return &Error{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Message: message, Field: field}
}

// BadRequest reports a request that could not be understood.
func BadRequest(code, message string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Message: message}
}

// NotFound reports a resource that does not exist (or is not yours).
func NotFound(what string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "not_found", Message: what + " not found"}
}

// Conflict reports a clash with existing state.
func Conflict(message string) *Error {
	return &Error{Status: http.StatusConflict, Code: "conflict", Message: message}
}

// Unauthorized reports missing or wrong credentials.
func Unauthorized(message string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: message}
}

// Forbidden reports an action the caller's role does not allow.
func Forbidden(message string) *Error {
	return &Error{Status: http.StatusForbidden, Code: "forbidden", Message: message}
}

// TooManyRequests reports a rate limit.
func TooManyRequests(message string) *Error {
	return &Error{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: message}
}

// Unavailable reports a dependency that is down; the client may retry.
func Unavailable(message string) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: message}
}

// From turns any error into an *Error: an *Error passes through, store errors
// map to their statuses, and anything else is an internal error whose detail
// stays in the logs.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var f Fields
	if errors.As(err, &f) && len(f) > 0 {
		return f[0]
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return NotFound("resource").Wrap(err)
	case errors.Is(err, store.ErrConflict):
		return Conflict("it already exists").Wrap(err)
	case errors.Is(err, store.ErrReferenced):
		return Conflict("it is still in use, or refers to something that does not exist").Wrap(err)
	case errors.Is(err, store.ErrInvalid):
		return Invalid("", "a value is out of range or malformed").Wrap(err)
	case errors.Is(err, store.ErrForbidden):
		return NotFound("resource").Wrap(err)
	}
	var netErr *net.OpError
	var connErr *pgconn.ConnectError
	if errors.As(err, &netErr) || errors.As(err, &connErr) || errors.Is(err, syscall.ECONNREFUSED) {
		// Postgres, Redis or another dependency cannot be reached: the
		// request may succeed later, so say so instead of "internal error".
		return Unavailable("a service Konstruct depends on is unavailable; try again shortly").Wrap(err)
	}
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; it has been logged", Err: err}
}

// Fields collects every invalid field of one input, so a form can mark them
// all at once; the JSON API reports the first.
type Fields []*Error

func (f Fields) Error() string {
	msgs := make([]string, len(f))
	for i, e := range f {
		msgs[i] = e.Field + ": " + e.Message
	}
	return "validation failed: " + strings.Join(msgs, "; ")
}

// Add records a problem with field.
func (f *Fields) Add(field, message string) { *f = append(*f, Invalid(field, message)) }

// Err returns nil when nothing was added.
func (f Fields) Err() error {
	if len(f) == 0 {
		return nil
	}
	return f
}

// Message returns the message for field, or "".
func (f Fields) Message(field string) string {
	for _, e := range f {
		if e.Field == field {
			return e.Message
		}
	}
	return ""
}
