package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// syncBuffer is a bytes.Buffer safe for the logger and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// logLines parses the JSON log records written so far.
func logLines(t *testing.T, buf *syncBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func accessLog(t *testing.T, buf *syncBuffer) map[string]any {
	t.Helper()
	for _, l := range logLines(t, buf) {
		if l["msg"] == "request" {
			return l
		}
	}
	t.Fatalf("no access log record in %s", buf.String())
	return nil
}

func decodeBody(t *testing.T, rec *httptest.ResponseRecorder) ErrorBody {
	t.Helper()
	var b ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("response %q is not an error body: %v", rec.Body.String(), err)
	}
	return b
}

func TestStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind apperr.Kind
		want int
	}{
		{apperr.Internal, http.StatusInternalServerError},
		{apperr.Invalid, http.StatusBadRequest},
		{apperr.Unauthorized, http.StatusUnauthorized},
		{apperr.Forbidden, http.StatusForbidden},
		{apperr.NotFound, http.StatusNotFound},
		{apperr.Conflict, http.StatusConflict},
		{apperr.Gone, http.StatusGone},
		{apperr.TooLarge, http.StatusRequestEntityTooLarge},
		{apperr.UnsupportedMedia, http.StatusUnsupportedMediaType},
		{apperr.RateLimited, http.StatusTooManyRequests},
		{apperr.Unavailable, http.StatusServiceUnavailable},
		{apperr.Kind(99), http.StatusInternalServerError},
	}
	// Every kind up to Unavailable is in the table.
	if int(apperr.Unavailable)+2 != len(tests) {
		t.Fatalf("the table covers %d kinds; apperr has %d", len(tests)-1, int(apperr.Unavailable)+1)
	}
	for _, tt := range tests {
		if got := Status(tt.kind); got != tt.want {
			t.Errorf("Status(%d) = %d, want %d", tt.kind, got, tt.want)
		}
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	status, body := Describe(apperr.Conflictf("already_member", "x is already a member").WithDetails("org", "org_1"))
	if status != http.StatusConflict || body.Error.Code != "already_member" || body.Error.Message != "x is already a member" ||
		body.Error.Details["org"] != "org_1" {
		t.Errorf("Describe(conflict) = %d %+v", status, body)
	}
	// A wrapped domain error keeps its kind.
	wrapped := errors.Join(errors.New("context"), apperr.NotFoundf("org_not_found", "no such org"))
	if status, body := Describe(wrapped); status != http.StatusNotFound || body.Error.Code != "org_not_found" {
		t.Errorf("Describe(wrapped) = %d %+v", status, body)
	}
	// Anything else is internal, and its text is not shown.
	status, body = Describe(errors.New("redis: dial tcp 10.0.0.7:6379: password hunter2 rejected"))
	if status != http.StatusInternalServerError || body.Error.Code != "internal" || strings.Contains(body.Error.Message, "hunter2") {
		t.Errorf("Describe(plain error) = %d %+v", status, body)
	}
}

type payload struct {
	Name  string   `json:"name"`
	Count int      `json:"count"`
	Tags  []string `json:"tags"`
	Inner struct {
		Flag bool `json:"flag"`
	} `json:"inner"`
}

