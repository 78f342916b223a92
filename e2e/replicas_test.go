package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/mail/resendtest"
	"github.com/kratos-orgs/kratos-orgs/redisx"
	"github.com/kratos-orgs/kratos-orgs/server"
)

// Two kratos-orgs processes share one Redis and one Kratos behind a load
// balancer, as two pods behind a Service would. Halfway through 2,000
// invitations one process is killed (SIGKILL: no drain, jobs in flight).
// Afterwards every invitation that exists was mailed exactly once (the
// survivor takes the dead worker's jobs over; Resend's idempotency keys
// absorb a send that was in flight), every invitation answered 2xx exists,
// every short-lived invitation expired exactly once although both
// sweepers ran, and every Kratos webhook was answered. On one redis-server
// and on a Redis Cluster, side by side.
func TestTwoReplicasOneKilled(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		t.Parallel()
		r := testenv.StartRedis(t)
		twoReplicasOneKilled(t, map[string]string{"KRATOS_ORGS_REDIS_URL": "redis://" + r.Addr + "/0"}, r.Client(t))
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		c := testenv.SharedCluster(t)
		twoReplicasOneKilled(t, map[string]string{"KRATOS_ORGS_REDIS_MODE": "cluster",
			"KRATOS_ORGS_REDIS_ADDRS": strings.Join(c.Addrs(), ",")}, c.Open(t))
	})
}

func twoReplicasOneKilled(t *testing.T, redisEnv map[string]string, rdb redis.UniversalClient) {
	const total, killAt, shortLived, workers = 2000, 1000, 100, 8
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	public, admin := newBalancer(t), newBalancer(t)
	k := testenv.StartKratosFor(t, public.URL, admin.URL, nil)
	resend := resendtest.New(t, "re_e2e")
	prefix := testenv.UniquePrefix(t)
	var reps [2]*replica
	for i := range reps {
		reps[i] = startReplica(t, bin, replicaEnv(redisEnv, prefix, k, resend.URL(), public.URL))
		public.backends = append(public.backends, reps[i].public)
		admin.backends = append(admin.backends, reps[i].admin)
	}
	orgID := adminJSON(t, admin.URL, "POST", "/admin/organizations", `{"name":"Replicas"}`, 201)["id"].(string)

	invitePath := "/admin/organizations/" + orgID + "/invitations"
	for i := range shortLived {
		adminJSON(t, admin.URL, "POST", invitePath, fmt.Sprintf(`{"email":"short%d@example.com","ttl":"1m"}`, i), 201)
	}
	st := &stack{t: t, kratos: k}
	signUps := func(from, to int) {
		for i := from; i < to; i++ {
			if code, body := st.signUp(fmt.Sprintf("signup%d@example.com", i), nil); code != http.StatusOK {
				t.Errorf("sign-up %d: %d %v", i, code, body)
			}
		}
	}
	signUps(0, 10)

	began := time.Now()
	statuses := inviteConcurrently(t, admin.URL+invitePath, total, workers, func(n int) {
		if n%250 == 0 {
			t.Logf("%d invitations started (%v)", n, time.Since(began).Round(time.Millisecond))
		}
		if n == killAt {
			reps[0].kill()
			t.Logf("killed replica A after %d invitations", n)
		}
	})
	signUps(10, 20)

	ok, unknown := 0, 0
	for _, code := range statuses {
		switch {
		case code == http.StatusCreated:
			ok++
		case code == http.StatusBadGateway || code == 0:
			unknown++ // in flight on the killed process: may or may not exist
		default:
			t.Errorf("an invitation answered %d", code)
		}
	}
	t.Logf("invitations: %d created, %d lost in flight with the killed process", ok, unknown)
	if unknown > workers {
		t.Errorf("%d invitations failed; at most the %d in flight at the kill may", unknown, workers)
	}

	pending := listInvitations(t, admin.URL, invitePath, "pending")
	for i, code := range statuses {
		email := fmt.Sprintf("many%d@example.com", i)
		if _, exists := pending[email]; code == http.StatusCreated && !exists {
			t.Errorf("%s was answered 201 but is not pending", email)
		}
	}
	checkMailedOnce(t, resend, pending, shortLived)
	checkExpiredOnce(t, admin.URL, invitePath, rdb, prefix, orgID, shortLived)
	if bad := admin.failedHooks.Load(); bad != 0 {
		t.Errorf("%d Kratos webhooks were not answered", bad)
	}
	if n := admin.hooks.Load(); n < 20 {
		t.Errorf("the balancer saw %d webhooks, want at least one per sign-up (20)", n)
	}
}

// replicaEnvVar makes this test binary run as one kratos-orgs process
// (what `kratos-orgs serve` runs, configured by KRATOS_ORGS_* variables)
// instead of running tests: the processes need no separate build.
const replicaEnvVar = "KRATOS_ORGS_E2E_RUN_REPLICA"

