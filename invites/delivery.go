package invites

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/mail"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// Delivery status from the mail provider. When the mail job has sent an
// invitation's mail, it remembers which invitation (and which link of it)
// the provider's email id belongs to (redisx MailMessage, a slot found
// from the id alone). Resend's webhooks then report what became of the
// mail (sent, delivered, delayed, bounced, complained); Record applies the
// report to the invitation in one script on its slot, and puts bounced
// and complained addresses on the suppression list (redisx
// AddressSuppression), which the mail job and invite/resend/remind check
// until an operator clears the address.

// MailIndexTTL is how long an email id leads to its invitation. Bounces
// come within minutes, complaints within days; a report later than this is
// ignored like one about mail kratos-orgs did not send.
const MailIndexTTL = 30 * 24 * time.Hour

// WebhookSeenTTL is how long a webhook message id is remembered. A replay
// signed more than mail.WebhookTolerance ago is refused by its timestamp;
// Svix' own retries of one message (same id, new timestamp) spread over
// about a day.
const WebhookSeenTTL = 24 * time.Hour

// Outcome is what the mail provider reported about one email.
type Outcome struct {
	EmailID string    // the provider's id, as Send returned it
	Status  string    // DeliverySent, DeliveryDelayed, DeliveryDelivered, DeliveryBounced or DeliveryComplained
	At      time.Time // when it happened at the provider
	Reason  string    // bounced: permanent, transient or undetermined
	Detail  string    // the provider's words (a bounce message)
	To      []string  // the recipients the report names
}

// Suppresses reports whether the outcome puts the address on the
// suppression list: a complaint, or a bounce that is not transient.
func (o Outcome) Suppresses() bool {
	return o.Status == DeliveryComplained || (o.Status == DeliveryBounced && o.Reason != "transient")
}

// OutcomeOf maps a Resend event to an outcome (ok false: not a delivery
// report kratos-orgs records).
func OutcomeOf(e mail.ResendEvent) (Outcome, bool) {
	o := Outcome{EmailID: e.EmailID, At: e.CreatedAt, To: e.To}
	switch e.Type {
	case mail.EventSent:
		o.Status = DeliverySent
	case mail.EventDelivered:
		o.Status = DeliveryDelivered
	case mail.EventDelayed:
		o.Status = DeliveryDelayed
	case mail.EventBounced:
		o.Status, o.Reason = DeliveryBounced, "undetermined"
		if b := e.Bounce; b != nil {
			if t := strings.ToLower(b.Type); t == "permanent" || t == "transient" {
				o.Reason = t
			}
			o.Detail = strings.TrimSpace(strings.Join([]string{b.SubType, b.Message}, ": "))
		}
	case mail.EventComplaint:
		o.Status, o.Reason = DeliveryComplained, "complaint"
	default:
		return o, false
	}
	if len(o.Detail) > 500 {
		o.Detail = o.Detail[:500]
	}
	return o, true
}

// Results of Record.
const (
	RecordApplied = "recorded" // the invitation shows the outcome
	RecordOlder   = "older"    // an outcome as new or newer is shown already: nothing changed
	RecordStale   = "stale"    // about the mail of a link replaced since: only the suppression applies
	RecordUnknown = "unknown"  // no invitation is known for the email id: nothing changed
)

// RecordResult says what Record did.
type RecordResult struct {
	Result     string // RecordApplied, RecordOlder, RecordStale or RecordUnknown
	Invitation string // the invitation's id, when known
	Suppressed bool   // the address was put on the suppression list
}

// DeliveryObserver is told every outcome applied to an invitation (the
// place to emit events such as invitation.bounced).
type DeliveryObserver interface {
	DeliveryRecorded(ctx context.Context, inv Invitation, o Outcome)
}

// Deliveries keeps the email id index, applies the provider's reports and
// keeps the suppression list.
type Deliveries struct {
	store    deliveryStore
	rdb      redis.UniversalClient
	ks       redisx.Keyspace
	observer DeliveryObserver
	now      func() time.Time
	// mailTTL and seenTTL are MailIndexTTL and WebhookSeenTTL (tests
	// shorten them).
	mailTTL, seenTTL time.Duration
}

