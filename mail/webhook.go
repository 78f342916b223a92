package mail

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// Resend reports what became of a sent email with webhooks delivered by
// Svix. Svix signs them the way the Standard Webhooks specification does
// (v1, base64 HMAC-SHA256 of "id.timestamp.body" with a whsec_ secret);
// only the header names differ: svix-id, svix-timestamp, svix-signature
// instead of webhook-id, webhook-timestamp, webhook-signature. The
// specification's own Go package checks the signature here, with the
// headers renamed; the timestamp is checked against the injected clock.

// The Resend event types kratos-orgs records.
const (
	EventSent      = "email.sent"
	EventDelivered = "email.delivered"
	EventDelayed   = "email.delivery_delayed"
	EventBounced   = "email.bounced"
	EventComplaint = "email.complained"
)

// MaxWebhookBody caps a webhook body: Resend's events are a few hundred
// bytes to a few KiB.
const MaxWebhookBody = 64 << 10

// WebhookTolerance is how far a webhook's timestamp may be from now, as
// Svix' and the specification's libraries allow.
const WebhookTolerance = 5 * time.Minute

// ResendEvent is what kratos-orgs reads of a Resend webhook.
type ResendEvent struct {
	Type      string    // e.g. email.bounced
	CreatedAt time.Time // when the event happened at Resend: orders events
	EmailID   string    // the id Send returned
	To        []string
	Bounce    *Bounce // email.bounced only
}

// Bounce is Resend's description of a bounce.
type Bounce struct {
	Type    string `json:"type"`    // Permanent, Transient or Undetermined
	SubType string `json:"subType"` // e.g. General, Suppressed, MailboxFull
	Message string `json:"message"`
}

// Known reports whether kratos-orgs records this event type.
func (e ResendEvent) Known() bool {
	switch e.Type {
	case EventSent, EventDelivered, EventDelayed, EventBounced, EventComplaint:
		return true
	}
	return false
}

// wireEvent is the JSON Resend sends.
type wireEvent struct {
	Type      string `json:"type"`
	CreatedAt string `json:"created_at"`
	Data      *struct {
		EmailID string          `json:"email_id"`
		To      json.RawMessage `json:"to"`
		Bounce  *Bounce         `json:"bounce"`
	} `json:"data"`
}

// errPayload is the structured refusal of a malformed body.
func errPayload(field, format string, args ...any) error {
	return apperr.Invalidf("invalid_webhook_payload", format, args...).WithDetails("field", field)
}

// ParseResendEvent reads a webhook body. Event types kratos-orgs does not
// record parse too (Known says so), as long as they have a type; the
// email events it records must name an email and a time.
func ParseResendEvent(body []byte) (ResendEvent, error) {
	if len(body) > MaxWebhookBody {
		return ResendEvent{}, apperr.New(apperr.TooLarge, "body_too_large", "the webhook body is over %d bytes", MaxWebhookBody)
	}
	var w wireEvent
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&w); err != nil {
		return ResendEvent{}, errPayload("", "the webhook body is not a JSON event: %v", err)
	}
	if len(bytes.Trim(body[dec.InputOffset():], " \t\r\n")) > 0 {
		return ResendEvent{}, errPayload("", "the webhook body holds more than one JSON value")
	}
	if w.Type == "" || len(w.Type) > 100 {
		return ResendEvent{}, errPayload("type", "the event has no type")
	}
	e := ResendEvent{Type: w.Type}
	if !e.Known() {
		return e, nil
	}
	if w.Data == nil || w.Data.EmailID == "" || len(w.Data.EmailID) > 200 {
		return e, errPayload("data.email_id", "an %s event must name its email", w.Type)
	}
	at, err := parseEventTime(w.CreatedAt)
	if err != nil {
		return e, errPayload("created_at", "created_at %q is not a time", w.CreatedAt)
	}
	e.CreatedAt, e.EmailID, e.Bounce = at, w.Data.EmailID, w.Data.Bounce
	if e.To, err = parseTo(w.Data.To); err != nil {
		return e, errPayload("data.to", "data.to must be an address or a list of addresses")
	}
	return e, nil
}