// runReplicaIfAsked is called first by TestMain.
func runReplicaIfAsked() {
	if os.Getenv(replicaEnvVar) != "1" {
		return
	}
	os.Exit(runReplica())
}

func runReplica() int {
	cfg, err := config.Load("", os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := server.New(ctx, server.Options{Config: cfg, Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	if err := s.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// replicaEnv configures a process the way an operator would: through
// KRATOS_ORGS_* variables.
func replicaEnv(redisEnv map[string]string, prefix string, k *testenv.Kratos, resendURL, publicURL string) map[string]string {
	env := map[string]string{
		"KRATOS_ORGS_REDIS_KEY_PREFIX":                      prefix,
		"KRATOS_ORGS_KRATOS_ADMIN_URL":                      k.AdminURL,
		"KRATOS_ORGS_KRATOS_PUBLIC_URL":                     k.PublicURL,
		"KRATOS_ORGS_HOOKS_SECRET":                          testenv.HooksSecret,
		"KRATOS_ORGS_ADMIN_API_KEYS":                        replicaAdminKey,
		"KRATOS_ORGS_SECRETS_CIPHER":                        "replicas-e2e-cipher-secret-0123456789",
		"KRATOS_ORGS_SERVE_PUBLIC_BASE_URL":                 publicURL,
		"KRATOS_ORGS_MAIL_SENDER":                           "resend",
		"KRATOS_ORGS_MAIL_FROM_ADDRESS":                     "invites@example.com",
		"KRATOS_ORGS_MAIL_RESEND_API_KEY":                   "re_e2e",
		"KRATOS_ORGS_MAIL_RESEND_BASE_URL":                  resendURL,
		"KRATOS_ORGS_MAIL_RESEND_TIMEOUT":                   "2s",
		"KRATOS_ORGS_MAIL_RATE_PER_SECOND":                  "1000",
		"KRATOS_ORGS_LIMITS_MAIL_GLOBAL_REQUESTS":           "100000",
		"KRATOS_ORGS_LIMITS_MAIL_PER_ORGANIZATION_REQUESTS": "100000",
		"KRATOS_ORGS_OUTBOX_POLL_INTERVAL":                  "20ms",
		"KRATOS_ORGS_OUTBOX_CLAIM_AFTER":                    "3s",
		"KRATOS_ORGS_OUTBOX_SWEEP_INTERVAL":                 "1s",
	}
	for k, v := range redisEnv {
		env[k] = v
	}
	return env
}

const replicaAdminKey = "replicas-e2e-admin-key-0123"

// replica is one kratos-orgs process.
type replica struct {
	public, admin string
	cmd           *exec.Cmd
	logs          *testenv.LogBuffer
}

func startReplica(t *testing.T, bin string, env map[string]string) *replica {
	t.Helper()
	for attempt := 1; ; attempt++ {
		r, err := tryStartReplica(bin, env)
		if err == nil {
			t.Cleanup(func() {
				r.kill()
				if t.Failed() {
					t.Logf("replica %s log:\n%s", r.admin, r.logs.String())
				}
			})
			return r
		}
		if attempt == 3 {
			t.Fatalf("kratos-orgs did not start: %v", err)
		}
	}
}

func tryStartReplica(bin string, env map[string]string) (*replica, error) {
	pub, err := testenv.FreePort()
	if err != nil {
		return nil, err
	}
	adm, err := testenv.FreePort()
	if err != nil {
		return nil, err
	}
	r := &replica{public: "http://127.0.0.1:" + strconv.Itoa(pub), admin: "http://127.0.0.1:" + strconv.Itoa(adm), logs: &testenv.LogBuffer{}}
	r.cmd = exec.Command(bin)
	r.cmd.Env = append(os.Environ(), replicaEnvVar+"=1", "KRATOS_ORGS_SERVE_PUBLIC_HOST=127.0.0.1", "KRATOS_ORGS_SERVE_ADMIN_HOST=127.0.0.1",
		"KRATOS_ORGS_SERVE_PUBLIC_PORT="+strconv.Itoa(pub), "KRATOS_ORGS_SERVE_ADMIN_PORT="+strconv.Itoa(adm))
	for k, v := range env {
		r.cmd.Env = append(r.cmd.Env, k+"="+v)
	}
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(exited) }()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			return nil, fmt.Errorf("kratos-orgs exited: %s", r.logs.String())
		default:
		}
		if resp, err := http.Get(r.admin + "/health/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
	}
	r.kill()
	return nil, fmt.Errorf("kratos-orgs on %s not ready within 30s: %s", r.admin, r.logs.String())
}

// kill ends the process with SIGKILL, as an OOM kill or a node loss would.
func (r *replica) kill() { _ = r.cmd.Process.Kill() }

// balancer spreads requests over the replicas round-robin and, like a
// Kubernetes Service whose endpoint is gone, skips one that refuses
// connections. A request cut off in flight is answered 502: nobody can
// know whether it took effect.
type balancer struct {
	URL         string
	backends    []string
	next        atomic.Int64
	hooks       atomic.Int64 // webhook requests seen
	failedHooks atomic.Int64 // webhook requests answered 5xx or not at all
	client      *http.Client
}

func newBalancer(t *testing.T) *balancer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{URL: "http://" + l.Addr().String(), client: &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}}
	srv := &http.Server{Handler: b}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return b
}

