package invites

import (
	"fmt"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/mail/resendtest"
)

// Resend keeps an Idempotency-Key for 24 hours. A mail still failing 23
// hours after its first attempt is never sent under that key again: the
// delivery fails with reason expired_retry_window, and a resend starts a
// new link and a new key (issue 9 §6). The clock is injected everywhere:
// store, worker, mailer and the fake Resend's key memory.
func TestMailRetriesStayInsideTheIdempotencyWindow(t *testing.T) {
	h := newHarness(t)
	h.resend.SetClock(h.clock.Now)
	h.resend.FailNext(2, resendtest.ServerError())
	inv := h.mustInvite("late@example.com")
	key1 := fmt.Sprintf("kratos-orgs/%s/v1/invitation", inv.ID)

	h.drain() // attempt 1 at T0: 500
	h.clock.Add(RetryWindow - time.Minute)
	h.drain() // attempt 2, inside the window: same key, 500 again
	if n := h.resend.Requests(); n != 2 {
		t.Fatalf("%d requests inside the window, want 2", n)
	}
	got, _ := h.svc.Get(h.ctx, inv.ID)
	if got.Delivery.Status != DeliveryQueued || got.Delivery.Reason != "" {
		t.Fatalf("delivery inside the window: %+v", got.Delivery)
	}

	h.clock.Add(2 * time.Minute) // past 23h since the first attempt
	h.drain()
	h.clock.Add(time.Hour)
	h.drain()
	if n := h.resend.Requests(); n != 2 {
		t.Fatalf("%d requests: a mail was sent past the window under key %s", n, key1)
	}
	got, _ = h.svc.Get(h.ctx, inv.ID)
	if got.Status != Pending || got.Delivery.Status != DeliveryFailed || got.Delivery.Reason != ReasonExpiredRetryWindow {
		t.Fatalf("after the window: status %s delivery %+v", got.Status, got.Delivery)
	}
	dead := int64(0)
	for s := 0; s < 16; s++ {
		dead += h.rdb.XLen(h.ctx, h.ks.OutboxDead(s)).Val()
	}
	if dead != 1 {
		t.Fatalf("%d dead letters, want 1", dead)
	}

	// The operator resends: a new token, a new key, one mail.
	if _, err := h.svc.Resend(h.ctx, inv.ID, true); err != nil {
		t.Fatal(err)
	}
	h.drain()
	emails := h.resend.Emails()
	if len(emails) != 1 || emails[0].IdempotencyKey != fmt.Sprintf("kratos-orgs/%s/v2/invitation", inv.ID) {
		t.Fatalf("after resend: %d emails %+v", len(emails), emails)
	}
	got, _ = h.svc.Get(h.ctx, inv.ID)
	if got.Delivery.Status != DeliverySent || got.Delivery.Reason != "" {
		t.Fatalf("after resend: delivery %+v", got.Delivery)
	}
}

// Where the window closes: a first attempt exactly RetryWindow ago may
// still be retried; a millisecond later it may not.
func TestRetryWindowBoundary(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after time.Duration
		sent  bool
	}{
		{"one hour in", time.Hour, true},
		{"at the window", RetryWindow, true},
		{"just past the window", RetryWindow + time.Millisecond, false},
		{"a day later", 24 * time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.resend.FailNext(1, resendtest.RateLimited("1"))
			h.mustInvite("edge@example.com")
			h.drain()
			h.clock.Add(tc.after)
			h.drain()
			if sent := len(h.resend.Emails()) == 1; sent != tc.sent {
				t.Fatalf("sent = %v after %s, want %v", sent, tc.after, tc.sent)
			}
		})
	}
}
