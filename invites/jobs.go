package invites

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/mail"
	"github.com/kratos-orgs/kratos-orgs/outbox"
	"github.com/kratos-orgs/kratos-orgs/redisx"
	"github.com/kratos-orgs/kratos-orgs/templates"
	"github.com/kratos-orgs/kratos-orgs/tokens"
)

// MailObserver is told the result of every send attempt (metrics).
type MailObserver interface {
	MailResult(result, class string)
}

// Mailer renders and sends invitation mail from outbox jobs.
type Mailer struct {
	svc      *Service
	sender   mail.Sender
	render   *templates.Renderer
	from     string // bare address
	fromName string
	observer MailObserver
	budget   MailBudget
}

// MailBudget is the outgoing-mail quota. Spend takes one mail from the
// budgets of org ("" for mail about no organization), or says how long to
// wait and which limit is spent.
type MailBudget interface {
	Spend(ctx context.Context, org string) (wait time.Duration, limit string, err error)
}

// SetBudget installs the outgoing-mail quota (none: unlimited).
func (m *Mailer) SetBudget(b MailBudget) { m.budget = b }

// MailBudgetExhausted starts the delivery error of a mail that waits in
// the outbox for its budget.
const MailBudgetExhausted = "mail_budget_exhausted"

// spend asks the budget; a non-nil error is either a failure to retry or
// an outbox.Defer to wait.
func (m *Mailer) spend(ctx context.Context, org string) error {
	if m.budget == nil {
		return nil
	}
	wait, limit, err := m.budget.Spend(ctx, org)
	if err != nil || wait <= 0 {
		return err
	}
	return outbox.Defer(fmt.Errorf("%s: %s spent; waiting %s", MailBudgetExhausted, limit, wait.Round(time.Second)), wait)
}

// SetObserver installs a metrics observer.
func (m *Mailer) SetObserver(o MailObserver) { m.observer = o }

// observe records an attempt: result is sent, retry or failed.
func (m *Mailer) observe(result string, err error) {
	if m.observer != nil {
		m.observer.MailResult(result, mail.Class(err))
	}
}

// NewMailer returns the mail job handler.
func NewMailer(svc *Service, sender mail.Sender, render *templates.Renderer, fromAddress, fromName string) *Mailer {
	return &Mailer{svc: svc, sender: sender, render: render, from: fromAddress, fromName: fromName}
}

// Register installs the invitation jobs on a worker.
func (m *Mailer) Register(w *outbox.Worker, idx *AddressIndex) {
	w.Handle("mail", m.Handle, m.GiveUp)
	w.Handle("notice", m.Notice, nil)
	w.Handle("invitation.sync", idx.Handle, nil)
}

// RetryWindow bounds how long after its first attempt a mail job may still
// be sent. Resend remembers an Idempotency-Key for 24 hours; a retry after
// that could deliver the same mail twice. The hour of margin covers a
// worker that died mid-send and the reclaim of its job (outbox.claim_after).
const RetryWindow = 23 * time.Hour

// errRetryWindow is why a mail job past RetryWindow is given up.
var errRetryWindow = errors.New(ReasonExpiredRetryWindow + ": not sent within " + RetryWindow.String() +
	" of its first attempt (the provider's idempotency window); resend the invitation for a new link")

// pastWindow reports whether a job may no longer be sent under its key.
func (m *Mailer) pastWindow(job outbox.Job) bool {
	first := job.FirstAttempt()
	return !first.IsZero() && m.svc.now().Sub(first) > RetryWindow
}

