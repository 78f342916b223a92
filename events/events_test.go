package events

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// Two secrets: a receiver holding either verifies every delivery (a
// rotation in progress). Both are 32 random bytes, base64, whsec_.
var testSecrets = []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"}

func sharedEnv(t *testing.T) (redis.UniversalClient, redisx.Keyspace) {
	t.Helper()
	ks := redisx.Keyspace{Prefix: testenv.UniquePrefix(t), Record: redisx.RecordOptions{Events: true}}
	if testenv.OnCluster(t) {
		return testenv.SharedCluster(t).Open(t), ks
	}
	return testenv.SharedRedis(t).Client(t), ks
}

// receiver is a webhook endpoint that verifies every delivery with the
// specification's Verify, once per secret, and keeps what it accepted.
type receiver struct {
	t        *testing.T
	srv      *httptest.Server
	mu       sync.Mutex
	down     bool
	got      []received
	refused  int
	inFlight map[string]bool
	overlap  int
}

type received struct {
	ID   string
	Type string
	Data map[string]any
	Body string
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, inFlight: map[string]bool{}}
	var verifiers []*standardwebhooks.Webhook
	for _, s := range testSecrets {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatal(err)
		}
		verifiers = append(verifiers, wh)
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		for i, wh := range verifiers {
			if err := wh.Verify(body, req.Header); err != nil {
				t.Errorf("secret %d does not verify %s: %v", i, req.Header.Get("webhook-id"), err)
				w.WriteHeader(http.StatusBadRequest)
				return
			}
		}
		id := req.Header.Get("webhook-id")
		r.mu.Lock()
		if r.inFlight[id] {
			r.overlap++
		}
		r.inFlight[id] = true
		down := r.down
		r.mu.Unlock()
		time.Sleep(time.Millisecond) // a concurrent duplicate would overlap here
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.inFlight, id)
		if down {
			r.refused++
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var p payload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("body %s: %v", body, err)
		}
		r.got = append(r.got, received{ID: id, Type: p.Type, Data: p.Data, Body: string(body)})
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

