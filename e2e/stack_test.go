// Package e2e holds the journeys a person takes through kratos-orgs in a
// real browser, against a real Kratos and Redis: accepting invitations in
// both login modes, joining with an existing account, registering an
// organization. Each journey ends by asking Kratos and Redis for proof.
package e2e

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

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/mail/resendtest"
	"github.com/kratos-orgs/kratos-orgs/openapi/openapitest"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/server"
)

// recorder checks every response the tests get through apiClient (the org
// admins' API, the webhooks) and the pages' client against
// openapi/openapi.yaml; TestMain fails the run on a mismatch.
var (
	recorder  = openapitest.NewRecorder(nil)
	apiClient = &http.Client{Transport: recorder.Transport(http.DefaultTransport)}
)

func TestMain(m *testing.M) {
	runReplicaIfAsked()
	code := testenv.Main(m)
	if err := recorder.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: responses do not match the OpenAPI document:", err)
		code = max(code, 1)
	}
	os.Exit(code)
}

type stack struct {
	t      *testing.T
	base   string // the sidecar's public URL
	admin  string // the sidecar's admin URL
	srv    *server.Server
	kratos *testenv.Kratos
	resend *resendtest.Server
	cfg    config.Config
	logs   *testenv.LogBuffer // everything the sidecar logged
}

// startStack starts Kratos and kratos-orgs wired to each other. Their
// addresses must be known before either starts, so ports come from
// FreePort; if one was taken meanwhile, the whole start is tried again.
func startStack(t *testing.T, loginMode string, mutate ...func(*config.Config)) *stack {
	t.Helper()
	for attempt := 1; ; attempt++ {
		st, err := tryStartStack(t, loginMode, mutate)
		if err == nil {
			return st
		}
		if attempt == 3 {
			t.Fatalf("kratos-orgs did not start: %v", err)
		}
		t.Logf("start attempt %d: %v; trying other ports", attempt, err)
	}
}

func tryStartStack(t *testing.T, loginMode string, mutate []func(*config.Config)) (*stack, error) {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		return nil, err
	}
	adminPort, err := testenv.FreePort()
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	st := &stack{t: t, base: base, admin: admin, kratos: testenv.StartKratosFor(t, base, admin, nil), resend: resendtest.New(t, "re_e2e")}
	cfg := config.Default()
	cfg.Serve.Public = config.Listener{Host: "127.0.0.1", Port: port, BaseURL: base}
	cfg.Serve.Admin = config.Listener{Host: "127.0.0.1", Port: adminPort}
	cfg.Hooks.Secret = testenv.HooksSecret
	cfg.Redis.KeyPrefix = testenv.UniquePrefix(t)
	if testenv.OnCluster(t) { // TestCluster (cluster_test.go)
		cfg.Redis.Mode, cfg.Redis.Addrs = "cluster", testenv.SharedCluster(t).Addrs()
	} else {
		cfg.Redis.URL = "redis://" + testenv.SharedRedis(t).Addr + "/0"
	}
	cfg.Kratos.AdminURL, cfg.Kratos.PublicURL = st.kratos.AdminURL, st.kratos.PublicURL
	cfg.Admin.APIKeys = []string{"browser-e2e-admin-key-0123"}
	cfg.Invitations.AllowedRedirectHosts = []string{fmt.Sprintf("127.0.0.1:%d", port)}
	cfg.Accept.LoginMode = loginMode
	cfg.Accept.Fields[0].Required = true
	cfg.Mail = config.Mail{Sender: "resend", FromAddress: "invites@example.com", FromName: "Example",
		Resend: config.Resend{APIKey: "re_e2e", BaseURL: st.resend.URL(), Timeout: 5 * time.Second}, RatePerSec: 100}
	cfg.Secrets.Cipher = []string{"browser-e2e-cipher-secret-0123456789"}
	cfg.Outbox.PollInterval = 20 * time.Millisecond
	cfg.Register.Enabled = true // off by default; the journeys cover it
	for _, m := range mutate {
		m(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st.cfg = cfg
	st.logs = &testenv.LogBuffer{}
	var out io.Writer = st.logs
	if testing.Verbose() {
		out = io.MultiWriter(st.logs, os.Stderr)
	}
	log := slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Options{Config: cfg, Logger: log})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	st.srv = srv
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	select {
	case <-srv.Listening():
	case err := <-done:
		cancel()
		_ = srv.Close()
		st.kratos.Stop()
		return nil, err
	}
	t.Cleanup(recorder.Listener("public", base))
	t.Cleanup(recorder.Listener("admin", admin))
	t.Cleanup(func() {
		cancel()
		<-done
		_ = srv.Close()
	})
	return st, nil
}