// deliveryStore is what Deliveries needs of the invitation store.
type deliveryStore interface {
	RecordDeliveryEvent(ctx context.Context, e deliveryEvent) (outcome, email string, err error)
	Get(ctx context.Context, id string) (Invitation, error)
}

// DeliveriesOptions are Deliveries' dependencies.
type DeliveriesOptions struct {
	Invitations deliveryStore // the invitation store
	Redis       redis.UniversalClient
	Keys        redisx.Keyspace
	Observer    DeliveryObserver // nil: none
	Now         func() time.Time // nil: time.Now
}

// NewDeliveries returns the delivery tracker.
func NewDeliveries(o DeliveriesOptions) *Deliveries {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Deliveries{store: o.Invitations, rdb: o.Redis, ks: o.Keys, observer: o.Observer, now: o.Now,
		mailTTL: MailIndexTTL, seenTTL: WebhookSeenTTL}
}

// MailSent remembers that the provider's emailID is the mail of an
// invitation's link version.
func (d *Deliveries) MailSent(ctx context.Context, emailID, invitation string, version int) error {
	if emailID == "" {
		return nil // the log sender has no ids
	}
	return d.rdb.Set(ctx, d.ks.MailMessage(emailID), invitation+" "+strconv.Itoa(version), d.mailTTL).Err()
}

// mailOf finds the invitation and link version an email id was sent for.
func (d *Deliveries) mailOf(ctx context.Context, emailID string) (inv string, version int, ok bool, err error) {
	v, err := d.rdb.Get(ctx, d.ks.MailMessage(emailID)).Result()
	if errors.Is(err, redis.Nil) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, err
	}
	id, ver, _ := strings.Cut(v, " ")
	version, err = strconv.Atoi(ver)
	return id, version, err == nil && id != "", nil
}

// Record applies what the provider reported about an email: on its
// invitation (unless a newer report is shown already, or the report is
// about a replaced link's mail), and on the suppression list. It is the
// one place a delivery outcome is recorded; the observer hears of every
// outcome applied to an invitation.
func (d *Deliveries) Record(ctx context.Context, o Outcome) (RecordResult, error) {
	inv, version, ok, err := d.mailOf(ctx, o.EmailID)
	if err != nil || !ok {
		return RecordResult{Result: RecordUnknown}, err
	}
	outcome, email, err := d.store.RecordDeliveryEvent(ctx, deliveryEvent{
		Invitation: inv, Version: version, EmailID: o.EmailID, Status: o.Status, At: o.At, Reason: o.Reason, Error: o.Detail,
	})
	if err != nil {
		return RecordResult{}, err
	}
	res := RecordResult{Result: map[string]string{"ok": RecordApplied, "older": RecordOlder, "stale": RecordStale}[outcome], Invitation: inv}
	if outcome == "not_found" {
		res.Result = RecordStale // purged: the address still bounced
	}
	if email == "" && len(o.To) > 0 {
		email = o.To[0]
	}
	if o.Suppresses() && email != "" {
		if err := d.Suppress(ctx, Suppression{Email: email, Reason: o.Status, EmailID: o.EmailID, Detail: o.Detail, At: o.At}); err != nil {
			return res, err
		}
		res.Suppressed = true
	}
	if res.Result == RecordApplied && d.observer != nil {
		if got, err := d.store.Get(ctx, inv); err == nil {
			d.observer.DeliveryRecorded(ctx, got, o)
		}
	}
	return res, nil
}

// ClaimWebhook marks a webhook message id as being applied; false when it
// was seen before (a replay, or Svix repeating a message it got no answer
// for): the caller changes nothing.
func (d *Deliveries) ClaimWebhook(ctx context.Context, id string) (bool, error) {
	return d.rdb.SetNX(ctx, d.ks.WebhookSeen(id), "1", d.seenTTL).Result()
}

// ReleaseWebhook forgets a claimed message id whose application failed, so
// Svix' retry of it is applied.
func (d *Deliveries) ReleaseWebhook(ctx context.Context, id string) {
	_ = d.rdb.Del(context.WithoutCancel(ctx), d.ks.WebhookSeen(id)).Err()
}

