// Package errs defines the few kinds of error moat distinguishes across its
// edges (HTTP status codes, CLI exit codes). Everything else is a plain
// wrapped error; code wraps one of these kinds with %w and context.
package errs

import (
	"errors"
	"fmt"
	"net/http"
)

// The kinds. Wrap them: fmt.Errorf("container %q: %w", id, errs.ErrNotFound).
var (
	ErrNotFound    = errors.New("not found")
	ErrConflict    = errors.New("conflict")
	ErrInvalid     = errors.New("invalid")
	ErrUnavailable = errors.New("unavailable")
	ErrForbidden   = errors.New("forbidden")
)

// Invalid returns an ErrInvalid error naming the field (a dotted path such as
// "resources.memory") and what is wrong with it.
func Invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// FieldError is an ErrInvalid that names the offending field.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// HTTPStatus maps an error to the status code the API answers with.
func HTTPStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// FromHTTP rebuilds an error of the right kind from a status code and the
// message the server sent, so callers on the other side can use errors.Is.
func FromHTTP(status int, msg string) error {
	var kind error
	switch status {
	case http.StatusBadRequest:
		kind = ErrInvalid
	case http.StatusNotFound:
		kind = ErrNotFound
	case http.StatusConflict:
		kind = ErrConflict
	case http.StatusForbidden:
		kind = ErrForbidden
	case http.StatusServiceUnavailable:
		kind = ErrUnavailable
	default:
		return fmt.Errorf("%s (HTTP %d)", msg, status)
	}
	return &remoteError{msg: msg, kind: kind}
}

type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

// ExitCode maps an error to the CLI's exit status: 0 success, 1 failure,
// 2 usage or invalid input, 3 not found, 4 conflict, 5 unavailable.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrInvalid):
		return 2
	case errors.Is(err, ErrNotFound):
		return 3
	case errors.Is(err, ErrConflict):
		return 4
	case errors.Is(err, ErrUnavailable):
		return 5
	default:
		return 1
	}
}
