package resendtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const key = "re_test_key"

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// call is one raw HTTP request to the fake.
type call struct {
	method, path string
	header       map[string]string // "Authorization" defaults to the right key
	body         string
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (c call) do(t *testing.T, s *Server) reply {
	t.Helper()
	method := c.method
	if method == "" {
		method = http.MethodPost
	}
	path := c.path
	if path == "" {
		path = "emails"
	}
	req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range c.header {
		if v == "-" {
			req.Header.Del(k)
		} else {
			req.Header[http.CanonicalHeaderKey(k)] = []string{v}
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, body}
}

// wantError checks the exact shape of Resend's error body.
func (r reply) wantError(t *testing.T, status int, name string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var got map[string]any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	if len(got) != 3 || got["statusCode"] != float64(status) || got["name"] != name {
		t.Errorf("body = %s, want statusCode %d and name %q", r.body, status, name)
	}
	if msg, _ := got["message"].(string); msg == "" {
		t.Errorf("body %s has no message", r.body)
	}
}

func (r reply) id(t *testing.T) string {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status = %d, body %s", r.status, r.body)
	}
	var v struct{ ID string }
	if err := json.Unmarshal(r.body, &v); err != nil || !uuidRE.MatchString(v.ID) {
		t.Fatalf("body %s: want {\"id\":<uuid>} (%v)", r.body, err)
	}
	return v.ID
}

// email renders a JSON email, with fields overridden or removed (nil).
func email(over map[string]any) string {
	m := map[string]any{
		"from": "Acme <noreply@acme.test>", "to": []string{"ann@example.com"},
		"subject": "Join Acme", "html": "<p>hi</p>", "text": "hi",
	}
	for k, v := range over {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func batchOf(emails ...string) string { return "[" + strings.Join(emails, ",") + "]" }

func manyAddresses(n int) []string {
	var to []string
	for i := range n {
		to = append(to, fmt.Sprintf("u%d@example.com", i))
	}
	return to
}

func TestRejections(t *testing.T) {
	valid := email(nil)
	tests := []struct {
		name   string
		call   call
		status int
		errNam string
	}{
		{"no authorization", call{header: map[string]string{"Authorization": "-"}, body: valid}, 401, "missing_api_key"},
		{"empty bearer", call{header: map[string]string{"Authorization": "Bearer "}, body: valid}, 401, "missing_api_key"},
		{"basic auth", call{header: map[string]string{"Authorization": "Basic " + key}, body: valid}, 401, "missing_api_key"},
		{"wrong key", call{header: map[string]string{"Authorization": "Bearer re_other"}, body: valid}, 403, "invalid_api_key"},
		{"unknown path", call{path: "domains", body: valid}, 404, "not_found"},
		{"get emails", call{method: http.MethodGet}, 405, "method_not_allowed"},
		{"put batch", call{method: http.MethodPut, path: "emails/batch", body: "[]"}, 405, "method_not_allowed"},
		{"text content type", call{header: map[string]string{"Content-Type": "text/plain"}, body: valid}, 400, "validation_error"},
		{"no content type", call{header: map[string]string{"Content-Type": "-"}, body: valid}, 400, "validation_error"},
		{"malformed json", call{body: `{"from":`}, 400, "validation_error"},
		{"array to single", call{body: batchOf(valid)}, 400, "validation_error"},
		{"empty idempotency key", call{header: map[string]string{"Idempotency-Key": ""}, body: valid}, 400, "invalid_idempotency_key"},
		{"long idempotency key", call{header: map[string]string{"Idempotency-Key": strings.Repeat("k", 257)}, body: valid}, 400, "invalid_idempotency_key"},
		{"missing from", call{body: email(map[string]any{"from": nil})}, 422, "missing_required_field"},
		{"missing to", call{body: email(map[string]any{"to": nil})}, 422, "missing_required_field"},
		{"empty to", call{body: email(map[string]any{"to": []string{}})}, 422, "missing_required_field"},
		{"missing subject", call{body: email(map[string]any{"subject": nil})}, 422, "missing_required_field"},
		{"bad from", call{body: email(map[string]any{"from": "Acme noreply@acme.test"})}, 422, "invalid_from_address"},
		{"51 recipients", call{body: email(map[string]any{"to": manyAddresses(51)})}, 422, "validation_error"},
		{"no body", call{body: email(map[string]any{"html": nil, "text": ""})}, 422, "missing_required_field"},
		{"bad to", call{body: email(map[string]any{"to": []string{"ann@example.com", "bob"}})}, 422, "validation_error"},
		{"bad reply_to", call{body: email(map[string]any{"reply_to": "nobody"})}, 422, "validation_error"},
		{"bad tag", call{body: email(map[string]any{"tags": []map[string]string{{"name": "to", "value": "ann@example.com"}}})}, 422, "validation_error"},
		{"empty batch", call{path: "emails/batch", body: "[]"}, 422, "validation_error"},
		{"101 emails", call{path: "emails/batch", body: batchOf(slices.Repeat([]string{valid}, 101)...)}, 422, "validation_error"},
		{"strict batch", call{path: "emails/batch", body: batchOf(valid, email(map[string]any{"subject": nil}))}, 422, "missing_required_field"},
		{"explicit strict", call{path: "emails/batch", header: map[string]string{"x-batch-validation": "strict"},
			body: batchOf(valid, email(map[string]any{"to": "x"}))}, 422, "validation_error"},
		{"batch attachments", call{path: "emails/batch", body: batchOf(email(map[string]any{"attachments": []map[string]string{{"path": "https://x.test/a.pdf"}}}))}, 422, "validation_error"},
		{"batch scheduled_at", call{path: "emails/batch", body: batchOf(email(map[string]any{"scheduled_at": "in 1 min"}))}, 422, "validation_error"},
		{"batch mode", call{path: "emails/batch", header: map[string]string{"x-batch-validation": "lenient"}, body: batchOf(valid)}, 400, "validation_error"},
		{"object to batch", call{path: "emails/batch", body: valid}, 400, "validation_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t, key)
			tt.call.do(t, s).wantError(t, tt.status, tt.errNam)
			if n := len(s.Emails()); n != 0 {
				t.Errorf("%d emails recorded", n)
			}
		})
	}
}

func TestSendRecordsEmail(t *testing.T) {
	s := New(t, key)
	start := time.Now()
	id := call{header: map[string]string{"Idempotency-Key": "invite/1"}, body: email(map[string]any{
		"to":       "Ann <ann@example.com>", // a plain string is accepted too
		"reply_to": []string{"a@acme.test", "b@acme.test"},
		"tags":     []map[string]string{{"name": "kind", "value": "org_invite"}, {"name": "org_id", "value": "o-1"}},
	})}.do(t, s).id(t)
	got := s.Emails()
	if len(got) != 1 {
		t.Fatalf("got %d emails", len(got))
	}
	e := got[0]
	want := Email{ID: id, From: "Acme <noreply@acme.test>", Subject: "Join Acme", HTML: "<p>hi</p>", Text: "hi",
		ReplyTo: "a@acme.test, b@acme.test", To: []string{"Ann <ann@example.com>"},
		Tags: map[string]string{"kind": "org_invite", "org_id": "o-1"}, IdempotencyKey: "invite/1", Received: e.Received}
	if fmt.Sprint(e) != fmt.Sprint(want) {
		t.Errorf("email = %+v\nwant    %+v", e, want)
	}
	if e.Received.Before(start) {
		t.Errorf("Received = %v", e.Received)
	}
	// The copy is the caller's own.
	got[0].To[0], got[0].Tags["kind"] = "x", "x"
	if e := s.Emails()[0]; e.To[0] != "Ann <ann@example.com>" || e.Tags["kind"] != "org_invite" {
		t.Error("Emails shares its slices or maps")
	}
	// Exactly 50 recipients is fine; only html or only text is fine.
	call{body: email(map[string]any{"to": manyAddresses(50), "html": nil})}.do(t, s).id(t)
	call{body: email(map[string]any{"text": nil})}.do(t, s).id(t)
	if s.Requests() != 3 {
		t.Errorf("Requests = %d", s.Requests())
	}
}

func TestIdempotency(t *testing.T) {
	s := New(t, key)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	k := map[string]string{"Idempotency-Key": "invite/42/1"}
	body := email(nil)

	first := call{header: k, body: body}.do(t, s)
	replay := call{header: k, body: body}.do(t, s)
	if replay.status != first.status || string(replay.body) != string(first.body) {
		t.Errorf("replay = %d %s, want %d %s", replay.status, replay.body, first.status, first.body)
	}
	call{header: k, body: email(map[string]any{"subject": "Other"})}.do(t, s).wantError(t, 409, "invalid_idempotent_request")
	// The same body on the other endpoint is another payload.
	call{path: "emails/batch", header: k, body: batchOf(body)}.do(t, s).wantError(t, 409, "invalid_idempotent_request")
	if n, r := len(s.Emails()), s.Requests(); n != 1 || r != 4 {
		t.Fatalf("emails = %d, requests = %d; want 1 and 4", n, r)
	}

	// A failed first attempt is not remembered: the retry goes through.
	s.FailNext(1, ServerError())
	k2 := map[string]string{"Idempotency-Key": "invite/43/1"}
	call{header: k2, body: body}.do(t, s).wantError(t, 500, "internal_server_error")
	call{header: k2, body: body}.do(t, s).id(t)

	// Keys are kept 24 hours.
	now = now.Add(24*time.Hour - time.Second)
	if r := (call{header: k, body: body}).do(t, s); string(r.body) != string(first.body) {
		t.Errorf("replay before expiry = %s", r.body)
	}
	now = now.Add(time.Second)
	if id := (call{header: k, body: body}).do(t, s).id(t); id == first.id(t) {
		t.Error("key replayed after 24h")
	}
	if n := len(s.Emails()); n != 3 {
		t.Errorf("emails = %d, want 3", n)
	}

	// One key covers a whole batch.
	kb := map[string]string{"Idempotency-Key": "bulk/7"}
	b1 := call{path: "emails/batch", header: kb, body: batchOf(body, body)}.do(t, s)
	b2 := call{path: "emails/batch", header: kb, body: batchOf(body, body)}.do(t, s)
	if b1.status != 200 || string(b1.body) != string(b2.body) {
		t.Errorf("batch replay = %s, want %s", b2.body, b1.body)
	}
	if got := s.Emails(); len(got) != 5 || got[4].IdempotencyKey != "bulk/7" {
		t.Errorf("emails = %+v", got)
	}
}

func (s *Server) inFlight(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[key] != nil && s.keys[key].inFlight
}

func TestConcurrentIdempotentRequests(t *testing.T) {
	s := New(t, key)
	s.FailNext(1, Failure{Delay: 300 * time.Millisecond}) // slow success
	k := map[string]string{"Idempotency-Key": "invite/9/1"}
	first := make(chan reply, 1)
	go func() { first <- call{header: k, body: email(nil)}.do(t, s) }()
	for !s.inFlight("invite/9/1") {
		time.Sleep(time.Millisecond)
	}
	call{header: k, body: email(nil)}.do(t, s).wantError(t, 409, "concurrent_idempotent_requests")
	// Even with another payload, in flight is what is reported.
	call{header: k, body: email(map[string]any{"subject": "x"})}.do(t, s).wantError(t, 409, "concurrent_idempotent_requests")
	id := (<-first).id(t)
	if again := (call{header: k, body: email(nil)}).do(t, s).id(t); again != id {
		t.Errorf("after settling: id %s, want %s", again, id)
	}
	if len(s.Emails()) != 1 {
		t.Errorf("emails = %d", len(s.Emails()))
	}
}

func TestRateLimit(t *testing.T) {
	s := New(t, key)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.SetClock(func() time.Time { return now })

	if r := (call{body: email(nil)}).do(t, s); r.header.Get("ratelimit-limit") != "" {
		t.Errorf("ratelimit headers without a limit: %v", r.header)
	}
	s.SetRateLimit(2)
	tests := []struct {
		name      string
		advance   time.Duration
		call      call
		status    int
		remaining string
		reset     string
	}{
		{"first", 0, call{body: email(nil)}, 200, "1", "1"},
		{"unauthorized is not counted", 0, call{header: map[string]string{"Authorization": "-"}, body: email(nil)}, 401, "1", "1"},
		{"invalid still counts", 100 * time.Millisecond, call{body: "{"}, 400, "0", "1"},
		{"over", 0, call{body: email(nil)}, 429, "0", "1"},
		{"next window", 900 * time.Millisecond, call{body: email(nil)}, 200, "1", "1"},
	}
	for _, tt := range tests {
		now = now.Add(tt.advance)
		r := tt.call.do(t, s)
		if r.status != tt.status || r.header.Get("ratelimit-limit") != "2" ||
			r.header.Get("ratelimit-remaining") != tt.remaining || r.header.Get("ratelimit-reset") != tt.reset {
			t.Errorf("%s: %d limit=%q remaining=%q reset=%q, want %d 2 %s %s; body %s", tt.name, r.status,
				r.header.Get("ratelimit-limit"), r.header.Get("ratelimit-remaining"), r.header.Get("ratelimit-reset"),
				tt.status, tt.remaining, tt.reset, r.body)
		}
		if r.status == 429 {
			r.wantError(t, 429, "rate_limit_exceeded")
			if ra := r.header.Get("retry-after"); ra != "1" {
				t.Errorf("retry-after = %q", ra)
			}
		}
	}
	if n := len(s.Emails()); n != 3 { // one before the limit, two within it
		t.Errorf("emails = %d", n)
	}
	s.SetRateLimit(0)
	if r := (call{body: email(nil)}).do(t, s); r.status != 200 || r.header.Get("ratelimit-limit") != "" {
		t.Errorf("after removing the limit: %d %v", r.status, r.header)
	}
}

func TestFailNext(t *testing.T) {
	tests := []struct {
		name       string
		f          Failure
		status     int
		errName    string
		retryAfter string
	}{
		{"rate limited", RateLimited("7"), 429, "rate_limit_exceeded", "7"},
		{"daily quota", DailyQuota(), 429, "daily_quota_exceeded", ""},
		{"server error", ServerError(), 500, "internal_server_error", ""},
		{"custom", Failure{Status: 451, Name: "security_error", Message: "no"}, 451, "security_error", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t, key)
			s.FailNext(2, tt.f)
			// A request rejected before authorization does not use one up.
			call{header: map[string]string{"Authorization": "-"}, body: email(nil)}.do(t, s).wantError(t, 401, "missing_api_key")
			for range 2 {
				r := call{path: "emails/batch", body: batchOf(email(nil))}.do(t, s)
				r.wantError(t, tt.status, tt.errName)
				if _, ok := r.header["Retry-After"]; ok != (tt.retryAfter != "") || r.header.Get("retry-after") != tt.retryAfter {
					t.Errorf("retry-after = %v, want %q", r.header["Retry-After"], tt.retryAfter)
				}
			}
			call{body: email(nil)}.do(t, s).id(t)
			if n, r := len(s.Emails()), s.Requests(); n != 1 || r != 4 {
				t.Errorf("emails = %d, requests = %d; want 1 and 4", n, r)
			}
		})
	}

	t.Run("delay", func(t *testing.T) {
		s := New(t, key)
		s.FailNext(1, Failure{Delay: 100 * time.Millisecond})
		s.FailNext(1, Failure{Status: 500, Name: "application_error", Message: "slow", Delay: 100 * time.Millisecond})
		start := time.Now()
		call{body: email(nil)}.do(t, s).id(t)
		call{body: email(nil)}.do(t, s).wantError(t, 500, "application_error")
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Errorf("took %v, want ≥ 200ms", d)
		}
	})

	t.Run("reset", func(t *testing.T) {
		s := New(t, key)
		call{header: map[string]string{"Idempotency-Key": "k"}, body: email(nil)}.do(t, s).id(t)
		s.FailNext(1, ServerError())
		s.Reset()
		if len(s.Emails()) != 0 || s.Requests() != 0 {
			t.Fatal("Reset kept emails or requests")
		}
		// Neither the failure nor the key survive: another payload is accepted.
		call{header: map[string]string{"Idempotency-Key": "k"}, body: email(map[string]any{"subject": "x"})}.do(t, s).id(t)
	})
}

