package invites

import (
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/mail"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/outbox"
	"github.com/kratos-orgs/kratos-orgs/ratelimit"
	"github.com/kratos-orgs/kratos-orgs/redisx"
	"github.com/kratos-orgs/kratos-orgs/templates"
	"github.com/kratos-orgs/kratos-orgs/tokens"
)

// testPlan is the configured plan of these tests: 2 days after sending,
// 1 day before expiry (the harness' links live 7 days).
var testPlan = orgs.Reminders{AfterSent: []time.Duration{48 * time.Hour}, BeforeExpiry: []time.Duration{24 * time.Hour}}

// withReminders gives the harness' store the test plan.
func (h *harness) withReminders() *harness {
	h.svc.store.SetReminders(testPlan)
	return h
}

// remindDue runs the reminder sweep and checks its counts.
func (h *harness) remindDue(wantSent, wantDeferred int) {
	h.t.Helper()
	sent, deferred, err := h.svc.SendDueReminders(h.ctx, 100)
	if err != nil || sent != wantSent || deferred != wantDeferred {
		h.t.Fatalf("SendDueReminders = %d sent, %d deferred, %v; want %d, %d", sent, deferred, err, wantSent, wantDeferred)
	}
}

// reminderMails lists the reminder mails the fake Resend received, by
// invitation.
func (h *harness) reminderMails() map[string]int {
	out := map[string]int{}
	for _, e := range h.resend.Emails() {
		if e.Tags["kind"] == "reminder" {
			out[e.Tags["invitation"]]++
		}
	}
	return out
}

