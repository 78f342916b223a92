package events

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// Delivery is one attempt in the delivery log (kratos-orgs events list).
type Delivery struct {
	At        time.Time `json:"at"`
	Endpoint  string    `json:"endpoint"`
	WebhookID string    `json:"webhook_id"`
	Type      string    `json:"type"`
	Org       string    `json:"organization_id"`
	Outcome   string    `json:"outcome"` // delivered, failed, gave_up, redelivered, redelivery_failed
	Status    int       `json:"status,omitempty"`
	Attempt   int       `json:"attempt"`
	Error     string    `json:"error,omitempty"`
	Millis    int64     `json:"ms"`
}

// Recent lists the newest delivery attempts of every shard, newest first.
func Recent(ctx context.Context, rdb redis.UniversalClient, ks redisx.Keyspace, limit int) ([]Delivery, error) {
	var out []Delivery
	for s := 0; s < redisx.Shards; s++ {
		msgs, err := rdb.XRevRangeN(ctx, ks.EventLog(s), "+", "-", int64(limit)).Result()
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			out = append(out, parseDelivery(m.Values))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func parseDelivery(v map[string]any) Delivery {
	str := func(k string) string { s, _ := v[k].(string); return s }
	num := func(k string) int64 { n, _ := strconv.ParseInt(str(k), 10, 64); return n }
	return Delivery{
		At: time.UnixMilli(num("at")).UTC(), Endpoint: str("endpoint"), WebhookID: str("webhook_id"), Type: str("type"),
		Org: str("org"), Outcome: str("outcome"), Status: int(num("status")), Attempt: int(num("attempt")),
		Error: str("error"), Millis: num("ms"),
	}
}

// Redeliver sends one event again to one endpoint, now, from this process,
// with its original webhook-id (receivers that saw it de-duplicate), and
// logs the attempt. It does not move the endpoint's cursor.
func (d *Dispatcher) Redeliver(ctx context.Context, webhookID, endpoint string) (Delivery, error) {
	shard, sid, err := ParseWebhookID(webhookID)
	if err != nil || shard >= redisx.Shards {
		return Delivery{}, fmt.Errorf("events: %q is not a webhook-id", webhookID)
	}
	var ep *Endpoint
	for i := range d.opts.Endpoints {
		if d.opts.Endpoints[i].ID == endpoint {
			ep = &d.opts.Endpoints[i]
		}
	}
	if ep == nil {
		return Delivery{}, fmt.Errorf("events: no endpoint %q in the configuration", endpoint)
	}
	msgs, err := d.rdb.XRangeN(ctx, d.ks.Events(shard), sid, sid, 1).Result()
	if err != nil {
		return Delivery{}, err
	}
	if len(msgs) == 0 {
		return Delivery{}, fmt.Errorf("events: %s is no longer in the event stream (events.max_entries, events.retry_for)", webhookID)
	}
	ev := parseEvent(shard, sid, msgs[0].Values)
	status, dur, derr := d.deliver(ctx, *ep, ev)
	a := stepArgs{Endpoint: ep.ID, WebhookID: webhookID, Type: ev.Type, Org: ev.Org, Outcome: "redelivered",
		Status: status, Ms: dur.Milliseconds(), Now: d.now().UnixMilli(), Attempts: 1}
	if derr != nil {
		a.Outcome, a.Error = "redelivery_failed", truncate(derr.Error(), 300)
	}
	d.observe(*ep, a.Outcome, dur)
	if err := logScript.Eval(ctx, d.rdb, []string{d.ks.EventLog(shard)}, &a).Err(); err != nil {
		return Delivery{}, err
	}
	out := Delivery{At: d.now().UTC(), Endpoint: ep.ID, WebhookID: webhookID, Type: ev.Type, Org: ev.Org,
		Outcome: a.Outcome, Status: status, Attempt: 1, Error: a.Error, Millis: a.Ms}
	return out, derr
}

// Recorder records changes that Go code makes without a script of its own.
type Recorder struct {
	rdb redis.UniversalClient
	ks  redisx.Keyspace
	now func() time.Time
}

// NewRecorder returns a recorder; now is the clock (nil: time.Now).
func NewRecorder(rdb redis.UniversalClient, ks redisx.Keyspace, now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	return &Recorder{rdb: rdb, ks: ks, now: now}
}

// Record appends a change of organization org to its audit trail and, when
// endpoints are configured, to the event stream: typ is the event type
// (invitation.bounced), data its ids, addresses and roles (never a token
// or a link). The actor is the context's (redisx.WithActor).
func (r *Recorder) Record(ctx context.Context, org, typ string, data map[string]any) error {
	if _, ok := redisx.ParseID("org", org); !ok {
		return fmt.Errorf("events: %q is not an organization id", org)
	}
	if data == nil {
		data = map[string]any{}
	}
	return recordScript.Eval(ctx, r.rdb, []string{r.ks.OrgAudit(org)}, &recordArgs{
		Env: r.ks.Env(redisx.ShardOf(org), r.now(), 0), Org: org, Type: typ, Data: data,
	}).Err()
}