func TestBatch(t *testing.T) {
	valid, bad := email(nil), email(map[string]any{"to": []string{"nope"}})
	t.Run("strict", func(t *testing.T) {
		s := New(t, key)
		r := call{path: "emails/batch", body: batchOf(valid, email(map[string]any{"to": "bob@example.com"}))}.do(t, s)
		var got struct {
			Data   []struct{ ID string }
			Errors json.RawMessage
		}
		if err := json.Unmarshal(r.body, &got); err != nil || r.status != 200 || len(got.Data) != 2 || got.Errors != nil {
			t.Fatalf("%d %s", r.status, r.body)
		}
		emails := s.Emails()
		if len(emails) != 2 || emails[0].ID != got.Data[0].ID || emails[1].ID != got.Data[1].ID || emails[1].To[0] != "bob@example.com" {
			t.Errorf("emails = %+v, response %s", emails, r.body)
		}
	})
	t.Run("permissive", func(t *testing.T) {
		s := New(t, key)
		h := map[string]string{"x-batch-validation": "permissive"}
		r := call{path: "emails/batch", header: h, body: batchOf(valid, bad, valid, email(map[string]any{"subject": nil}))}.do(t, s)
		var got struct {
			Data   []struct{ ID string }
			Errors []struct {
				Index   int
				Message string
			}
		}
		if err := json.Unmarshal(r.body, &got); err != nil || r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if len(got.Data) != 2 || len(got.Errors) != 2 || got.Errors[0].Index != 1 || got.Errors[1].Index != 3 ||
			got.Errors[0].Message == "" {
			t.Errorf("response %s", r.body)
		}
		if n := len(s.Emails()); n != 2 {
			t.Errorf("emails = %d", n)
		}
		// All invalid is still a 200, with nothing sent.
		r = call{path: "emails/batch", header: h, body: batchOf(bad)}.do(t, s)
		if r.status != 200 || string(r.body) != `{"data":[],"errors":[{"index":0,"message":"Invalid `+"`to`"+` field: \"nope\" is not a valid email address."}]}` {
			t.Errorf("all invalid: %d %s", r.status, r.body)
		}
	})
}

