package ratelimit_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/ratelimit"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type counter struct{ n atomic.Int64 }

func (c *counter) RateLimited(string) { c.n.Add(1) }

func newLimiter(t *testing.T, o ratelimit.Options) (*ratelimit.Limiter, redisx.Keyspace) {
	t.Helper()
	rdb := redisClient(t)
	ks := redisx.Keyspace{Prefix: testenv.UniquePrefix(t)}
	return ratelimit.New(rdb, ks, o), ks
}

func TestBurstThenSustainedRate(t *testing.T) {
	clk := &clock{t: time.UnixMilli(1_700_000_000_000)}
	l, _ := newLimiter(t, ratelimit.Options{Now: clk.Now})
	lim := ratelimit.Limit{Name: "signup", Requests: 5, Period: time.Hour}
	ctx := context.Background()
	for i := range 5 {
		d, err := l.Allow(ctx, lim, "198.51.100.7")
		if err != nil || !d.Allowed || d.Remaining != 4-i {
			t.Fatalf("request %d: %+v, %v; want allowed with %d remaining", i+1, d, err, 4-i)
		}
	}
	d, err := l.Allow(ctx, lim, "198.51.100.7")
	if err != nil || d.Allowed {
		t.Fatalf("6th request: %+v, %v; want refused", d, err)
	}
	if d.RetryAfter != 12*time.Minute {
		t.Errorf("retry after %s, want 12m (one request per period/requests)", d.RetryAfter)
	}
	if d, _ := l.Allow(ctx, lim, "198.51.100.8"); !d.Allowed {
		t.Error("another key shares the bucket")
	}
	clk.Add(12*time.Minute - time.Millisecond)
	if d, _ := l.Allow(ctx, lim, "198.51.100.7"); d.Allowed {
		t.Error("allowed before retry-after passed")
	}
	clk.Add(time.Millisecond)
	if d, _ := l.Allow(ctx, lim, "198.51.100.7"); !d.Allowed {
		t.Error("refused once retry-after passed")
	}
}

func TestKeysExpireAndCarryTheirOwnHashTag(t *testing.T) {
	l, ks := newLimiter(t, ratelimit.Options{})
	rdb := redisClient(t)
	lim := ratelimit.Limit{Name: "links", Requests: 10, Period: time.Minute}
	if _, err := l.Allow(context.Background(), lim, "user@example.com"); err != nil {
		t.Fatal(err)
	}
	key := ks.RateLimit("links", "user@example.com")
	if strings.Contains(key, "user@example.com") || !strings.Contains(key, "{rl:links:") || !strings.HasSuffix(key, "}") {
		t.Errorf("key %q: want the address hashed inside the {rl:...} tag", key)
	}
	ttl, err := rdb.PTTL(context.Background(), key).Result()
	if err != nil || ttl <= 0 || ttl > 6*time.Second {
		t.Errorf("PTTL = %s, %v; want the time one request takes to drain (6s)", ttl, err)
	}
}

func TestRefundGivesBackOneRequest(t *testing.T) {
	clk := &clock{t: time.UnixMilli(1_700_000_000_000)}
	l, _ := newLimiter(t, ratelimit.Options{Now: clk.Now})
	lim := ratelimit.Limit{Name: "budget", Requests: 2, Period: time.Hour}
	ctx := context.Background()
	for range 2 {
		if d, _ := l.Allow(ctx, lim, "k"); !d.Allowed {
			t.Fatal("refused within burst")
		}
	}
	if err := l.Refund(ctx, lim, "k"); err != nil {
		t.Fatal(err)
	}
	if d, _ := l.Allow(ctx, lim, "k"); !d.Allowed {
		t.Error("refund did not give the request back")
	}
	if d, _ := l.Allow(ctx, lim, "k"); d.Allowed {
		t.Error("refund gave back more than one request")
	}
}

func TestDisabledLimitAllowsEverything(t *testing.T) {
	l, _ := newLimiter(t, ratelimit.Options{})
	for range 100 {
		if err := l.Check(context.Background(), ratelimit.Limit{Name: "admin_key"}, "k"); err != nil {
			t.Fatal(err)
		}
	}
}

