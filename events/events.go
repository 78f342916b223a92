// Package events delivers kratos-orgs' lifecycle events to the configured
// endpoints as Standard Webhooks: signed with the specification's own Go
// package, retried with exponential backoff until events.retry_for after
// the change, in order per shard (so per organization), at least once and
// with a stable webhook-id so receivers de-duplicate.
//
// The events themselves are written by the scripts that make the changes
// (redisx/record.go's record step), in the same atomic step, to each
// shard's event stream; a Dispatcher per replica delivers them, holding a
// lease per (endpoint, shard) so that two replicas never deliver the same
// entry concurrently.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Types lists the event types kratos-orgs emits. Scripts name them in
// record calls; this list is for the documentation, the filters and the
// tests.
var Types = []string{
	"invitation.created", "invitation.resent", "invitation.reminded", "invitation.accepted",
	"invitation.revoked", "invitation.expired", "invitation.delivery_failed", "invitation.bounced", "invitation.complained",
	"membership.created", "membership.role_changed", "membership.deleted",
	"organization.created", "organization.updated", "organization.activated", "organization.deleted",
	"domain.verified",
}

// Endpoint is one receiver: its id (config's EventEndpoint.ID), URL,
// signing secrets and event filter.
type Endpoint struct {
	ID      string
	URL     string
	Filter  []string // types, "prefix.*" or "*"; empty: every type
	signers []*standardwebhooks.Webhook
}

// NewEndpoint checks the secrets (whsec_ and base64, as the specification
// has them) and returns the endpoint.
func NewEndpoint(id, url string, secrets, filter []string) (Endpoint, error) {
	e := Endpoint{ID: id, URL: url, Filter: filter}
	if len(secrets) == 0 {
		return e, fmt.Errorf("events: endpoint %s has no secret", id)
	}
	for i, s := range secrets {
		if !strings.HasPrefix(s, "whsec_") {
			return e, fmt.Errorf("events: endpoint %s: secret %d does not start with whsec_", id, i)
		}
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			return e, fmt.Errorf("events: endpoint %s: secret %d: %w", id, i, err)
		}
		e.signers = append(e.signers, wh)
	}
	return e, nil
}

// Wants reports whether the endpoint takes events of type typ.
func (e Endpoint) Wants(typ string) bool {
	if len(e.Filter) == 0 {
		return true
	}
	for _, f := range e.Filter {
		if f == "*" || f == typ || (strings.HasSuffix(f, ".*") && strings.HasPrefix(typ, strings.TrimSuffix(f, "*"))) {
			return true
		}
	}
	return false
}

// Sign is the webhook-signature header: one "v1,<base64>" per secret,
// space-separated, so a receiver holding either the old or the new secret
// verifies it during a rotation.
func (e Endpoint) Sign(id string, ts time.Time, body []byte) (string, error) {
	sigs := make([]string, 0, len(e.signers))
	for _, wh := range e.signers {
		s, err := wh.Sign(id, ts, body)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, s)
	}
	return strings.Join(sigs, " "), nil
}

// Event is one entry of a shard's event stream.
type Event struct {
	Shard    int
	StreamID string // the entry's id in the shard's stream
	Type     string
	Org      string
	At       time.Time // when the change happened
	Actor    string    // actor type (admin, identity, webhook, public, system)
	Data     map[string]any
}

// WebhookID is the event's webhook-id: the shard and the stream entry id,
// the same on every attempt and every replica.
func (ev Event) WebhookID() string { return WebhookID(ev.Shard, ev.StreamID) }

// WebhookID builds a webhook-id from a shard and a stream entry id.
func WebhookID(shard int, streamID string) string {
	return "evt_" + strconv.Itoa(shard) + "_" + streamID
}

// ParseWebhookID splits a webhook-id into its shard and stream entry id.
func ParseWebhookID(id string) (shard int, streamID string, err error) {
	rest, ok := strings.CutPrefix(id, "evt_")
	s, sid, ok2 := strings.Cut(rest, "_")
	n, err := strconv.Atoi(s)
	if !ok || !ok2 || err != nil || n < 0 || !validStreamID(sid) {
		return 0, "", errors.New("events: not a webhook-id (evt_<shard>_<ms>-<seq>)")
	}
	return n, sid, nil
}

func validStreamID(s string) bool {
	ms, seq, ok := strings.Cut(s, "-")
	_, e1 := strconv.ParseUint(ms, 10, 64)
	_, e2 := strconv.ParseUint(seq, 10, 64)
	return ok && e1 == nil && e2 == nil
}

// payload is the body every endpoint receives, the Standard Webhooks
// shape: type, timestamp, data (ids, organization, addresses, roles).
type payload struct {
	Type      string         `json:"type"`
	Timestamp string         `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

// Body is the event's JSON body: the same bytes on every attempt.
func (ev Event) Body() []byte {
	data := ev.Data
	if data == nil {
		data = map[string]any{}
	}
	if _, ok := data["organization_id"]; !ok && ev.Org != "" {
		data["organization_id"] = ev.Org
	}
	data["actor"] = ev.Actor
	b, _ := json.Marshal(payload{Type: ev.Type, Timestamp: ev.At.UTC().Format(time.RFC3339Nano), Data: data})
	return b
}

// parseEvent reads a stream entry.
func parseEvent(shard int, id string, v map[string]any) Event {
	str := func(k string) string { s, _ := v[k].(string); return s }
	at, _ := strconv.ParseInt(str("at"), 10, 64)
	ev := Event{Shard: shard, StreamID: id, Type: str("type"), Org: str("org"), At: time.UnixMilli(at).UTC(), Actor: str("actor")}
	_ = json.Unmarshal([]byte(str("data")), &ev.Data)
	return ev
}
