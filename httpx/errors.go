// Package httpx holds what every HTTP handler of kratos-orgs shares: the
// single place where domain errors become HTTP responses, strict JSON
// decoding, pagination parameters and the middleware (request ids, logs,
// body limits, admin authentication, recovery).
package httpx

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// Status maps an error kind to its HTTP status. This is the only such table.
func Status(k apperr.Kind) int {
	switch k {
	case apperr.Invalid:
		return http.StatusBadRequest
	case apperr.Unauthorized:
		return http.StatusUnauthorized
	case apperr.Forbidden:
		return http.StatusForbidden
	case apperr.NotFound:
		return http.StatusNotFound
	case apperr.Conflict:
		return http.StatusConflict
	case apperr.Gone:
		return http.StatusGone
	case apperr.TooLarge:
		return http.StatusRequestEntityTooLarge
	case apperr.UnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case apperr.RateLimited:
		return http.StatusTooManyRequests
	case apperr.Unavailable:
		return http.StatusServiceUnavailable
	case apperr.Unprocessable:
		return http.StatusUnprocessableEntity
	default:
		return http.StatusInternalServerError
	}
}

// ErrorBody is the JSON shape of every API error.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the content of ErrorBody.
type ErrorDetail struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

// Describe turns any error into status and body; internal errors get a
// generic message (their text may hold internals) and are logged by the
// caller.
func Describe(err error) (int, ErrorBody) {
	var e *apperr.Error
	if !errors.As(err, &e) {
		return http.StatusInternalServerError, ErrorBody{ErrorDetail{Code: "internal", Message: "internal error"}}
	}
	return Status(e.Kind), ErrorBody{ErrorDetail{Code: e.Code, Message: e.Message, Details: e.Details}}
}

// WriteError answers with the error and logs what operators need.
func WriteError(c *gin.Context, err error) {
	status, body := Describe(err)
	SetRetryAfter(c, err)
	if e, ok := apperr.As(err); ok {
		if e.Kind == apperr.Unauthorized && e.Code == "unauthorized" {
			c.Header("WWW-Authenticate", `Bearer realm="kratos-orgs admin"`)
		}
	}
	if status >= 500 {
		Logger(c).Error("request failed", "status", status, "code", body.Error.Code, "err", err)
	}
	c.Set(errorCodeKey, body.Error.Code)
	c.AbortWithStatusJSON(status, body)
}

const errorCodeKey = "kratos-orgs.error-code"

// RecordErrorCode names the error of a response written outside
// WriteError (an HTML page), for the access log.
func RecordErrorCode(c *gin.Context, code string) { c.Set(errorCodeKey, code) }

// SetRetryAfter sets the Retry-After header (whole seconds, rounded up) of
// an error that says when to try again; pages use it too.
func SetRetryAfter(c *gin.Context, err error) {
	if e, ok := apperr.As(err); ok && e.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds()+0.999)))
	}
}

// Handler is a gin handler that returns its error to WriteError.
type Handler func(c *gin.Context) error

// H adapts a Handler.
func H(h Handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := h(c); err != nil {
			WriteError(c, err)
		}
	}
}

// Logger returns the request's logger (with its request id).
func Logger(c *gin.Context) *slog.Logger {
	if l, ok := c.Get(loggerKey); ok {
		if rl, ok := l.(*requestLog); ok {
			return rl.logger()
		}
	}
	return slog.Default()
}

const loggerKey = "kratos-orgs.logger"
