// Package apperr is the error vocabulary shared by every part of kratos-orgs.
//
// A domain error has a coarse Kind, which decides the HTTP status in exactly
// one place (package httpx), and a fine, stable Code that API clients can
// switch on ("already_member", "invalid_email", ...). Anything that is not an
// *Error is an internal error and is never shown to a client verbatim.
package apperr

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error for transport mapping.
type Kind int

const (
	Internal         Kind = iota // a bug or an unexpected failure
	Invalid                      // the request is malformed or breaks a rule
	Unauthorized                 // no or wrong credentials
	Forbidden                    // credentials are fine, the action is not allowed
	NotFound                     // the resource does not exist (or must not be revealed)
	Conflict                     // the request clashes with the current state
	Gone                         // the resource existed and has ended (expired, revoked)
	TooLarge                     // the request body is over the limit
	UnsupportedMedia             // wrong Content-Type
	RateLimited                  // slow down; RetryAfter says for how long
	Unavailable                  // a dependency (Redis, Kratos) is down; retry later
	Unprocessable                // well-formed, but refers to something that does not exist (422)
)

// Error is a domain error with a stable code and an optional detail map.
type Error struct {
	Kind       Kind
	Code       string
	Message    string
	Details    map[string]any
	RetryAfter time.Duration
	Err        error // the cause, for logs; never shown to clients
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of the given kind and code.
func New(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithDetails attaches structured details and returns the same error.
func (e *Error) WithDetails(kv ...any) *Error {
	if e.Details == nil {
		e.Details = make(map[string]any, len(kv)/2)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Details[fmt.Sprint(kv[i])] = kv[i+1]
	}
	return e
}

// Wrap records the cause of a domain error.
func (e *Error) Wrap(err error) *Error { e.Err = err; return e }

// Shorthands for the common kinds.

func Invalidf(code, format string, args ...any) *Error { return New(Invalid, code, format, args...) }
func NotFoundf(code, format string, args ...any) *Error {
	return New(NotFound, code, format, args...)
}
func Conflictf(code, format string, args ...any) *Error {
	return New(Conflict, code, format, args...)
}

// Unavailablef reports a failing dependency; err is kept for the logs.
func Unavailablef(err error, code, format string, args ...any) *Error {
	return New(Unavailable, code, format, args...).Wrap(err)
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// KindOf returns the kind of err (Internal for non-domain errors).
func KindOf(err error) Kind {
	if e, ok := As(err); ok {
		return e.Kind
	}
	return Internal
}

// CodeOf returns the code of err ("internal" for non-domain errors).
func CodeOf(err error) string {
	if e, ok := As(err); ok {
		return e.Code
	}
	return "internal"
}

// DetailString returns a string detail of a domain error ("" if absent).
func DetailString(err error, key string) string {
	if e, ok := As(err); ok {
		s, _ := e.Details[key].(string)
		return s
	}
	return ""
}
