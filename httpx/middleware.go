package httpx

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// RequestObserver is told about every finished request (metrics).
type RequestObserver interface {
	Request(listener, route, method string, status int, d time.Duration)
}

// noStore is the Cache-Control value of every answer, shared by all of
// them (nothing appends to or edits a header's slice in place).
var noStore = []string{"no-store"}

// Common installs request ids, access logs, panic recovery and the body
// limit. The access log names the route pattern, never the raw path: paths
// can hold invitation tokens.
//
// It runs on every request, so it spends little: the request's logger
// (Logger) is only built when something logs through it, and the access
// log line is only put together when its level is enabled.
func Common(listener string, log *slog.Logger, maxBody int64, obs RequestObserver) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		id := c.GetHeader("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		h := c.Writer.Header()
		h["X-Request-Id"] = []string{id}
		// Answers carry invitations, memberships and session-dependent
		// data: no shared or browser cache keeps them.
		h["Cache-Control"] = noStore
		rl := &requestLog{base: log, id: id, listener: listener}
		c.Set(loggerKey, rl)
		if c.Request.ContentLength > maxBody {
			// Refused without reading, in the route's own error format
			// (the API's, or Kratos' for webhooks): the body reader fails.
			c.Request.Body = tooLarge{maxBody}
		} else {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxBody)
		}
		runChain(c, rl)
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		status := c.Writer.Status()
		d := time.Since(start)
		if obs != nil {
			obs.Request(listener, route, c.Request.Method, status, d)
		}
		level := slog.LevelInfo
		if strings.HasPrefix(route, "/health/") {
			level = slog.LevelDebug
		}
		ctx := c.Request.Context()
		if !log.Enabled(ctx, level) {
			return
		}
		attrs := make([]slog.Attr, 0, 7)
		attrs = append(attrs, slog.String("request_id", id), slog.String("listener", listener),
			slog.String("method", c.Request.Method), slog.String("route", route), slog.Int("status", status),
			slog.Float64("duration_ms", float64(d.Microseconds())/1000))
		if code, ok := c.Get(errorCodeKey); ok {
			attrs = append(attrs, slog.Any("error_code", code))
		}
		log.LogAttrs(ctx, level, "request", attrs...)
	}
}

// runChain runs the rest of the chain, answering a panic with a 500.
func runChain(c *gin.Context, rl *requestLog) {
	defer func() {
		if r := recover(); r != nil {
			rl.logger().Error("panic while handling a request", "panic", fmt.Sprint(r))
			if !c.Writer.Written() {
				WriteError(c, fmt.Errorf("panic: %v", r))
			}
		}
	}()
	c.Next()
}

// requestLog is a request's logger, built on first use: most requests
// never log anything but their access line.
type requestLog struct {
	base         *slog.Logger
	id, listener string
	built        atomic.Pointer[slog.Logger]
}

func (r *requestLog) logger() *slog.Logger {
	if l := r.built.Load(); l != nil {
		return l
	}
	l := r.base.With("request_id", r.id, "listener", r.listener)
	r.built.Store(l)
	return l
}

// validRequestID accepts a caller's X-Request-Id of 1 to 128 characters
// from A-Z a-z 0-9 . _ : -, which logs cannot misread.
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch ch := id[i]; {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9',
			ch == '.', ch == '_', ch == ':', ch == '-':
		default:
			return false
		}
	}
	return true
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
		c.Set(adminKeyKey, "key:"+hex.EncodeToString(got[:6]))
		c.Next()
	}
}

const adminKeyKey = "kratos-orgs.admin_key"

// AdminKeyOf names the admin API key a request authenticated with, without
// revealing it: "key:" and the first 12 hex digits of its SHA-256 (what
// the audit trail records; `printf %s KEY | sha256sum` finds it).
func AdminKeyOf(c *gin.Context) string { return c.GetString(adminKeyKey) }

// NotFound answers unmatched routes in the API's error format.
func NotFound(c *gin.Context) {
	WriteError(c, apperr.NotFoundf("route_not_found", "no route %s %s", c.Request.Method, c.Request.URL.Path))
}

// MethodNotAllowed answers a known path with the wrong method.
func MethodNotAllowed(c *gin.Context) {
	c.AbortWithStatusJSON(http.StatusMethodNotAllowed, ErrorBody{ErrorDetail{
		Code: "method_not_allowed", Message: "method " + c.Request.Method + " is not allowed here"}})
}
