package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/identity/identitytest"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/mail"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// The quota tests run the real router, middleware and backends against a
// real redis-server, with Kratos replaced by the in-process fake (plus
// sessions) and mail by a sender that counts what would leave.

// sessionFake is the Kratos fake with sessions: X-Session-Token → identity.
type sessionFake struct {
	*identitytest.Fake
	mu       sync.Mutex
	sessions map[string]*identity.Identity
}

func (f *sessionFake) Whoami(_ context.Context, cookie, token string) (*identity.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if token == "" { // a browser: the token is the session cookie's value
		token = strings.TrimPrefix(identity.SessionCookie(cookie, ""), identity.DefaultSessionCookie+"=")
	}
	if who, ok := f.sessions[token]; ok {
		return &identity.Session{ID: "sess-" + token, Identity: who, Addresses: map[string]bool{who.Email: true}}, nil
	}
	return nil, nil
}

// signIn creates an identity with a session token.
func (f *sessionFake) signIn(email string) (*identity.Identity, string) {
	who := f.Add(email, "Admin "+email)
	f.mu.Lock()
	defer f.mu.Unlock()
	token := "token-" + who.ID
	f.sessions[token] = who
	return who, token
}

// countingSender records every mail that would leave.
type countingSender struct {
	mu   sync.Mutex
	to   []string
	sent []mail.Message
}

func (s *countingSender) Send(_ context.Context, m mail.Message) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.to = append(s.to, m.To...)
	s.sent = append(s.sent, m)
	return fmt.Sprintf("msg-%d", len(s.to)), nil
}

func (s *countingSender) count() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.to) }

type quotaStack struct {
	t      *testing.T
	srv    *Server
	ids    *sessionFake
	mail   *countingSender
	public string
	admin  string
	client *http.Client
}

