package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/identity/identitytest"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/mail"
)

// failoverAnswer is one invitation request of TestClusterFailover.
type failoverAnswer struct {
	start, end time.Time
	status     int
	code       string // the error code of a non-2xx answer
	id         string // the invitation of a 2xx answer
}

// readyProbe is one GET /health/ready taken during TestClusterFailover.
type readyProbe struct {
	at     time.Time
	status int
	body   string
}

// TestClusterFailover kills the Redis Cluster master that holds an
// organization's shard while 2,000 invitations for it are being made, and
// checks what callers see: only 2xx or 503 redis_unavailable, service again
// soon after Redis promoted the replica (the client reloads its slot map on
// connection errors, see redisx.Open), /health/ready naming the dead node
// while it is unreachable and ok afterwards. It prints the outage as Redis
// saw it and as kratos-orgs did, and how many invitations answered 2xx were
// lost by Redis' asynchronous replication (see the README's Redis section).
func TestClusterFailover(t *testing.T) {
	const total, rate, workers = 2000, 250, 16 // about 8 s of invitations
	c := testenv.StartCluster(t, testenv.ClusterOptions{})
	srv, handler := failoverServer(t, c.Addrs())
	ctx := context.Background()
	org, err := srv.Orgs.Store().Create(ctx, organization("Failover"), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	orgKey := srv.Keyspace().Org(org.ID)
	master, err := c.MasterFor(orgKey)
	if err != nil {
		t.Fatal(err)
	}

	answers := make([]failoverAnswer, total)
	tickets := make(chan int)
	go func() {
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		for i := 0; i < total; i++ {
			<-tick.C
			tickets <- i
		}
		close(tickets)
	}()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range tickets {
				answers[i] = invite(handler, org.ID, i)
			}
		}()
	}
	stopProbes := make(chan struct{})
	probes := make(chan []readyProbe, 1)
	go func() { probes <- probeReady(handler, stopProbes) }()

	// Kill the master a quarter of the way through, then watch for the
	// replica's promotion as Redis reports it.
	time.Sleep(total / 4 * time.Second / rate)
	master.Kill()
	killed := time.Now()
	promoted, err := waitPromotion(c, orgKey, master, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	// Readiness must say ok again once the slot map is fresh.
	final := readyOnce(handler)
	for deadline := time.Now().Add(10 * time.Second); final.status != http.StatusOK && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		final = readyOnce(handler)
	}
	close(stopProbes)
	if final.status != http.StatusOK {
		t.Errorf("/health/ready after the failover: %d %s", final.status, final.body)
	}

	report := summarizeFailover(t, answers, killed, promoted)
	checkReadyDuringFailover(t, <-probes, master.Addr, killed, promoted)
	lost := lostInvitations(t, srv.Invites.Get, answers, killed)
	t.Logf("redis: master %s killed; replica promoted %v later", master.Addr, promoted.Sub(killed).Round(time.Millisecond))
	t.Logf("kratos-orgs: %s", report)
	t.Logf("invitations answered 2xx but lost by the failover (asynchronous replication): %d of %d", lost, countOK(answers))
}

