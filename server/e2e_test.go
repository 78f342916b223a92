package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/mail/resendtest"
	"github.com/kratos-orgs/kratos-orgs/openapi/openapitest"
	"github.com/kratos-orgs/kratos-orgs/tokens"
)

// recorder checks every response the tests get through apiClient (the
// admin API, health) against openapi/openapi.yaml; TestMain fails the run
// on a mismatch.
var (
	recorder  = openapitest.NewRecorder(nil)
	apiClient = &http.Client{Transport: recorder.Transport(http.DefaultTransport)}
)

func TestMain(m *testing.M) {
	code := testenv.Main(m)
	if err := recorder.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: responses do not match the OpenAPI document:", err)
		code = max(code, 1)
	}
	os.Exit(code)
}

const adminKey = "e2e-admin-key-0123456789"

// stack is a running kratos-orgs with real Redis and Kratos.
type stack struct {
	t      *testing.T
	srv    *Server
	cfg    config.Config
	admin  string // base URL of the admin listener
	public string
	kratos *testenv.Kratos
	resend *resendtest.Server
	rdb    *redis.Client
	logs   *testenv.LogBuffer
	stop   func()
}

func testConfig(redisAddr, kratosAdmin, kratosPublic, resendURL string) config.Config {
	cfg := config.Default()
	cfg.Serve.Public = config.Listener{Host: "127.0.0.1", Port: 0, BaseURL: "http://127.0.0.1:4480"}
	cfg.Serve.Admin = config.Listener{Host: "127.0.0.1", Port: 0}
	cfg.Serve.ShutdownTimeout = 10 * time.Second
	cfg.Redis.URL = "redis://" + redisAddr + "/0"
	cfg.Redis.KeyPrefix = fmt.Sprintf("e2e%d:", time.Now().UnixNano())
	cfg.Kratos.AdminURL, cfg.Kratos.PublicURL = kratosAdmin, kratosPublic
	cfg.Kratos.Timeout = 2 * time.Second
	cfg.Admin.APIKeys = []string{adminKey, "second-key-for-rotation-000"}
	cfg.Invitations.AllowedRedirectHosts = []string{"app.example.com"}
	cfg.Mail = config.Mail{Sender: "resend", FromAddress: "invites@example.com", FromName: "Example",
		Resend: config.Resend{APIKey: "re_e2e", BaseURL: resendURL, Timeout: 5 * time.Second}, RatePerSec: 1000}
	cfg.Secrets.Cipher = []string{"e2e-cipher-secret-0123456789abcdef"}
	cfg.Outbox.PollInterval = 20 * time.Millisecond
	cfg.Outbox.BaseBackoff = 50 * time.Millisecond
	cfg.Outbox.MaxBackoff = 200 * time.Millisecond
	cfg.Register.Enabled = true // off by default; these tests cover it
	return cfg
}

func startStack(t *testing.T, mutate ...func(*config.Config)) *stack {
	t.Helper()
	r := testenv.SharedRedis(t)
	k := testenv.SharedKratos(t)
	return startStackWith(t, r.Addr, k, mutate...)
}

func startStackWith(t *testing.T, redisAddr string, k *testenv.Kratos, mutate ...func(*config.Config)) *stack {
	t.Helper()
	st := &stack{t: t, kratos: k, resend: resendtest.New(t, "re_e2e"), logs: &testenv.LogBuffer{}}
	st.cfg = testConfig(redisAddr, k.AdminURL, k.PublicURL, st.resend.URL())
	for _, m := range mutate {
		m(&st.cfg)
	}
	if err := st.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.MultiWriter(st.logs, testLogWriter(t)), &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := New(ctx, Options{Config: st.cfg, Logger: log})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	st.srv = srv
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	st.admin = "http://" + srv.Addr("admin")
	st.public = "http://" + srv.Addr("public")
	t.Cleanup(recorder.Listener("admin", st.admin))
	t.Cleanup(recorder.Listener("public", st.public))
	st.rdb = redis.NewClient(&redis.Options{Addr: redisAddr})
	stopped := false
	st.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not return after shutdown")
		}
		_ = srv.Close()
		_ = st.rdb.Close()
	}
	t.Cleanup(st.stop)
	return st
}

