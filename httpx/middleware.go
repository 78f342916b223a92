package httpx

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// RequestObserver is told about every finished request (metrics).
type RequestObserver interface {
	Request(listener, route, method string, status int, d time.Duration)
}

// Common installs request ids, access logs, panic recovery and the body
// limit. The access log names the route pattern, never the raw path: paths
// can hold invitation tokens.
func Common(listener string, log *slog.Logger, maxBody int64, obs RequestObserver) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		id := c.GetHeader("X-Request-Id")
		if !requestIDPattern.MatchString(id) {
			id = newRequestID()
		}
		c.Header("X-Request-Id", id)
		// Answers carry invitations, memberships and session-dependent
		// data: no shared or browser cache keeps them.
		c.Header("Cache-Control", "no-store")
		l := log.With("request_id", id, "listener", listener)
		c.Set(loggerKey, l)
		if c.Request.ContentLength > maxBody {
			// Refused without reading, in the route's own error format
			// (the API's, or Kratos' for webhooks): the body reader fails.
			c.Request.Body = tooLarge{maxBody}
		} else {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxBody)
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					l.Error("panic while handling a request", "panic", fmt.Sprint(r))
					if !c.Writer.Written() {
						WriteError(c, fmt.Errorf("panic: %v", r))
					}
				}
			}()
			c.Next()
		}()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		status := c.Writer.Status()
		d := time.Since(start)
		if obs != nil {
			obs.Request(listener, route, c.Request.Method, status, d)
		}
		code, _ := c.Get(errorCodeKey)
		level := slog.LevelInfo
		if strings.HasPrefix(route, "/health/") {
			level = slog.LevelDebug
		}
		attrs := []any{"method", c.Request.Method, "route", route, "status", status, "duration_ms", float64(d.Microseconds()) / 1000}
		if code != nil {
			attrs = append(attrs, "error_code", code)
		}
		l.Log(c.Request.Context(), level, "request", attrs...)
	}
}

// tooLarge is the body of a request whose Content-Length is over the limit.
type tooLarge struct{ limit int64 }

func (t tooLarge) Read([]byte) (int, error) { return 0, &http.MaxBytesError{Limit: t.limit} }
func (t tooLarge) Close() error             { return nil }

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// AdminAuth requires "Authorization: Bearer <key>" with one of keys. Keys
// are compared as SHA-256 digests in constant time, so neither their
// content nor their length leaks through timing.
func AdminAuth(keys []string) gin.HandlerFunc {
	digests := make([][32]byte, len(keys))
	for i, k := range keys {
		digests[i] = sha256.Sum256([]byte(k))
	}
	return func(c *gin.Context) {
		raw := c.GetHeader("Authorization")
		scheme, key, found := strings.Cut(raw, " ")
		if !found || !strings.EqualFold(scheme, "Bearer") || key == "" {
			WriteError(c, apperr.New(apperr.Unauthorized, "unauthorized", "missing bearer API key (Authorization: Bearer <key>)"))
			return
		}
		got := sha256.Sum256([]byte(strings.TrimSpace(key)))
		match := 0
		for _, d := range digests {
			match |= subtle.ConstantTimeCompare(got[:], d[:])
		}
		if match != 1 {
			WriteError(c, apperr.New(apperr.Unauthorized, "unauthorized", "invalid API key"))
			return
		}
		c.Next()
	}
}

// NotFound answers unmatched routes in the API's error format.
func NotFound(c *gin.Context) {
	WriteError(c, apperr.NotFoundf("route_not_found", "no route %s %s", c.Request.Method, c.Request.URL.Path))
}

// MethodNotAllowed answers a known path with the wrong method.
func MethodNotAllowed(c *gin.Context) {
	c.AbortWithStatusJSON(http.StatusMethodNotAllowed, ErrorBody{ErrorDetail{
		Code: "method_not_allowed", Message: "method " + c.Request.Method + " is not allowed here"}})
}