func testContext(contentType string, body io.Reader) (*gin.Context, *httptest.ResponseRecorder) {
	rec := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(rec)
	c.Request = httptest.NewRequest(http.MethodPost, "/x", body)
	if contentType != "" {
		c.Request.Header.Set("Content-Type", contentType)
	}
	return c, rec
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	const js = "application/json"
	tests := []struct {
		name        string
		contentType string
		body        string
		wantCode    string // "" for success
		wantStatus  int
		wantField   string
		wantInMsg   string
	}{
		{name: "ok", contentType: js, body: `{"name":"acme","count":3,"tags":["a"],"inner":{"flag":true}}`},
		{name: "charset parameter", contentType: "application/json; charset=utf-8", body: `{"name":"acme"}`},
		{name: "upper-case media type", contentType: "Application/JSON", body: `{"name":"acme"}`},
		{name: "trailing whitespace", contentType: js, body: "{\"name\":\"acme\"}\n\t "},
		{name: "no content type", contentType: "", body: `{}`, wantCode: "unsupported_media_type", wantStatus: 415},
		{name: "text/plain", contentType: "text/plain", body: `{}`, wantCode: "unsupported_media_type", wantStatus: 415},
		{name: "form", contentType: "application/x-www-form-urlencoded", body: `name=acme`, wantCode: "unsupported_media_type", wantStatus: 415},
		{name: "json suffix type", contentType: "application/problem+json", body: `{}`, wantCode: "unsupported_media_type", wantStatus: 415},
		{name: "malformed content type", contentType: "application/json; charset", body: `{}`, wantCode: "unsupported_media_type", wantStatus: 415},
		{name: "empty body", contentType: js, body: "", wantCode: "invalid_json", wantStatus: 400},
		{name: "blank body", contentType: js, body: " \n\t", wantCode: "invalid_json", wantStatus: 400},
		{name: "truncated", contentType: js, body: `{"name":`, wantCode: "invalid_json", wantStatus: 400},
		{name: "syntax error", contentType: js, body: `{"name" "acme"}`, wantCode: "invalid_json", wantStatus: 400, wantInMsg: "byte"},
		{name: "single quotes", contentType: js, body: `{'name':'acme'}`, wantCode: "invalid_json", wantStatus: 400},
		{name: "unknown field", contentType: js, body: `{"name":"acme","colour":"red"}`, wantCode: "unknown_field", wantStatus: 400, wantField: "colour"},
		{name: "unknown nested field", contentType: js, body: `{"inner":{"flag":true,"extra":1}}`, wantCode: "unknown_field", wantStatus: 400, wantField: "extra"},
		{name: "string for int", contentType: js, body: `{"count":"three"}`, wantCode: "invalid_field", wantStatus: 400, wantField: "count", wantInMsg: "count must be a number"},
		{name: "number for string", contentType: js, body: `{"name":5}`, wantCode: "invalid_field", wantStatus: 400, wantField: "name", wantInMsg: "name must be a string"},
		{name: "object for array", contentType: js, body: `{"tags":{}}`, wantCode: "invalid_field", wantStatus: 400, wantField: "tags", wantInMsg: "must be an array"},
		{name: "number for bool", contentType: js, body: `{"inner":{"flag":1}}`, wantCode: "invalid_field", wantStatus: 400, wantField: "inner.flag", wantInMsg: "a boolean"},
		{name: "fraction for int", contentType: js, body: `{"count":1.5}`, wantCode: "invalid_field", wantStatus: 400, wantField: "count"},
		{name: "array for object", contentType: js, body: `[1,2]`, wantCode: "invalid_json", wantStatus: 400, wantInMsg: "JSON object"},
		{name: "string for object", contentType: js, body: `"acme"`, wantCode: "invalid_json", wantStatus: 400},
		{name: "null", contentType: js, body: `null`, wantCode: "invalid_json", wantStatus: 400, wantInMsg: "not null"},
		{name: "null with spaces", contentType: js, body: " null\n", wantCode: "invalid_json", wantStatus: 400, wantInMsg: "not null"},
		{name: "two objects", contentType: js, body: `{"name":"a"}{"name":"b"}`, wantCode: "invalid_json", wantStatus: 400, wantInMsg: "exactly one"},
		{name: "object then number", contentType: js, body: `{"name":"a"} 1`, wantCode: "invalid_json", wantStatus: 400},
		{name: "object then garbage", contentType: js, body: `{"name":"a"}]`, wantCode: "invalid_json", wantStatus: 400},
		{name: "object then closing brace", contentType: js, body: `{"name":"a"}}`, wantCode: "invalid_json", wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := testContext(tt.contentType, strings.NewReader(tt.body))
			var p payload
			err := DecodeJSON(c, &p)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("DecodeJSON: %v", err)
				}
				if p.Name != "acme" {
					t.Errorf("decoded %+v", p)
				}
				return
			}
			e, ok := apperr.As(err)
			if !ok {
				t.Fatalf("err = %v (%T), want an *apperr.Error", err, err)
			}
			status, body := Describe(err)
			if e.Code != tt.wantCode || status != tt.wantStatus {
				t.Errorf("got %d %s (%s), want %d %s", status, e.Code, e.Message, tt.wantStatus, tt.wantCode)
			}
			if tt.wantField != "" && body.Error.Details["field"] != tt.wantField {
				t.Errorf("details.field = %v, want %q (%s)", body.Error.Details["field"], tt.wantField, e.Message)
			}
			if !strings.Contains(e.Message, tt.wantInMsg) {
				t.Errorf("message %q lacks %q", e.Message, tt.wantInMsg)
			}
		})
	}
}

