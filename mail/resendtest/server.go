// Package resendtest is a local stand-in for Resend's email API, for tests.
// Resend cannot be reached from CI, and a hand-rolled stub that only answers
// 200 would hide exactly what the sender has to get right: error names and
// statuses, retry-after, idempotency replays and conflicts, rate limits. The
// fake follows the documented behaviour of POST /emails and /emails/batch
// (see peers.md §4.1) closely enough to exercise the real SDK against it.
package resendtest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Limits documented by Resend.
const (
	maxRecipients = 50
	maxBatch      = 100
	maxKeyLen     = 256
	keyTTL        = 24 * time.Hour
	maxBody       = 40 << 20
)

// Email is one accepted email, as the server received it.
type Email struct {
	ID, From, Subject, HTML, Text string
	ReplyTo                       string // several reply_to addresses are joined with ", "
	To                            []string
	Tags                          map[string]string
	IdempotencyKey                string
	Received                      time.Time
}

// Failure is an injected answer; see FailNext.
type Failure struct {
	Status        int // 0: no error, only Delay
	Name, Message string
	RetryAfter    string // retry-after header, if not empty
	Delay         time.Duration
}

// RateLimited is the 429 Resend sends when the per-second limit is hit.
func RateLimited(retryAfter string) Failure {
	return Failure{Status: http.StatusTooManyRequests, Name: "rate_limit_exceeded",
		Message: "Too many requests. Please limit the number of requests per second.", RetryAfter: retryAfter}
}

// DailyQuota is the 429 for an exhausted daily quota. Like the real API it
// has no retry-after: retrying before tomorrow cannot succeed.
func DailyQuota() Failure {
	return Failure{Status: http.StatusTooManyRequests, Name: "daily_quota_exceeded",
		Message: "You have reached your daily email sending quota."}
}

// ServerError is a 500.
func ServerError() Failure {
	return Failure{Status: http.StatusInternalServerError, Name: "internal_server_error",
		Message: "An unexpected error occurred."}
}

// Server is a fake Resend API. Its methods are safe for concurrent use.
type Server struct {
	srv    *httptest.Server
	apiKey string
	done   chan struct{} // closed at cleanup, so injected delays end

	mu       sync.Mutex
	now      func() time.Time
	emails   []Email
	requests int
	batches  int // of requests, those to /emails/batch
	keys     map[string]*idempotent
	failures []Failure
	refused  map[string]string // recipient → why validation refuses it
	// Fixed one-second window, which is what ratelimit-reset describes.
	perSecond   int
	windowStart time.Time
	used        int
}

// idempotent is what an Idempotency-Key remembers.
type idempotent struct {
	fingerprint [32]byte // of path and body
	created     time.Time
	inFlight    bool
	body        []byte // the original 200 response
}

// apiError is Resend's error body.
type apiError struct {
	StatusCode int    `json:"statusCode"`
	Name       string `json:"name"`
	Message    string `json:"message"`
}

// New starts a server accepting apiKey; it is closed when the test ends.
func New(t testing.TB, apiKey string) *Server {
	s := &Server{apiKey: apiKey, done: make(chan struct{}), now: time.Now, keys: map[string]*idempotent{}}
	s.srv = httptest.NewServer(s)
	t.Cleanup(func() {
		close(s.done)
		s.srv.Close()
	})
	return s
}

// URL is the base URL with a trailing slash, as the SDK's BaseURL needs.
func (s *Server) URL() string { return s.srv.URL + "/" }

// SetClock replaces time.Now for received times, key expiry and the rate
// limit window; nil restores time.Now. A frozen clock freezes the window too.
func (s *Server) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// SetRateLimit allows perSecond send requests per second; 0 is unlimited.
func (s *Server) SetRateLimit(perSecond int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.perSecond, s.used, s.windowStart = perSecond, 0, time.Time{}
}

// FailNext makes the next n authorized send requests answer f.
func (s *Server) FailNext(n int, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, f)
	}
}

// RefuseRecipient makes validation refuse mail to addr with message, as
// Resend does for an address it deems invalid: a single send answers 422
// validation_error, a strict batch fails whole, a permissive batch lists
// the email in its errors and sends the others.
func (s *Server) RefuseRecipient(addr, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refused == nil {
		s.refused = map[string]string{}
	}
	s.refused[strings.ToLower(addr)] = message
}