// dataKeys counts this stack's keys, leaving out the outbox streams its
// worker creates in the background when it starts.
func (st *stack) dataKeys() int {
	st.t.Helper()
	keys, err := st.rdb.Keys(context.Background(), st.cfg.Redis.KeyPrefix+"*").Result()
	if err != nil {
		st.t.Fatal(err)
	}
	n := 0
	for _, k := range keys {
		if !strings.HasSuffix(k, ":outbox") {
			n++
		}
	}
	return n
}

func testLogWriter(t *testing.T) io.Writer {
	if testing.Verbose() {
		return os.Stderr
	}
	return io.Discard
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not JSON (%d): %s", r.status, r.body)
	}
	return m
}

func (r response) code() string {
	var b struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(r.body, &b)
	return b.Error.Code
}

func (st *stack) do(method, path, contentType, body string, headers ...string) response {
	st.t.Helper()
	req, err := http.NewRequest(method, st.admin+path, strings.NewReader(body))
	if err != nil {
		st.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+adminKey)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		st.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, b}
}

func (st *stack) api(method, path string, body any) response {
	st.t.Helper()
	if body == nil {
		return st.do(method, path, "", "")
	}
	b, _ := json.Marshal(body)
	return st.do(method, path, "application/json", string(b))
}

func (st *stack) createOrg(name string) map[string]any {
	st.t.Helper()
	r := st.api("POST", "/admin/organizations", map[string]any{"name": name})
	if r.status != http.StatusCreated {
		st.t.Fatalf("create org: %d %s", r.status, r.body)
	}
	return r.json(st.t)
}

// kratosIdentities lists identities with an identifier, straight from Kratos.
func (st *stack) kratosIdentities(email string) []map[string]any {
	st.t.Helper()
	resp, err := http.Get(st.kratos.AdminURL + "/admin/identities?credentials_identifier=" + email)
	if err != nil {
		st.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		st.t.Fatal(err)
	}
	return out
}