// Notice mails a person who already has an account and asked to register
// an organization: log in and create it from there. No link is issued.
func (m *Mailer) Notice(ctx context.Context, job outbox.Job) error {
	rendered, err := m.render.Mail(job.Template, templates.MailData{
		Organization: templates.Organization{Name: shownName(job.Name, 1000)},
		Invitee:      templates.Invitee{Email: job.Ref, Existing: true},
		LoginURL:     m.svc.cfg.LoginURL,
	})
	if err != nil {
		return outbox.Permanent(err)
	}
	if m.pastWindow(job) {
		m.observe("failed", errRetryWindow)
		return outbox.Permanent(errRetryWindow)
	}
	if err := m.spend(ctx, ""); err != nil {
		return err
	}
	_, err = m.sender.Send(ctx, mail.Message{
		From: mail.FormatAddress(m.fromName, m.from), To: []string{job.Ref},
		Subject: rendered.Subject, HTML: rendered.HTML, Text: rendered.Text,
		Tags:           map[string]string{"kind": "notice"},
		IdempotencyKey: fmt.Sprintf("kratos-orgs/notice/%d/%s", job.Enqueued, tokens.Hash(job.Ref)[:16]),
	})
	if se, ok := mail.AsSendError(err); ok && se.Temporary {
		m.observe("retry", err)
		return outbox.Retry(err, se.RetryAfter)
	}
	if err != nil {
		m.observe("failed", err)
		return outbox.Permanent(err)
	}
	m.observe("sent", nil)
	return nil
}

// Handle sends one invitation, reminder or activation mail. A job whose
// invitation ended or whose token was rotated since is dropped: a newer job
// carries the link that works.
func (m *Mailer) Handle(ctx context.Context, job outbox.Job) error {
	inv, org, err := m.svc.store.GetWithOrg(ctx, job.Ref)
	if apperr.KindOf(err) == apperr.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if inv.Status != Pending || inv.tokenVersion != job.Version {
		return nil
	}
	if m.pastWindow(job) {
		// Sending now could repeat a mail Resend already delivered under
		// this key; GiveUp marks the delivery failed (expired_retry_window).
		m.observe("failed", errRetryWindow)
		return outbox.Permanent(errRetryWindow)
	}
	token, err := m.svc.sealer.Open(job.Sealed, sealContext)
	if err != nil {
		return outbox.Permanent(err)
	}
	if tokens.Hash(token) != inv.tokenHash {
		return nil
	}
	data := templates.MailData{
		Organization: templates.Organization{ID: inv.OrganizationID, Slug: org["slug"], Name: shownOrgName(org["name"], org["slug"])},
		Invitee:      templates.Invitee{Email: inv.Email, Existing: inv.ExistingIdentity},
		Role:         inv.Role,
		AcceptURL:    m.svc.linkURL(inv, token),
		ExpiresAt:    inv.ExpiresAt,
		Context:      inv.Context,
	}
	if inv.Inviter != nil {
		if data.Inviter, err = m.inviter(ctx, *inv.Inviter); err != nil {
			return err // Kratos down: retry later
		}
	}
	rendered, err := m.render.Mail(job.Template, data)
	if err != nil {
		return outbox.Permanent(err)
	}
	fromName := m.fromDisplayName(data.Inviter.Name)
	msg := mail.Message{
		From:    mail.FormatAddress(fromName, m.from),
		To:      []string{inv.Email},
		ReplyTo: data.Inviter.Email, // only ever a verified address: see inviter
		Subject: rendered.Subject, HTML: rendered.HTML, Text: rendered.Text,
		Tags: map[string]string{"kind": job.Template, "invitation": inv.ID, "organization": inv.OrganizationID},
		// One key per link: a retry after a crash or timeout never mails twice.
		IdempotencyKey: fmt.Sprintf("kratos-orgs/%s/v%d/%s", inv.ID, job.Version, job.Template),
	}
	if err := m.spend(ctx, inv.OrganizationID); err != nil {
		if _, waiting := outbox.IsDefer(err); waiting {
			// Queued, not failed: the invitation says why it waits.
			_, _ = m.svc.store.SetDelivery(ctx, inv.ID, job.Version, Delivery{Status: DeliveryQueued, Attempts: job.Attempt, LastError: errors.Unwrap(err).Error()})
		}
		return err
	}
	id, sendErr := m.sender.Send(ctx, msg)
	attempts := job.Attempt + 1
	if sendErr == nil {
		m.observe("sent", nil)
		_, err := m.svc.store.SetDelivery(ctx, inv.ID, job.Version, Delivery{Status: DeliverySent, Attempts: attempts, MessageID: id})
		return err // a failure here retries the send, which the idempotency key makes harmless
	}
	se, _ := mail.AsSendError(sendErr)
	if se == nil || !se.Temporary {
		m.observe("failed", sendErr)
		_, _ = m.svc.store.SetDelivery(ctx, inv.ID, job.Version, Delivery{Status: DeliveryFailed, Attempts: attempts, LastError: sendErr.Error(), Reason: failureReason(sendErr)})
		return outbox.Permanent(sendErr)
	}
	m.observe("retry", sendErr)
	_, _ = m.svc.store.SetDelivery(ctx, inv.ID, job.Version, Delivery{Status: DeliveryQueued, Attempts: attempts, LastError: sendErr.Error()})
	return outbox.Retry(sendErr, se.RetryAfter)
}

