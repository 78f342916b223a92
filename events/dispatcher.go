package events

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// Observer is told about every delivery attempt (metrics).
type Observer interface {
	WebhookDelivery(endpoint, outcome string, d time.Duration)
}

// Options configure a Dispatcher (config's events section).
type Options struct {
	Endpoints    []Endpoint
	RetryFor     time.Duration // give an event up this long after it happened
	BaseBackoff  time.Duration // first retry delay, doubled per attempt
	MaxBackoff   time.Duration
	PollInterval time.Duration
	Timeout      time.Duration // one delivery's HTTP timeout
	Lease        time.Duration // the hold on an (endpoint, shard); > 2 × Timeout
	Client       *http.Client  // nil: a client with Timeout
	Observer     Observer
	Logger       *slog.Logger
	Now          func() time.Time // nil: time.Now
}

// stateTTL keeps an endpoint's cursor a week past the last time a
// dispatcher held its lease: an endpoint removed from the configuration
// leaves nothing for ever.
const stateTTL = 7 * 24 * time.Hour

// Dispatcher delivers the event streams to the endpoints: one loop per
// (endpoint, shard), which delivers only while it holds that pair's lease.
type Dispatcher struct {
	rdb  redis.UniversalClient
	ks   redisx.Keyspace
	opts Options
	now  func() time.Time
	log  *slog.Logger
}

// NewDispatcher returns a dispatcher; Run starts it.
func NewDispatcher(rdb redis.UniversalClient, ks redisx.Keyspace, o Options) *Dispatcher {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout}
	}
	return &Dispatcher{rdb: rdb, ks: ks, opts: o, now: o.Now, log: o.Logger}
}

// Run delivers until ctx ends, then gives its leases back.
func (d *Dispatcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, ep := range d.opts.Endpoints {
		for s := 0; s < redisx.Shards; s++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.loop(ctx, ep, s)
			}()
		}
	}
	wg.Wait()
}

func (d *Dispatcher) loop(ctx context.Context, ep Endpoint, shard int) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	lease, state := d.ks.EventLease(shard, ep.ID), d.ks.EventEndpoint(shard, ep.ID)
	defer func() {
		_ = unleaseScript.Eval(context.WithoutCancel(ctx), d.rdb, []string{lease}, &leaseArgs{Token: token}).Err()
	}()
	lastTrim := time.Time{}
	for ctx.Err() == nil {
		held, err := leaseScript.Eval(ctx, d.rdb, []string{lease, state},
			&leaseArgs{Token: token, TTL: d.opts.Lease.Milliseconds(), StateTTL: stateTTL.Milliseconds()}).Int()
		busy := false
		if err == nil && held == 1 {
			if time.Since(lastTrim) > time.Minute {
				d.trim(ctx, shard)
				lastTrim = time.Now()
			}
			busy, err = d.pass(ctx, ep, shard, token)
		}
		if err != nil && ctx.Err() == nil {
			d.log.Warn("event delivery pass failed", "endpoint", ep.ID, "shard", shard, "err", err)
		}
		wait := d.opts.PollInterval
		if held != 1 {
			wait = max(d.opts.PollInterval, d.opts.Lease/3)
		}
		if !busy {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
	}
}

// trim drops events older than twice RetryFor: every endpoint has given
// them up (and logged it) long since, or its dispatcher was not running.
func (d *Dispatcher) trim(ctx context.Context, shard int) {
	min := d.now().Add(-2 * d.opts.RetryFor).UnixMilli()
	_ = d.rdb.XTrimMinIDApprox(ctx, d.ks.Events(shard), strconv.FormatInt(min, 10), 0).Err()
}

// headState is an (endpoint, shard)'s delivery state.
type headState struct {
	cursor   string
	attempts int
	next     int64
}

func (d *Dispatcher) state(ctx context.Context, ep Endpoint, shard int) (headState, error) {
	h, err := d.rdb.HGetAll(ctx, d.ks.EventEndpoint(shard, ep.ID)).Result()
	if err != nil {
		return headState{}, err
	}
	st := headState{cursor: h["cursor"]}
	if st.cursor == "" {
		st.cursor = "0-0"
	}
	st.attempts, _ = strconv.Atoi(h["attempts"])
	st.next, _ = strconv.ParseInt(h["next"], 10, 64)
	return st, nil
}