// Emails returns a copy of every accepted email, in order.
func (s *Server) Emails() []Email {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Email, len(s.emails))
	for i, e := range s.emails {
		e.To = append([]string(nil), e.To...)
		e.Tags = maps.Clone(e.Tags)
		out[i] = e
	}
	return out
}

// Requests counts POSTs to the send endpoints, whatever their outcome.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// BatchRequests counts POSTs to /emails/batch, whatever their outcome.
func (s *Server) BatchRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.batches
}

// WaitForEmails waits until at least n emails were accepted and returns
// them; it fails the test after timeout. Call it from the test goroutine.
func (s *Server) WaitForEmails(t testing.TB, n int, timeout time.Duration) []Email {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := s.Emails()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("resendtest: %d email(s) accepted after %v, want at least %d (%d send requests received)",
				len(got), timeout, n, s.Requests())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Reset forgets emails, idempotency keys and pending failures.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.emails, s.failures, s.requests, s.batches = nil, nil, 0, 0
	s.keys = map[string]*idempotent{}
}

// ServeHTTP answers like the API: route, authenticate, rate-limit, inject
// failures, then parse, validate, deduplicate and accept.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	batch := r.URL.Path == "/emails/batch"
	s.mu.Lock()
	var e *apiError
	switch {
	case r.URL.Path != "/emails" && !batch:
		e = &apiError{http.StatusNotFound, "not_found", "The requested endpoint does not exist."}
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		e = &apiError{http.StatusMethodNotAllowed, "method_not_allowed", "Method is not allowed for the requested path."}
	default:
		s.requests++
		if batch {
			s.batches++
		}
		e = s.authorize(r.Header.Get("Authorization"))
	}
	// Only authorized send requests spend the budget, but every answer
	// reports it, as the API's headers do.
	if !s.rateLimitLocked(w.Header(), e == nil) {
		e = &apiError{http.StatusTooManyRequests, "rate_limit_exceeded",
			fmt.Sprintf("Too many requests. You can only make %d requests per second.", s.perSecond)}
	}
	var f Failure
	if e == nil && len(s.failures) > 0 {
		f, s.failures = s.failures[0], s.failures[1:]
	}
	s.mu.Unlock()
	if e != nil {
		writeError(w, e)
		return
	}
	if f.Status != 0 {
		s.sleep(f.Delay)
		if f.RetryAfter != "" {
			w.Header().Set("retry-after", f.RetryAfter)
		}
		writeError(w, &apiError{f.Status, f.Name, f.Message})
		return
	}
	status, body := s.send(r, batch, f.Delay)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Server) authorize(header string) *apiError {
	key, ok := strings.CutPrefix(header, "Bearer ")
	switch {
	case !ok || strings.TrimSpace(key) == "":
		return &apiError{http.StatusUnauthorized, "missing_api_key", "Missing API key in the authorization header."}
	case key != s.apiKey:
		return &apiError{http.StatusForbidden, "invalid_api_key", "API key is invalid."}
	}
	return nil
}

// rateLimitLocked sets the ratelimit-* headers and, if take, spends one
// request; it reports false when the budget is exhausted.
func (s *Server) rateLimitLocked(h http.Header, take bool) bool {
	if s.perSecond <= 0 {
		return true
	}
	now := s.now()
	if now.Before(s.windowStart) || !now.Before(s.windowStart.Add(time.Second)) {
		s.windowStart, s.used = now, 0
	}
	ok := !take || s.used < s.perSecond
	if take && ok {
		s.used++
	}
	reset := max(1, int(math.Ceil(s.windowStart.Add(time.Second).Sub(now).Seconds())))
	h.Set("ratelimit-limit", strconv.Itoa(s.perSecond))
	h.Set("ratelimit-remaining", strconv.Itoa(s.perSecond-s.used))
	h.Set("ratelimit-reset", strconv.Itoa(reset))
	if !ok {
		h.Set("retry-after", strconv.Itoa(reset))
	}
	return ok
}