func TestDecodeJSONDecodesValues(t *testing.T) {
	t.Parallel()
	c, _ := testContext("application/json", strings.NewReader(`{"name":"acme","count":3,"tags":["a","b"],"inner":{"flag":true}}`))
	var p payload
	if err := DecodeJSON(c, &p); err != nil {
		t.Fatal(err)
	}
	if p.Name != "acme" || p.Count != 3 || len(p.Tags) != 2 || p.Tags[1] != "b" || !p.Inner.Flag {
		t.Errorf("decoded %+v", p)
	}
}

func TestDecodeOptionalJSON(t *testing.T) {
	t.Parallel()
	c, _ := testContext("", http.NoBody)
	p := payload{Name: "kept"}
	if err := DecodeOptionalJSON(c, &p); err != nil || p.Name != "kept" {
		t.Errorf("absent body: %v, %+v", err, p)
	}
	c, _ = testContext("application/json", strings.NewReader(`{"name":"acme"}`))
	if err := DecodeOptionalJSON(c, &p); err != nil || p.Name != "acme" {
		t.Errorf("present body: %v, %+v", err, p)
	}
	c, _ = testContext("text/plain", strings.NewReader(`x`))
	if err := DecodeOptionalJSON(c, &p); apperr.CodeOf(err) != "unsupported_media_type" {
		t.Errorf("body with a wrong type: %v", err)
	}
	// A body that is there is a JSON object: null and an empty JSON body
	// are 400, not the defaults (issue 9 §7).
	for _, body := range []string{"null", "", " "} {
		c, _ = testContext("application/json", strings.NewReader(body))
		p = payload{Name: "kept"}
		if err := DecodeOptionalJSON(c, &p); apperr.CodeOf(err) != "invalid_json" || p.Name != "kept" {
			t.Errorf("body %q: %v, %+v", body, err, p)
		}
	}
}

// onlyReader hides the concrete type, so the request has no known length
// (as with Transfer-Encoding: chunked).
type onlyReader struct{ io.Reader }

