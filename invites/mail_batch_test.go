package invites

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/mail"
	"github.com/kratos-orgs/kratos-orgs/mail/resendtest"
	"github.com/kratos-orgs/kratos-orgs/outbox"
	"github.com/kratos-orgs/kratos-orgs/ratelimit"
	"github.com/kratos-orgs/kratos-orgs/templates"
)

// inviteMany invites n addresses of the harness' organization (the mail
// jobs wait in the outbox: the worker runs only when drained).
func (h *harness) inviteMany(n int) []Invitation {
	h.t.Helper()
	out := make([]Invitation, n)
	for i := range out {
		out[i] = h.mustInvite(fmt.Sprintf("bulk%03d@example.com", i))
	}
	return out
}

// checkSentOnce checks that every invitation's mail went out exactly once,
// with the id the fake gave it recorded on the invitation and in the
// email id index the delivery webhooks read.
func (h *harness) checkSentOnce(invs []Invitation) {
	h.t.Helper()
	byTo := map[string]resendtest.Email{}
	for _, e := range h.resend.Emails() {
		if prev, dup := byTo[e.To[0]]; dup {
			h.t.Fatalf("%s got two mails: %s and %s", e.To[0], prev.ID, e.ID)
		}
		byTo[e.To[0]] = e
	}
	for _, inv := range invs {
		d, e := h.delivery(inv.ID), byTo[inv.Email]
		if d.Status != DeliverySent || d.MessageID == "" || d.MessageID != e.ID {
			h.t.Fatalf("%s: delivery %+v, the fake's email id %q", inv.Email, d, e.ID)
		}
		if got, _, ok, err := h.deliv.mailOf(h.ctx, e.ID); err != nil || !ok || got != inv.ID {
			h.t.Fatalf("%s: email id index gives %q (%v, %v), want %s", inv.Email, got, ok, err, inv.ID)
		}
	}
}

// TestBulkMailGoesOutInBatches: 250 due mails are 3 batch calls of at
// most 100, and each mail has its own id and state.
func TestBulkMailGoesOutInBatches(t *testing.T) {
	h := newHarness(t)
	invs := h.inviteMany(250)
	before := h.trips.n.Load()
	h.drain()
	trips := h.trips.n.Load() - before
	if got := h.resend.BatchRequests(); got != 3 || h.resend.Requests() != 3 {
		t.Fatalf("batch calls = %d, all calls = %d; want 3 and 3", got, h.resend.Requests())
	}
	for _, e := range h.resend.Emails() {
		if len(e.IdempotencyKey) < 20 || e.IdempotencyKey[:18] != "kratos-orgs/batch/" {
			t.Fatalf("email %s sent under key %q, want a batch key", e.ID, e.IdempotencyKey)
		}
	}
	h.checkSentOnce(invs)
	t.Logf("Redis round trips for 250 mails in 3 batches: %d (%.1f a mail, the outbox's reads and acknowledgements included)", trips, float64(trips)/250)
}

// TestMailBatchRefusedRecipientFailsAlone: one address Resend refuses
// fails that invitation's delivery for good (invitation.delivery_failed);
// the others are sent.
func TestMailBatchRefusedRecipientFailsAlone(t *testing.T) {
	h := newHarness(t)
	invs := h.inviteMany(5)
	h.resend.RefuseRecipient(invs[2].Email, "The address is not valid.")
	h.drain()
	if h.resend.BatchRequests() != 1 || len(h.resend.Emails()) != 4 {
		t.Fatalf("batch calls = %d, emails = %d; want 1 and 4", h.resend.BatchRequests(), len(h.resend.Emails()))
	}
	d := h.delivery(invs[2].ID)
	if d.Status != DeliveryFailed || d.Reason != ReasonRejected || d.MessageID != "" {
		t.Fatalf("refused mail: delivery %+v, want failed (rejected)", d)
	}
	if n := h.deadJobs(); n != 1 {
		t.Errorf("dead jobs = %d, want the refused mail's", n)
	}
	h.checkSentOnce(append(invs[:2:2], invs[3:]...))
}