// N goroutines on M limiters (replicas) sharing one Redis: exactly the
// burst gets through.
func TestConcurrentReplicasShareTheQuota(t *testing.T) {
	rdb := redisClient(t)
	ks := redisx.Keyspace{Prefix: testenv.UniquePrefix(t)}
	var refusals counter
	replicas := []*ratelimit.Limiter{
		ratelimit.New(rdb, ks, ratelimit.Options{Observer: &refusals}),
		ratelimit.New(rdb, ks, ratelimit.Options{Observer: &refusals}),
		ratelimit.New(rdb, ks, ratelimit.Options{Observer: &refusals}),
	}
	for _, tc := range []struct{ workers, burst int }{{64, 1}, {200, 25}, {500, 100}} {
		lim := ratelimit.Limit{Name: "concurrency", Requests: tc.burst, Period: 24 * time.Hour}
		key := t.Name() + strings.Repeat("x", tc.burst)
		var allowed atomic.Int64
		refusals.n.Store(0)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range tc.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				d, err := replicas[i%len(replicas)].Allow(context.Background(), lim, key)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					allowed.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		t.Logf("%d concurrent requests on %d replicas, burst %d: %d allowed, %d refused",
			tc.workers, len(replicas), tc.burst, allowed.Load(), refusals.n.Load())
		if allowed.Load() != int64(tc.burst) {
			t.Errorf("%d allowed, want exactly %d", allowed.Load(), tc.burst)
		}
		if refusals.n.Load() != int64(tc.workers-tc.burst) {
			t.Errorf("%d refusals observed, want %d", refusals.n.Load(), tc.workers-tc.burst)
		}
	}
}

func TestRefusalIsStructuredAndLoggedOncePerMinute(t *testing.T) {
	clk := &clock{t: time.UnixMilli(1_700_000_000_000)}
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{&mu, &buf}, nil))
	l, _ := newLimiter(t, ratelimit.Options{Now: clk.Now, Logger: log})
	lim := ratelimit.Limit{Name: "register_per_email", Requests: 1, Period: 24 * time.Hour}
	ctx := context.Background()
	const addr = "victim@example.com"
	if err := l.Check(ctx, lim, addr); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		err := l.Check(ctx, lim, addr)
		e, ok := apperr.As(err)
		if !ok || e.Kind != apperr.RateLimited || e.Code != "rate_limited" || e.Details["limit"] != "register_per_email" {
			t.Fatalf("refusal = %#v; want rate_limited naming the limit", err)
		}
		if e.RetryAfter != 24*time.Hour {
			t.Errorf("retry after %s, want 24h", e.RetryAfter)
		}
	}
	clk.Add(time.Minute)
	_ = l.Check(ctx, lim, addr)
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if n := strings.Count(out, "rate limit reached"); n != 2 {
		t.Errorf("%d log lines for 6 refusals over a minute, want 2:\n%s", n, out)
	}
	if strings.Contains(out, addr) || strings.Contains(out, "victim") {
		t.Errorf("the address is in the log:\n%s", out)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func TestRetryAfterRoundsUp(t *testing.T) {
	e := ratelimit.Refusal(ratelimit.Limit{Name: "x"}, 1500*time.Millisecond)
	if e.RetryAfter != 2*time.Second || e.Details["retry_after_seconds"] != int64(2) {
		t.Errorf("1.5s → %s / %v, want 2s", e.RetryAfter, e.Details["retry_after_seconds"])
	}
}

func TestHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Second: "1 second", 40 * time.Second: "40 seconds", 91 * time.Second: "2 minutes",
		12 * time.Minute: "12 minutes", 2 * time.Hour: "2 hours", 24 * time.Hour: "24 hours", 90 * time.Minute: "90 minutes",
	} {
		if got := ratelimit.Human(d); got != want {
			t.Errorf("Human(%s) = %q, want %q", d, got, want)
		}
	}
}