func decodeEngine(maxBody int64, log *slog.Logger) *gin.Engine {
	e := gin.New()
	e.Use(Common("public", log, maxBody, nil))
	e.POST("/x", H(func(c *gin.Context) error {
		var p payload
		if err := DecodeJSON(c, &p); err != nil {
			return err
		}
		c.JSON(http.StatusOK, p)
		return nil
	}))
	return e
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	const limit = 64
	fits := `{"name":"` + strings.Repeat("a", limit-len(`{"name":""}`)) + `"}`
	over := `{"name":"` + strings.Repeat("a", limit) + `"}`
	if len(fits) != limit {
		t.Fatalf("test setup: %d-byte body", len(fits))
	}
	tests := []struct {
		name    string
		body    string
		chunked bool
		want    int
	}{
		{"exactly the limit", fits, false, http.StatusOK},
		{"exactly the limit, chunked", fits, true, http.StatusOK},
		{"content-length over the limit", over, false, http.StatusRequestEntityTooLarge},
		{"chunked over the limit", over, true, http.StatusRequestEntityTooLarge},
		{"chunked far over the limit", strings.Repeat(" ", 10*limit) + "{}", true, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf syncBuffer
			e := decodeEngine(limit, slog.New(slog.NewJSONHandler(&buf, nil)))
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = onlyReader{body}
			}
			req := httptest.NewRequest(http.MethodPost, "/x", body)
			if tt.chunked {
				req.TransferEncoding = []string{"chunked"}
				if req.ContentLength != -1 {
					t.Fatalf("test setup: content length %d", req.ContentLength)
				}
			} else if req.ContentLength != int64(len(tt.body)) {
				t.Fatalf("test setup: content length %d", req.ContentLength)
			}
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body.String())
			}
			if tt.want == http.StatusOK {
				return
			}
			b := decodeBody(t, rec)
			if b.Error.Code != "body_too_large" {
				t.Errorf("code %q, want body_too_large", b.Error.Code)
			}
			if limitDetail, _ := b.Error.Details["limit"].(float64); limitDetail != limit {
				t.Errorf("details.limit = %v, want %d", b.Error.Details["limit"], limit)
			}
			if l := accessLog(t, &buf); l["status"] != float64(413) || l["error_code"] != "body_too_large" {
				t.Errorf("access log %v", l)
			}
		})
	}
}

func adminEngine(keys []string) *gin.Engine {
	e := gin.New()
	e.GET("/admin", AdminAuth(keys), func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	return e
}

func TestAdminAuth(t *testing.T) {
	t.Parallel()
	const (
		key1 = "first-key-0123456789abcdef"
		key2 = "second-key-0123456789abcdef"
	)
	e := adminEngine([]string{key1, key2})
	tests := []struct {
		name   string
		header string // "" for none
		ok     bool
	}{
		{"first key", "Bearer " + key1, true},
		{"second key", "Bearer " + key2, true},
		{"scheme in lower case", "bearer " + key1, true},
		{"missing header", "", false},
		{"scheme only", "Bearer", false},
		{"empty key", "Bearer ", false},
		{"basic scheme", "Basic " + key1, false},
		{"no scheme", key1, false},
		{"wrong key", "Bearer wrong-key-0123456789abcdef", false},
		{"prefix of a key", "Bearer " + key1[:len(key1)-1], false},
		{"key with a suffix", "Bearer " + key1 + "x", false},
		{"two keys", "Bearer " + key1 + key2, false},
		{"key in another case", "Bearer " + strings.ToUpper(key1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodGet, "/admin", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if tt.ok {
				if rec.Code != http.StatusOK || rec.Body.String() != "ok" {
					t.Errorf("status %d %q, want 200 ok", rec.Code, rec.Body.String())
				}
				return
			}
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", rec.Code)
			}
			if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") {
				t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
			}
			if b := decodeBody(t, rec); b.Error.Code != "unauthorized" {
				t.Errorf("code %q, want unauthorized", b.Error.Code)
			}
			if rec.Body.String() == "ok" || strings.Contains(rec.Body.String(), key1) {
				t.Errorf("body %q", rec.Body.String())
			}
		})
	}
}

func TestAdminAuthWithoutKeysRejectsEverything(t *testing.T) {
	t.Parallel()
	e := adminEngine(nil)
	for _, h := range []string{"", "Bearer ", "Bearer x", "Bearer  "} {
		req := httptest.NewRequest(http.MethodGet, "/admin", nil)
		req.Header.Set("Authorization", h)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("Authorization %q: status %d, want 401", h, rec.Code)
		}
	}
}

type observed struct {
	listener, route, method string
	status                  int
}

type fakeObserver struct {
	mu   sync.Mutex
	seen []observed
}