func (st *stack) org(name string) orgs.Organization {
	st.t.Helper()
	o, err := st.srv.Orgs.Create(context.Background(), orgs.CreateRequest{Name: name}, orgs.StateActive)
	if err != nil {
		st.t.Fatal(err)
	}
	return o
}

func (st *stack) invite(org orgs.Organization, email, role string) invites.Invitation {
	st.t.Helper()
	inv, _, err := st.srv.Invites.Invite(context.Background(), org.ID, invites.InviteRequest{
		Email: email, Role: role, Inviter: &invites.Inviter{Name: "Ada Lovelace"},
	})
	if err != nil {
		st.t.Fatal(err)
	}
	return inv
}

var linkRE = regexp.MustCompile(`https?://127\.0\.0\.1:\d+/(?:invitations/accept|register/activate)/[A-Za-z0-9_-]+`)

// link waits for the n-th mail and returns the link in it.
func (st *stack) link(n int) string {
	st.t.Helper()
	mails := st.resend.WaitForEmails(st.t, n, 10*time.Second)
	l := linkRE.FindString(mails[n-1].Text)
	if l == "" {
		st.t.Fatalf("no link in mail:\n%s", mails[n-1].Text)
	}
	return l
}

// kratosIdentity reads an identity straight from the Kratos admin API.
func (st *stack) kratosIdentity(email string) map[string]any {
	st.t.Helper()
	resp, err := http.Get(st.kratos.AdminURL + "/admin/identities?credentials_identifier=" + email)
	if err != nil {
		st.t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&list)
	if len(list) != 1 {
		st.t.Fatalf("%d identities for %s", len(list), email)
	}
	return list[0]
}

// whoami asks Kratos whose session a cookie header carries.
func (st *stack) whoami(cookie string) map[string]any {
	st.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, st.kratos.PublicURL+"/sessions/whoami", nil)
	req.Header.Set("Cookie", cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		st.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	var s map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&s)
	return s
}

// proveMember checks the membership in Redis.
func (st *stack) proveMember(org orgs.Organization, identityID, role string) {
	st.t.Helper()
	m, err := st.srv.Orgs.Store().Member(context.Background(), org.ID, identityID)
	if err != nil || m.Role != role {
		st.t.Fatalf("membership of %s in %s: %+v %v (want role %s)", identityID, org.Name, m, err, role)
	}
}

// proveVerifiedActive checks the identity in Kratos.
func (st *stack) proveVerifiedActive(email string) map[string]any {
	st.t.Helper()
	id := st.kratosIdentity(email)
	if id["state"] != "active" {
		st.t.Fatalf("identity %s is %v", email, id["state"])
	}
	verified := false
	for _, a := range id["verifiable_addresses"].([]any) {
		a := a.(map[string]any)
		if strings.EqualFold(a["value"].(string), email) && a["verified"] == true {
			verified = true
		}
	}
	if !verified {
		st.t.Fatalf("address %s is not verified: %v", email, id["verifiable_addresses"])
	}
	return id
}

// createPerson makes an existing Kratos account with a password and a
// verified address (or not), as if they had signed up long ago.
func (st *stack) createPerson(email, password string, verified bool) string {
	st.t.Helper()
	body := fmt.Sprintf(`{"schema_id":"default","traits":{"email":%q,"name":{"first":"Existing"}},
		"credentials":{"password":{"config":{"password":%q}}},
		"verifiable_addresses":[{"value":%q,"via":"email","verified":%v,"status":%q}]}`,
		email, password, email, verified, map[bool]string{true: "completed", false: "pending"}[verified])
	resp, err := http.Post(st.kratos.AdminURL+"/admin/identities", "application/json", strings.NewReader(body))
	if err != nil {
		st.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusCreated {
		st.t.Fatalf("create person: %d %v", resp.StatusCode, out)
	}
	return out["id"].(string)
}

func invitationWithInviter(email, inviter string) invites.InviteRequest {
	return invites.InviteRequest{Email: email, Role: "member", Inviter: &invites.Inviter{Name: inviter}}
}

func sleep() { time.Sleep(50 * time.Millisecond) }
