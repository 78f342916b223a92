package invites

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/mail"
	"github.com/kratos-orgs/kratos-orgs/orgs"
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
	invitations invitationReader
	tokens      tokenOpener
	links       linkBuilder
	ids         inviterReader
	sender      mail.Sender
	render      *templates.Renderer
	from        string // bare address
	fromName    string
	loginURL    string
	observer    MailObserver
	budget      MailBudget
	deliveries  mailTracker
	batches     *MailBatches     // nil: every mail is sent alone
	batcher     mail.BatchSender // the sender, when it sends batches
	now         func() time.Time
}

// mailTracker is what the mail job tells and asks of delivery tracking
// (Deliveries): which invitation a sent email is, and whether an address
// is suppressed.
type mailTracker interface {
	MailSent(ctx context.Context, emailID, invitation string, version int) error
	suppressionChecker
}

// invitationReader is what the mail job reads and writes of invitations
// (Store).
type invitationReader interface {
	GetWithOrg(ctx context.Context, id string) (Invitation, map[string]string, error)
	SetDelivery(ctx context.Context, id string, version int, d Delivery) (bool, error)
}

// tokenOpener opens the sealed token a mail job carries (Service).
type tokenOpener interface {
	Open(sealed string) (string, error)
}

// linkBuilder builds the link a mail carries for a token (Service).
type linkBuilder interface {
	LinkURL(inv Invitation, token string) string
}

// inviterReader reads the inviter a mail names from Kratos.
type inviterReader interface {
	Get(ctx context.Context, id string) (*identity.Identity, error)
}

// MailerOptions are the mail job's dependencies and settings.
type MailerOptions struct {
	Invitations invitationReader // the invitation store
	Tokens      tokenOpener      // the service (sealed tokens)
	Links       linkBuilder      // the service (accept and activate links)
	Identities  inviterReader    // Kratos: the inviter's name and address
	Sender      mail.Sender
	Templates   *templates.Renderer
	FromAddress string // bare address
	FromName    string
	LoginURL    string       // where notices send people who already have an account
	Observer    MailObserver // nil: none
	Budget      MailBudget   // nil: unlimited
	Deliveries  mailTracker  // nil: no email id index, no suppression list
	// Batches, with a Sender that is a mail.BatchSender, sends the mail
	// jobs read together in batches (HandleBatch); nil: each alone.
	Batches *MailBatches
	Now     func() time.Time
}

// NewMailer returns the mail job handler.
func NewMailer(o MailerOptions) *Mailer {
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Mailer{
		invitations: o.Invitations, tokens: o.Tokens, links: o.Links, ids: o.Identities,
		sender: o.Sender, render: o.Templates, from: o.FromAddress, fromName: o.FromName, loginURL: o.LoginURL,
		observer: o.Observer, budget: o.Budget, deliveries: o.Deliveries, now: o.Now,
	}
	if b, ok := o.Sender.(mail.BatchSender); ok && o.Batches != nil {
		m.batches, m.batcher = o.Batches, b
	}
	return m
}

// MailBudget is the outgoing-mail quota. Spend takes one mail from the
// budgets of org ("" for mail about no organization), or says how long to
// wait and which limit is spent.
type MailBudget interface {
	Spend(ctx context.Context, org string) (wait time.Duration, limit string, err error)
}

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

// observe records an attempt: result is sent, retry or failed.
func (m *Mailer) observe(result string, err error) {
	if m.observer != nil {
		m.observer.MailResult(result, mail.Class(err))
	}
}

// Register installs the invitation jobs on a worker.
func (m *Mailer) Register(w *outbox.Worker, idx *AddressIndex) {
	w.Handle("mail", m.Handle, m.GiveUp)
	if m.batches != nil {
		w.HandleBatch("mail", m.HandleBatch)
	}
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
	return !first.IsZero() && m.now().Sub(first) > RetryWindow
}