// GiveUp marks the delivery failed when the outbox stops retrying.
func (m *Mailer) GiveUp(ctx context.Context, job outbox.Job, err error) {
	if job.Kind != "mail" {
		return
	}
	_, _ = m.svc.store.SetDelivery(ctx, job.Ref, job.Version, Delivery{Status: DeliveryFailed, Attempts: job.Attempt, LastError: err.Error(), Reason: failureReason(err)})
}

// failureReason classifies why a mail job was given up.
func failureReason(err error) string {
	if errors.Is(err, errRetryWindow) {
		return ReasonExpiredRetryWindow
	}
	if se, ok := mail.AsSendError(err); ok {
		if se.Temporary {
			return ReasonMaxAttempts
		}
		return ReasonRejected
	}
	if outbox.IsPermanent(err) {
		return ReasonError
	}
	return ReasonMaxAttempts
}

// AddressIndex maintains, per address, the organizations with a pending
// invitation for it (redisx key AddressPending) and the invitations'
// references (AddressRefs), and releases placeholder identities once
// nothing references them any more (see placeholders.go).
type AddressIndex struct {
	svc *Service
	rdb redis.UniversalClient
	ks  redisx.Keyspace
	now func() time.Time
	// stampsTTL is how long the index remembers when it last applied an
	// invitation's state (StampsTTL; tests shorten it).
	stampsTTL time.Duration
	// knownTTL is how long the identity seen for an address is remembered
	// (KnownIdentityTTL; tests shorten it).
	knownTTL time.Duration
}

// NewAddressIndex returns the invitation.sync job handler.
func NewAddressIndex(svc *Service, rdb redis.UniversalClient, ks redisx.Keyspace) *AddressIndex {
	return &AddressIndex{svc: svc, rdb: rdb, ks: ks, now: time.Now, stampsTTL: StampsTTL, knownTTL: KnownIdentityTTL}
}

// indexScript applies one observation of an invitation to its address'
// index, unless a later observation was applied already: two jobs racing
// for the same invitation cannot leave the older state behind. An ended
// invitation's reference goes with it (final states never change); a
// pending one gets a reference if it has none (invitations written before
// references existed).
// KEYS: pending set, stamps hash, refs hash (same {a:email} tag). ARGV: org,
// add|remove, stamp (ms), expiry (ms), now (ms), stamps TTL (ms),
// invitation id, reference value.
var indexScript = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if tonumber(ARGV[3]) < cur then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
if ARGV[2] == 'add' then
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
  redis.call('HSETNX', KEYS[3], ARGV[7], ARGV[8])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[7])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[5])