func (r *receiver) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func (r *receiver) waitFor(n int, within time.Duration) []received {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if got := r.received(); len(got) >= n {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("the receiver got %d of %d events within %s", len(r.received()), n, within)
	return nil
}

func testOptions(t *testing.T, url string) Options {
	t.Helper()
	ep, err := NewEndpoint("test", url, testSecrets, nil)
	if err != nil {
		t.Fatal(err)
	}
	return Options{Endpoints: []Endpoint{ep}, RetryFor: time.Hour, BaseBackoff: 20 * time.Millisecond,
		MaxBackoff: 100 * time.Millisecond, PollInterval: 10 * time.Millisecond, Timeout: 2 * time.Second, Lease: 5 * time.Second}
}

func startDispatcher(t *testing.T, d *Dispatcher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// record emits n events for org through the Recorder (Go code's way).
func record(t *testing.T, rdb redis.UniversalClient, ks redisx.Keyspace, org string, n int) {
	t.Helper()
	rec := NewRecorder(rdb, ks, nil)
	ctx := redisx.WithActor(context.Background(), redisx.Actor{Type: "admin", ID: "key:0123456789ab", Addr: "192.0.2.7"})
	for i := 0; i < n; i++ {
		if err := rec.Record(ctx, org, "invitation.bounced", map[string]any{"seq": i, "email": fmt.Sprintf("p%d@example.com", i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// The specification's test vector: the signature kratos-orgs sends for
// its message is the one the specification's own tests expect.
func TestSignMatchesSpecVector(t *testing.T) {
	t.Parallel()
	ep, err := NewEndpoint("v", "http://x", []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := ep.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil || sig != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Fatalf("signature %q, %v; the specification's vector is v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", sig, err)
	}
	two, _ := NewEndpoint("v", "http://x", testSecrets, nil)
	sig, _ = two.Sign("msg_1", time.Unix(1614265330, 0), []byte(`{}`))
	if parts := strings.Split(sig, " "); len(parts) != 2 || !strings.HasPrefix(parts[1], "v1,") {
		t.Fatalf("two secrets, signature header %q: want two v1 signatures", sig)
	}
	if _, err := NewEndpoint("v", "http://x", []string{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, nil); err == nil {
		t.Fatal("a secret without whsec_ was accepted")
	}
}

func TestWebhookIDRoundTrip(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "evt_", "evt_x_1-0", "evt_3_1", "evt_3_1-x", "msg_3_1-0", "evt_-1_1-0"} {
		if _, _, err := ParseWebhookID(bad); err == nil {
			t.Errorf("ParseWebhookID(%q) accepted", bad)
		}
	}
	s, id, err := ParseWebhookID(WebhookID(7, "1733140000000-3"))
	if err != nil || s != 7 || id != "1733140000000-3" {
		t.Fatalf("round trip: %d %q %v", s, id, err)
	}
}

func TestFilter(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		filter []string
		typ    string
		want   bool
	}{
		{nil, "invitation.created", true},
		{[]string{"*"}, "membership.deleted", true},
		{[]string{"invitation.*"}, "invitation.created", true},
		{[]string{"invitation.*"}, "membership.created", false},
		{[]string{"membership.created"}, "membership.created", true},
		{[]string{"membership.created"}, "membership.created_x", false},
	} {
		if got := (Endpoint{Filter: c.filter}).Wants(c.typ); got != c.want {
			t.Errorf("%v wants %s = %v", c.filter, c.typ, got)
		}
	}
}

// An endpoint that is down for a while receives everything once it is
// back, in the order of the changes, each webhook-id once; the failures
// are in the delivery log.
func TestDownEndpointGetsEverythingInOrder(t *testing.T) {
	rdb, ks := sharedEnv(t)
	r := newReceiver(t)
	r.setDown(true)
	org := redisx.NewID("org", 3, time.Now())
	startDispatcher(t, NewDispatcher(rdb, ks, testOptions(t, r.srv.URL)))
	record(t, rdb, ks, org, 12)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		refused := r.refused
		r.mu.Unlock()
		if refused >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the endpoint was tried %d times while down", refused)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(r.received()) != 0 {
		t.Fatal("delivered while the endpoint was down")
	}
	log, err := Recent(context.Background(), rdb, ks, 50)
	if err != nil || len(log) == 0 || log[0].Outcome != "failed" || log[0].Status != 503 {
		t.Fatalf("delivery log while down: %+v %v", log, err)
	}
	r.setDown(false)
	r.waitFor(12, 10*time.Second)
	time.Sleep(100 * time.Millisecond) // nothing more comes: each event once
	got := r.received()
	if len(got) != 12 {
		t.Fatalf("%d deliveries for 12 events", len(got))
	}
	for i, g := range got {
		if seq := g.Data["seq"]; seq != float64(i) {
			t.Fatalf("delivery %d carries seq %v: out of order", i, seq)
		}
		if g.Data["organization_id"] != org || g.Type != "invitation.bounced" || g.Data["actor"] != "admin" {
			t.Fatalf("delivery %d: %s", i, g.Body)
		}
	}
}

// Two dispatchers (two replicas) on the same Redis never deliver one
// webhook-id twice, nor at the same time, and together deliver all.
func TestTwoDispatchersNeverDouble(t *testing.T) {
	rdb, ks := sharedEnv(t)
	r := newReceiver(t)
	opts := testOptions(t, r.srv.URL)
	startDispatcher(t, NewDispatcher(rdb, ks, opts))
	startDispatcher(t, NewDispatcher(rdb, ks, opts))
	const perOrg = 10
	for s := 0; s < 4; s++ {
		record(t, rdb, ks, redisx.NewID("org", s, time.Now()), perOrg)
	}
	r.waitFor(4*perOrg, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	seen := map[string]int{}
	for _, g := range r.received() {
		seen[g.ID]++
		if seen[g.ID] > 1 {
			t.Errorf("webhook-id %s delivered twice", g.ID)
		}
	}
	if len(seen) != 4*perOrg || r.overlap != 0 {
		t.Fatalf("%d distinct webhook-ids for %d events, %d concurrent duplicates", len(seen), 4*perOrg, r.overlap)
	}
}

// Redelivering sends the same event again with the same webhook-id, and
// logs it.
func TestRedeliver(t *testing.T) {
	rdb, ks := sharedEnv(t)
	r := newReceiver(t)
	d := NewDispatcher(rdb, ks, testOptions(t, r.srv.URL))
	org := redisx.NewID("org", 5, time.Now())
	record(t, rdb, ks, org, 1)
	startDispatcher(t, d)
	first := r.waitFor(1, 5*time.Second)[0]
	got, err := d.Redeliver(context.Background(), first.ID, "test")
	if err != nil || got.Outcome != "redelivered" {
		t.Fatalf("redeliver: %+v %v", got, err)
	}
	again := r.waitFor(2, 5*time.Second)[1]
	if again.ID != first.ID || again.Body != first.Body {
		t.Fatalf("redelivery %s %s, first %s %s", again.ID, again.Body, first.ID, first.Body)
	}
	if _, err := d.Redeliver(context.Background(), first.ID, "nope"); err == nil {
		t.Fatal("redelivered to an unknown endpoint")
	}
	if _, err := d.Redeliver(context.Background(), "evt_5_1-0", "test"); err == nil {
		t.Fatal("redelivered an event that is not in the stream")
	}
	log, _ := Recent(context.Background(), rdb, ks, 10)
	if len(log) < 2 || log[0].Outcome != "redelivered" || log[0].WebhookID != first.ID {
		t.Fatalf("log: %+v", log)
	}
}

// An event older than RetryFor is given up, not delivered, and the
// next one goes through: a dead head does not block its shard for ever.
func TestGiveUpPastRetryFor(t *testing.T) {
	rdb, ks := sharedEnv(t)
	r := newReceiver(t)
	org := redisx.NewID("org", 6, time.Now())
	record(t, rdb, ks, org, 1)
	opts := testOptions(t, r.srv.URL)
	opts.Now = func() time.Time { return time.Now().Add(2 * time.Hour) } // the first event is 2h old
	opts.RetryFor = 90 * time.Minute
	startDispatcher(t, NewDispatcher(rdb, ks, opts))
	deadline := time.Now().Add(5 * time.Second)
	for {
		log, _ := Recent(context.Background(), rdb, ks, 10)
		if len(log) > 0 {
			if log[0].Outcome != "gave_up" {
				t.Fatalf("log: %+v", log)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("never given up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(r.received()); n != 0 {
		t.Fatalf("%d deliveries of an event past retry_for", n)
	}
}

// The audit stream is capped by length and by age (approximately: Redis
// trims whole stream nodes of 100 entries).
func TestAuditRetention(t *testing.T) {
	t.Parallel()
	rdb, _ := sharedEnv(t)
	ks := redisx.Keyspace{Prefix: testenv.UniquePrefix(t), Record: redisx.RecordOptions{AuditMaxEntries: 10}}
	org := redisx.NewID("org", 2, time.Now())
	record(t, rdb, ks, org, 500)
	n := rdb.XLen(context.Background(), ks.OrgAudit(org)).Val()
	if n < 10 || n > 110 {
		t.Fatalf("%d audit entries kept with audit.max_entries 10 (want 10 to 110: whole nodes are trimmed)", n)
	}
	if rdb.Exists(context.Background(), ks.Events(2)).Val() != 0 {
		t.Fatal("an event stream was written with no endpoint configured")
	}
	aged := redisx.Keyspace{Prefix: testenv.UniquePrefix(t), Record: redisx.RecordOptions{AuditMaxAge: 300 * time.Millisecond}}
	record(t, rdb, aged, org, 300)
	time.Sleep(400 * time.Millisecond)
	record(t, rdb, aged, org, 1)
	if n := rdb.XLen(context.Background(), aged.OrgAudit(org)).Val(); n > 101 {
		t.Fatalf("%d audit entries kept past audit.max_age", n)
	}
}