func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	isHook := len(r.URL.Path) > 7 && r.URL.Path[:7] == "/hooks/"
	if isHook {
		b.hooks.Add(1)
	}
	start := int(b.next.Add(1))
	for i := range b.backends {
		backend := b.backends[(start+i)%len(b.backends)]
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, backend+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := b.client.Do(req)
		if errors.Is(err, syscall.ECONNREFUSED) {
			continue
		}
		if err != nil {
			break
		}
		defer resp.Body.Close()
		if isHook && resp.StatusCode >= 500 {
			b.failedHooks.Add(1)
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		return
	}
	if isHook {
		b.failedHooks.Add(1)
	}
	w.WriteHeader(http.StatusBadGateway)
}

// adminJSON calls the admin API and decodes the answer, failing the test
// on another status than want.
func adminJSON(t *testing.T, base, method, path, body string, want int) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+replicaAdminKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, raw, want)
	}
	return out
}

// inviteConcurrently sends n invitations (many<i>@example.com) from
// workers goroutines and returns each one's status (0: no answer).
// before is called with the number of invitations started so far.
func inviteConcurrently(t *testing.T, url string, n, workers int, before func(int)) []int {
	statuses := make([]int, n)
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				mu.Lock()
				before(i)
				mu.Unlock()
				req, _ := http.NewRequest("POST", url, bytes.NewBufferString(fmt.Sprintf(`{"email":"many%d@example.com"}`, i)))
				req.Header.Set("Authorization", "Bearer "+replicaAdminKey)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			}
		}()
	}
	wg.Wait()
	return statuses
}

// listInvitations returns the organization's invitations of one status by
// address, every page.
func listInvitations(t *testing.T, base, path, status string) map[string]string {
	t.Helper()
	out := map[string]string{}
	cursor := ""
	for {
		page := adminJSON(t, base, "GET", path+"?limit=100&status="+status+"&cursor="+cursor, "", 200)
		for _, it := range page["items"].([]any) {
			inv := it.(map[string]any)
			out[inv["email"].(string)] = inv["id"].(string)
		}
		next, _ := page["next_cursor"].(string)
		if next == "" {
			return out
		}
		cursor = next
	}
}

// checkMailedOnce waits until every pending invitation and every
// short-lived one was mailed and checks none was mailed twice.
func checkMailedOnce(t *testing.T, resend *resendtest.Server, pending map[string]string, shortLived int) {
	t.Helper()
	want := len(pending)
	for email := range pending {
		if len(email) >= 5 && email[:5] == "short" {
			want-- // may have expired before the list; counted below
		}
	}
	want += shortLived
	emails := resend.WaitForEmails(t, want, 90*time.Second)
	time.Sleep(2 * time.Second) // a late duplicate would arrive now
	perInvitation := map[string]int{}
	for _, e := range resend.Emails() {
		perInvitation[e.Tags["invitation"]]++
	}
	for email, id := range pending {
		if n := perInvitation[id]; n != 1 {
			t.Errorf("invitation %s (%s) was mailed %d times, want once", id, email, n)
		}
	}
	for id, n := range perInvitation {
		if n > 1 {
			t.Errorf("invitation %s was mailed %d times", id, n)
		}
	}
	t.Logf("mails: %d accepted by the fake Resend for %d invitations (%d send requests)",
		len(emails), want, resend.Requests())
}

// checkExpiredOnce waits for the short-lived invitations to expire and
// checks the expiry counter counted each once: two sweepers racing over
// one invitation would count it twice.
func checkExpiredOnce(t *testing.T, base, path string, rdb redis.UniversalClient, prefix, orgID string, n int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var expired map[string]string
	for {
		expired = listInvitations(t, base, path, "expired")
		if len(expired) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(expired) != n {
		t.Fatalf("%d invitations expired, want %d", len(expired), n)
	}
	stats := redisx.Keyspace{Prefix: prefix}.Stats(redisx.ShardOf(orgID))
	got, err := rdb.HGet(context.Background(), stats, "expired").Int()
	if err != nil {
		t.Fatal(err)
	}
	if got != n {
		t.Errorf("the expiry counter says %d, want %d: an invitation expired twice", got, n)
	}
}