// send handles an authorized request and returns the response to write.
// remember deduplicates by idempotency key. Only successes are
// remembered: a request that failed can be retried with its key and is then
// processed afresh. It returns the new in-flight entry, or (nil, status,
// body) for the answer to give instead.
func (s *Server) remember(key, path string, raw []byte) (*idempotent, int, []byte) {
	fp := sha256.Sum256(append([]byte(path+"\n"), raw...))
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if prev := s.keys[key]; prev != nil && now.Sub(prev.created) < keyTTL {
		switch {
		case prev.inFlight:
			status, body := errorBody(&apiError{http.StatusConflict, "concurrent_idempotent_requests",
				"Same idempotency key used while original request is still in progress."})
			return nil, status, body
		case prev.fingerprint != fp:
			status, body := errorBody(&apiError{http.StatusConflict, "invalid_idempotent_request",
				"Same idempotency key used with a different request payload."})
			return nil, status, body
		default:
			return nil, http.StatusOK, prev.body
		}
	}
	entry := &idempotent{fingerprint: fp, created: now, inFlight: true}
	s.keys[key] = entry
	return entry, 0, nil
}

func (s *Server) send(r *http.Request, batch bool, delay time.Duration) (int, []byte) {
	// Present but empty is an invalid key, not a missing one.
	_, hasKey := r.Header["Idempotency-Key"]
	key := r.Header.Get("Idempotency-Key")
	if hasKey && (len(key) < 1 || len(key) > maxKeyLen) {
		return errorBody(&apiError{http.StatusBadRequest, "invalid_idempotency_key", "The key must be between 1-256 chars."})
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return errorBody(&apiError{http.StatusBadRequest, "validation_error", "Invalid `Content-Type` header: expected `application/json`."})
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return errorBody(&apiError{http.StatusBadRequest, "validation_error", "Could not read the request body."})
	}
	var reqs []request
	if batch {
		err = json.Unmarshal(raw, &reqs)
	} else {
		reqs = make([]request, 1)
		err = json.Unmarshal(raw, &reqs[0])
	}
	if err != nil {
		return errorBody(&apiError{http.StatusBadRequest, "validation_error", "Invalid JSON body: " + err.Error()})
	}

	permissive, invalid, e := s.validate(r, batch, reqs)
	if e != nil {
		return errorBody(e)
	}

	var entry *idempotent
	if hasKey {
		var status int
		var body []byte
		if entry, status, body = s.remember(key, r.URL.Path, raw); entry == nil {
			return status, body
		}
	}

	// A slow request holds its key in flight, which is what makes a
	// client's timeout-and-retry meet concurrent_idempotent_requests.
	s.sleep(delay)

	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []sentID
	for i, q := range reqs {
		if slices.ContainsFunc(invalid, func(e batchError) bool { return e.Index == i }) {
			continue
		}
		em := q.email(newUUID(), key, s.now())
		s.emails = append(s.emails, em)
		ids = append(ids, sentID{em.ID})
	}
	var resp any
	switch {
	case !batch:
		resp = ids[0]
	case permissive:
		resp = struct {
			Data   []sentID     `json:"data"`
			Errors []batchError `json:"errors"`
		}{nonNil(ids), nonNil(invalid)}
	default:
		resp = struct {
			Data []sentID `json:"data"`
		}{ids}
	}
	body, _ := json.Marshal(resp)
	if entry != nil {
		entry.inFlight, entry.body = false, body
	}
	return http.StatusOK, body
}

// refusedRecipient is the validation error of a refused recipient, if any.
func (s *Server) refusedRecipient(to []string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range to {
		if msg, ok := s.refused[strings.ToLower(a)]; ok {
			return &apiError{http.StatusUnprocessableEntity, "validation_error", msg}
		}
	}
	return nil
}

// validate checks every email; strict mode (and a single send) fails on
// the first invalid one, permissive mode lists them.
func (s *Server) validate(r *http.Request, batch bool, reqs []request) (permissive bool, invalid []batchError, _ *apiError) {
	if batch {
		switch mode := r.Header.Get("x-batch-validation"); mode {
		case "", "strict":
		case "permissive":
			permissive = true
		default:
			return false, nil, &apiError{http.StatusBadRequest, "validation_error", "Invalid `x-batch-validation` header: " + mode}
		}
		if len(reqs) == 0 || len(reqs) > maxBatch {
			return false, nil, &apiError{http.StatusUnprocessableEntity, "validation_error",
				fmt.Sprintf("A batch must contain between 1 and %d emails, got %d.", maxBatch, len(reqs))}
		}
	}
	for i, q := range reqs {
		e := q.validate(batch)
		if e == nil {
			e = s.refusedRecipient(q.To)
		}
		switch {
		case e == nil:
		case !batch:
			return false, nil, e
		case !permissive:
			e.Message = fmt.Sprintf("emails[%d]: %s", i, e.Message)
			return false, nil, e
		default:
			invalid = append(invalid, batchError{Index: i, Message: e.Message})
		}
	}
	return permissive, invalid, nil
}