// TestMailBatchRetryAfter500SendsOnce: a 500 on the batch retries the
// whole batch (same key, same body) after the backoff; nothing is sent
// twice, and a retry whose first call did go through is replayed.
func TestMailBatchRetryAfter500SendsOnce(t *testing.T) {
	h := newHarness(t)
	invs := h.inviteMany(30)
	h.resend.FailNext(1, resendtest.ServerError())
	h.drain()
	if d := h.delivery(invs[0].ID); d.Status != DeliveryQueued || d.LastError == "" || len(h.resend.Emails()) != 0 {
		t.Fatalf("after the 500: delivery %+v, %d emails; want queued with the error, none sent", d, len(h.resend.Emails()))
	}
	h.clock.Add(2 * time.Minute) // past the backoff
	h.drain()
	emails := h.resend.Emails()
	if h.resend.BatchRequests() != 2 || len(emails) != 30 {
		t.Fatalf("batch calls = %d, emails = %d; want 2 and 30", h.resend.BatchRequests(), len(emails))
	}
	h.checkSentOnce(invs)
	// The same mails again (a worker that did not see the answer): the
	// stored answer is used, or Resend replays it.
	before := len(h.resend.Emails())
	errs := h.mailer.HandleBatch(h.ctx, mailJobs(h, invs, 1))
	for i, err := range errs {
		if err != nil {
			t.Fatalf("job %d run again: %v", i, err)
		}
	}
	if len(h.resend.Emails()) != before {
		t.Fatal("running the jobs again sent mail")
	}
	h.checkSentOnce(invs)
}

// mailJobs are the invitation mail jobs of invs, as tried attempt times.
func mailJobs(h *harness, invs []Invitation, attempt int) []outbox.Job {
	var jobs []outbox.Job
	for _, inv := range invs {
		got, err := h.svc.store.Get(h.ctx, inv.ID)
		if err != nil {
			h.t.Fatal(err)
		}
		jobs = append(jobs, outbox.Job{Kind: "mail", Ref: inv.ID, Version: got.tokenVersion, Template: "invitation", Attempt: attempt})
	}
	return jobs
}

// crashAfterBatch is a sender whose process dies once, right after a batch
// call got through and before anything is recorded or acknowledged.
type crashAfterBatch struct {
	*mail.ResendSender
	crashed atomic.Bool
}

func (c *crashAfterBatch) SendBatch(ctx context.Context, msgs []mail.Message, key string) ([]mail.BatchResult, error) {
	res, err := c.ResendSender.SendBatch(ctx, msgs, key)
	if c.crashed.CompareAndSwap(false, true) {
		runtime.Goexit()
	}
	return res, err
}

