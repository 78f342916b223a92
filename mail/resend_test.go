package mail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/mail/resendtest"
	"github.com/kratos-orgs/kratos-orgs/outbox"
)

const apiKey = "re_test_123"

func newSender(t *testing.T, base string, timeout time.Duration) *ResendSender {
	t.Helper()
	s, err := NewResendSender(ResendConfig{APIKey: apiKey, BaseURL: base, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func invite(key string) Message {
	return Message{
		From:    FormatAddress("Acme, Inc.", "noreply@acme.test"),
		To:      []string{"ann@example.com", "Bob <bob@example.com>"},
		ReplyTo: "owner@acme.test",
		Subject: "Join Acme",
		HTML:    "<p>Join: <a href=\"https://x.test/i/1\">link</a></p>",
		Text:    "Join: https://x.test/i/1",
		Tags:    map[string]string{"kind": "org_invite", "org_id": "o-1", "invitation_id": "inv-42"},
		// The shape peers.md §4.1 suggests: <event>/<entity>/<version>.
		IdempotencyKey: key,
	}
}

func TestResendSendRecordsEverything(t *testing.T) {
	fake := resendtest.New(t, apiKey)
	s := newSender(t, fake.URL(), 5*time.Second)
	m := invite("org-invite/inv-42/1")
	id, err := s.Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	got := fake.WaitForEmails(t, 1, time.Second)[0]
	want := resendtest.Email{
		ID: id, From: `"Acme, Inc." <noreply@acme.test>`, To: m.To, ReplyTo: m.ReplyTo,
		Subject: m.Subject, HTML: m.HTML, Text: m.Text, Tags: m.Tags,
		IdempotencyKey: m.IdempotencyKey, Received: got.Received,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("recorded %+v\nwant     %+v", got, want)
	}
}

func TestResendSendWithoutKeyOrTags(t *testing.T) {
	fake := resendtest.New(t, apiKey)
	s := newSender(t, fake.URL(), 5*time.Second)
	m := invite("")
	m.Tags, m.HTML = nil, ""
	if _, err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if e := fake.Emails()[0]; e.IdempotencyKey != "" || e.Tags != nil || e.Text != m.Text {
		t.Errorf("recorded %+v", e)
	}
}

func TestResendBaseURLWithoutSlash(t *testing.T) {
	fake := resendtest.New(t, apiKey)
	s := newSender(t, strings.TrimSuffix(fake.URL(), "/"), 5*time.Second)
	if _, err := s.Send(context.Background(), invite("k")); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Emails()); n != 1 {
		t.Errorf("emails = %d", n)
	}
}

func TestResendRetrySameKeySendsOnce(t *testing.T) {
	fake := resendtest.New(t, apiKey)
	s := newSender(t, fake.URL(), 5*time.Second)
	m := invite("org-invite/inv-42/1")

	// A first attempt failing with a 500 is not remembered by the key...
	fake.FailNext(1, resendtest.ServerError())
	if _, err := s.Send(context.Background(), m); err == nil {
		t.Fatal("want the injected 500")
	}
	// ...so the retry sends, and a further retry replays it.
	id1, err := s.Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	id2, err := s.Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if id1 != id2 {
		t.Errorf("ids %s and %s", id1, id2)
	}
	if n, r := len(fake.Emails()), fake.Requests(); n != 1 || r != 3 {
		t.Errorf("emails = %d, requests = %d; want 1 and 3", n, r)
	}
}

func TestResendErrorClassification(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(*resendtest.Server, *ResendSender) // before the send under test
		mutate    func(*Message)
		status    int
		errName   string
		temporary bool
		retry     time.Duration
	}{
		{name: "rate limited", setup: failWith(resendtest.RateLimited("3")),
			status: 429, errName: "rate_limit_exceeded", temporary: true, retry: 3 * time.Second},
		{name: "rate limited, fractional retry-after", setup: failWith(resendtest.RateLimited("0.5")),
			status: 429, errName: "rate_limit_exceeded", temporary: true, retry: 500 * time.Millisecond},
		{name: "rate limit of the fake itself", setup: func(f *resendtest.Server, s *ResendSender) {
			f.SetClock(func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) })
			f.SetRateLimit(1)
			send(s, invite("other"))
		}, status: 429, errName: "rate_limit_exceeded", temporary: true, retry: time.Second},
		{name: "daily quota", setup: failWith(resendtest.DailyQuota()),
			status: 429, errName: "daily_quota_exceeded"},
		{name: "monthly quota, with a retry-after", setup: failWith(resendtest.Failure{
			Status: 429, Name: "monthly_quota_exceeded", Message: "quota", RetryAfter: "60"}),
			status: 429, errName: "monthly_quota_exceeded", retry: time.Minute},
		{name: "server error", setup: failWith(resendtest.ServerError()),
			status: 500, errName: "internal_server_error", temporary: true},
		{name: "bad gateway", setup: failWith(resendtest.Failure{Status: 502, Name: "application_error", Message: "upstream"}),
			status: 502, errName: "application_error", temporary: true},
		{name: "invalid from", mutate: func(m *Message) { m.From = "Acme noreply@acme.test" },
			status: 422, errName: "invalid_from_address"},
		{name: "missing subject", mutate: func(m *Message) { m.Subject = "" },
			status: 422, errName: "missing_required_field"},
		{name: "tag not allowed", mutate: func(m *Message) { m.Tags = map[string]string{"to": "ann@example.com"} },
			status: 422, errName: "validation_error"},
		{name: "bad idempotency key", mutate: func(m *Message) { m.IdempotencyKey = strings.Repeat("k", 257) },
			status: 400, errName: "invalid_idempotency_key"},
		{name: "same key, other payload", setup: func(_ *resendtest.Server, s *ResendSender) { send(s, invite("k")) },
			mutate: func(m *Message) { m.Subject = "Changed" }, status: 409, errName: "invalid_idempotent_request"},
		{name: "same key in flight", setup: failWith(resendtest.Failure{Status: 409, Name: "concurrent_idempotent_requests",
			Message: "in progress"}), status: 409, errName: "concurrent_idempotent_requests", temporary: true},
		{name: "wrong API key", setup: func(f *resendtest.Server, s *ResendSender) { s.client.ApiKey = "re_other" },
			status: 403, errName: "invalid_api_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := resendtest.New(t, apiKey)
			s := newSender(t, fake.URL(), 5*time.Second)
			if tt.setup != nil {
				tt.setup(fake, s)
			}
			m := invite("k")
			if tt.mutate != nil {
				tt.mutate(&m)
			}
			before := len(fake.Emails())
			_, err := s.Send(context.Background(), m)
			se, ok := AsSendError(err)
			if !ok {
				t.Fatalf("err = %v, want a *SendError", err)
			}
			if se.Status != tt.status || se.Name != tt.errName || se.Temporary() != tt.temporary || se.RetryAfter() != tt.retry {
				t.Errorf("got {Status:%d Name:%q Temporary:%v RetryAfter:%v}, want {%d %q %v %v}",
					se.Status, se.Name, se.Temporary(), se.RetryAfter(), tt.status, tt.errName, tt.temporary, tt.retry)
			}
			// What the outbox sees once a handler wrapped the error.
			var r outbox.Retryable
			if !errors.As(fmt.Errorf("mail job: %w", err), &r) || r.Temporary() != tt.temporary || r.RetryAfter() != tt.retry {
				t.Errorf("through the outbox's interface: %v", r)
			}
			if se.Message == "" || !strings.Contains(se.Error(), tt.errName) {
				t.Errorf("Error() = %q", se.Error())
			}
			if n := len(fake.Emails()); n != before {
				t.Errorf("a failed send recorded an email")
			}
		})
	}
}