func startQuotaStack(t *testing.T, mutate ...func(*config.Config)) *quotaStack {
	t.Helper()
	cfg := testConfig(testenv.SharedRedis(t).Addr, "http://127.0.0.1:1", "http://127.0.0.1:1", "http://127.0.0.1:1/")
	cfg.Redis.KeyPrefix = testenv.UniquePrefix(t)
	for _, m := range mutate {
		m(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st := &quotaStack{t: t, ids: &sessionFake{Fake: identitytest.New(), sessions: map[string]*identity.Identity{}}, mail: &countingSender{}}
	srv, err := New(context.Background(), Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(testLogWriter(t), nil)),
		Identities: st.ids, Sender: st.mail})
	if err != nil {
		t.Fatal(err)
	}
	st.srv = srv
	pub, adm := httptest.NewServer(srv.PublicHandler()), httptest.NewServer(srv.AdminHandler())
	st.public, st.admin = pub.URL, adm.URL
	forgetPub, forgetAdm := recorder.Listener("public", pub.URL), recorder.Listener("admin", adm.URL)
	jar, _ := cookiejar.New(nil)
	st.client = &http.Client{Transport: recorder.Transport(nil), Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(func() {
		pub.Close()
		adm.Close()
		forgetPub()
		forgetAdm()
		_ = srv.Close()
	})
	return st
}

// drain runs the outbox until it is empty.
func (st *quotaStack) drain() {
	st.t.Helper()
	for range 50 {
		n, err := st.srv.Worker.RunOnce(context.Background())
		if err != nil {
			st.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	st.t.Fatal("the outbox did not drain")
}

type reply struct {
	status int
	header http.Header
	body   string
}

func (r reply) errorBody(t *testing.T) (code, limit string) {
	t.Helper()
	var b struct {
		Error struct {
			Code    string         `json:"code"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.body), &b); err != nil {
		t.Fatalf("not an error body (%d): %s", r.status, r.body)
	}
	l, _ := b.Error.Details["limit"].(string)
	return b.Error.Code, l
}

func (st *quotaStack) do(method, url, body string, header map[string]string) reply {
	st.t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		st.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := st.client.Do(req)
	if err != nil {
		st.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// register submits the sign-up form as a browser would.
func (st *quotaStack) register(name, email string) reply {
	st.t.Helper()
	form := st.do(http.MethodGet, st.public+"/register", "", nil)
	m := csrfField.FindStringSubmatch(form.body)
	if form.status != http.StatusOK || m == nil {
		st.t.Fatalf("GET /register: %d %s", form.status, form.body)
	}
	v := url.Values{"csrf_token": {m[1]}, "name": {name}, "email": {email}}
	return st.do(http.MethodPost, st.public+"/register", v.Encode(), map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Origin": st.srv.cfg.Serve.Public.BaseURL})
}

// metric reads kratos_orgs_rate_limited_total for a limit.
func (st *quotaStack) refusals(limit string) int {
	st.t.Helper()
	r := st.do(http.MethodGet, st.admin+"/metrics", "", nil)
	m := regexp.MustCompile(`kratos_orgs_rate_limited_total\{limit="` + limit + `"\} (\d+)`).FindStringSubmatch(r.body)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func assertRetryAfter(t *testing.T, r reply) {
	t.Helper()
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429: %s", r.status, r.body)
	}
	if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
		t.Fatalf("Retry-After %q, want whole seconds ≥ 1", r.header.Get("Retry-After"))
	}
}

// The report, replayed: 30 anonymous sign-ups from one client
// address for 30 different addresses. At most the per-client quota of mails
// leaves; the rest are 429 pages with Retry-After.
func TestAnonymousSignupsFromOneClientAreCapped(t *testing.T) {
	st := startQuotaStack(t, func(c *config.Config) { c.Register.Enabled = true })
	quota := st.srv.cfg.Limits.RegisterPerClient.Requests
	accepted, refused := 0, 0
	for i := range 30 {
		r := st.register(fmt.Sprintf("Spam Co %d", i), fmt.Sprintf("stranger%d@example.com", i))
		switch r.status {
		case http.StatusOK:
			accepted++
		case http.StatusTooManyRequests:
			refused++
			assertRetryAfter(t, r)
			if !strings.Contains(r.body, "Too many attempts") || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
				t.Fatalf("429 is not the readable page: %s", r.body)
			}
		default:
			t.Fatalf("sign-up %d: %d %s", i, r.status, r.body)
		}
	}
	st.drain()
	t.Logf("30 sign-ups from one client: %d accepted, %d refused (429), %d activation mails sent (quota %d)",
		accepted, refused, st.mail.count(), quota)
	if accepted != quota || st.mail.count() != quota {
		t.Errorf("%d sign-ups accepted and %d mails sent, want the quota (%d)", accepted, st.mail.count(), quota)
	}
	if n := st.refusals("register_per_client"); n != refused {
		t.Errorf("metric says %d refusals, %d were seen", n, refused)
	}
}

// Many client addresses (behind a trusted proxy) signing up one target
// address: at most register_per_email mails reach it.
func TestSignupsForOneAddressAreCapped(t *testing.T) {
	st := startQuotaStack(t, func(c *config.Config) {
		c.Register.Enabled = true
		c.Serve.Public.TrustedProxies = []string{"127.0.0.1"}
	})
	const victim = "victim@example.com"
	quota := st.srv.cfg.Limits.RegisterPerEmail.Requests
	refused := 0
	for i := range 10 {
		// The sign-up form ignores repeats for an address within a minute;
		// forget that, as if minutes passed between the tries.
		st.srv.Redis().Del(context.Background(), st.srv.Keyspace().AddressPending(victim)+":register")
		form := st.do(http.MethodGet, st.public+"/register", "", nil)
		v := url.Values{"csrf_token": {csrfField.FindStringSubmatch(form.body)[1]}, "name": {fmt.Sprintf("Org %d", i)}, "email": {victim}}
		r := st.do(http.MethodPost, st.public+"/register", v.Encode(), map[string]string{
			"Content-Type": "application/x-www-form-urlencoded", "Origin": st.srv.cfg.Serve.Public.BaseURL, "X-Forwarded-For": fmt.Sprintf("198.51.100.%d", i+1)})
		if r.status == http.StatusTooManyRequests {
			refused++
			assertRetryAfter(t, r)
		} else if r.status != http.StatusOK {
			t.Fatalf("sign-up %d: %d %s", i, r.status, r.body)
		}
	}
	st.drain()
	t.Logf("10 sign-ups of one address from 10 clients: %d mails (quota %d), %d refused", st.mail.count(), quota, refused)
	if st.mail.count() != quota || refused != 10-quota {
		t.Errorf("%d mails to the victim and %d refusals, want %d and %d", st.mail.count(), refused, quota, 10-quota)
	}
	if n := st.refusals("register_per_email"); n != refused {
		t.Errorf("metric register_per_email = %d, want %d", n, refused)
	}
	if n := st.refusals("register_per_client"); n != 0 {
		t.Errorf("the per-client limit refused %d sign-ups from 10 different clients", n)
	}
}

// The client address comes from the socket; X-Forwarded-For counts only
// from a trusted proxy. IPv6 clients share a bucket per /64.
func TestClientAddressAndTrustedProxies(t *testing.T) {
	const quota = 3
	tests := []struct {
		name     string
		proxies  []string
		remote   func(i int) string
		xff      func(i int) string
		wantPass int
	}{
		{"spoofed header from an untrusted peer", nil,
			func(int) string { return "203.0.113.9:5555" }, func(i int) string { return fmt.Sprintf("192.0.2.%d", i+1) }, quota},
		{"header from a trusted proxy", []string{"203.0.113.0/24"},
			func(int) string { return "203.0.113.9:5555" }, func(i int) string { return fmt.Sprintf("192.0.2.%d", i+1) }, 10},
		{"trusted proxy, one client behind it", []string{"203.0.113.9"},
			func(int) string { return "203.0.113.9:5555" }, func(int) string { return "192.0.2.77" }, quota},
		{"different sockets", nil,
			func(i int) string { return fmt.Sprintf("192.0.2.%d:4000", i+1) }, func(int) string { return "" }, 10},
		{"one IPv6 /64", nil,
			func(i int) string { return fmt.Sprintf("[2001:db8:1:2::%x]:4000", i+1) }, func(int) string { return "" }, quota},
		{"different IPv6 /64s", nil,
			func(i int) string { return fmt.Sprintf("[2001:db8:1:%x::1]:4000", i+1) }, func(int) string { return "" }, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := startQuotaStack(t, func(c *config.Config) {
				c.Serve.Public.TrustedProxies = tt.proxies
				c.Limits.LinkViewsPerClient = config.Rate{Requests: quota, Period: 3600e9}
			})
			h := st.srv.PublicHandler()
			passed := 0
			for i := range 10 {
				req := httptest.NewRequest(http.MethodGet, "/invitations/accept/not-a-real-token", nil)
				req.RemoteAddr = tt.remote(i)
				if x := tt.xff(i); x != "" {
					req.Header.Set("X-Forwarded-For", x)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusTooManyRequests {
					passed++
				}
			}
			if passed != tt.wantPass {
				t.Errorf("%d of 10 look-ups passed, want %d", passed, tt.wantPass)
			}
		})
	}
}

// Accept/activate POSTs and token look-ups are bounded per client address.
func TestLinkLimits(t *testing.T) {
	st := startQuotaStack(t, func(c *config.Config) {
		c.Register.Enabled = true
		c.Limits.LinkViewsPerClient = config.Rate{Requests: 4, Period: 3600e9}
		c.Limits.LinkSubmitsPerClient = config.Rate{Requests: 2, Period: 3600e9}
	})
	for _, path := range []string{"/invitations/accept/", "/register/activate/"} {
		for i := range 2 {
			if r := st.do(http.MethodGet, st.public+path+"guess"+strconv.Itoa(i), "", nil); r.status != http.StatusNotFound {
				t.Fatalf("GET %s: %d, want the 404 page", path, r.status)
			}
		}
	}
	r := st.do(http.MethodGet, st.public+"/invitations/accept/guess9", "", nil)
	assertRetryAfter(t, r)
	if !strings.Contains(r.body, "Too many attempts") {
		t.Errorf("429 page: %s", r.body)
	}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": st.srv.cfg.Serve.Public.BaseURL}
	for i := range 2 {
		if r := st.do(http.MethodPost, st.public+"/invitations/accept/guess"+strconv.Itoa(i), "csrf_token=x", form); r.status == http.StatusTooManyRequests {
			t.Fatalf("POST %d refused within the quota", i)
		}
	}
	assertRetryAfter(t, st.do(http.MethodPost, st.public+"/register/activate/guess", "csrf_token=x", form))
	if st.refusals("link_views_per_client") != 1 || st.refusals("link_submits_per_client") != 1 {
		t.Errorf("metrics: views %d, submits %d; want 1 each", st.refusals("link_views_per_client"), st.refusals("link_submits_per_client"))
	}
}

func (st *quotaStack) apiInvite(token, org, email string) reply {
	st.t.Helper()
	return st.do(http.MethodPost, st.public+"/api/organizations/"+org+"/invitations",
		`{"email":"`+email+`","role":"member"}`, map[string]string{"X-Session-Token": token, "Content-Type": "application/json"})
}

func (st *quotaStack) orgOwnedBy(name string, who *identity.Identity) orgs.Organization {
	st.t.Helper()
	o, err := st.srv.Orgs.Store().Create(context.Background(), organization(name), false,
		&orgs.Member{IdentityID: who.ID, Email: who.Email, Role: "owner"})
	if err != nil {
		st.t.Fatal(err)
	}
	return o
}

// /api invitations: per signed-in identity and per organization; a caller
// who is not an admin of an organization cannot spend its quota.
func TestAPIInviteLimits(t *testing.T) {
	st := startQuotaStack(t, func(c *config.Config) {
		c.Limits.APIInvitesPerIdentity = config.Rate{Requests: 3, Period: 3600e9}
		c.Limits.APIInvitesPerOrganization = config.Rate{Requests: 4, Period: 86400e9}
	})
	a, tokA := st.ids.signIn("a@example.com")
	b, tokB := st.ids.signIn("b@example.com")
	_, tokC := st.ids.signIn("c@example.com")
	org1 := st.orgOwnedBy("Org One", a)
	if _, _, err := st.srv.Orgs.AddMember(context.Background(), org1.ID, orgs.AddMemberRequest{IdentityID: b.ID, Role: "admin"}); err != nil {
		t.Fatal(err)
	}
	// A stranger is refused by authorization, then by their own quota;
	// none of it uses the organization's.
	for i := range 10 {
		r := st.apiInvite(tokC, org1.ID, fmt.Sprintf("c%d@example.com", i))
		if i < 3 && (r.status < 400 || r.status == http.StatusTooManyRequests) {
			t.Fatalf("stranger's attempt %d: %d %s", i, r.status, r.body)
		}
		if _, limit := r.errorBody(t); i >= 3 && limit != "api_invites_per_identity" {
			t.Fatalf("stranger's attempt %d: %d %s, want their own identity's limit", i, r.status, r.body)
		}
	}
	for i := range 3 {
		if r := st.apiInvite(tokA, org1.ID, fmt.Sprintf("a%d@example.com", i)); r.status != http.StatusCreated {
			t.Fatalf("A's invite %d: %d %s", i, r.status, r.body)
		}
	}
	r := st.apiInvite(tokA, org1.ID, "a9@example.com")
	assertRetryAfter(t, r)
	if code, limit := r.errorBody(t); code != "rate_limited" || limit != "api_invites_per_identity" {
		t.Errorf("A's 4th invite: %s/%s, want rate_limited/api_invites_per_identity", code, limit)
	}
	if r := st.apiInvite(tokB, org1.ID, "b0@example.com"); r.status != http.StatusCreated {
		t.Fatalf("B's invite: %d %s", r.status, r.body)
	}
	r = st.apiInvite(tokB, org1.ID, "b1@example.com")
	assertRetryAfter(t, r)
	if code, limit := r.errorBody(t); code != "rate_limited" || limit != "api_invites_per_organization" {
		t.Errorf("the organization's 5th invite: %s/%s, want rate_limited/api_invites_per_organization", code, limit)
	}
	st.drain()
	if st.mail.count() != 4 {
		t.Errorf("%d mails, want 4", st.mail.count())
	}
}

// Resend on /api has the reminder's cooldown per invitation.
func TestAPIResendCooldown(t *testing.T) {
	st := startQuotaStack(t)
	a, tok := st.ids.signIn("a@example.com")
	org := st.orgOwnedBy("Org One", a)
	var ids []string
	for _, email := range []string{"x@example.com", "y@example.com"} {
		r := st.apiInvite(tok, org.ID, email)
		var inv struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal([]byte(r.body), &inv)
		ids = append(ids, inv.ID)
	}
	st.drain()
	resend := func(id string) reply {
		return st.do(http.MethodPost, st.public+"/api/organizations/"+org.ID+"/invitations/"+id+"/resend", "",
			map[string]string{"X-Session-Token": tok})
	}
	if r := resend(ids[0]); r.status != http.StatusOK {
		t.Fatalf("first resend: %d %s", r.status, r.body)
	}
	r := resend(ids[0])
	assertRetryAfter(t, r)
	if code, limit := r.errorBody(t); code != "rate_limited" || limit != "api_resend_per_invitation" {
		t.Errorf("second resend: %s/%s", code, limit)
	}
	if ra, _ := strconv.Atoi(r.header.Get("Retry-After")); ra < 3500 || ra > 3600 {
		t.Errorf("Retry-After %d, want about invitations.remind_interval (3600)", ra)
	}
	if r := resend(ids[1]); r.status != http.StatusOK {
		t.Errorf("another invitation's resend: %d %s", r.status, r.body)
	}
	st.drain()
	if st.mail.count() != 4 {
		t.Errorf("%d mails, want 2 invitations + 2 resends", st.mail.count())
	}
}

// The admin API is unlimited by default; limits.admin_per_key bounds each
// key on its own.
func TestAdminKeyLimit(t *testing.T) {
	get := func(st *quotaStack, key string) reply {
		return st.do(http.MethodGet, st.admin+"/admin/organizations", "", map[string]string{"Authorization": "Bearer " + key})
	}
	st := startQuotaStack(t)
	for i := range 50 {
		if r := get(st, adminKey); r.status != http.StatusOK {
			t.Fatalf("default config, request %d: %d", i, r.status)
		}
	}
	st = startQuotaStack(t, func(c *config.Config) { c.Limits.AdminPerKey = config.Rate{Requests: 3, Period: 60e9} })
	for i := range 3 {
		if r := get(st, adminKey); r.status != http.StatusOK {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := get(st, adminKey)
	assertRetryAfter(t, r)
	if code, limit := r.errorBody(t); code != "rate_limited" || limit != "admin_per_key" {
		t.Errorf("%s/%s", code, limit)
	}
	if r := get(st, st.srv.cfg.Admin.APIKeys[1]); r.status != http.StatusOK {
		t.Errorf("the second key shares the first one's quota: %d", r.status)
	}
	if r := get(st, "wrong-key-wrong-key-wrong"); r.status != http.StatusUnauthorized {
		t.Errorf("a wrong key: %d, want 401 before any quota", r.status)
	}
}