func (h *harness) mustGet(id string) Invitation {
	h.t.Helper()
	inv, err := h.svc.Get(h.ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return inv
}

// scheduled reports whether an invitation is in its shard's remind set.
func (h *harness) scheduled(id string) bool {
	h.t.Helper()
	_, err := h.rdb.ZScore(h.ctx, h.ks.Remind(redisx.ShardOf(id)), id).Result()
	return err == nil
}

func wantNext(t *testing.T, inv Invitation, want time.Time) {
	t.Helper()
	if want.IsZero() {
		if inv.NextReminderAt != nil {
			t.Fatalf("next_reminder_at = %v, want none", inv.NextReminderAt)
		}
		return
	}
	if inv.NextReminderAt == nil || !inv.NextReminderAt.Equal(want) {
		t.Fatalf("next_reminder_at = %v, want %v", inv.NextReminderAt, want)
	}
}

// Each offset sends the reminder mail once, at its time, through the
// outbox; the invitation shows reminders_sent and next_reminder_at; a
// registration and a link the caller delivers get none.
func TestAutomaticRemindersSentOnce(t *testing.T) {
	h := newHarness(t).withReminders()
	inv := h.mustInvite("remind.me@example.com")
	h.drain()
	wantNext(t, inv, inv.CreatedAt.Add(48*time.Hour))
	if inv.RemindersSent != 0 || !h.scheduled(inv.ID) {
		t.Fatalf("new invitation: reminders_sent %d, scheduled %v", inv.RemindersSent, h.scheduled(inv.ID))
	}
	own := h.mustInvite("own.link@example.com", sendEmail(false))
	wantNext(t, own, time.Time{})

	h.clock.Add(47 * time.Hour)
	h.remindDue(0, 0)
	h.clock.Add(time.Hour)
	h.remindDue(1, 0)
	h.remindDue(0, 0) // at most once
	h.drain()
	got := h.mustGet(inv.ID)
	wantNext(t, got, inv.ExpiresAt.Add(-24*time.Hour))
	if got.RemindersSent != 1 || got.RemindedAt == nil || !got.ExpiresAt.Equal(inv.ExpiresAt) {
		t.Fatalf("after the first reminder: %+v (the expiry is kept)", got)
	}
	if m := h.reminderMails(); m[inv.ID] != 1 || len(m) != 1 {
		t.Fatalf("reminder mails %v, want one for %s", m, inv.ID)
	}
	h.clock.Add(inv.ExpiresAt.Add(-24 * time.Hour).Sub(h.clock.Now()))
	h.remindDue(1, 0)
	h.remindDue(0, 0)
	h.drain()
	got = h.mustGet(inv.ID)
	wantNext(t, got, time.Time{})
	if got.RemindersSent != 2 || h.scheduled(inv.ID) {
		t.Fatalf("after the last offset: reminders_sent %d, still scheduled %v", got.RemindersSent, h.scheduled(inv.ID))
	}
	if m := h.reminderMails(); m[inv.ID] != 2 || len(m) != 1 {
		t.Fatalf("reminder mails %v, want two for %s", m, inv.ID)
	}
	for _, e := range h.resend.Emails() {
		if e.Tags["kind"] == "reminder" && !strings.HasPrefix(e.Subject, "Reminder:") {
			t.Errorf("reminder mail subject %q", e.Subject)
		}
	}
}

// Past the due time by days (the sweeper was down): one mail stands for
// every offset that came due meanwhile.
func TestLateSweepSendsOneReminderForEveryMissedOffset(t *testing.T) {
	h := newHarness(t).withReminders()
	inv := h.mustInvite("late@example.com")
	h.clock.Add(6*24*time.Hour + time.Hour)
	h.remindDue(1, 0)
	h.remindDue(0, 0)
	got := h.mustGet(inv.ID)
	if got.RemindersSent != 1 || got.NextReminderAt != nil || h.scheduled(inv.ID) {
		t.Fatalf("late sweep: %+v", got)
	}
}

// replica is a second kratos-orgs process on the same Redis: its own
// store, service, sealer and outbox worker.
type replica struct {
	svc    *Service
	worker *outbox.Worker
}

func (h *harness) replica() replica {
	h.t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := NewStore(h.rdb, h.ks, 24*time.Hour, h.clock.Now)
	store.SetReminders(testPlan)
	sealer, err := tokens.NewSealer([]string{"test-cipher-secret-0123456789abcdef"})
	if err != nil {
		h.t.Fatal(err)
	}
	w := outbox.NewWorker(h.rdb, h.ks, outbox.Config{
		Concurrency: 4, PollInterval: 10 * time.Millisecond, MaxAttempts: 4,
		BaseBackoff: time.Second, MaxBackoff: time.Minute, ClaimAfter: time.Hour, Now: h.clock.Now,
	}, log)
	svc := NewService(ServiceOptions{Store: store, Orgs: h.orgs, Identities: h.ids, Sealer: sealer, Config: h.svc.cfg,
		Log: log, Wake: w.Wake, Now: h.clock.Now})
	render, err := templates.New("")
	if err != nil {
		h.t.Fatal(err)
	}
	sender, err := mail.NewResendSender(mail.ResendConfig{APIKey: "re_test_key", BaseURL: h.resend.URL(), Timeout: 5 * time.Second})
	if err != nil {
		h.t.Fatal(err)
	}
	index := NewAddressIndex(AddressIndexOptions{Invitations: store, Orgs: h.orgs, Placeholders: svc, Redis: h.rdb, Keys: h.ks, Now: h.clock.Now})
	NewMailer(MailerOptions{Invitations: store, Tokens: svc, Links: svc, Identities: h.ids, Sender: sender, Templates: render,
		FromAddress: "invites@example.com", FromName: "Example", Now: h.clock.Now}).Register(w, index)
	return replica{svc: svc, worker: w}
}

// Two replicas sweeping the same due reminders at once send each once.
func TestTwoSweepersRacingSendEachReminderOnce(t *testing.T) {
	h := newHarness(t).withReminders()
	other := h.replica()
	var invs []Invitation
	for _, a := range []string{"r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"} {
		invs = append(invs, h.mustInvite(a+"@example.com"))
	}
	h.drain()
	h.clock.Add(48 * time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for i := range 8 {
		svc := h.svc
		if i%2 == 1 {
			svc = other.svc
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent, _, err := svc.SendDueReminders(h.ctx, 3) // small batches: the replicas interleave
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += sent
			mu.Unlock()
		}()
	}
	wg.Wait()
	if total != len(invs) {
		t.Fatalf("the sweepers sent %d reminders for %d invitations", total, len(invs))
	}
	h.drain()
	if _, err := other.worker.RunOnce(h.ctx); err != nil {
		t.Fatal(err)
	}
	m := h.reminderMails()
	for _, inv := range invs {
		if m[inv.ID] != 1 || h.mustGet(inv.ID).RemindersSent != 1 {
			t.Errorf("%s: %d reminder mails, reminders_sent %d; want 1", inv.Email, m[inv.ID], h.mustGet(inv.ID).RemindersSent)
		}
	}
}

// A process that decided a reminder and stopped before its mail went out:
// the mail waits in the outbox, and the next process sends it once and
// decides nothing again.
func TestRestartBetweenDecisionAndMail(t *testing.T) {
	h := newHarness(t).withReminders()
	inv := h.mustInvite("restart@example.com")
	h.drain()
	h.clock.Add(48 * time.Hour)
	h.remindDue(1, 0) // decided and enqueued; this process stops here

	next := h.replica()
	if sent, _, err := next.svc.SendDueReminders(h.ctx, 100); err != nil || sent != 0 {
		t.Fatalf("after the restart the sweep sent %d again (%v)", sent, err)
	}
	for range 10 {
		if n, err := next.worker.RunOnce(h.ctx); err != nil || n == 0 {
			break
		}
	}
	if m := h.reminderMails(); m[inv.ID] != 1 {
		t.Fatalf("%d reminder mails after the restart, want 1", m[inv.ID])
	}
	got := h.mustGet(inv.ID)
	if got.RemindersSent != 1 || got.Delivery.Status != DeliverySent {
		t.Fatalf("after the restart: %+v", got)
	}
}

// No reminder for an invitation that was accepted, revoked or expired, even
// with its reminder due.
func TestNoReminderAfterAcceptRevokeOrExpiry(t *testing.T) {
	h := newHarness(t).withReminders()
	acc := newAcceptor(h, "kratos_settings")
	accepted := h.mustInvite("accepted@example.com")
	revoked := h.mustInvite("revoked@example.com")
	h.drain()
	var token string
	for _, e := range h.resend.Emails() {
		if e.To[0] == "accepted@example.com" {
			token = strings.TrimPrefix(linkPattern.FindString(e.Text), testAcceptURL)
		}
	}
	if _, err := acceptNew(h, acc, token, Form{Values: map[string]string{"name.first": "Ada"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Revoke(h.ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	h.clock.Add(6 * 24 * time.Hour) // the expiring one is created here: its 24h-before point is 6 days on
	expiring := h.mustInvite("expiring@example.com")
	for _, inv := range []Invitation{accepted, revoked} {
		if h.scheduled(inv.ID) || h.mustGet(inv.ID).NextReminderAt != nil {
			t.Errorf("%s: still scheduled after it ended", inv.Email)
		}
	}
	h.clock.Add(7*24*time.Hour + time.Second) // past every point, and past the last one's expiry
	if !h.scheduled(expiring.ID) {
		t.Fatal("the expiring invitation was never scheduled: the test proves nothing")
	}
	h.remindDue(0, 0)
	h.drain()
	if m := h.reminderMails(); len(m) != 0 {
		t.Fatalf("reminder mails after the invitations ended: %v", m)
	}
	if h.scheduled(expiring.ID) || h.mustGet(expiring.ID).Status != Expired {
		t.Fatal("the expired invitation is still scheduled")
	}
}

// An organization's own plan wins over the configured one; empty lists
// turn reminders off for it.
func TestPerOrganizationReminderPlan(t *testing.T) {
	h := newHarness(t).withReminders()
	quick, quiet := h.newOrg("Quick Co"), h.newOrg("Quiet Co")
	for org, plan := range map[string]orgs.Reminders{
		quick.ID: {AfterSent: []time.Duration{time.Hour}},
		quiet.ID: {},
	} {
		if _, err := h.orgs.Update(h.ctx, org, orgs.Update{Reminders: plan.Plan()}); err != nil {
			t.Fatal(err)
		}
	}
	o, err := h.orgs.Get(h.ctx, quick.ID)
	if err != nil || o.Reminders == nil || len(o.Reminders.AfterSent) != 1 || o.Reminders.AfterSent[0] != time.Hour {
		t.Fatalf("organization's plan reads back as %+v, %v", o.Reminders, err)
	}
	inviteIn := func(org, email string) Invitation {
		inv, _, err := h.svc.Invite(h.ctx, org, InviteRequest{Email: email, Role: "member"})
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
	configured := h.mustInvite("configured@example.com")
	fast := inviteIn(quick.ID, "fast@example.com")
	off := inviteIn(quiet.ID, "off@example.com")
	wantNext(t, configured, configured.CreatedAt.Add(48*time.Hour))
	wantNext(t, fast, fast.CreatedAt.Add(time.Hour))
	wantNext(t, off, time.Time{})
	h.clock.Add(time.Hour)
	h.remindDue(1, 0)
	h.drain()
	if m := h.reminderMails(); m[fast.ID] != 1 || len(m) != 1 {
		t.Fatalf("after an hour: reminder mails %v, want one for the quick organization's", m)
	}
	// Removing the organization's plan: the configured one applies to what
	// is written next.
	if _, err := h.orgs.Update(h.ctx, quiet.ID, orgs.Update{Reminders: "none"}); err != nil {
		t.Fatal(err)
	}
	again, err := h.svc.Resend(h.ctx, off.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	wantNext(t, again, off.CreatedAt.Add(48*time.Hour))
}

// Automatic reminders count against the same quotas as manual ones: inside
// invitations.remind_interval of a manual reminder one is deferred to the
// interval's end (not dropped), and the mail budget makes it wait in the
// outbox.
func TestAutomaticRemindersRespectQuotas(t *testing.T) {
	h := newHarness(t).withReminders()
	inv := h.mustInvite("quota@example.com")
	h.drain()
	h.clock.Add(47*time.Hour + 30*time.Minute)
	if _, err := h.svc.Remind(h.ctx, inv.ID); err != nil {
		t.Fatal(err)
	}
	h.clock.Add(30 * time.Minute)
	h.remindDue(0, 1)
	wantNext(t, h.mustGet(inv.ID), h.clock.Now().Add(30*time.Minute))
	h.clock.Add(29 * time.Minute)
	h.remindDue(0, 0)
	// The budget: one mail per organization a day, spent by the manual
	// reminder's mail.
	h.withBudget(ratelimit.Limit{Name: "mail_global", Requests: 1000, Period: time.Hour},
		ratelimit.Limit{Name: "mail_per_organization", Requests: 1, Period: 24 * time.Hour})
	h.drain()
	h.clock.Add(time.Minute)
	h.remindDue(1, 0)
	h.drain()
	if m := h.reminderMails(); m[inv.ID] != 1 {
		t.Fatalf("%d reminder mails, want 1 (the manual one; the automatic one waits for the budget)", m[inv.ID])
	}
	if h.delayedJobs() != 1 {
		t.Fatalf("%d delayed jobs, want the automatic reminder waiting", h.delayedJobs())
	}
	h.waitAndDrain(24 * time.Hour)
	if m := h.reminderMails(); m[inv.ID] != 2 || h.mustGet(inv.ID).RemindersSent != 2 {
		t.Fatalf("%d reminder mails once the budget refilled, want 2", m[inv.ID])
	}
}