// Suppression is why mail to an address stops.
type Suppression struct {
	Email   string    `json:"email"`
	Reason  string    `json:"reason"` // bounced, complained or manual
	At      time.Time `json:"at"`
	EmailID string    `json:"email_id,omitempty"` // the provider's email that bounced or was complained about
	Detail  string    `json:"detail,omitempty"`
}

// Suppress puts an address on the suppression list (again: the newest
// reason wins). The list entry is written before the record, so a record
// is always listed; a listed address without a record is dropped when
// listed.
func (d *Deliveries) Suppress(ctx context.Context, s Suppression) error {
	email, err := NormalizeEmail(s.Email)
	if err != nil {
		return err
	}
	if s.At.IsZero() {
		s.At = d.now()
	}
	if err := d.rdb.ZAdd(ctx, d.ks.Suppressed(), redis.Z{Member: email}).Err(); err != nil {
		return err
	}
	return d.rdb.HSet(ctx, d.ks.AddressSuppression(email), "r", s.Reason, "at", s.At.UnixMilli(),
		"m", s.EmailID, "dt", s.Detail, "e", email).Err()
}

// Suppressed returns the suppression of an address, or nil.
func (d *Deliveries) Suppressed(ctx context.Context, email string) (*Suppression, error) {
	h, err := d.rdb.HGetAll(ctx, d.ks.AddressSuppression(email)).Result()
	if err != nil || len(h) == 0 {
		return nil, err
	}
	return &Suppression{Email: h["e"], Reason: h["r"], At: redisx.MsTime(h["at"]), EmailID: h["m"], Detail: h["dt"]}, nil
}

// ClearSuppression lets mail to an address go out again; false when it was
// not suppressed.
func (d *Deliveries) ClearSuppression(ctx context.Context, email string) (bool, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return false, err
	}
	n, err := d.rdb.Del(ctx, d.ks.AddressSuppression(email)).Result()
	if err != nil {
		return false, err
	}
	return n > 0, d.rdb.ZRem(ctx, d.ks.Suppressed(), email).Err()
}

// ListSuppressions pages through the suppressed addresses in address
// order; the cursor is the last address of the previous page.
func (d *Deliveries) ListSuppressions(ctx context.Context, cursor string, limit int) (orgs.Page[Suppression], error) {
	page := orgs.Page[Suppression]{Items: []Suppression{}}
	start := "-"
	if cursor != "" {
		start = "(" + cursor
	}
	addrs, err := d.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: d.ks.Suppressed(), Start: start, Stop: "+", ByLex: true, Count: int64(limit) + 1}).Result()
	if err != nil {
		return page, err
	}
	total, err := d.rdb.ZCard(ctx, d.ks.Suppressed()).Result()
	if err != nil {
		return page, err
	}
	page.Total = total
	for i, a := range addrs {
		if i == limit {
			page.NextCursor = addrs[limit-1]
			break
		}
		s, err := d.Suppressed(ctx, a)
		if err != nil {
			return page, err
		}
		if s == nil { // a crash between the two writes of Suppress
			_ = d.rdb.ZRem(ctx, d.ks.Suppressed(), a).Err()
			continue
		}
		page.Items = append(page.Items, *s)
	}
	return page, nil
}

// errSuppressed refuses to mail a suppressed address.
func errSuppressed(s *Suppression) error {
	return apperr.Conflictf("address_suppressed",
		"mail to this address is suppressed since %s (%s); an operator can clear it", s.At.UTC().Format(time.RFC3339), s.Reason).
		WithDetails("reason", s.Reason, "since", s.At.UTC().Format(time.RFC3339))
}

// suppressionChecker tells whether an address is on the suppression list
// (Deliveries).
type suppressionChecker interface {
	Suppressed(ctx context.Context, email string) (*Suppression, error)
}

// checkNotSuppressed refuses an address on the suppression list.
func checkNotSuppressed(ctx context.Context, c suppressionChecker, email string) error {
	if c == nil {
		return nil
	}
	s, err := c.Suppressed(ctx, email)
	if err != nil {
		return redisx.StoreError(err, "suppression list") // 503 while Redis is down
	}
	if s != nil {
		return errSuppressed(s)
	}
	return nil
}