func (f *fakeObserver) Request(listener, route, method string, status int, _ time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, observed{listener, route, method, status})
}

func commonEngine(buf *syncBuffer, obs RequestObserver) *gin.Engine {
	e := gin.New()
	e.Use(Common("public", slog.New(slog.NewJSONHandler(buf, nil)), 1024, obs))
	e.GET("/x/:token", func(c *gin.Context) {
		Logger(c).Info("inside the handler")
		c.String(http.StatusOK, "hello")
	})
	e.GET("/conflict", H(func(c *gin.Context) error { return apperr.Conflictf("already_member", "already a member") }))
	e.GET("/slow-down", H(func(c *gin.Context) error {
		err := apperr.New(apperr.RateLimited, "rate_limited", "slow down")
		err.RetryAfter = 1500 * time.Millisecond
		return err
	}))
	e.GET("/internal", H(func(c *gin.Context) error { return errors.New("redis: password hunter2 rejected") }))
	e.GET("/panic", func(c *gin.Context) { panic("boom: secret hunter2") })
	e.GET("/health/alive", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	e.NoRoute(NotFound)
	return e
}

func serve(e *gin.Engine, method, target string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

func TestCommonRequestID(t *testing.T) {
	t.Parallel()
	generated := `^[0-9a-f]{24}$`
	tests := []struct {
		name, header string
		keep         bool
	}{
		{"well-formed", "req-123_abc.DEF:9", true},
		{"128 characters", strings.Repeat("a", 128), true},
		{"absent", "", false},
		{"with spaces", "req 123", false},
		{"129 characters", strings.Repeat("a", 129), false},
		{"newline", "req\n123", false},
		{"non-ASCII", "réq", false},
		{"angle brackets", "<script>", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf syncBuffer
			e := commonEngine(&buf, nil)
			h := http.Header{}
			if tt.header != "" {
				h["X-Request-Id"] = []string{tt.header}
			}
			rec := serve(e, http.MethodGet, "/x/abc", h)
			got := rec.Header().Get("X-Request-Id")
			if tt.keep {
				if got != tt.header {
					t.Errorf("X-Request-Id = %q, want the client's %q", got, tt.header)
				}
			} else {
				if got == tt.header || !regexp.MustCompile(generated).MatchString(got) {
					t.Errorf("X-Request-Id = %q, want a fresh 24-hex-digit id", got)
				}
			}
			// Both the access log and the handler's own log carry the id.
			lines := logLines(t, &buf)
			if len(lines) != 2 {
				t.Fatalf("%d log lines, want 2: %s", len(lines), buf.String())
			}
			for _, l := range lines {
				if l["request_id"] != got {
					t.Errorf("log record %v has request_id %v, want %q", l["msg"], l["request_id"], got)
				}
				if l["listener"] != "public" {
					t.Errorf("log record %v has listener %v", l["msg"], l["listener"])
				}
			}
		})
	}
}

func TestCommonFreshRequestIDsDiffer(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	e := commonEngine(&buf, nil)
	a := serve(e, http.MethodGet, "/x/a", nil).Header().Get("X-Request-Id")
	b := serve(e, http.MethodGet, "/x/a", nil).Header().Get("X-Request-Id")
	if a == "" || a == b {
		t.Errorf("request ids %q and %q", a, b)
	}
}

func TestCommonAccessLogNamesTheRouteNotThePath(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	obs := &fakeObserver{}
	e := commonEngine(&buf, obs)
	rec := serve(e, http.MethodGet, "/x/SECRET-TOKEN-VALUE?q=SECRET-QUERY-VALUE", nil)
	if rec.Code != http.StatusOK || rec.Body.String() != "hello" {
		t.Fatalf("status %d %q", rec.Code, rec.Body.String())
	}
	if strings.Contains(buf.String(), "SECRET-TOKEN-VALUE") || strings.Contains(buf.String(), "SECRET-QUERY-VALUE") {
		t.Errorf("the log holds the raw path:\n%s", buf.String())
	}
	l := accessLog(t, &buf)
	if l["route"] != "/x/:token" || l["method"] != "GET" || l["status"] != float64(200) || l["level"] != "INFO" {
		t.Errorf("access log %v", l)
	}
	if _, ok := l["duration_ms"].(float64); !ok {
		t.Errorf("access log lacks duration_ms: %v", l)
	}
	if _, ok := l["error_code"]; ok {
		t.Errorf("a success has an error_code: %v", l)
	}
	if len(obs.seen) != 1 || obs.seen[0] != (observed{"public", "/x/:token", "GET", 200}) {
		t.Errorf("observer saw %+v", obs.seen)
	}
}

func TestCommonUnmatchedRoute(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	obs := &fakeObserver{}
	e := commonEngine(&buf, obs)
	rec := serve(e, http.MethodGet, "/nope/SECRET-TOKEN-VALUE", nil)
	if rec.Code != http.StatusNotFound || decodeBody(t, rec).Error.Code != "route_not_found" {
		t.Fatalf("status %d %s", rec.Code, rec.Body.String())
	}
	if strings.Contains(buf.String(), "SECRET-TOKEN-VALUE") {
		t.Errorf("the log holds the raw path:\n%s", buf.String())
	}
	if l := accessLog(t, &buf); l["route"] != "unmatched" || l["error_code"] != "route_not_found" {
		t.Errorf("access log %v", l)
	}
	if len(obs.seen) != 1 || obs.seen[0].route != "unmatched" || obs.seen[0].status != 404 {
		t.Errorf("observer saw %+v", obs.seen)
	}
}

func TestCommonLogsErrorCode(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	e := commonEngine(&buf, nil)
	rec := serve(e, http.MethodGet, "/conflict", nil)
	if rec.Code != http.StatusConflict {
		t.Fatalf("status %d", rec.Code)
	}
	if b := decodeBody(t, rec); b.Error.Code != "already_member" || b.Error.Message != "already a member" {
		t.Errorf("body %+v", b)
	}
	if l := accessLog(t, &buf); l["error_code"] != "already_member" || l["status"] != float64(409) {
		t.Errorf("access log %v", l)
	}
	// Client errors are not logged as failures.
	for _, l := range logLines(t, &buf) {
		if l["level"] == "ERROR" {
			t.Errorf("a 409 logged an error: %v", l)
		}
	}
}

func TestWriteErrorRetryAfter(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	rec := serve(commonEngine(&buf, nil), http.MethodGet, "/slow-down", nil)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "2" {
		t.Errorf("status %d, Retry-After %q; want 429 and 2 (rounded up)", rec.Code, rec.Header().Get("Retry-After"))
	}
}

func TestWriteErrorInternal(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	rec := serve(commonEngine(&buf, nil), http.MethodGet, "/internal", nil)
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d", rec.Code)
	}
	if strings.Contains(rec.Body.String(), "hunter2") {
		t.Errorf("the response shows the internal error: %s", rec.Body.String())
	}
	if b := decodeBody(t, rec); b.Error.Code != "internal" {
		t.Errorf("code %q", b.Error.Code)
	}
	// The operator sees the cause.
	var logged bool
	for _, l := range logLines(t, &buf) {
		if l["level"] == "ERROR" && strings.Contains(l["err"].(string), "hunter2") {
			logged = true
		}
	}
	if !logged {
		t.Errorf("the cause of a 500 was not logged:\n%s", buf.String())
	}
}