// fatalTB records Fatalf and stops the goroutine, like testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestWaitForEmails(t *testing.T) {
	s := New(t, key)
	go func() {
		time.Sleep(20 * time.Millisecond)
		for range 2 {
			call{body: email(nil)}.do(t, s)
		}
	}()
	if got := s.WaitForEmails(t, 2, 5*time.Second); len(got) != 2 {
		t.Errorf("got %d", len(got))
	}

	ft := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.WaitForEmails(ft, 3, 20*time.Millisecond)
	}()
	<-done
	if !strings.Contains(ft.msg, "2 email(s) accepted") || !strings.Contains(ft.msg, "want at least 3") {
		t.Errorf("message = %q", ft.msg)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := New(t, key)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			h := map[string]string{"Idempotency-Key": fmt.Sprint("k", i%5)}
			r := call{header: h, body: email(nil)}.do(t, s)
			if r.status != 200 && r.status != 409 {
				t.Errorf("status %d %s", r.status, r.body)
			}
			s.Emails()
			s.Requests()
		})
	}
	wg.Wait()
	if n := len(s.Emails()); n != 5 {
		t.Errorf("emails = %d, want one per key", n)
	}
}

// TestBatchIdempotencyAndFaults: one key covers a whole batch (the same
// body replays the first answer, another body is 409), injected failures
// and refused recipients apply to batches, and batch calls are counted.
func TestBatchIdempotencyAndFaults(t *testing.T) {
	s := New(t, key)
	s.RefuseRecipient("bad@example.com", "This address is refused.")
	h := map[string]string{"x-batch-validation": "permissive", "Idempotency-Key": "batch/1"}
	body := batchOf(email(nil), email(map[string]any{"to": "bad@example.com"}), email(map[string]any{"to": "bob@example.com"}))
	s.FailNext(1, ServerError())
	call{path: "emails/batch", header: h, body: body}.do(t, s).wantError(t, 500, "internal_server_error")
	first := call{path: "emails/batch", header: h, body: body}.do(t, s)
	if first.status != 200 || !strings.Contains(string(first.body), `"errors":[{"index":1,"message":"This address is refused."}]`) {
		t.Fatalf("after a 500: %d %s", first.status, first.body)
	}
	replay := call{path: "emails/batch", header: h, body: body}.do(t, s)
	if replay.status != 200 || string(replay.body) != string(first.body) {
		t.Errorf("replay = %d %s, want the first answer %s", replay.status, replay.body, first.body)
	}
	call{path: "emails/batch", header: h, body: batchOf(email(nil))}.do(t, s).wantError(t, 409, "invalid_idempotent_request")
	if n := len(s.Emails()); n != 2 {
		t.Errorf("emails = %d, want 2 (the refused one and the replay send nothing)", n)
	}
	call{body: email(map[string]any{"to": "bad@example.com"})}.do(t, s).wantError(t, 422, "validation_error")
	if got := s.BatchRequests(); got != 4 || s.Requests() != 5 {
		t.Errorf("batch requests = %d, requests = %d; want 4 and 5", got, s.Requests())
	}
}
