package identity

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// Error is a failed call to Kratos that says whether calling again may
// help, in the outbox's retry vocabulary (outbox.Retryable), so that a job
// returns it as it is: no answer, a timeout, a 5xx, a 408 or 429, or a
// database conflict Kratos reports as 400 are temporary; any other refusal
// (4xx) is not. It wraps what callers inspect: an *apperr.Error
// (Unavailable, Invalid) or a plain error.
type Error struct {
	err        error
	temporary  bool
	retryAfter time.Duration
}

func (e *Error) Error() string { return e.err.Error() }
func (e *Error) Unwrap() error { return e.err }

// Temporary reports whether calling Kratos again may succeed.
func (e *Error) Temporary() bool { return e.temporary }

// RetryAfter is how long Kratos (or a proxy before it) asked to wait in a
// Retry-After header; 0 if it did not.
func (e *Error) RetryAfter() time.Duration { return e.retryAfter }

// Unavailable is the error of a call Kratos did not answer: an apperr
// Unavailable (503 for API clients, code kratos_unavailable) that is
// temporary. Stand-ins for Kratos (identitytest) fail with it too.
func Unavailable(cause error) error {
	return outage(cause, "the identity service (Kratos) is unavailable; try again", 0)
}

func outage(cause error, message string, after time.Duration) *Error {
	return &Error{err: apperr.Unavailablef(cause, "kratos_unavailable", "%s", message), temporary: true, retryAfter: after}
}

// refused is an answer of Kratos that asking again will not change.
func refused(err error) *Error { return &Error{err: err} }

// temporaryStatus reports whether an HTTP status from Kratos may go away
// by itself.
func temporaryStatus(code int) bool {
	return code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout
}

// retryAfter reads a Retry-After header in seconds (the form rate limiters
// and proxies send); 0 without one.
func retryAfter(resp *http.Response) time.Duration {
	if resp == nil {
		return 0
	}
	secs, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After")))
	if err != nil || secs <= 0 {
		return 0
	}
	return time.Duration(secs) * time.Second
}