func TestCommonRecoversPanics(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	obs := &fakeObserver{}
	e := commonEngine(&buf, obs)
	rec := serve(e, http.MethodGet, "/panic", nil)
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	b := decodeBody(t, rec)
	if b.Error.Code != "internal" || strings.Contains(rec.Body.String(), "hunter2") {
		t.Errorf("body %s", rec.Body.String())
	}
	var sawPanic bool
	for _, l := range logLines(t, &buf) {
		if l["msg"] == "panic while handling a request" && l["level"] == "ERROR" {
			sawPanic = true
		}
	}
	if !sawPanic {
		t.Errorf("the panic was not logged:\n%s", buf.String())
	}
	if l := accessLog(t, &buf); l["status"] != float64(500) || l["route"] != "/panic" {
		t.Errorf("access log %v", l)
	}
	// The server goes on serving.
	if rec := serve(e, http.MethodGet, "/x/a", nil); rec.Code != http.StatusOK {
		t.Errorf("after a panic: status %d", rec.Code)
	}
	if len(obs.seen) != 2 || obs.seen[0].status != 500 {
		t.Errorf("observer saw %+v", obs.seen)
	}
}

func TestCommonHealthIsLoggedAtDebug(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	e := commonEngine(&buf, nil) // an Info-level handler
	if rec := serve(e, http.MethodGet, "/health/alive", nil); rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if buf.String() != "" {
		t.Errorf("a health check was logged at info level: %s", buf.String())
	}
	var debug syncBuffer
	e = gin.New()
	e.Use(Common("admin", slog.New(slog.NewJSONHandler(&debug, &slog.HandlerOptions{Level: slog.LevelDebug})), 1024, nil))
	e.GET("/health/alive", func(c *gin.Context) { c.Status(http.StatusNoContent) })
	serve(e, http.MethodGet, "/health/alive", nil)
	if l := accessLog(t, &debug); l["level"] != "DEBUG" || l["route"] != "/health/alive" {
		t.Errorf("health access log %v", l)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.GET("/x", func(c *gin.Context) {})
	e.NoMethod(MethodNotAllowed)
	rec := serve(e, http.MethodDelete, "/x", nil)
	if rec.Code != http.StatusMethodNotAllowed || decodeBody(t, rec).Error.Code != "method_not_allowed" {
		t.Errorf("status %d %s", rec.Code, rec.Body.String())
	}
}

func TestPage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		query      string
		wantLimit  int
		wantCursor string
		wantCode   string
	}{
		{"", 20, "", ""},
		{"limit=1", 1, "", ""},
		{"limit=100", 100, "", ""},
		{"limit=37&cursor=org_abc", 37, "org_abc", ""},
		{"cursor=" + strings.Repeat("c", 128), 20, strings.Repeat("c", 128), ""},
		{"limit=0", 0, "", "invalid_limit"},
		{"limit=101", 0, "", "invalid_limit"},
		{"limit=-1", 0, "", "invalid_limit"},
		{"limit=abc", 0, "", "invalid_limit"},
		{"limit=1.5", 0, "", "invalid_limit"},
		{"limit=%205", 0, "", "invalid_limit"},
		{"limit=99999999999999999999", 0, "", "invalid_limit"},
		{"cursor=" + strings.Repeat("c", 129), 0, "", "invalid_cursor"},
		{"cursor=a%20b", 0, "", "invalid_cursor"},
		{"cursor=a%0Ab", 0, "", "invalid_cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			c, _ := gin.CreateTestContext(rec)
			c.Request = httptest.NewRequest(http.MethodGet, "/list?"+tt.query, nil)
			cursor, limit, err := Page(c)
			if tt.wantCode == "" {
				if err != nil || limit != tt.wantLimit || cursor != tt.wantCursor {
					t.Errorf("Page = %q, %d, %v; want %q, %d", cursor, limit, err, tt.wantCursor, tt.wantLimit)
				}
				return
			}
			status, body := Describe(err)
			if status != http.StatusBadRequest || body.Error.Code != tt.wantCode {
				t.Errorf("Page err = %v (%d), want 400 %s", err, status, tt.wantCode)
			}
			if body.Error.Details["field"] == nil {
				t.Errorf("error lacks details.field: %+v", body)
			}
		})
	}
}
