// Package invites is the invitation backend (django-organizations' InvitationBackend
// and RegistrationBackend): invite by email, resend, remind, revoke, expire
// and accept, with their admin handlers and the outbox jobs that mail the
// links and keep indexes and Kratos identities tidy.
package invites

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// Status of an invitation. Final states never change.
type Status string

const (
	Pending  Status = "pending"
	Accepted Status = "accepted"
	Revoked  Status = "revoked"
	Expired  Status = "expired"

	// accepting is stored while an acceptance runs; it reads as pending.
	accepting Status = "accepting"
)

// Final reports whether s is an end state.
func (s Status) Final() bool { return s != Pending }

// Delivery states of an invitation's latest mail.
const (
	DeliveryQueued  = "queued"
	DeliverySent    = "sent"
	DeliveryFailed  = "failed"
	DeliverySkipped = "skipped" // send_email was false: the caller delivers the link

	// Reported by the mail provider's webhooks (delivery.go).
	DeliveryDelayed    = "delayed"    // the receiving server has not taken it yet; the provider retries
	DeliveryDelivered  = "delivered"  // the receiving server accepted it
	DeliveryBounced    = "bounced"    // the receiving server refused it (reason: permanent, transient...)
	DeliveryComplained = "complained" // the recipient marked it as spam
	// DeliverySuppressed: not sent, the address is on the suppression list
	// (reason: bounced or complained, why it is there).
	DeliverySuppressed = "suppressed"
)

// DeliveryStatuses are the delivery states, for the list filter.
var DeliveryStatuses = []string{DeliveryQueued, DeliverySent, DeliveryFailed, DeliverySkipped,
	DeliveryDelayed, DeliveryDelivered, DeliveryBounced, DeliveryComplained, DeliverySuppressed}

// Reasons of a failed delivery.
const (
	// ReasonExpiredRetryWindow: the mail was not sent within RetryWindow of
	// its first attempt; resending issues a new link and a new key.
	ReasonExpiredRetryWindow = "expired_retry_window"
	ReasonRejected           = "rejected"     // the provider refused it (4xx, quota)
	ReasonMaxAttempts        = "max_attempts" // outbox.max_attempts temporary failures
	ReasonError              = "error"        // anything else (a template that does not render)
)

