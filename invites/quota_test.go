package invites

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/ratelimit"
)

// withBudget installs an outgoing-mail budget on the harness' clock.
func (h *harness) withBudget(global, perOrg ratelimit.Limit) {
	h.t.Helper()
	lim := ratelimit.New(h.rdb, h.ks, ratelimit.Options{Now: h.clock.Now})
	h.mailer.budget = ratelimit.Budget{Limiter: lim, Global: global, PerOrg: perOrg}
}

// waitAndDrain moves the clock past every deferred job's due time (the
// wait plus at most 10% jitter) and runs the worker.
func (h *harness) waitAndDrain(d time.Duration) {
	h.t.Helper()
	h.clock.Add(d + d/10 + time.Second)
	h.drain()
}

func (h *harness) delayedJobs() int64 {
	h.t.Helper()
	var n int64
	for s := 0; s < 16; s++ {
		c, err := h.rdb.ZCard(h.ctx, h.ks.OutboxDelayed(s)).Result()
		if err != nil {
			h.t.Fatal(err)
		}
		n += c
	}
	return n
}

func (h *harness) deadJobs() int64 {
	h.t.Helper()
	var n int64
	for s := 0; s < 16; s++ {
		c, err := h.rdb.XLen(h.ctx, h.ks.OutboxDead(s)).Result()
		if err != nil {
			h.t.Fatal(err)
		}
		n += c
	}
	return n
}

// An organization's daily budget spent: the other mails wait in the outbox
// (never dropped, no attempt counted), the invitations say why, and they
// go out once the budget refills.
func TestMailBudgetPerOrganizationDefersAndResumes(t *testing.T) {
	h := newHarness(t)
	h.withBudget(ratelimit.Limit{Name: "mail_global", Requests: 1000, Period: time.Hour},
		ratelimit.Limit{Name: "mail_per_organization", Requests: 2, Period: 24 * time.Hour})
	var invs []Invitation
	for i := range 5 {
		invs = append(invs, h.mustInvite(fmt.Sprintf("person%d@example.com", i)))
	}
	h.drain()
	if n := len(h.resend.Emails()); n != 2 {
		t.Fatalf("%d mails sent with a budget of 2, want 2", n)
	}
	waiting := 0
	for _, inv := range invs {
		got, err := h.svc.Get(h.ctx, inv.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Delivery.Status == DeliverySent {
			continue
		}
		waiting++
		if got.Delivery.Status != DeliveryQueued || !strings.HasPrefix(got.Delivery.LastError, MailBudgetExhausted+": mail_per_organization") ||
			got.Delivery.Attempts != 0 {
			t.Errorf("waiting invitation's delivery = %+v; want queued, %s naming the limit, 0 attempts", got.Delivery, MailBudgetExhausted)
		}
	}
	if waiting != 3 || h.delayedJobs() != 3 || h.deadJobs() != 0 {
		t.Fatalf("%d invitations waiting, %d delayed jobs, %d dead; want 3, 3, 0", waiting, h.delayedJobs(), h.deadJobs())
	}
	// Another organization has its own budget.
	other := h.newOrg("Other Org")
	if _, _, err := h.svc.Invite(h.ctx, other.ID, InviteRequest{Email: "x@example.com", Role: "member"}); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if n := len(h.resend.Emails()); n != 3 {
		t.Fatalf("%d mails: another organization's mail waited for this one's budget", n)
	}
	// Half a day later one mail's worth has come back (2 a day); a day
	// later all.
	h.waitAndDrain(12 * time.Hour)
	h.waitAndDrain(24 * time.Hour)
	h.waitAndDrain(24 * time.Hour)
	if n := len(h.resend.Emails()); n != 6 {
		t.Fatalf("%d mails once the budget refilled, want all 6", n)
	}
	for _, inv := range invs {
		got, _ := h.svc.Get(h.ctx, inv.ID)
		if got.Delivery.Status != DeliverySent || got.Delivery.LastError != "" {
			t.Errorf("%s: delivery %+v, want sent", inv.Email, got.Delivery)
		}
	}
	if h.delayedJobs() != 0 || h.deadJobs() != 0 {
		t.Errorf("%d delayed, %d dead jobs left", h.delayedJobs(), h.deadJobs())
	}
}

// The global hourly budget holds across organizations; a mail refused by it
// does not use its organization's budget.
func TestMailBudgetGlobal(t *testing.T) {
	h := newHarness(t)
	h.withBudget(ratelimit.Limit{Name: "mail_global", Requests: 3, Period: time.Hour},
		ratelimit.Limit{Name: "mail_per_organization", Requests: 3, Period: 24 * time.Hour})
	other := h.newOrg("Other Org")
	for i := range 3 {
		h.mustInvite(fmt.Sprintf("a%d@example.com", i))
		if _, _, err := h.svc.Invite(h.ctx, other.ID, InviteRequest{Email: fmt.Sprintf("b%d@example.com", i), Role: "member"}); err != nil {
			t.Fatal(err)
		}
	}
	h.drain()
	if n := len(h.resend.Emails()); n != 3 {
		t.Fatalf("%d mails in the first hour with a global budget of 3, want 3", n)
	}
	h.waitAndDrain(time.Hour)
	if n := len(h.resend.Emails()); n != 6 {
		t.Fatalf("%d mails after the hour, want 6 (no organization's own budget was used by waiting mails)", n)
	}
	if h.deadJobs() != 0 {
		t.Errorf("%d dead jobs", h.deadJobs())
	}
}

func newRegistrar(h *harness, o RegistrarOptions) *Registrar {
	o.Service, o.Orgs, o.Outbox, o.Redis, o.Keys = h.svc, h.orgs, h.worker, h.rdb, h.ks
	return NewRegistrar(o)
}

// An organization registered and never activated is gone, with its
// placeholder identity, once registration.pending_ttl has passed.
func TestPendingRegistrationExpiresWithItsIdentity(t *testing.T) {
	h := newHarness(t)
	reg := newRegistrar(h, RegistrarOptions{PendingTTL: 48 * time.Hour})
	if err := reg.Register(h.ctx, RegisterRequest{OrganizationName: "Never Activated", Email: "lazy@example.com"}); err != nil {
		t.Fatal(err)
	}
	h.drain()
	person, err := h.ids.FindByEmail(h.ctx, "lazy@example.com")
	if err != nil || person == nil {
		t.Fatalf("no placeholder identity: %v", err)
	}
	orgID, err := h.orgs.ResolveID(h.ctx, "never-activated")
	if err != nil {
		t.Fatal(err)
	}
	page, err := h.svc.store.List(h.ctx, orgID, Filter{Status: string(Pending), Limit: 10})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("pending registration: %+v, %v", page, err)
	}
	if got := page.Items[0].ExpiresAt.Sub(h.clock.Now()); got != 48*time.Hour {
		t.Errorf("activation link lives %s, want registration.pending_ttl (48h)", got)
	}
	h.clock.Add(48*time.Hour - time.Second)
	if _, _, err := h.svc.store.Sweep(h.ctx, 100); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if _, err := h.orgs.Get(h.ctx, orgID); err != nil {
		t.Fatalf("organization gone before its TTL: %v", err)
	}
	h.clock.Add(time.Second)
	if _, _, err := h.svc.store.Sweep(h.ctx, 100); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if _, err := h.orgs.Get(h.ctx, orgID); apperr.KindOf(err) != apperr.NotFound {
		t.Errorf("pending organization still there after 48h: %v", err)
	}
	if p, _ := h.ids.Get(h.ctx, person.ID); p != nil {
		t.Errorf("placeholder identity %s still exists", person.ID)
	}
}

