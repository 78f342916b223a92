package invites

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/mail/resendtest"
	"github.com/kratos-orgs/kratos-orgs/tokens"
)

var linkPattern = regexp.MustCompile(regexp.QuoteMeta(testAcceptURL) + `[A-Za-z0-9_-]+`)

func linkIn(t *testing.T, text string) string {
	t.Helper()
	links := linkPattern.FindAllString(text, -1)
	if len(links) == 0 {
		t.Fatalf("no accept link in:\n%s", text)
	}
	return links[0]
}

func TestMailIsSentOnceWithLinkOrgAndInviter(t *testing.T) {
	h := newHarness(t)
	inviter := h.ids.Add("ada@example.com", "Ada Lovelace")
	inv := h.mustInvite("New@Example.com", func(r *InviteRequest) {
		r.Inviter = &Inviter{ID: inviter.ID}
		r.Context = map[string]any{"team": "Platform"}
	})
	if inv.Delivery.Status != DeliveryQueued {
		t.Fatalf("delivery %q before the worker ran, want queued", inv.Delivery.Status)
	}
	h.drain()
	h.drain() // nothing more to do: exactly one mail
	emails := h.resend.Emails()
	if len(emails) != 1 {
		t.Fatalf("%d emails, want 1", len(emails))
	}
	e := emails[0]
	if e.To[0] != "new@example.com" || e.From != `"Ada Lovelace via Example" <invites@example.com>` || e.ReplyTo != "ada@example.com" {
		t.Fatalf("headers: to %v from %q reply-to %q", e.To, e.From, e.ReplyTo)
	}
	if !strings.Contains(e.Subject, "Acme & Co") || strings.ContainsAny(e.Subject, "\r\n") {
		t.Fatalf("subject %q", e.Subject)
	}
	if !strings.Contains(e.Text, "Ada Lovelace") || !strings.Contains(e.HTML, "Acme &amp; Co") {
		t.Fatal("the mail must name the inviter and the organization (escaped in HTML)")
	}
	link := linkIn(t, e.Text)
	if linkIn(t, e.HTML) != link {
		t.Fatal("HTML and text parts carry different links")
	}
	shard, hash, ok := tokens.Parse(strings.TrimPrefix(link, testAcceptURL))
	if !ok || !h.tokenAlive(hash, shard) {
		t.Fatalf("the mailed link %q is not a live token", link)
	}
	if e.IdempotencyKey != fmt.Sprintf("kratos-orgs/%s/v1/invitation", inv.ID) || e.Tags["invitation"] != inv.ID {
		t.Fatalf("idempotency key %q tags %v", e.IdempotencyKey, e.Tags)
	}
	got, _ := h.svc.Get(h.ctx, inv.ID)
	if got.Delivery.Status != DeliverySent || got.Delivery.MessageID != e.ID || got.Delivery.Attempts != 1 {
		t.Fatalf("delivery %+v", got.Delivery)
	}
	// The outbox holds nothing any more, so the sealed link is gone from Redis.
	if n := h.rdb.XLen(h.ctx, h.ks.Outbox(shard)).Val(); n != 0 {
		t.Fatalf("%d entries left in the outbox", n)
	}
}

func TestOnlyTheNewestLinkIsMailed(t *testing.T) {
	h := newHarness(t)
	inv := h.mustInvite("new@example.com")
	if _, _, err := h.invite("new@example.com"); err != nil { // rotates before any mail went out
		t.Fatal(err)
	}
	if _, err := h.svc.Resend(h.ctx, inv.ID, true); err != nil {
		t.Fatal(err)
	}
	h.drain()
	emails := h.resend.Emails()
	if len(emails) != 1 {
		t.Fatalf("%d emails, want only the newest link", len(emails))
	}
	shard, hash, _ := tokens.Parse(strings.TrimPrefix(linkIn(t, emails[0].Text), testAcceptURL))
	if !h.tokenAlive(hash, shard) || !strings.HasSuffix(emails[0].IdempotencyKey, "/v3/invitation") {
		t.Fatalf("mailed a dead link (key %s)", emails[0].IdempotencyKey)
	}
}