func failWith(f resendtest.Failure) func(*resendtest.Server, *ResendSender) {
	return func(s *resendtest.Server, _ *ResendSender) { s.FailNext(1, f) }
}

// send is a setup step that is expected to succeed; a failure shows up as
// a mismatch in the send under test.
func send(s *ResendSender, m Message) { _, _ = s.Send(context.Background(), m) }

// A client timeout while Resend is still working is the case idempotency
// keys exist for: the retry meets the request in flight, then its result.
func TestResendTimeoutThenRetry(t *testing.T) {
	fake := resendtest.New(t, apiKey)
	fake.FailNext(1, resendtest.Failure{Delay: time.Second})
	s := newSender(t, fake.URL(), 200*time.Millisecond)
	m := invite("org-invite/inv-42/1")

	_, err := s.Send(context.Background(), m)
	if se, ok := AsSendError(err); !ok || se.Status != 0 || !se.Temporary() {
		t.Fatalf("timeout: err = %#v, want a temporary network error", err)
	}
	_, err = s.Send(context.Background(), m)
	if se, ok := AsSendError(err); !ok || se.Status != 409 || se.Name != "concurrent_idempotent_requests" || !se.Temporary() {
		t.Fatalf("retry in flight: err = %#v", err)
	}
	sent := fake.WaitForEmails(t, 1, 5*time.Second)
	id, err := s.Send(context.Background(), m)
	if err != nil || id != sent[0].ID {
		t.Fatalf("retry after it settled: %q, %v; want %q", id, err, sent[0].ID)
	}
	if n := len(fake.Emails()); n != 1 {
		t.Errorf("emails = %d", n)
	}
}

func TestResendNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // nothing listens there any more
	_, err := newSender(t, srv.URL, time.Second).Send(context.Background(), invite("k"))
	se, ok := AsSendError(err)
	if !ok || se.Status != 0 || se.Name != "" || !se.Temporary() || !strings.HasPrefix(se.Error(), "mail: ") {
		t.Errorf("err = %#v", err)
	}
}

func TestResendCanceledContext(t *testing.T) {
	fake := resendtest.New(t, apiKey)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := newSender(t, fake.URL(), time.Second).Send(ctx, invite("k"))
	if se, ok := AsSendError(err); !ok || se.Status != 0 || !se.Temporary() {
		t.Errorf("err = %#v", err)
	}
}

// A log sender that cannot write says so, and that retrying will not help.
func TestLogSenderWriteFailure(t *testing.T) {
	_, err := NewLogSender(failingWriter{}).Send(context.Background(), invite("k"))
	var r outbox.Retryable
	if !errors.As(err, &r) || r.Temporary() || Class(err) != "network" {
		t.Errorf("err = %#v, want a SendError that is not temporary", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestLogSender(t *testing.T) {
	var buf bytes.Buffer
	m := invite("k")
	id, err := NewLogSender(&buf).Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{id, "ann@example.com, Bob <bob@example.com>", "Subject: Join Acme", "Join: https://x.test/i/1", "Reply-To: owner@acme.test"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.HasPrefix(id, "log-") {
		t.Errorf("id = %q", id)
	}
}

// A 2xx whose body is cut off may well have sent the email: the caller must
// be allowed to retry (under the same key), not give up.
func TestResendTruncatedSuccess(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "100")
		_, _ = w.Write([]byte(`{"id":"4ef9a417`))
	}))
	t.Cleanup(srv.Close)
	_, err := newSender(t, srv.URL, time.Second).Send(context.Background(), invite("k"))
	se, ok := AsSendError(err)
	if !ok || !se.Temporary() || se.Status != 0 {
		t.Errorf("err = %#v, want a temporary error without status", err)
	}
}

// TestResendSendBatch: one permissive call under the batch's key; a
// refused message has its own error and the others their ids, in order; a
// repeat replays the same ids; a 429 on the batch is temporary.
func TestResendSendBatch(t *testing.T) {
	fake := resendtest.New(t, apiKey)
	fake.RefuseRecipient("bad@example.com", "This address is refused.")
	s := newSender(t, fake.URL(), 5*time.Second)
	msgs := []Message{invite("own/1"), invite("own/2"), invite("own/3")}
	msgs[1].To = []string{"bad@example.com"}
	ctx := context.Background()
	res, err := s.SendBatch(ctx, msgs, "batch/1")
	if err != nil || len(res) != 3 || res[0].ID == "" || res[2].ID == "" || res[1].ID != "" {
		t.Fatalf("results %+v, err %v", res, err)
	}
	if se, ok := AsSendError(res[1].Err); !ok || se.Status != 422 || se.Temporary() || se.Message != "This address is refused." {
		t.Fatalf("refused message: %#v", res[1].Err)
	}
	emails := fake.Emails()
	if len(emails) != 2 || emails[0].ID != res[0].ID || emails[1].ID != res[2].ID || emails[0].IdempotencyKey != "batch/1" {
		t.Fatalf("emails %+v", emails)
	}
	again, err := s.SendBatch(ctx, msgs, "batch/1")
	if err != nil || again[0].ID != res[0].ID || again[2].ID != res[2].ID || len(fake.Emails()) != 2 {
		t.Fatalf("repeat: %+v %v, %d emails; want the same ids, nothing sent", again, err, len(fake.Emails()))
	}
	fake.FailNext(1, resendtest.RateLimited("2"))
	if _, err := s.SendBatch(ctx, msgs[:1], "batch/2"); !outbox.Temporary(err) {
		t.Fatalf("429 on a batch: %v, want temporary", err)
	}
	if _, err := s.SendBatch(ctx, make([]Message, MaxBatch+1), "batch/3"); err == nil || outbox.Temporary(err) {
		t.Fatalf("a batch over %d: %v, want a permanent error", MaxBatch, err)
	}
	if fake.BatchRequests() != 3 {
		t.Fatalf("batch calls = %d, want 3 (an oversized batch is not sent)", fake.BatchRequests())
	}
}
