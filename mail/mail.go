// Package mail sends messages: through Resend in production, or to a log for
// development. Retrying is not done here but by the outbox, which asks the
// error whether it is worth a retry (Temporary) and when (RetryAfter): see
// SendError.
package mail

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"time"
)

// Message is one email.
type Message struct {
	From    string // "Display Name <address>"
	To      []string
	ReplyTo string
	Subject string
	HTML    string
	Text    string
	// Tags let delivery events be joined back to an invitation.
	Tags map[string]string
	// IdempotencyKey makes a repeated send of the same message a no-op.
	IdempotencyKey string
}

// Sender delivers a message and returns the provider's message id. Its
// errors say whether trying again may help: Temporary() and RetryAfter(),
// the outbox's retry vocabulary (SendError implements it); an error that
// says nothing is retried like any failed outbox job.
type Sender interface {
	Send(ctx context.Context, m Message) (id string, err error)
}

// MaxBatch is the most messages one batch call carries (Resend's limit).
const MaxBatch = 100

// BatchSender sends several messages in one call under one idempotency
// key (the messages' own keys are not used), as Resend's batch endpoint
// does. The error is about the whole call (classified as Send's); a
// message refused alone has its BatchResult.Err.
type BatchSender interface {
	SendBatch(ctx context.Context, msgs []Message, key string) ([]BatchResult, error)
}

// BatchResult is what became of one message of a batch: its id, or why
// it alone was refused (a SendError, not temporary).
type BatchResult struct {
	ID  string
	Err error
}

// SendError is a delivery failure, classified.
type SendError struct {
	Status  int    // HTTP status, 0 for network errors
	Name    string // provider error name, e.g. rate_limit_exceeded
	Message string
	// temporary failures are worth retrying: rate limits with a
	// retry-after, 5xx, network errors, a concurrent idempotent request.
	// Quota exhaustion and other 4xx are not.
	temporary  bool
	retryAfter time.Duration // the provider's Retry-After, 0 if none
}

// Temporary reports whether sending again may succeed.
func (e *SendError) Temporary() bool { return e.temporary }

// RetryAfter is how long the provider asked to wait (0: no advice).
func (e *SendError) RetryAfter() time.Duration { return e.retryAfter }

func (e *SendError) Error() string {
	if e.Status == 0 {
		return "mail: " + e.Message
	}
	return fmt.Sprintf("mail: %d %s: %s", e.Status, e.Name, e.Message)
}

// AsSendError returns the *SendError in err's chain.
func AsSendError(err error) (*SendError, bool) {
	var se *SendError
	ok := errors.As(err, &se)
	return se, ok
}

// FormatAddress renders "Name <addr>" with RFC 5322 quoting where needed.
func FormatAddress(name, addr string) string {
	if name == "" {
		return addr
	}
	return (&mail.Address{Name: name, Address: addr}).String()
}

// Class names the kind of a send result for metrics: ok, rate_limited,
// quota, client_error, server_error or network.
func Class(err error) string {
	if err == nil {
		return "ok"
	}
	se, ok := AsSendError(err)
	switch {
	case !ok || se.Status == 0:
		return "network"
	case se.Name == "daily_quota_exceeded" || se.Name == "monthly_quota_exceeded":
		return "quota"
	case se.Status == 429:
		return "rate_limited"
	case se.Status >= 500:
		return "server_error"
	}
	return "client_error"
}