return 1
`)

// StampsTTL bounds how long an index remembers when it applied an
// observation. A stamp only has to outlive the gap between a job reading an
// invitation and applying what it read — each attempt reads afresh, so
// seconds — and a day is far more than that.
const StampsTTL = 24 * time.Hour

// Handle brings the address index in line with an invitation, and
// releases its placeholder when it ended.
func (x *AddressIndex) Handle(ctx context.Context, job outbox.Job) error {
	observed := x.now()
	inv, err := x.svc.store.Get(ctx, job.Ref)
	if apperr.KindOf(err) == apperr.NotFound {
		return nil // purged
	}
	if err != nil {
		return err
	}
	op := "remove"
	if inv.Status == Pending {
		op = "add"
	}
	keys := []string{x.ks.AddressPending(inv.Email), x.ks.AddressPending(inv.Email) + ":stamps", x.ks.AddressRefs(inv.Email)}
	err = indexScript.Run(ctx, x.rdb, keys, inv.OrganizationID, op, observed.UnixMilli(),
		inv.ExpiresAt.UnixMilli(), x.now().UnixMilli(), x.stampsTTL.Milliseconds(),
		inv.ID, inv.OrganizationID+" "+fmt.Sprint(inv.CreatedAt.UnixMilli())).Err()
	if err != nil {
		return err
	}
	if inv.Status != Revoked && inv.Status != Expired {
		return x.remember(ctx, inv)
	}
	if inv.kind == "registration" {
		// An abandoned sign-up leaves no organization behind.
		if err := x.svc.orgs.DeleteIfPending(ctx, inv.OrganizationID); err != nil {
			return err
		}
	}
	if inv.identityCreated && inv.IdentityID != "" {
		_, err := x.svc.ReleasePlaceholder(ctx, inv.Email, inv.IdentityID)
		return err
	}
	return nil
}

// ReleasePlaceholder deletes an address' placeholder identity if nothing
// references it (Service.ReleasePlaceholder), for the reconciler.
func (x *AddressIndex) ReleasePlaceholder(ctx context.Context, email, identityID string) (deleted bool, err error) {
	return x.svc.ReleasePlaceholder(ctx, email, identityID)
}

// Invited tells a sign-up what is known about its address, in one round
// trip (both keys share the address' slot): the organizations with a
// pending invitation, and whether any invitation references the address —
// refs are written before an invitation and its placeholder, so they also
// show an invitation that is being created right now.
func (x *AddressIndex) Invited(ctx context.Context, email string) (orgIDs []string, referenced bool, err error) {
	res, err := invitedScript.Run(ctx, x.rdb, []string{x.ks.AddressPending(email), x.ks.AddressRefs(email)},
		"("+fmt.Sprint(x.now().UnixMilli())).Slice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, false, err
	}
	if len(res) != 2 {
		return nil, false, fmt.Errorf("invited: unexpected reply %v", res)
	}
	list, _ := res[0].([]any)
	for _, v := range list {
		if id, ok := v.(string); ok {
			orgIDs = append(orgIDs, id)
		}
	}
	n, _ := res[1].(int64)
	return orgIDs, n > 0, nil
}

// invitedScript reads both address keys in one command (one slot).
// KEYS: pending, refs. ARGV: the exclusive lower bound of live expiries.
var invitedScript = redis.NewScript(`
return {redis.call('ZRANGE', KEYS[1], ARGV[1], '+inf', 'BYSCORE'), redis.call('HLEN', KEYS[2])}
`)

// PendingOrganizations lists the organizations with a pending invitation
// for an address (one round trip).
func (x *AddressIndex) PendingOrganizations(ctx context.Context, email string) ([]string, error) {
	orgIDs, err := x.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: x.ks.AddressPending(email), ByScore: true, Start: "(" + fmt.Sprint(x.now().UnixMilli()), Stop: "+inf",
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return orgIDs, err
}

// candidateOrganizations lists the organizations that may have a pending
// invitation for an address: the pending index, and the references, which
// are written before the invitation and so also name invitations whose
// index job has not run yet. A superset: acceptance checks each atomically.
func (x *AddressIndex) candidateOrganizations(ctx context.Context, email string) ([]string, error) {
	pending, err := x.PendingOrganizations(ctx, email)
	if err != nil {
		return nil, err
	}
	refs, err := x.rdb.HVals(ctx, x.ks.AddressRefs(email)).Result()
	if err != nil {
		return nil, err
	}
	for _, v := range refs {
		org, _, _ := strings.Cut(v, " ")
		if org != "" && !slices.Contains(pending, org) {
			pending = append(pending, org)
		}
	}
	return pending, nil
}