// pass delivers the events after the cursor, in order, until one fails
// or none is left; busy reports that it did something (look again now).
func (d *Dispatcher) pass(ctx context.Context, ep Endpoint, shard int, token string) (busy bool, err error) {
	st, err := d.state(ctx, ep, shard)
	if err != nil || st.next > d.now().UnixMilli() {
		return false, err
	}
	msgs, err := d.rdb.XRangeN(ctx, d.ks.Events(shard), "("+st.cursor, "+", 20).Result()
	if err != nil || len(msgs) == 0 {
		return false, err
	}
	for _, m := range msgs {
		ev := parseEvent(shard, m.ID, m.Values)
		st2, ok, err := d.handle(ctx, ep, ev, st, token)
		if err != nil || !ok {
			return false, err
		}
		st = st2
	}
	return true, nil
}

// handle deals with the head event: skips it (filtered out), gives it up
// (older than RetryFor), or delivers it. ok is false when the pass must
// stop (a failure scheduled a retry, or the lease was lost).
func (d *Dispatcher) handle(ctx context.Context, ep Endpoint, ev Event, st headState, token string) (headState, bool, error) {
	a := stepArgs{Token: token, ID: ev.StreamID, StateTTL: stateTTL.Milliseconds(), Endpoint: ep.ID,
		WebhookID: ev.WebhookID(), Type: ev.Type, Org: ev.Org, Now: d.now().UnixMilli()}
	switch {
	case !ep.Wants(ev.Type):
		a.Done = true
	case d.now().Sub(ev.At) > d.opts.RetryFor:
		a.Done, a.Log, a.Outcome, a.Attempts, a.Error = true, true, "gave_up", st.attempts, "older than events.retry_for"
		d.observe(ep, "gave_up", 0)
	default:
		status, dur, derr := d.deliver(ctx, ep, ev)
		a.Log, a.Status, a.Ms, a.Attempts = true, status, dur.Milliseconds(), st.attempts+1
		if derr == nil {
			a.Done, a.Outcome = true, "delivered"
			d.observe(ep, "delivered", dur)
		} else {
			a.Outcome, a.Error = "failed", truncate(derr.Error(), 300)
			a.Next = d.now().Add(d.backoff(a.Attempts)).UnixMilli()
			d.observe(ep, "failed", dur)
		}
	}
	res, err := stepScript.Eval(ctx, d.rdb, d.stepKeys(ep, ev.Shard), &a).Text()
	if err != nil || res != "ok" || !a.Done {
		return st, false, err
	}
	st.cursor, st.attempts, st.next = ev.StreamID, 0, 0
	return st, true, nil
}

func (d *Dispatcher) stepKeys(ep Endpoint, shard int) []string {
	return []string{d.ks.EventLease(shard, ep.ID), d.ks.EventEndpoint(shard, ep.ID), d.ks.EventLog(shard)}
}

func (d *Dispatcher) observe(ep Endpoint, outcome string, dur time.Duration) {
	if d.opts.Observer != nil {
		d.opts.Observer.WebhookDelivery(ep.ID, outcome, dur)
	}
}

// backoff is the delay before attempt n+1: BaseBackoff doubled per
// attempt, at most MaxBackoff.
func (d *Dispatcher) backoff(attempts int) time.Duration {
	b := d.opts.BaseBackoff
	for i := 1; i < attempts && b < d.opts.MaxBackoff; i++ {
		b *= 2
	}
	return min(b, d.opts.MaxBackoff)
}

// deliver POSTs one event, signed; a 2xx answer is success.
func (d *Dispatcher) deliver(ctx context.Context, ep Endpoint, ev Event) (int, time.Duration, error) {
	start := time.Now()
	body := ev.Body()
	ts := d.now()
	sig, err := ep.Sign(ev.WebhookID(), ts, body)
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "kratos-orgs")
	req.Header.Set("webhook-id", ev.WebhookID())
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		return 0, time.Since(start), err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, time.Since(start), fmt.Errorf("the endpoint answered %d", resp.StatusCode)
	}
	return resp.StatusCode, time.Since(start), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