// parseEventTime reads Resend's timestamps: RFC 3339 at the top level,
// and Postgres' "2006-01-02 15:04:05.999999+00" in some data fields.
func parseEventTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07", "2006-01-02 15:04:05.999999999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil && t.Year() >= 2000 && t.Year() < 3000 {
			return t, nil
		}
	}
	return time.Time{}, errors.New("not a time")
}

// parseTo accepts a list of addresses or one address (absent: none).
func parseTo(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		return list, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err != nil {
		return nil, err
	}
	return []string{one}, nil
}

// WebhookVerifier checks Resend's (Svix') webhook signatures with one or
// more signing secrets (several while one is being rotated).
type WebhookVerifier struct {
	hooks     []*standardwebhooks.Webhook
	tolerance time.Duration
	now       func() time.Time
}

// NewWebhookVerifier takes the signing secrets as Resend shows them
// (whsec_ and base64); now is the clock (nil: time.Now).
func NewWebhookVerifier(secrets []string, now func() time.Time) (*WebhookVerifier, error) {
	if len(secrets) == 0 {
		return nil, errors.New("mail: no webhook signing secret")
	}
	v := &WebhookVerifier{tolerance: WebhookTolerance, now: now}
	if v.now == nil {
		v.now = time.Now
	}
	for i, s := range secrets {
		if err := CheckWebhookSecret(s); err != nil {
			return nil, fmt.Errorf("mail: webhook secret %d: %w", i, err)
		}
		h, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			return nil, fmt.Errorf("mail: webhook secret %d: %w", i, err)
		}
		v.hooks = append(v.hooks, h)
	}
	return v, nil
}

// CheckWebhookSecret tells whether s looks like a signing secret: whsec_
// and base64 of at least 16 bytes.
func CheckWebhookSecret(s string) error {
	rest, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return errors.New("must start with whsec_")
	}
	if _, err := standardwebhooks.NewWebhook(s); err != nil {
		return errors.New("must be whsec_ followed by base64")
	}
	if len(rest) < 22 {
		return errors.New("must hold at least 16 bytes")
	}
	return nil
}

// Signature header names: Svix' (Resend), or the specification's.
var signatureHeaders = [3][2]string{
	{"svix-id", standardwebhooks.HeaderWebhookID},
	{"svix-timestamp", standardwebhooks.HeaderWebhookTimestamp},
	{"svix-signature", standardwebhooks.HeaderWebhookSignature},
}

// Verify checks a webhook's signature and timestamp and returns its
// message id (svix-id), which stays the same across Svix' retries.
func (v *WebhookVerifier) Verify(h http.Header, body []byte) (string, error) {
	spec := http.Header{}
	for _, names := range signatureHeaders {
		val := h.Get(names[0])
		if val == "" {
			val = h.Get(names[1])
		}
		if val == "" {
			return "", apperr.New(apperr.Unauthorized, "webhook_signature_missing", "the %s header is missing", names[0])
		}
		spec.Set(names[1], val)
	}
	id := spec.Get(standardwebhooks.HeaderWebhookID)
	if len(id) > 200 {
		return "", apperr.New(apperr.Unauthorized, "webhook_signature_invalid", "svix-id is too long")
	}
	secs, err := strconv.ParseInt(spec.Get(standardwebhooks.HeaderWebhookTimestamp), 10, 64)
	if err != nil {
		return "", apperr.New(apperr.Unauthorized, "webhook_signature_invalid", "svix-timestamp is not a Unix time")
	}
	if skew := v.now().Sub(time.Unix(secs, 0)); skew > v.tolerance || skew < -v.tolerance {
		return "", apperr.New(apperr.Unauthorized, "webhook_timestamp_out_of_tolerance",
			"svix-timestamp is %s from now; at most %s is accepted", skew.Round(time.Second), v.tolerance)
	}
	for _, hook := range v.hooks {
		if hook.VerifyIgnoringTimestamp(body, spec) == nil {
			return id, nil
		}
	}
	return "", apperr.New(apperr.Unauthorized, "webhook_signature_invalid", "no signature matches a configured secret")
}
