package mail

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/resend/resend-go/v2"
	"golang.org/x/time/rate"
)

// ResendSender sends through the Resend API with resend-go: one message
// with POST /emails (Send), up to MaxBatch with POST /emails/batch
// (SendBatch).
//
// The SDK reduces most failures to a string, losing the status code and the
// error name (peers.md §4.2), which is what decides whether to retry. A
// wrapping transport records them for each request.
type ResendSender struct {
	client  *resend.Client
	limiter *rate.Limiter
}

// ResendConfig configures a ResendSender.
type ResendConfig struct {
	APIKey  string
	BaseURL string // e.g. https://api.resend.com/ or a test server
	Timeout time.Duration
	// RatePerSecond paces this process' requests (Resend's default team
	// limit is 2/s); 429s are still handled when several replicas share it.
	RatePerSecond float64
}

// NewResendSender returns a sender for the given account.
func NewResendSender(cfg ResendConfig) (*ResendSender, error) {
	base := cfg.BaseURL
	if !strings.HasSuffix(base, "/") {
		base += "/" // paths resolve relative to the base; without the slash a prefix is dropped
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("mail: resend base URL: %w", err)
	}
	hc := &http.Client{Timeout: cfg.Timeout, Transport: captureTransport{base: http.DefaultTransport}}
	c := resend.NewCustomClient(hc, cfg.APIKey)
	c.BaseURL = u
	c.UserAgent = "kratos-orgs"
	limit := rate.Inf
	if cfg.RatePerSecond > 0 {
		limit = rate.Limit(cfg.RatePerSecond)
	}
	return &ResendSender{client: c, limiter: rate.NewLimiter(limit, 1)}, nil
}

// Send sends one message.
func (s *ResendSender) Send(ctx context.Context, m Message) (string, error) {
	if err := s.limiter.Wait(ctx); err != nil {
		return "", &SendError{Message: err.Error(), temporary: true}
	}
	req := resendRequest(m)
	capt := &capture{}
	ctx = context.WithValue(ctx, captureKey{}, capt)
	// Never pass nil options: the SDK panics on a typed nil (peers.md §4.2).
	resp, err := s.client.Emails.SendWithOptions(ctx, req, &resend.SendEmailOptions{IdempotencyKey: m.IdempotencyKey})
	if err != nil {
		return "", classify(err, capt)
	}
	return resp.Id, nil
}

// resendRequest is m as the SDK posts it. Tags are sorted, so one message
// always encodes to the same bytes (a batch re-sent under its key must).
func resendRequest(m Message) *resend.SendEmailRequest {
	req := &resend.SendEmailRequest{
		From: m.From, To: m.To, ReplyTo: m.ReplyTo,
		Subject: m.Subject, Html: m.HTML, Text: m.Text,
	}
	for _, k := range slices.Sorted(mapKeys(m.Tags)) {
		req.Tags = append(req.Tags, resend.Tag{Name: k, Value: m.Tags[k]})
	}
	return req
}

// SendBatch sends up to MaxBatch messages in one POST /emails/batch under
// key, in permissive validation mode: an invalid message is refused alone
// (its BatchResult.Err, a 422 SendError) and the others go out. The
// messages' own IdempotencyKey is not sent: Resend takes one key for the
// whole batch, and replays the first answer only for the same key and the
// same body (a different body under the key is 409 invalid_idempotent_request).
// An error is about the whole batch and classified as Send's are.
func (s *ResendSender) SendBatch(ctx context.Context, msgs []Message, key string) ([]BatchResult, error) {
	if len(msgs) == 0 || len(msgs) > MaxBatch {
		return nil, &SendError{Message: fmt.Sprintf("a batch holds 1 to %d messages, got %d", MaxBatch, len(msgs))}
	}
	if err := s.limiter.Wait(ctx); err != nil {
		return nil, &SendError{Message: err.Error(), temporary: true}
	}
	reqs := make([]*resend.SendEmailRequest, len(msgs))
	for i, m := range msgs {
		reqs[i] = resendRequest(m)
	}
	capt := &capture{}
	ctx = context.WithValue(ctx, captureKey{}, capt)
	// Never nil options (peers.md §4.2), and permissive: one bad address
	// must not hold back the 99 others.
	resp, err := s.client.Batch.SendWithOptions(ctx, reqs, &resend.BatchSendEmailOptions{
		IdempotencyKey: key, BatchValidation: resend.BatchValidationPermissive,
	})
	if err != nil {
		return nil, classify(err, capt)
	}
	return batchResults(len(msgs), resp)
}

// batchResults pairs a permissive batch's answer with its messages: errors
// name their message's index, and data lists the ids of the others in order.
func batchResults(n int, resp *resend.BatchEmailResponse) ([]BatchResult, error) {
	out := make([]BatchResult, n)
	refused := 0
	for _, e := range resp.Errors {
		if e.Index < 0 || e.Index >= n || out[e.Index].Err != nil {
			return nil, &SendError{Message: fmt.Sprintf("batch answer names message %d of %d", e.Index, n)}
		}
		out[e.Index].Err = &SendError{Status: http.StatusUnprocessableEntity, Name: "validation_error", Message: e.Message}
		refused++
	}
	if len(resp.Data) != n-refused {
		// Not temporary: a retry under the same key replays the same answer.
		return nil, &SendError{Message: fmt.Sprintf("batch answer has %d ids and %d errors for %d messages", len(resp.Data), refused, n)}
	}
	next := 0
	for i := range out {
		if out[i].Err == nil {
			out[i].ID = resp.Data[next].Id
			next++
		}
	}
	return out, nil
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

type captureKey struct{}

type capture struct {
	status     int
	retryAfter string
	body       []byte
}

type captureTransport struct{ base http.RoundTripper }

func (t captureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if c, ok := req.Context().Value(captureKey{}).(*capture); ok && resp != nil {
		c.status = resp.StatusCode
		c.retryAfter = resp.Header.Get("Retry-After")
		if resp.StatusCode >= 300 {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
			c.body = body
			resp.Body = io.NopCloser(bytes.NewReader(body))
		}
	}
	return resp, err
}

func classify(err error, c *capture) *SendError {
	if c.status < 300 {
		// No response (network error, timeout), or a 2xx whose body could
		// not be read: the email may have gone out, and only a retry under
		// the same idempotency key can tell.
		return &SendError{Message: err.Error(), temporary: true}
	}
	se := &SendError{Status: c.status, Message: err.Error()}
	var body struct {
		Name    string `json:"name"`
		Message string `json:"message"`
	}
	if json.Unmarshal(c.body, &body) == nil {
		se.Name, se.Message = body.Name, body.Message
	}
	if secs, perr := strconv.ParseFloat(strings.TrimSpace(c.retryAfter), 64); perr == nil && secs >= 0 {
		se.retryAfter = time.Duration(secs * float64(time.Second))
	}
	switch {
	case c.status == http.StatusTooManyRequests:
		// Quota exhaustion also answers 429, without retry-after: retrying
		// only hammers the API until the next day.
		se.temporary = se.Name != "daily_quota_exceeded" && se.Name != "monthly_quota_exceeded" &&
			(se.Name == "rate_limit_exceeded" || c.retryAfter != "")
	case c.status == http.StatusConflict:
		// Another attempt with the same key is still in flight: it will
		// settle. A different payload under the same key never will.
		se.temporary = se.Name == "concurrent_idempotent_requests"
	case c.status >= 500:
		se.temporary = true
	}
	return se
}