// Notice mails a person who already has an account and asked to register
// an organization: log in and create it from there. No link is issued.
func (m *Mailer) Notice(ctx context.Context, job outbox.Job) error {
	rendered, err := m.render.Mail(job.Template, templates.MailData{
		Organization: templates.Organization{Name: shownName(job.Name, 1000)},
		Invitee:      templates.Invitee{Email: job.Ref, Existing: true},
		LoginURL:     m.loginURL,
	})
	if err != nil {
		return outbox.Permanent(err)
	}
	if m.pastWindow(job) {
		m.observe("failed", errRetryWindow)
		return outbox.Permanent(errRetryWindow)
	}
	if s, err := m.suppressed(ctx, job.Ref); err != nil || s != nil {
		return err // a suppressed address gets no notice either
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
	if err != nil {
		// The error says whether the outbox retries it, and when.
		m.observe(sendResult(err), err)
		return err
	}
	m.observe("sent", nil)
	return nil
}

// sendResult names a failed send for metrics: retry if the outbox will
// try again (attempts allowing), failed if not.
func sendResult(err error) string {
	if outbox.Temporary(err) {
		return "retry"
	}
	return "failed"
}

// Handle sends one invitation, reminder or activation mail. A job whose
// invitation ended or whose token was rotated since is dropped: a newer job
// carries the link that works.
func (m *Mailer) Handle(ctx context.Context, job outbox.Job) error {
	inv, msg, ok, err := m.compose(ctx, job)
	if err != nil || !ok {
		return err
	}
	return m.deliver(ctx, inv, job, msg)
}

// mailKey is a mail job's own idempotency key: one per link, so a retry
// after a crash or timeout never mails twice.
func mailKey(job outbox.Job) string {
	return fmt.Sprintf("kratos-orgs/%s/v%d/%s", job.Ref, job.Version, job.Template)
}

// compose renders a mail job's message; false (and no error) means the job
// is dropped: its invitation ended or its link was replaced.
func (m *Mailer) compose(ctx context.Context, job outbox.Job) (Invitation, mail.Message, bool, error) {
	inv, org, err := m.invitations.GetWithOrg(ctx, job.Ref)
	if apperr.KindOf(err) == apperr.NotFound {
		return inv, mail.Message{}, false, nil
	}
	if err != nil || inv.Status != Pending || inv.tokenVersion != job.Version {
		return inv, mail.Message{}, false, err
	}
	if m.pastWindow(job) {
		// Sending now could repeat a mail Resend already delivered under
		// this key; GiveUp marks the delivery failed (expired_retry_window).
		m.observe("failed", errRetryWindow)
		return inv, mail.Message{}, false, outbox.Permanent(errRetryWindow)
	}
	token, err := m.tokens.Open(job.Sealed)
	if err != nil {
		return inv, mail.Message{}, false, outbox.Permanent(err)
	}
	if !inv.hasToken(tokens.Hash(token)) {
		return inv, mail.Message{}, false, nil
	}
	data, err := m.mailData(ctx, inv, mailOrg{Slug: org["slug"], Name: org["name"], Locale: org["locale"]}, m.links.LinkURL(inv, token))
	if err != nil {
		return inv, mail.Message{}, false, err // a Kratos error says itself whether to retry
	}
	rendered, err := m.render.Mail(job.Template, data)
	if err != nil {
		return inv, mail.Message{}, false, outbox.Permanent(err)
	}
	fromName := m.fromDisplayName(data.Inviter.Name)
	return inv, mail.Message{
		From:    mail.FormatAddress(fromName, m.from),
		To:      []string{inv.Email},
		ReplyTo: data.Inviter.Email, // only ever a verified address: see inviter
		Subject: rendered.Subject, HTML: rendered.HTML, Text: rendered.Text,
		Tags:           map[string]string{"kind": job.Template, "invitation": inv.ID, "organization": inv.OrganizationID},
		IdempotencyKey: mailKey(job),
	}, true, nil
}

// deliver sends an invitation's mail, unless its address is suppressed or
// the budget is spent, and records the outcome on the invitation.
func (m *Mailer) deliver(ctx context.Context, inv Invitation, job outbox.Job, msg mail.Message) error {
	if ok, err := m.admit(ctx, inv, job); !ok {
		return err
	}
	id, sendErr := m.sender.Send(ctx, msg)
	return m.sent(ctx, job, job.Attempt+1, id, sendErr)
}

// admit checks a mail against the suppression list and spends its budget;
// false means it is not sent now, and the error says whether it waits
// (outbox.Defer) or failed.
func (m *Mailer) admit(ctx context.Context, inv Invitation, job outbox.Job) (bool, error) {
	if s, err := m.suppressed(ctx, inv.Email); err != nil || s != nil {
		if s != nil {
			// Not sent: the address bounced or complained before.
			_, err = m.invitations.SetDelivery(ctx, inv.ID, job.Version, Delivery{Status: DeliverySuppressed, Attempts: job.Attempt, Reason: s.Reason})
		}
		return false, err
	}
	if err := m.spend(ctx, inv.OrganizationID); err != nil {
		if _, waiting := outbox.IsDefer(err); waiting {
			// Queued, not failed: the invitation says why it waits.
			_, _ = m.invitations.SetDelivery(ctx, inv.ID, job.Version, Delivery{Status: DeliveryQueued, Attempts: job.Attempt, LastError: errors.Unwrap(err).Error()})
		}
		return false, err
	}
	return true, nil
}

// sent records what became of a mail job's send on its invitation: the
// email id (and its index for the delivery webhooks), or the error, which
// it returns for the outbox to read.
func (m *Mailer) sent(ctx context.Context, job outbox.Job, attempts int, id string, sendErr error) error {
	if sendErr == nil {
		m.observe("sent", nil)
	} else {
		m.observe(sendResult(sendErr), sendErr)
	}
	return m.record(ctx, job, attempts, id, sendErr)
}

// record is sent without the metrics: for the mails of a batch whose jobs
// are not in hand (each is counted when its own job runs).
func (m *Mailer) record(ctx context.Context, job outbox.Job, attempts int, id string, sendErr error) error {
	if sendErr == nil {
		if m.deliveries != nil {
			// Before the status: a webhook about this mail finds its
			// invitation from the moment the status names the id.
			if err := m.deliveries.MailSent(ctx, id, job.Ref, job.Version); err != nil {
				return err // retried: the idempotency key returns the same id
			}
		}
		_, err := m.invitations.SetDelivery(ctx, job.Ref, job.Version, Delivery{Status: DeliverySent, Attempts: attempts, MessageID: id})
		return err // a failure here retries the send, which the idempotency key makes harmless
	}
	// The error says whether the outbox retries it, and when; the
	// delivery tells the inviter the same.
	d := Delivery{Status: DeliveryQueued, Attempts: attempts, LastError: sendErr.Error()}
	if !outbox.Temporary(sendErr) {
		d.Status, d.Reason = DeliveryFailed, failureReason(sendErr)
	}
	_, _ = m.invitations.SetDelivery(ctx, job.Ref, job.Version, d)
	return sendErr
}

// suppressed returns the suppression of an address, or nil.
func (m *Mailer) suppressed(ctx context.Context, email string) (*Suppression, error) {
	if m.deliveries == nil {
		return nil, nil
	}
	return m.deliveries.Suppressed(ctx, email)
}

// mailOrg is what an invitation mail shows of its organization.
type mailOrg struct{ Slug, Name, Locale string }

// mailData is what an invitation's mail templates see, in the locale of the
// invitation, else of its organization, else the configured one.
func (m *Mailer) mailData(ctx context.Context, inv Invitation, org mailOrg, link string) (templates.MailData, error) {
	data := templates.MailData{
		Organization: templates.Organization{ID: inv.OrganizationID, Slug: org.Slug, Name: shownOrgName(org.Name, org.Slug)},
		Invitee:      templates.Invitee{Email: inv.Email, Existing: inv.ExistingIdentity},
		Role:         inv.Role,
		AcceptURL:    link,
		ExpiresAt:    inv.ExpiresAt,
		Context:      inv.Context,
		Locale:       m.render.Resolve(inv.Locale, org.Locale),
	}
	if inv.Inviter != nil {
		var err error
		if data.Inviter, err = m.inviter(ctx, *inv.Inviter); err != nil {
			return data, err
		}
	}
	return data, nil
}

// Preview renders the mail of set ("invitation", "reminder") inv would
// get, with link as its link, for a dry run: nothing is sent or written.
// Only the inviter is read from Kratos, as for a real mail.
func (m *Mailer) Preview(ctx context.Context, inv Invitation, org orgs.Organization, link, set string) (PreviewMail, error) {
	data, err := m.mailData(ctx, inv, mailOrg{Slug: org.Slug, Name: org.Name, Locale: org.Locale}, link)
	if err != nil {
		return PreviewMail{}, err
	}
	rendered, err := m.render.Mail(set, data)
	if err != nil {
		return PreviewMail{}, apperr.New(apperr.Internal, "template_failed", "the %s mail does not render", set).Wrap(err)
	}
	return PreviewMail{To: inv.Email, Subject: rendered.Subject, Text: rendered.Text, HTML: rendered.HTML}, nil
}

// GiveUp marks the delivery failed when the outbox stops retrying.
func (m *Mailer) GiveUp(ctx context.Context, job outbox.Job, err error) {
	if job.Kind != "mail" {
		return
	}
	_, _ = m.invitations.SetDelivery(ctx, job.Ref, job.Version, Delivery{Status: DeliveryFailed, Attempts: job.Attempt, LastError: err.Error(), Reason: failureReason(err)})
}

// failureReason says why a mail job was given up: past the retry window;
// refused for good by the mail provider (rejected) or by anything else
// (error); or still temporary when its attempts ran out.
func failureReason(err error) string {
	_, fromProvider := mail.AsSendError(err)
	switch {
	case errors.Is(err, errRetryWindow):
		return ReasonExpiredRetryWindow
	case outbox.Temporary(err):
		return ReasonMaxAttempts
	case fromProvider:
		return ReasonRejected
	}
	return ReasonError
}

// AddressIndex maintains, per address, the organizations with a pending
// invitation for it (redisx key AddressPending) and the invitations'
// references (AddressRefs), and releases placeholder identities once
// nothing references them any more (see placeholders.go).
type AddressIndex struct {
	invitations invitationGetter
	orgs        pendingOrgDeleter
	releaser    placeholderReleaser
	rdb         redis.UniversalClient
	ks          redisx.Keyspace
	now         func() time.Time
	// stampsTTL is how long the index remembers when it last applied an
	// invitation's state (StampsTTL; tests shorten it).
	stampsTTL time.Duration
	// knownTTL is how long the identity seen for an address is remembered
	// (KnownIdentityTTL; tests shorten it).
	knownTTL time.Duration
}

// invitationGetter reads the invitation a job names (Store).
type invitationGetter interface {
	Get(ctx context.Context, id string) (Invitation, error)
}

// pendingOrgDeleter deletes the organization of an abandoned sign-up
// (orgs.Store).
type pendingOrgDeleter interface {
	DeleteIfPending(ctx context.Context, id string) error
}

// placeholderReleaser deletes an address' placeholder identity once
// nothing references it (Service.ReleasePlaceholder).
type placeholderReleaser interface {
	ReleasePlaceholder(ctx context.Context, email, identityID string) (deleted bool, err error)
}

// AddressIndexOptions are the address index's dependencies.
type AddressIndexOptions struct {
	Invitations  invitationGetter    // the invitation store
	Orgs         pendingOrgDeleter   // the organization store
	Placeholders placeholderReleaser // the service
	Redis        redis.UniversalClient
	Keys         redisx.Keyspace
	Now          func() time.Time // nil: time.Now
	StampsTTL    time.Duration    // zero: StampsTTL
}

// NewAddressIndex returns the invitation.sync job handler.
func NewAddressIndex(o AddressIndexOptions) *AddressIndex {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StampsTTL <= 0 {
		o.StampsTTL = StampsTTL
	}
	return &AddressIndex{invitations: o.Invitations, orgs: o.Orgs, releaser: o.Placeholders,
		rdb: o.Redis, ks: o.Keys, now: o.Now, stampsTTL: o.StampsTTL, knownTTL: KnownIdentityTTL}
}

// indexScript applies one observation of an invitation to its address'
// index, unless a later observation was applied already: two jobs racing
// for the same invitation cannot leave the older state behind. An ended
// invitation's reference goes with it (final states never change); a
// pending one gets a reference if it has none (invitations written before
// references existed).
// The identity the invitation names is remembered in the same step
// (known.go) when known is set.
// KEYS: indexKeys. Arguments: indexArgs.
var indexScript = redisx.NewScript("invites.address_index", redisx.Standalone, `
if A.known ~= '' then redis.call('SET', KEYS[4], A.known, 'PX', A.known_ttl) end
local cur = tonumber(redis.call('HGET', KEYS[2], A.org) or '0')
if A.stamp < cur then return 0 end
redis.call('HSET', KEYS[2], A.org, A.stamp)
redis.call('PEXPIRE', KEYS[2], A.stamps_ttl)
if A.op == 'add' then
  redis.call('ZADD', KEYS[1], A.expires_at, A.org)
  redis.call('HSETNX', KEYS[3], A.id, A.ref)
else
  redis.call('ZREM', KEYS[1], A.org)
  redis.call('HDEL', KEYS[3], A.id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', A.now)
return 1
`)

// indexArgs are indexScript's arguments.
type indexArgs struct {
	Org       string `json:"org"`
	Op        string `json:"op"`         // add or remove
	Stamp     int64  `json:"stamp"`      // when the invitation was read (ms)
	ExpiresAt int64  `json:"expires_at"` // ms
	Now       int64  `json:"now"`        // entries that expired before are dropped (ms)
	StampsTTL int64  `json:"stamps_ttl"` // ms
	ID        string `json:"id"`         // the invitation (its reference), or empty
	Ref       string `json:"ref"`        // the reference's value: "<org id> <created ms>"
	Known     string `json:"known"`      // the known identity to remember (known.go), or empty
	KnownTTL  int64  `json:"known_ttl"`  // ms
}

// indexKeys are indexScript's keys: one address' pending set, its stamps,
// its references and its known identity (all on the address' slot).
func (x *AddressIndex) indexKeys(email string) []string {
	return []string{x.ks.AddressPending(email), x.ks.AddressPendingStamps(email), x.ks.AddressRefs(email), x.ks.AddressIdentity(email)}
}

// StampsTTL bounds how long an index remembers when it applied an
// observation. A stamp only has to outlive the gap between a job reading an
// invitation and applying what it read — each attempt reads afresh, so
// seconds — and a day is far more than that.
const StampsTTL = 24 * time.Hour

// Handle brings the address index in line with an invitation, and
// releases its placeholder when it ended.
func (x *AddressIndex) Handle(ctx context.Context, job outbox.Job) error {
	observed := x.now()
	inv, err := x.invitations.Get(ctx, job.Ref)
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
	err = indexScript.Eval(ctx, x.rdb, x.indexKeys(inv.Email), &indexArgs{
		Org: inv.OrganizationID, Op: op, Stamp: observed.UnixMilli(), ExpiresAt: inv.ExpiresAt.UnixMilli(),
		Now: x.now().UnixMilli(), StampsTTL: x.stampsTTL.Milliseconds(),
		ID: inv.ID, Ref: inv.OrganizationID + " " + fmt.Sprint(inv.CreatedAt.UnixMilli()),
		Known: x.known(inv), KnownTTL: x.knownTTL.Milliseconds(),
	}).Err()
	if err != nil {
		return err
	}
	if inv.Status != Revoked && inv.Status != Expired {
		return nil
	}
	if inv.kind == "registration" {
		// An abandoned sign-up leaves no organization behind.
		if err := x.orgs.DeleteIfPending(ctx, inv.OrganizationID); err != nil {
			return err
		}
	}
	if inv.identityCreated && inv.IdentityID != "" {
		_, err := x.releaser.ReleasePlaceholder(ctx, inv.Email, inv.IdentityID)
		return err
	}
	return nil
}

// Invited tells a sign-up what is known about its address, in one round
// trip (both keys share the address' slot): the organizations with a
// pending invitation, and whether any invitation references the address —
// refs are written before an invitation and its placeholder, so they also
// show an invitation that is being created right now.
func (x *AddressIndex) Invited(ctx context.Context, email string) (orgIDs []string, referenced bool, err error) {
	res, err := invitedScript.Eval(ctx, x.rdb, []string{x.ks.AddressPending(email), x.ks.AddressRefs(email)},
		map[string]string{"min": "(" + fmt.Sprint(x.now().UnixMilli())}).Slice()
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
// KEYS: pending, refs. Arguments: min, the exclusive lower bound of live
// expiries.
var invitedScript = redisx.NewScript("invites.invited", redisx.Standalone, `
return {redis.call('ZRANGE', KEYS[1], A.min, '+inf', 'BYSCORE'), redis.call('HLEN', KEYS[2])}
`)

// PendingOrganizations lists the organizations with a pending invitation
// for an address (one round trip).
func (x *AddressIndex) PendingOrganizations(ctx context.Context, email string) ([]string, error) {
	return pendingOrganizations(ctx, x.rdb, x.ks, email, x.now())
}