// sleep waits d, or less if the server is shutting down.
func (s *Server) sleep(d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-time.After(d):
	case <-s.done:
	}
}

type sentID struct {
	ID string `json:"id"`
}

type batchError struct {
	Index   int    `json:"index"`
	Message string `json:"message"`
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// request is one email as posted.
type request struct {
	From        string          `json:"from"`
	To          addresses       `json:"to"`
	Subject     string          `json:"subject"`
	ReplyTo     addresses       `json:"reply_to"`
	HTML        string          `json:"html"`
	Text        string          `json:"text"`
	Tags        []tag           `json:"tags"`
	Attachments json.RawMessage `json:"attachments"`
	ScheduledAt string          `json:"scheduled_at"`
}

type tag struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// addresses accepts a string or an array of strings, as the API does.
type addresses []string

func (a *addresses) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		if one == "" {
			*a = nil
		} else {
			*a = addresses{one}
		}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

// validate applies the API's checks, in the API's order.
func (q request) validate(batch bool) *apiError {
	invalid := func(name, msg string) *apiError {
		return &apiError{http.StatusUnprocessableEntity, name, msg}
	}
	if m := missingFields(q); m != "" {
		return invalid("missing_required_field", "Missing required fields: "+m+".")
	}
	if _, err := mail.ParseAddress(q.From); err != nil {
		return invalid("invalid_from_address",
			"Invalid `from` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.")
	}
	if len(q.To) > maxRecipients {
		return invalid("validation_error", fmt.Sprintf("Too many recipients in `to`: %d, the maximum is %d.", len(q.To), maxRecipients))
	}
	if q.HTML == "" && q.Text == "" {
		return invalid("missing_required_field", "Missing `html` or `text` field.")
	}
	for _, field := range []struct {
		name  string
		addrs []string
	}{{"to", q.To}, {"reply_to", q.ReplyTo}} {
		for _, a := range field.addrs {
			if _, err := mail.ParseAddress(a); err != nil {
				return invalid("validation_error", fmt.Sprintf("Invalid `%s` field: %q is not a valid email address.", field.name, a))
			}
		}
	}
	// Tags come back in webhooks, so Resend restricts their alphabet; a
	// tag value with a dot or an @ would fail in production.
	for _, t := range q.Tags {
		if t.Name == "" || !tagSafe(t.Name) || !tagSafe(t.Value) {
			return invalid("validation_error",
				fmt.Sprintf("Invalid tag %q=%q: tags may only contain ASCII letters, numbers, underscores, or dashes.", t.Name, t.Value))
		}
	}
	if batch && (len(bytes.TrimSpace(q.Attachments)) > 0 && string(q.Attachments) != "null" || q.ScheduledAt != "") {
		return invalid("validation_error", "`attachments` and `scheduled_at` are not supported in batch emails.")
	}
	return nil
}

func missingFields(q request) string {
	var m []string
	if q.From == "" {
		m = append(m, "`from`")
	}
	if len(q.To) == 0 {
		m = append(m, "`to`")
	}
	if q.Subject == "" {
		m = append(m, "`subject`")
	}
	return strings.Join(m, ", ")
}

func tagSafe(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return len(s) <= 256
}

func (q request) email(id, key string, now time.Time) Email {
	e := Email{ID: id, From: q.From, Subject: q.Subject, HTML: q.HTML, Text: q.Text,
		ReplyTo: strings.Join(q.ReplyTo, ", "), To: append([]string(nil), q.To...),
		IdempotencyKey: key, Received: now}
	if len(q.Tags) > 0 {
		e.Tags = make(map[string]string, len(q.Tags))
		for _, t := range q.Tags {
			e.Tags[t.Name] = t.Value
		}
	}
	return e
}

func errorBody(e *apiError) (int, []byte) {
	b, _ := json.Marshal(e)
	return e.StatusCode, b
}

func writeError(w http.ResponseWriter, e *apiError) {
	status, body := errorBody(e)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// newUUID returns a random (version 4) UUID, the shape of Resend's ids.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