// Invitation is a pending or ended invitation to join an organization.
type Invitation struct {
	ID             string         `json:"id"`
	OrganizationID string         `json:"organization_id"`
	Email          string         `json:"email"`
	Role           string         `json:"role"`
	Status         Status         `json:"status"`
	Inviter        *Inviter       `json:"inviter,omitempty"`
	Context        map[string]any `json:"context,omitempty"`
	RedirectTo     string         `json:"redirect_to,omitempty"`
	// Locale is the locale of the invitation's mail (BCP 47), if it was
	// given; else the organization's default, else the configured one.
	Locale     string `json:"locale,omitempty"`
	IdentityID string `json:"identity_id,omitempty"`
	// ExistingIdentity is true when the address had a Kratos identity
	// before the invitation; false when kratos-orgs created one for it.
	ExistingIdentity bool       `json:"existing_identity"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	ExpiresAt        time.Time  `json:"expires_at"`
	AcceptedAt       *time.Time `json:"accepted_at,omitempty"`
	AcceptedBy       string     `json:"accepted_by,omitempty"`
	EndedAt          *time.Time `json:"ended_at,omitempty"`
	RemindedAt       *time.Time `json:"reminded_at,omitempty"`
	// RemindersSent counts the reminders queued for the invitation,
	// manual and automatic.
	RemindersSent int `json:"reminders_sent"`
	// NextReminderAt is when its next automatic reminder is due (pending
	// invitations with one left only).
	NextReminderAt *time.Time `json:"next_reminder_at,omitempty"`
	Delivery       Delivery   `json:"delivery"`
	// AcceptURL is only set in the response that created or rotated the
	// token, and only when the caller delivers the link (send_email=false).
	AcceptURL string `json:"accept_url,omitempty"`

	// Not exposed.
	claimed         bool // being accepted right now
	kind            string
	identityCreated bool
	tokenHash       string
	tokenVersion    int
	ttl             time.Duration
	grantedBy       string // the member who issued it through the org admins' API
}

// hasToken reports whether hash (a token's SHA-256, hex) is the
// invitation's newest link. The record keeps the hash's first 128 bits
// (redisx.TokenField); the first layout kept all of it.
func (inv Invitation) hasToken(hash string) bool {
	return inv.tokenHash != "" && (inv.tokenHash == hash || inv.tokenHash == redisx.TokenField(hash))
}

// Inviter is who sent the invitation.
type Inviter struct {
	ID   string `json:"id,omitempty"`   // a Kratos identity id
	Name string `json:"name,omitempty"` // display name
}

// Delivery is the state of the latest invitation mail.
type Delivery struct {
	Status    string `json:"status"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error,omitempty"`
	// Reason says why a delivery failed (failed: expired_retry_window,
	// rejected, max_attempts or error), bounced (the provider's bounce
	// type, lower case: permanent, transient, undetermined) or was
	// suppressed (bounced or complained: why the address is suppressed).
	Reason    string `json:"reason,omitempty"`
	MessageID string `json:"message_id,omitempty"`
	// At is when the status happened: the provider's event time for the
	// statuses its webhooks report, else UpdatedAt.
	At        *time.Time `json:"at,omitempty"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

func optTime(s string) *time.Time {
	t := redisx.MsTime(s)
	if t.IsZero() {
		return nil
	}
	return &t
}

// parseInvitation reads a record (field names: redisx/fields.go, the id
// added by the reader); the status read is the effective one: a
// pending invitation past its expiry is expired even before a sweeper ran.
func parseInvitation(h map[string]string, now time.Time) Invitation {
	inv := Invitation{
		ID: h["id"], OrganizationID: h["o"], Email: h["e"], Role: h["r"],
		Status: Status(h["s"]), RedirectTo: h["rt"], IdentityID: h["ki"],
		ExistingIdentity: h["ke"] == "1", identityCreated: h["kc"] == "1",
		CreatedAt: redisx.MsTime(h["c"]), UpdatedAt: redisx.MsTime(h["u"]),
		ExpiresAt: redisx.MsTime(h["x"]), AcceptedBy: h["ab"],
		EndedAt: optTime(h["n"]), RemindedAt: optTime(h["re"]),
		tokenHash: h["t"], kind: h["k"], grantedBy: h["g"], Locale: h["lc"],
	}
	if inv.kind == "" {
		inv.kind = "invitation"
	}
	if inv.UpdatedAt.IsZero() {
		inv.UpdatedAt = inv.CreatedAt // not stored until the first update
	}
	inv.tokenVersion, _ = strconv.Atoi(h["v"])
	inv.RemindersSent, _ = strconv.Atoi(h["rs"])
	if ms, err := strconv.ParseInt(h["l"], 10, 64); err == nil {
		inv.ttl = time.Duration(ms) * time.Millisecond
	}
	if inv.Status == Accepted {
		inv.AcceptedAt = inv.EndedAt
	}
	if inv.Status == accepting {
		// Being accepted right now: still pending to everyone else.
		inv.Status, inv.claimed = Pending, true
	}
	if inv.Status == Pending && !now.Before(inv.ExpiresAt) {
		inv.Status = Expired
		e := inv.ExpiresAt
		inv.EndedAt = &e
	}
	if inv.Status == Pending {
		inv.NextReminderAt = optTime(h["rn"])
	}
	if h["ii"] != "" || h["in"] != "" {
		inv.Inviter = &Inviter{ID: h["ii"], Name: h["in"]}
	}
	if c := h["cx"]; c != "" && c != "null" {
		_ = json.Unmarshal([]byte(c), &inv.Context)
	}
	inv.Delivery = Delivery{
		Status: h["d"], LastError: h["de"], MessageID: h["dm"],
		UpdatedAt: optTime(h["da"]),
	}
	if inv.Delivery.UpdatedAt == nil && !inv.CreatedAt.IsZero() {
		c := inv.CreatedAt // not stored until the first mail or rotation
		inv.Delivery.UpdatedAt = &c
	}
	inv.Delivery.Attempts, _ = strconv.Atoi(h["dn"])
	switch inv.Delivery.Status {
	case DeliveryFailed, DeliveryBounced, DeliveryComplained, DeliverySuppressed:
		inv.Delivery.Reason = h["dr"]
	}
	inv.Delivery.At = optTime(h["dt"])
	if inv.Delivery.At == nil {
		inv.Delivery.At = inv.Delivery.UpdatedAt
	}
	return inv
}