// The per-address quota is asked with the normalised address, only for
// valid forms, and its refusal stops the sign-up before Kratos or mail.
func TestRegisterAsksThePerAddressQuota(t *testing.T) {
	h := newHarness(t)
	var asked []string
	refuse := false
	reg := newRegistrar(h, RegistrarOptions{CheckAddress: func(_ context.Context, email string) error {
		asked = append(asked, email)
		if refuse {
			return ratelimit.Refusal(ratelimit.Limit{Name: "register_per_email"}, time.Hour)
		}
		return nil
	}})
	if err := reg.Register(h.ctx, RegisterRequest{OrganizationName: "", Email: "A@Example.com"}); apperr.KindOf(err) != apperr.Invalid {
		t.Fatalf("invalid form: %v", err)
	}
	if len(asked) != 0 {
		t.Fatal("an invalid form used the quota")
	}
	refuse = true
	err := reg.Register(h.ctx, RegisterRequest{OrganizationName: "Acme Two", Email: "A@Example.com"})
	if !ratelimit.IsRefusal(err) {
		t.Fatalf("refused sign-up: %v, want rate_limited", err)
	}
	if len(asked) != 1 || asked[0] != "a@example.com" {
		t.Errorf("asked %v, want the normalised address once", asked)
	}
	h.drain()
	if h.ids.Count() != 0 || len(h.resend.Emails()) != 0 {
		t.Errorf("a refused sign-up created %d identities and sent %d mails", h.ids.Count(), len(h.resend.Emails()))
	}
	if _, err := h.orgs.ResolveID(h.ctx, "acme-two"); apperr.KindOf(err) != apperr.NotFound {
		t.Errorf("a refused sign-up created an organization: %v", err)
	}
}