func TestRevokedBeforeSendingIsNotMailed(t *testing.T) {
	h := newHarness(t)
	inv := h.mustInvite("new@example.com")
	if _, err := h.svc.Revoke(h.ctx, inv.ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if n := len(h.resend.Emails()); n != 0 {
		t.Fatalf("%d emails for a revoked invitation", n)
	}
}

func TestRateLimitedMailIsRetriedAfterRetryAfter(t *testing.T) {
	h := newHarness(t)
	h.resend.FailNext(1, resendtest.RateLimited("30"))
	inv := h.mustInvite("new@example.com")
	h.drain()
	got, _ := h.svc.Get(h.ctx, inv.ID)
	if got.Delivery.Status != DeliveryQueued || got.Delivery.Attempts != 1 || !strings.Contains(got.Delivery.LastError, "rate_limit_exceeded") {
		t.Fatalf("after a 429 the delivery is %+v", got.Delivery)
	}
	h.clock.Add(29 * time.Second)
	h.drain()
	if len(h.resend.Emails()) != 0 {
		t.Fatal("retried before retry-after passed")
	}
	h.clock.Add(2 * time.Second)
	h.drain()
	emails := h.resend.Emails()
	got, _ = h.svc.Get(h.ctx, inv.ID)
	if len(emails) != 1 || got.Delivery.Status != DeliverySent || got.Delivery.Attempts != 2 {
		t.Fatalf("%d emails, delivery %+v", len(emails), got.Delivery)
	}
}

func TestServerErrorsAreRetriedWithTheSameKey(t *testing.T) {
	h := newHarness(t)
	h.resend.FailNext(2, resendtest.ServerError())
	inv := h.mustInvite("new@example.com")
	for i := 0; i < 3; i++ {
		h.drain()
		h.clock.Add(10 * time.Minute)
	}
	emails := h.resend.Emails()
	got, _ := h.svc.Get(h.ctx, inv.ID)
	if len(emails) != 1 || got.Delivery.Status != DeliverySent || got.Delivery.Attempts != 3 || h.resend.Requests() != 3 {
		t.Fatalf("%d emails after %d requests, delivery %+v", len(emails), h.resend.Requests(), got.Delivery)
	}
}

func TestQuotaErrorsAreNotRetried(t *testing.T) {
	h := newHarness(t)
	h.resend.FailNext(5, resendtest.DailyQuota())
	inv := h.mustInvite("new@example.com")
	for i := 0; i < 3; i++ {
		h.drain()
		h.clock.Add(time.Hour)
	}
	got, _ := h.svc.Get(h.ctx, inv.ID)
	if h.resend.Requests() != 1 || got.Delivery.Status != DeliveryFailed || !strings.Contains(got.Delivery.LastError, "daily_quota_exceeded") {
		t.Fatalf("%d requests, delivery %+v", h.resend.Requests(), got.Delivery)
	}
	dead := h.rdb.XLen(h.ctx, h.ks.OutboxDead(0)).Val()
	for s := 1; s < 16; s++ {
		dead += h.rdb.XLen(h.ctx, h.ks.OutboxDead(s)).Val()
	}
	if dead != 1 {
		t.Fatalf("%d dead letters, want 1", dead)
	}
}

func TestDeliveryFailsAfterMaxAttempts(t *testing.T) {
	h := newHarness(t)
	h.resend.FailNext(100, resendtest.ServerError())
	inv := h.mustInvite("new@example.com")
	for i := 0; i < 6; i++ {
		h.drain()
		h.clock.Add(10 * time.Minute)
	}
	got, _ := h.svc.Get(h.ctx, inv.ID)
	if h.resend.Requests() != 4 || got.Delivery.Status != DeliveryFailed {
		t.Fatalf("%d requests (max attempts 4), delivery %+v", h.resend.Requests(), got.Delivery)
	}
}

func TestRevokeDeletesTheIdentityWeCreated(t *testing.T) {
	h := newHarness(t)
	inv := h.mustInvite("new@example.com")
	h.drain()
	if orgs, _ := h.index.PendingOrganizations(h.ctx, "new@example.com"); len(orgs) != 1 || orgs[0] != h.org.ID {
		t.Fatalf("address index %v", orgs)
	}
	if _, err := h.svc.Revoke(h.ctx, inv.ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if h.ids.Count() != 0 {
		t.Fatal("the inactive identity created for the invitation survived its revocation")
	}
	if orgs, _ := h.index.PendingOrganizations(h.ctx, "new@example.com"); len(orgs) != 0 {
		t.Fatalf("address index still lists %v", orgs)
	}
}

func TestIdentityKeptWhileAnotherInvitationIsPending(t *testing.T) {
	h := newHarness(t)
	a := h.mustInvite("new@example.com")
	other := h.newOrg("Other")
	if _, _, err := h.svc.Invite(h.ctx, other.ID, InviteRequest{Email: "new@example.com"}); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if _, err := h.svc.Revoke(h.ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if h.ids.Count() != 1 {
		t.Fatal("the identity was deleted although another invitation is pending for it")
	}
}

func TestExistingIdentitiesAreNeverDeleted(t *testing.T) {
	h := newHarness(t)
	h.ids.Add("old@example.com", "Old")
	inv := h.mustInvite("old@example.com")
	if _, err := h.svc.Revoke(h.ctx, inv.ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if h.ids.Count() != 1 || len(h.ids.Deleted) != 0 {
		t.Fatal("an identity kratos-orgs did not create was deleted")
	}
}

func TestExpiredInvitationCleansUpAfterSweep(t *testing.T) {
	h := newHarness(t)
	h.mustInvite("new@example.com")
	h.drain()
	h.clock.Add(8 * 24 * time.Hour)
	if _, _, err := h.svc.store.Sweep(h.ctx, 100); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if h.ids.Count() != 0 {
		t.Fatal("the identity of an expired invitation was not deleted")
	}
}

func TestKratosDownDuringCleanupIsRetried(t *testing.T) {
	h := newHarness(t)
	inv := h.mustInvite("new@example.com")
	h.drain()
	if _, err := h.svc.Revoke(h.ctx, inv.ID); err != nil {
		t.Fatal(err)
	}
	h.ids.SetDown(true)
	h.drain()
	h.ids.SetDown(false)
	if h.ids.Count() != 1 {
		t.Fatal("deleted while Kratos was down?")
	}
	h.clock.Add(time.Hour)
	h.drain()
	if h.ids.Count() != 0 {
		t.Fatal("the cleanup was not retried once Kratos was back")
	}
}

func TestMailCarriesEscapedMarkup(t *testing.T) {
	h := newHarness(t)
	evil := h.newOrg(`<img src=x onerror=alert(1)>`)
	if _, _, err := h.svc.Invite(h.ctx, evil.ID, InviteRequest{Email: "x@example.com", Inviter: &Inviter{Name: "<b>Bob</b>"}}); err != nil {
		t.Fatal(err)
	}
	h.drain()
	e := h.resend.Emails()[0]
	if strings.Contains(e.HTML, "<img src=x") || strings.Contains(e.HTML, "<b>Bob</b>") {
		t.Fatal("markup from names reached the HTML unescaped")
	}
	if u, err := url.Parse(linkIn(t, e.HTML)); err != nil || u.Host != "orgs.example.com" {
		t.Fatalf("link %v", err)
	}
}