// failoverServer builds kratos-orgs on the cluster at addrs, with Kratos
// and mail replaced by in-process stand-ins: this test is about Redis.
func failoverServer(t *testing.T, addrs []string) (*Server, http.Handler) {
	t.Helper()
	cfg := testConfig("127.0.0.1:1", "http://127.0.0.1:1", "http://127.0.0.1:1", "http://127.0.0.1:1/")
	cfg.Redis.Mode, cfg.Redis.URL, cfg.Redis.Addrs = "cluster", "", addrs
	cfg.Mail.Sender = "log"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := New(context.Background(), Options{Config: cfg, Logger: log, Identities: identitytest.New(), Sender: mail.NewLogSender(io.Discard)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, srv.AdminHandler()
}

func invite(handler http.Handler, org string, i int) failoverAnswer {
	body := fmt.Sprintf(`{"email":"failover%d@example.com","role":"member","inviter":{"name":"Failover"}}`, i)
	req := httptest.NewRequest(http.MethodPost, "/admin/organizations/"+org+"/invitations", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+adminKey)
	rec := httptest.NewRecorder()
	a := failoverAnswer{start: time.Now()}
	handler.ServeHTTP(rec, req)
	a.end, a.status = time.Now(), rec.Code
	var got struct {
		ID    string                `json:"id"`
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &got)
	a.id, a.code = got.ID, got.Error.Code
	if a.code == "" && a.status/100 != 2 {
		a.code = strings.TrimSpace(rec.Body.String())
	}
	return a
}

func readyOnce(handler http.Handler) readyProbe {
	rec := httptest.NewRecorder()
	p := readyProbe{at: time.Now()}
	handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health/ready", nil))
	p.status, p.body = rec.Code, rec.Body.String()
	return p
}

// probeReady asks /health/ready every 100 ms until stop is closed.
func probeReady(handler http.Handler, stop <-chan struct{}) []readyProbe {
	var got []readyProbe
	for {
		select {
		case <-stop:
			return got
		case <-time.After(100 * time.Millisecond):
			got = append(got, readyOnce(handler))
		}
	}
}

// waitPromotion returns when Redis first names a master other than old
// for key: the moment the replica was promoted, as Redis reports it.
func waitPromotion(c *testenv.Cluster, key string, old *testenv.Redis, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m, err := c.MasterFor(key); err == nil && m != old {
			return time.Now(), nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("no replica took over %q from %s within %v", key, old.Addr, timeout)
}

// summarizeFailover checks every answer is 2xx or 503 redis_unavailable and
// that kratos-orgs served again within 2 s of the promotion, and describes
// the outage as kratos-orgs saw it.
func summarizeFailover(t *testing.T, answers []failoverAnswer, killed, promoted time.Time) string {
	t.Helper()
	var failed []failoverAnswer
	codes := map[string]int{}
	for _, a := range answers {
		if a.status/100 == 2 {
			continue
		}
		failed = append(failed, a)
		codes[fmt.Sprintf("%d %s", a.status, a.code)]++
		if a.status != http.StatusServiceUnavailable || a.code != "redis_unavailable" {
			t.Errorf("an invitation during the failover got %d %q, want 2xx or 503 redis_unavailable", a.status, a.code)
		}
	}
	if len(failed) == 0 {
		return fmt.Sprintf("every one of %d invitations answered 2xx", len(answers))
	}
	sort.Slice(failed, func(i, j int) bool { return failed[i].start.Before(failed[j].start) })
	first, last := failed[0], failed[len(failed)-1]
	// Every request started after the last failed one's start succeeded:
	// that start is when kratos-orgs served again.
	if again := last.start.Sub(promoted); again > 2*time.Second {
		t.Errorf("kratos-orgs still failed a request started %v after Redis promoted the replica; want within 2s", again.Round(time.Millisecond))
	}
	rel := func(at time.Time) string { return at.Sub(killed).Round(time.Millisecond).String() }
	return fmt.Sprintf("outage of %v: %d of %d invitations answered non-2xx (%v); the first failed request started %s after the kill, "+
		"the last one started %s after the kill (%s after the promotion) and ended %s after the kill",
		last.end.Sub(first.start).Round(time.Millisecond), len(failed), len(answers), codes, rel(first.start), rel(last.start),
		last.start.Sub(promoted).Round(time.Millisecond), rel(last.end))
}

// checkReadyDuringFailover checks /health/ready named the dead node while
// the slot map still pointed at it.
func checkReadyDuringFailover(t *testing.T, probes []readyProbe, dead string, killed, promoted time.Time) {
	t.Helper()
	named := 0
	for _, p := range probes {
		if p.at.After(killed) && p.at.Before(promoted) && p.status == http.StatusServiceUnavailable && strings.Contains(p.body, dead) {
			named++
		}
	}
	if named == 0 {
		t.Errorf("/health/ready never named the dead master %s between the kill and the promotion; probes: %v", dead, probes)
	}
	t.Logf("/health/ready named %s in %d probes during the outage", dead, named)
}

// lostInvitations counts invitations answered 2xx that no longer exist,
// and logs when each was answered relative to the kill.
func lostInvitations(t *testing.T, get func(context.Context, string) (invites.Invitation, error), answers []failoverAnswer, killed time.Time) int {
	t.Helper()
	lost := 0
	for _, a := range answers {
		if a.status/100 != 2 {
			continue
		}
		_, err := get(context.Background(), a.id)
		if apperr.KindOf(err) == apperr.NotFound {
			lost++
			t.Logf("lost: invitation %s answered %v after the kill", a.id, a.end.Sub(killed))
			continue
		}
		if err != nil {
			t.Errorf("read invitation %s: %v", a.id, err)
		}
	}
	return lost
}

func countOK(answers []failoverAnswer) int {
	n := 0
	for _, a := range answers {
		if a.status/100 == 2 {
			n++
		}
	}
	return n
}
