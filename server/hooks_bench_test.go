package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/identity/identitytest"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/mail"
)

const hookSecret = "bench-hooks-secret-0123456789"

// hookServer is a kratos-orgs with a real Redis and in-process Kratos and
// mail fakes, its admin router behind a real HTTP listener.
func hookServer(tb testing.TB, mode string) (*Server, *httptest.Server, *redis.Client) {
	tb.Helper()
	addr := os.Getenv("BENCH_REDIS_ADDR")
	if addr == "" {
		addr = testenv.SharedRedis(tb).Addr
	}
	cfg := testConfig(addr, "http://127.0.0.1:1", "http://127.0.0.1:1", "http://127.0.0.1:1/")
	cfg.Mail.Sender = "log"
	cfg.Hooks.Secret = hookSecret
	cfg.Register.Mode = mode
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})
	srv, err := New(context.Background(), Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Redis: rdb, Identities: identitytest.New(), Sender: mail.NewLogSender(io.Discard)})
	if err != nil {
		tb.Fatal(err)
	}
	hs := httptest.NewServer(srv.AdminHandler())
	tb.Cleanup(func() {
		hs.Close()
		keys, _ := rdb.Keys(context.Background(), cfg.Redis.KeyPrefix+"*").Result()
		for i := 0; i < len(keys); i += 500 {
			rdb.Del(context.Background(), keys[i:min(i+500, len(keys))]...)
		}
		_ = rdb.Close()
	})
	return srv, hs, rdb
}

func preBody(email, token string) string {
	tok := "null"
	if token != "" {
		tok = `"` + token + `"`
	}
	return fmt.Sprintf(`{"flow_id":"f","traits":{"email":%q},"verifiable_addresses":[{"value":%q,"via":"email","verified":false,"status":"pending"}],"invite_token":%s,"organization_name":null}`, email, email, tok)
}

func callHook(c *http.Client, url, body string) (int, error) {
	req, _ := http.NewRequest(http.MethodPost, url+"/hooks/registration/pre", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Kratos-Orgs-Secret", hookSecret)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func keepAliveClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}, Timeout: 10 * time.Second}
}

// Each pre-persist call costs exactly one Redis round trip, with or without
// a token, invited or not.
func TestRegistrationPreHookIsOneRedisRoundTrip(t *testing.T) {
	srv, hs, rdb := hookServer(t, "invite_only")
	trips := &tripCounter{}
	rdb.AddHook(trips)
	org, err := srv.Orgs.Store().Create(context.Background(), organization("Trips"), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	inv, _, err := srv.Invites.Invite(context.Background(), org.ID, invites.InviteRequest{Email: "tok@example.com", SendEmail: new(false)})
	if err != nil {
		t.Fatal(err)
	}
	token := inv.AcceptURL[strings.LastIndexByte(inv.AcceptURL, '/')+1:]
	c := keepAliveClient()
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"not invited", preBody("stranger@example.com", ""), 403},
		{"with a token", preBody("tok@example.com", token), 200},
		{"forged token", preBody("tok@example.com", "0"+strings.Repeat("A", 43)), 403},
	} {
		for round := 0; round < 2; round++ { // the first round may load scripts
			before := trips.n.Load()
			status, err := callHook(c, hs.URL, tc.body)
			if err != nil || status != tc.status {
				t.Fatalf("%s: %d %v, want %d", tc.name, status, err, tc.status)
			}
			if n := trips.n.Load() - before; round == 1 && n != 1 {
				t.Fatalf("%s: %d Redis round trips, want 1", tc.name, n)
			}
		}
	}
}

// In open mode a sign-up that is let through also reads the address'
// references (an invitation being written this moment): still one trip.
func TestOpenRegistrationPreHookIsOneRedisRoundTrip(t *testing.T) {
	_, hs, rdb := hookServer(t, "open")
	trips := &tripCounter{}
	rdb.AddHook(trips)
	c := keepAliveClient()
	for round := 0; round < 2; round++ { // the first round may load the script
		before := trips.n.Load()
		status, err := callHook(c, hs.URL, preBody("stranger@example.com", ""))
		if err != nil || status != http.StatusNoContent {
			t.Fatalf("open sign-up: %d %v, want 204", status, err)
		}
		if n := trips.n.Load() - before; round == 1 && n != 1 {
			t.Fatalf("open sign-up: %d Redis round trips, want 1", n)
		}
	}
}

type tripCounter struct{ n atomic.Int64 }

func (r *tripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { r.n.Add(1); return next(ctx, cmd) }
}
func (r *tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { r.n.Add(1); return next(ctx, cmds) }
}

// BenchmarkRegistrationPreHook drives POST /hooks/registration/pre over a
// real HTTP connection against a real redis-server (Kratos faked in
// process), with the sign-up not invited in invite_only mode: the hook's
// common path. "throughput" runs at full load and reports req/s and p99;
// "paced" sends 1,000 req/s and reports the latency percentiles there.
//
// The paced run gives the Go process one CPU (GOMAXPROCS=1) and leaves the
// other to redis-server, as a deployment would (the sidecar's pod has its
// own CPU; Redis runs elsewhere). With both of this 2-core machine's CPUs
// the tail measures the Go runtime and redis-server contending for the
// same cores: p99 then varies between about 1 and 3 ms from run to run.
//
//	go test -run=NONE -bench=RegistrationPreHook -benchtime=3s ./server/
func BenchmarkRegistrationPreHook(b *testing.B) {
	_, hs, rdb := hookServer(b, "invite_only")
	cost := newCostMeter(b, rdb)
	body := preBody("stranger@example.com", "")
	c := keepAliveClient()
	for i := 0; i < 200; i++ { // warm connections and the script cache
		if _, err := callHook(c, hs.URL, body); err != nil {
			b.Fatal(err)
		}
	}

	b.Run("throughput", func(b *testing.B) {
		var mu sync.Mutex
		var lat []time.Duration
		b.SetParallelism(16)
		b.ReportAllocs()
		cost.start(b)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			local := make([]time.Duration, 0, 1024)
			for pb.Next() {
				start := time.Now()
				status, err := callHook(c, hs.URL, body)
				if err != nil || status != http.StatusForbidden {
					b.Errorf("status %d %v", status, err)
					return
				}
				local = append(local, time.Since(start))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		})
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		reportPercentiles(b, lat)
		cost.report(b)
	})

	b.Run("paced-1000rps", func(b *testing.B) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		lat := make([]time.Duration, b.N)
		var wg sync.WaitGroup
		b.ReportAllocs()
		cost.start(b)
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			// Scheduled on absolute times, so a late wake-up is caught up
			// and the offered rate really is 1,000 requests a second.
			time.Sleep(time.Until(start.Add(time.Duration(i) * time.Millisecond)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				status, err := callHook(c, hs.URL, body)
				if err != nil || status != http.StatusForbidden {
					b.Errorf("status %d %v", status, err)
				}
				lat[i] = time.Since(start)
			}()
		}
		wg.Wait()
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		reportPercentiles(b, lat)
		cost.report(b)
	})
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