// batchWorker is another process' worker sending through sender, which
// takes over jobs unacknowledged for claimAfter.
func (h *harness) batchWorker(sender mail.Sender, claimAfter time.Duration) *outbox.Worker {
	h.t.Helper()
	w := outbox.NewWorker(h.rdb, h.ks, outbox.Config{
		Concurrency: 4, PollInterval: 5 * time.Millisecond, MaxAttempts: 10, Batch: 2 * mail.MaxBatch,
		BaseBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, ClaimAfter: claimAfter,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	render, err := templates.New("")
	if err != nil {
		h.t.Fatal(err)
	}
	NewMailer(MailerOptions{
		Invitations: h.svc.store, Tokens: h.svc, Links: h.svc, Identities: h.ids, Sender: sender, Templates: render,
		FromAddress: "invites@example.com", FromName: "Example", Now: h.clock.Now, Deliveries: h.deliv,
		Batches: NewMailBatches(h.rdb, h.ks, h.svc.sealer),
	}).Register(w, h.index)
	return w
}

func (h *harness) resendSender() *mail.ResendSender {
	h.t.Helper()
	s, err := mail.NewResendSender(mail.ResendConfig{APIKey: "re_test_key", BaseURL: h.resend.URL(), Timeout: 5 * time.Second})
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// TestMailBatchCrashAfterCallResendsSameBatch: a worker dies between the
// batch call and recording its ids; the worker that takes the jobs over
// re-sends the stored batch under the same key, Resend replays the same
// ids, and no mail goes out twice.
func TestMailBatchCrashAfterCallResendsSameBatch(t *testing.T) {
	h := newHarness(t)
	invs := h.inviteMany(40)
	dying := h.batchWorker(&crashAfterBatch{ResendSender: h.resendSender()}, time.Hour)
	if _, err := dying.RunOnce(h.ctx); err != nil {
		t.Fatal(err)
	}
	first := h.resend.Emails()
	if len(first) != 40 || h.delivery(invs[0].ID).Status != DeliveryQueued {
		t.Fatalf("before the takeover: %d emails, delivery %+v; want 40 sent, none recorded", len(first), h.delivery(invs[0].ID))
	}
	taker := h.batchWorker(h.resendSender(), 50*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // the dead worker's jobs idle past claim_after
	if _, err := taker.RunOnce(h.ctx); err != nil {
		t.Fatal(err)
	}
	if h.resend.BatchRequests() != 2 || len(h.resend.Emails()) != 40 {
		t.Fatalf("batch calls = %d, emails = %d; want 2 (the replay) and 40", h.resend.BatchRequests(), len(h.resend.Emails()))
	}
	h.checkSentOnce(invs)
}

// TestTwoWorkersNeverSendOneMailTwice: two workers that keep taking each
// other's jobs over (claim_after of 20ms, shorter than binding a batch of
// 120 under the race detector) send every mail once.
func TestTwoWorkersNeverSendOneMailTwice(t *testing.T) {
	h := newHarness(t)
	invs := h.inviteMany(120)
	h.resend.FailNext(4, resendtest.Failure{Delay: 30 * time.Millisecond}) // slow, then fine
	h.runWorkers(2, 20*time.Millisecond, func() bool { return h.delivery(invs[len(invs)-1].ID).Status == DeliverySent })
	h.checkSentOnce(invs)
	t.Logf("%d calls (%d batch) for %d mails", h.resend.Requests(), h.resend.BatchRequests(), len(invs))
}

// runWorkers runs n batch workers until done holds and the jobs they took
// from each other have run out.
func (h *harness) runWorkers(n int, claimAfter time.Duration, done func() bool) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(h.ctx)
	var wg sync.WaitGroup
	for range n {
		w := h.batchWorker(h.resendSender(), claimAfter)
		wg.Add(1)
		go func() { defer wg.Done(); _ = w.Run(ctx) }()
	}
	deadline := time.Now().Add(30 * time.Second)
	for !done() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(10 * claimAfter)
	cancel()
	wg.Wait()
}

// stealDuring is a sender during whose first batch call another worker
// takes the batch's jobs over.
type stealDuring struct {
	*mail.ResendSender
	steal func()
	once  sync.Once
}

func (s *stealDuring) SendBatch(ctx context.Context, msgs []mail.Message, key string) ([]mail.BatchResult, error) {
	var res []mail.BatchResult
	var err error
	done := make(chan struct{})
	go func() { res, err = s.ResendSender.SendBatch(ctx, msgs, key); close(done) }()
	s.once.Do(s.steal)
	<-done
	return res, err
}

// TestJobsTakenOverDuringABatchCallAreNotSentAgain: a worker takes over the
// jobs of a batch whose call is under way; it re-sends the batch under
// its key (Resend: 409 concurrent_idempotent_requests), its retry finds
// the answer the first worker stored, and every mail is sent once.
func TestJobsTakenOverDuringABatchCallAreNotSentAgain(t *testing.T) {
	h := newHarness(t)
	invs := h.inviteMany(50)
	taker := h.batchWorker(h.resendSender(), 50*time.Millisecond)
	run := func() {
		if _, err := taker.RunOnce(h.ctx); err != nil {
			t.Error(err)
		}
	}
	h.resend.FailNext(1, resendtest.Failure{Delay: 500 * time.Millisecond})
	slow := h.batchWorker(&stealDuring{ResendSender: h.resendSender(), steal: func() {
		time.Sleep(100 * time.Millisecond) // past claim_after: the jobs look abandoned
		run()
	}}, time.Hour)
	if _, err := slow.RunOnce(h.ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the taker's retries are due
	run()
	// The taker's retry finds the stored answer: no third call.
	if h.resend.BatchRequests() != 2 || len(h.resend.Emails()) != 50 || h.delayedJobs() != 0 {
		t.Fatalf("batch calls = %d, emails = %d, delayed jobs = %d; want the call and the refused concurrent one, 50 emails, none left",
			h.resend.BatchRequests(), len(h.resend.Emails()), h.delayedJobs())
	}
	h.checkSentOnce(invs)
}

// TestMailBatchQuotaAndSuppressionPerMail: in a batch round a suppressed
// address is skipped and the mail budget is spent per mail: the mails past
// it wait in the outbox and go out when it refills.
func TestMailBatchQuotaAndSuppressionPerMail(t *testing.T) {
	h := newHarness(t)
	h.withBudget(ratelimit.Limit{Name: "mail_global", Requests: 1000, Period: time.Hour},
		ratelimit.Limit{Name: "mail_per_organization", Requests: 3, Period: time.Hour})
	invs := h.inviteMany(6)
	if err := h.deliv.Suppress(h.ctx, Suppression{Email: invs[0].Email, Reason: DeliveryBounced}); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if h.resend.BatchRequests() != 1 || len(h.resend.Emails()) != 3 {
		t.Fatalf("first hour: %d batch calls, %d emails; want 1 and 3 (budget of 3)", h.resend.BatchRequests(), len(h.resend.Emails()))
	}
	if d := h.delivery(invs[0].ID); d.Status != DeliverySuppressed {
		t.Fatalf("suppressed address: delivery %+v", d)
	}
	if d := h.delivery(invs[5].ID); d.Status != DeliveryQueued || !strings.HasPrefix(d.LastError, MailBudgetExhausted) {
		t.Fatalf("over budget: delivery %+v, want queued waiting for the budget", d)
	}
	h.waitAndDrain(time.Hour)
	if len(h.resend.Emails()) != 5 {
		t.Fatalf("after the hour: %d emails, want 5", len(h.resend.Emails()))
	}
	h.checkSentOnce(invs[1:])
}

// TestMailBoundElsewhereIsLeftOutOfANewBatch: a mail another worker bound
// to a send of its own (it took the job over) is left out of the batch the
// others go in, and later sent under its own key only.
func TestMailBoundElsewhereIsLeftOutOfANewBatch(t *testing.T) {
	h := newHarness(t)
	invs := h.inviteMany(5)
	taken := mailJobs(h, invs[2:3], 0)[0]
	if pins, err := h.mailer.batches.pin(h.ctx, []string{mailKey(taken)}); err != nil || pins[0] != pinSingle {
		t.Fatalf("pin: %v %v", pins, err)
	}
	h.drain()
	if h.resend.BatchRequests() != 1 || len(h.resend.Emails()) != 4 {
		t.Fatalf("%d batch calls, %d emails; want one batch of the 4 free mails", h.resend.BatchRequests(), len(h.resend.Emails()))
	}
	h.clock.Add(2 * time.Minute) // its retry
	h.drain()
	emails := h.resend.Emails()
	if len(emails) != 5 || emails[4].To[0] != invs[2].Email || emails[4].IdempotencyKey != mailKey(taken) {
		t.Fatalf("emails %+v: want the bound mail last, under its own key", emails)
	}
	h.checkSentOnce(invs)
}