func (st *stack) createKratosIdentity(email string) string {
	st.t.Helper()
	// Verified, as a person who signed up long ago: mail uses only a
	// verified inviter address as Reply-To.
	body := fmt.Sprintf(`{"schema_id":"default","traits":{"email":%q,"name":{"first":"Existing","last":"Person"}},
		"verifiable_addresses":[{"value":%q,"via":"email","verified":true,"status":"completed"}]}`, email, email)
	resp, err := http.Post(st.kratos.AdminURL+"/admin/identities", "application/json", strings.NewReader(body))
	if err != nil {
		st.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusCreated {
		st.t.Fatalf("create identity: %d %v", resp.StatusCode, out)
	}
	return out["id"].(string)
}

var acceptLink = regexp.MustCompile(`http://127\.0\.0\.1:4480/invitations/accept/([A-Za-z0-9_-]+)`)

// tokenOf extracts the token of the newest mail to an address.
func (st *stack) waitMails(n int) []resendtest.Email {
	st.t.Helper()
	return st.resend.WaitForEmails(st.t, n, 10*time.Second)
}

func (st *stack) tokenLive(token string) bool {
	st.t.Helper()
	shard, hash, ok := tokens.Parse(token)
	if !ok {
		st.t.Fatalf("malformed token %q", token)
	}
	id, err := st.srv.Invites.Store().TokenInvitation(context.Background(), shard, hash)
	if err != nil {
		st.t.Fatal(err)
	}
	return id != ""
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if f() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("timed out waiting until %s", what)
}

func TestEndToEndInvitationLifecycle(t *testing.T) {
	st := startStack(t)
	org := st.createOrg("Acme Corp")
	orgID := org["id"].(string)
	if org["slug"] != "acme-corp" {
		t.Fatalf("slug %v", org["slug"])
	}
	inviter := st.createKratosIdentity("ada.e2e@example.com")

	// Invite a person new to Kratos.
	r := st.api("POST", "/admin/organizations/acme-corp/invitations", map[string]any{
		"email": "New.E2E@Example.com", "role": "admin", "inviter": map[string]any{"id": inviter, "name": "Ada"},
	})
	if r.status != http.StatusCreated {
		t.Fatalf("invite: %d %s", r.status, r.body)
	}
	inv := r.json(t)
	invID := inv["id"].(string)
	if inv["email"] != "new.e2e@example.com" || inv["status"] != "pending" || inv["role"] != "admin" || inv["accept_url"] != nil {
		t.Fatalf("invitation %v", inv)
	}
	ids := st.kratosIdentities("new.e2e@example.com")
	if len(ids) != 1 || ids[0]["state"] != "inactive" || ids[0]["id"] != inv["identity_id"] {
		t.Fatalf("kratos identities %v", ids)
	}

	mails := st.waitMails(1)
	m := mails[0]
	if !strings.Contains(m.Subject, "Acme Corp") || !strings.Contains(m.Text, "Ada") || m.ReplyTo != "ada.e2e@example.com" {
		t.Fatalf("mail subject %q reply-to %q text:\n%s", m.Subject, m.ReplyTo, m.Text)
	}
	first := acceptLink.FindStringSubmatch(m.Text)
	if first == nil || !st.tokenLive(first[1]) {
		t.Fatalf("no live link in the mail:\n%s", m.Text)
	}
	eventually(t, "delivery is sent", func() bool {
		got := st.api("GET", "/admin/invitations/"+invID, nil).json(t)
		return got["delivery"].(map[string]any)["status"] == "sent"
	})
	time.Sleep(100 * time.Millisecond)
	if n := len(st.resend.Emails()); n != 1 {
		t.Fatalf("%d mails, want exactly 1", n)
	}

	// Invite again: same invitation, old token dead, new one live.
	r = st.api("POST", "/admin/organizations/"+orgID+"/invitations", map[string]any{"email": "new.e2e@example.com", "role": "admin"})
	if r.status != http.StatusOK || r.json(t)["id"] != invID {
		t.Fatalf("re-invite: %d %s", r.status, r.body)
	}
	second := acceptLink.FindStringSubmatch(st.waitMails(2)[1].Text)
	if st.tokenLive(first[1]) || !st.tokenLive(second[1]) {
		t.Fatal("re-invite must kill the old link and mail a live one")
	}

	// Resend and remind: new links, each mailed once; a second remind is 429.
	r = st.api("POST", "/admin/invitations/"+invID+"/resend", nil)
	if r.status != http.StatusOK {
		t.Fatalf("resend: %d %s", r.status, r.body)
	}
	third := acceptLink.FindStringSubmatch(st.waitMails(3)[2].Text)
	r = st.api("POST", "/admin/invitations/"+invID+"/remind", nil)
	if r.status != http.StatusOK {
		t.Fatalf("remind: %d %s", r.status, r.body)
	}
	reminder := st.waitMails(4)[3]
	if !strings.Contains(reminder.Subject, "Reminder") || st.tokenLive(third[1]) {
		t.Fatalf("reminder %q; previous link live: %v", reminder.Subject, st.tokenLive(third[1]))
	}
	r = st.api("POST", "/admin/invitations/"+invID+"/remind", nil)
	if r.status != http.StatusTooManyRequests || r.code() != "remind_too_soon" || r.header.Get("Retry-After") == "" {
		t.Fatalf("second remind: %d %s (Retry-After %q)", r.status, r.body, r.header.Get("Retry-After"))
	}
	last := acceptLink.FindStringSubmatch(reminder.Text)[1]

	// A member cannot be invited.
	member := st.createKratosIdentity("member.e2e@example.com")
	if r := st.api("POST", "/admin/organizations/"+orgID+"/members", map[string]any{"identity_id": member, "role": "member"}); r.status != http.StatusCreated {
		t.Fatalf("add member: %d %s", r.status, r.body)
	}
	r = st.api("POST", "/admin/organizations/"+orgID+"/invitations", map[string]any{"email": "Member.E2E@example.com"})
	if r.status != http.StatusConflict || r.code() != "already_member" {
		t.Fatalf("invite member: %d %s", r.status, r.body)
	}

	// Listing with filters and totals.
	st.api("POST", "/admin/organizations/"+orgID+"/invitations", map[string]any{"email": "other.e2e@example.com", "send_email": false})
	list := st.api("GET", "/admin/organizations/"+orgID+"/invitations?limit=1", nil).json(t)
	if list["total"].(float64) != 2 || len(list["items"].([]any)) != 1 || list["next_cursor"] == "" {
		t.Fatalf("list %v", list)
	}
	byEmail := st.api("GET", "/admin/organizations/"+orgID+"/invitations?email=NEW.E2E@example.com&status=all", nil).json(t)
	if byEmail["total"].(float64) != 1 {
		t.Fatalf("by email %v", byEmail)
	}

	// Revoke: the link dies at once and the identity created for it goes.
	r = st.api("DELETE", "/admin/invitations/"+invID, nil)
	if r.status != http.StatusOK || r.json(t)["status"] != "revoked" || st.tokenLive(last) {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	eventually(t, "the inactive identity is deleted from Kratos", func() bool {
		return len(st.kratosIdentities("new.e2e@example.com")) == 0
	})
	revoked := st.api("GET", "/admin/organizations/"+orgID+"/invitations?status=revoked", nil).json(t)
	if revoked["total"].(float64) != 1 {
		t.Fatalf("revoked list %v", revoked)
	}
	// An identity that existed before is never deleted.
	if len(st.kratosIdentities("member.e2e@example.com")) != 1 {
		t.Fatal("an existing identity disappeared")
	}
}

func TestEndToEndBadInput(t *testing.T) {
	st := startStack(t, func(c *config.Config) { c.Serve.MaxBodyBytes = 4096 })
	st.createOrg("Bad Input")
	before := st.dataKeys()
	path := "/admin/organizations/bad-input/invitations"
	cases := []struct {
		name, method, path, ctype, body string
		headers                         []string
		status                          int
		code                            string
	}{
		{"malformed email", "POST", path, "application/json", `{"email":"nope"}`, nil, 400, "invalid_email"},
		{"unknown role", "POST", path, "application/json", `{"email":"a@example.com","role":"king"}`, nil, 400, "invalid_role"},
		{"ttl over the maximum", "POST", path, "application/json", `{"email":"a@example.com","ttl":"721h"}`, nil, 400, "invalid_ttl"},
		{"ttl not a duration", "POST", path, "application/json", `{"email":"a@example.com","ttl":"soon"}`, nil, 400, "invalid_field"},
		{"foreign redirect_to", "POST", path, "application/json", `{"email":"a@example.com","redirect_to":"https://evil.example.net/"}`, nil, 400, "invalid_redirect"},
		{"plain http redirect_to", "POST", path, "application/json", `{"email":"a@example.com","redirect_to":"http://app.example.com/"}`, nil, 400, "invalid_redirect"},
		{"link in the inviter name", "POST", path, "application/json", `{"email":"a@example.com","inviter":{"name":"Click http://evil.example/login"}}`, nil, 400, "invalid_name"},
		{"RLO in the inviter name", "POST", path, "application/json", `{"email":"a@example.com","inviter":{"name":"Ada \u202eecalevoL"}}`, nil, 400, "invalid_name"},
		{"link in an organization name", "POST", "/admin/organizations", "application/json", `{"name":"Spam Co <b>Click http://evil.example/login</b>"}`, nil, 400, "invalid_name"},
		{"renamed to a host", "PATCH", "/admin/organizations/bad-input", "application/json", `{"name":"paypal.com support"}`, nil, 400, "invalid_name"},
		{"unknown organization", "POST", "/admin/organizations/nope/invitations", "application/json", `{"email":"a@example.com"}`, nil, 404, "organization_not_found"},
		{"missing key", "POST", path, "application/json", `{"email":"a@example.com"}`, []string{"Authorization", ""}, 401, "unauthorized"},
		{"wrong key", "POST", path, "application/json", `{"email":"a@example.com"}`, []string{"Authorization", "Bearer wrong-key-0123456789"}, 401, "unauthorized"},
		{"basic auth", "POST", path, "application/json", `{"email":"a@example.com"}`, []string{"Authorization", "Basic YTpi"}, 401, "unauthorized"},
		{"body over the limit", "POST", path, "application/json", `{"email":"a@example.com","context":{"x":"` + strings.Repeat("y", 5000) + `"}}`, nil, 413, "body_too_large"},
		{"unknown field", "POST", path, "application/json", `{"email":"a@example.com","admin":true}`, nil, 400, "unknown_field"},
		{"wrong content type", "POST", path, "application/x-www-form-urlencoded", `email=a@example.com`, nil, 415, "unsupported_media_type"},
		{"no content type", "POST", path, "", `{"email":"a@example.com"}`, nil, 415, "unsupported_media_type"},
		{"malformed JSON", "POST", path, "application/json", `{"email":`, nil, 400, "invalid_json"},
		{"two JSON values", "POST", path, "application/json", `{"email":"a@example.com"}{}`, nil, 400, "invalid_json"},
		{"bad limit", "GET", path + "?limit=1000", "", "", nil, 400, "invalid_limit"},
		{"bad status", "GET", path + "?status=maybe", "", "", nil, 400, "invalid_status"},
		{"unknown invitation", "GET", "/admin/invitations/inv_nope", "", "", nil, 404, "invitation_not_found"},
		{"remind with fields", "POST", "/admin/invitations/inv_nope/remind", "application/json", `{"now":true}`, nil, 400, "unknown_field"},
		{"unknown route", "GET", "/admin/nothing", "", "", nil, 404, "route_not_found"},
		{"wrong method", "PUT", "/admin/organizations", "", "", nil, 405, "method_not_allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := st.do(c.method, c.path, c.ctype, c.body, c.headers...)
			if r.status != c.status || r.code() != c.code {
				t.Fatalf("%d %s, want %d %s", r.status, r.body, c.status, c.code)
			}
			if c.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
	if after := st.dataKeys(); after != before {
		t.Fatalf("bad requests changed Redis: %d → %d keys", before, after)
	}
	if len(st.kratosIdentities("a@example.com")) != 0 {
		t.Fatal("bad requests created a Kratos identity")
	}
	if st.resend.Requests() != 0 {
		t.Fatal("bad requests sent mail")
	}
}

func TestEndToEndKratosUnreachable(t *testing.T) {
	r := testenv.SharedRedis(t)
	dead := &testenv.Kratos{AdminURL: "http://127.0.0.1:1", PublicURL: "http://127.0.0.1:1"}
	st := startStackWith(t, r.Addr, dead)
	// The organization is created directly: the admin API needs no Kratos for it.
	org, err := st.srv.Orgs.Store().Create(context.Background(), organization("Down"), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The outbox worker creates its streams when it starts, possibly after
	// "before" is counted; they are not the invitation's doing.
	keys := func() int {
		n := 0
		for _, k := range st.rdb.Keys(context.Background(), st.cfg.Redis.KeyPrefix+"*").Val() {
			if !strings.HasSuffix(k, ":outbox") {
				n++
			}
		}
		return n
	}
	before := keys()
	resp := st.api("POST", "/admin/organizations/"+org.ID+"/invitations", map[string]any{"email": "a@example.com"})
	if resp.status != http.StatusServiceUnavailable || resp.code() != "kratos_unavailable" {
		t.Fatalf("%d %s", resp.status, resp.body)
	}
	if after := keys(); after != before {
		t.Fatalf("Kratos down, yet %d → %d keys", before, after)
	}
	ready, _ := apiClient.Get(st.admin + "/health/ready")
	body, _ := io.ReadAll(ready.Body)
	ready.Body.Close()
	if ready.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "kratos") {
		t.Fatalf("ready with Kratos down: %d %s", ready.StatusCode, body)
	}
}

func TestEndToEndHealth(t *testing.T) {
	st := startStack(t)
	for _, base := range []string{st.admin, st.public} {
		for _, p := range []string{"/health/alive", "/health/ready"} {
			resp, err := apiClient.Get(base + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s%s = %d", base, p, resp.StatusCode)
			}
		}
	}
	// The admin API is not served on the public listener.
	resp, _ := apiClient.Get(st.public + "/admin/organizations")
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("public /admin/organizations = %d, want 404", resp.StatusCode)
	}
}

func TestEndToEndOrganizationsAndMembers(t *testing.T) {
	st := startStack(t)
	owner := st.createKratosIdentity("owner.orgs@example.com")
	r := st.api("POST", "/admin/organizations", map[string]any{"name": "Members Inc", "owner_identity_id": owner, "metadata": map[string]any{"plan": "pro"}})
	if r.status != http.StatusCreated {
		t.Fatalf("%d %s", r.status, r.body)
	}
	org := r.json(t)
	id := org["id"].(string)
	if r := st.api("POST", "/admin/organizations", map[string]any{"name": "Members Inc"}); r.json(t)["slug"] != "members-inc-2" {
		t.Fatalf("second slug %s", r.body)
	}
	if r := st.api("POST", "/admin/organizations", map[string]any{"name": "X", "slug": "members-inc"}); r.status != 409 || r.code() != "slug_taken" {
		t.Fatalf("taken slug: %d %s", r.status, r.body)
	}
	if r := st.api("GET", "/admin/organizations/members-inc", nil); r.status != 200 || r.json(t)["id"] != id {
		t.Fatalf("get by slug: %d %s", r.status, r.body)
	}
	if r := st.api("DELETE", "/admin/organizations/"+id+"/members/"+owner, nil); r.status != 409 || r.code() != "last_owner" {
		t.Fatalf("remove last owner: %d %s", r.status, r.body)
	}
	if r := st.api("PATCH", "/admin/organizations/"+id+"/members/"+owner, map[string]any{"role": "member"}); r.status != 409 || r.code() != "last_owner" {
		t.Fatalf("demote last owner: %d %s", r.status, r.body)
	}
	if r := st.api("PATCH", "/admin/organizations/"+id, map[string]any{"name": "Members Renamed", "slug": "renamed"}); r.status != 200 || r.json(t)["slug"] != "renamed" {
		t.Fatalf("update: %d %s", r.status, r.body)
	}
	members := st.api("GET", "/admin/organizations/renamed/members", nil).json(t)
	if members["total"].(float64) != 1 {
		t.Fatalf("members %v", members)
	}
	eventually(t, "the identity index lists the membership", func() bool {
		m, _ := st.srv.Members.Organizations(context.Background(), owner)
		return m[id] == "owner"
	})
	inv := st.api("POST", "/admin/organizations/renamed/invitations", map[string]any{"email": "pending.orgs@example.com", "send_email": false}).json(t)
	if r := st.api("DELETE", "/admin/organizations/renamed", nil); r.status != 200 || r.json(t)["revoked_invitations"].(float64) != 1 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := st.api("GET", "/admin/invitations/"+inv["id"].(string), nil); r.json(t)["status"] != "revoked" {
		t.Fatalf("invitation after org delete: %s", r.body)
	}
	eventually(t, "the identity index forgets the deleted organization", func() bool {
		m, _ := st.srv.Members.Organizations(context.Background(), owner)
		return len(m) == 0
	})
}
