package e2e

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/invites"
)

// One run through every path that handles a secret, then every log line
// is searched for each of them: invitation tokens (mailed, returned, used
// in Kratos' sign-up), the password typed on the accept page, session
// tokens and cookies, the admin API key, the webhook secret, the Resend
// API key and the cipher secret.
func TestLogsHoldNoSecrets(t *testing.T) {
	st := startStack(t, "password", inviteOnly)
	secrets := map[string]string{
		"admin api key":  st.cfg.Admin.APIKeys[0],
		"webhook secret": st.cfg.Hooks.Secret,
		"resend api key": st.cfg.Mail.Resend.APIKey,
		"cipher secret":  st.cfg.Secrets.Cipher[0],
	}

	// An invitation through the admin API, accepted in the browser with a password.
	req, _ := http.NewRequest(http.MethodPost, st.admin+"/admin/organizations", strings.NewReader(`{"name":"Secret Keepers"}`))
	req.Header.Set("Authorization", "Bearer "+st.cfg.Admin.APIKeys[0])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create organization: %v %v", resp, err)
	}
	resp.Body.Close()
	org, _ := st.srv.Orgs.Store().Resolve(context.Background(), "secret-keepers")
	st.invite(org, "keeper@example.com", "admin")
	link := st.link(1)
	secrets["mailed token"] = link[strings.LastIndexByte(link, '/')+1:]
	password := "Guardian-Phrase-Unique-9f3c"
	secrets["password"] = password

	b := testenv.NewBrowser(t)
	b.Do(chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("form#accept")),
		chromedp.SendKeys(chromedp.CSS(`input[name="name.first"]`), "Keeper"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), password),
		chromedp.SendKeys(chromedp.CSS(`input[name="password2"]`), password),
		chromedp.Click(chromedp.CSS(`form#accept button[type="submit"]`)))
	b.WaitURL(`/welcome$`)
	cookie := b.CookieHeader(st.kratos.PublicURL)
	if m := regexp.MustCompile(`ory_kratos_session=([^;]+)`).FindStringSubmatch(cookie); m != nil {
		secrets["session cookie"] = m[1]
	} else {
		t.Fatalf("no session cookie in %q", cookie)
	}
	// The used link again, and a forged one: both end up in request logs.
	b.Do(chromedp.Navigate(link))
	resp, _ = http.Get(st.base + "/invitations/accept/0" + strings.Repeat("Z", 43))
	resp.Body.Close()

	// The session-authenticated API, with a session token and with the cookie.
	token := st.sessionToken("keeper@example.com", password)
	secrets["session token"] = token
	if r := st.api(token, "GET", "/organizations", nil); r.status != 200 {
		t.Fatalf("api: %d", r.status)
	}
	st.api("", "GET", "/organizations", nil, "Cookie", "ory_kratos_session="+secrets["session cookie"])

	// A token returned by the API and used in Kratos' own sign-up (webhooks).
	inv, _, err := st.srv.Invites.Invite(context.Background(), org.ID, invites.InviteRequest{Email: "signup.keeper@example.com", SendEmail: ptr(false)})
	if err != nil {
		t.Fatal(err)
	}
	secrets["returned token"] = inv.AcceptURL[strings.LastIndexByte(inv.AcceptURL, '/')+1:]
	if status, out := st.signUp("signup.keeper@example.com", map[string]any{"invite_token": secrets["returned token"]}); status != 200 {
		t.Fatalf("sign-up: %d %v", status, out)
	}
	// A webhook with a wrong secret, and the right one.
	st.hook("/hooks/login/after", `{"flow_id":"x","identity_id":"y"}`, "wrong-"+st.cfg.Hooks.Secret)
	// Reminders rotate tokens: their links are secrets too.
	st.invite(org, "third@example.com", "member")
	secrets["second mailed token"] = strings.TrimPrefix(st.link(2)[strings.LastIndexByte(st.link(2), '/'):], "/")

	logs := st.logs.String()
	if len(logs) < 1000 || !strings.Contains(logs, `"route":"/invitations/accept/*token"`) {
		t.Fatalf("too little was logged to prove anything:\n%s", logs)
	}
	for name, secret := range secrets {
		if secret == "" {
			t.Fatalf("%s is empty", name)
		}
		if strings.Contains(logs, secret) || strings.Contains(logs, url.QueryEscape(secret)) {
			for _, line := range strings.Split(logs, "\n") {
				if strings.Contains(line, secret) {
					t.Errorf("the %s appears in a log line:\n%s", name, line)
				}
			}
		}
	}
}

// The admin listener's /metrics reports what happened.
func TestMetrics(t *testing.T) {
	st := startStack(t, "kratos_settings")
	org := st.org("Metered")
	inv := st.invite(org, "metered@example.com", "member")
	st.link(1) // the mail went out
	if _, err := st.srv.Invites.Revoke(context.Background(), inv.ID); err != nil {
		t.Fatal(err)
	}
	resp, _ := http.Get(st.base + "/invitations/accept/0" + strings.Repeat("Z", 43))
	resp.Body.Close()
	var body string
	eventuallyTrue(t, "the metrics show the activity", func() bool {
		resp, err := http.Get(st.admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		// The job's duration is observed after the send, when the worker
		// acknowledges it: wait for both, and for the revocation's job,
		// which reads the placeholder in Kratos before deleting it.
		return strings.Contains(body, `kratos_orgs_mail_results_total{class="ok",result="sent"} 1`) &&
			strings.Contains(body, `kratos_orgs_outbox_job_duration_seconds_count{kind="mail",outcome="done"} 1`) &&
			strings.Contains(body, `kratos_orgs_kratos_request_duration_seconds_count{operation="GET /admin/identities/{id}",outcome="ok"}`)
	})
	for _, want := range []string{
		`kratos_orgs_http_request_duration_seconds_count{listener="public",method="GET",route="/invitations/accept/*token",status="404"} 1`,
		`kratos_orgs_invitation_events_total{event="created"} 1`,
		`kratos_orgs_invitation_events_total{event="revoked"} 1`,
		`kratos_orgs_outbox_jobs{state="dead"} 0`,
		`kratos_orgs_outbox_oldest_job_age_seconds`,
		`kratos_orgs_outbox_job_duration_seconds_count{kind="mail",outcome="done"} 1`,
		// The invitation of a new address creates first: its one Kratos
		// call is the POST; the revocation's job reads by id.
		`kratos_orgs_kratos_request_duration_seconds_count{operation="GET /admin/identities/{id}",outcome="ok"}`,
		`kratos_orgs_kratos_request_duration_seconds_count{operation="POST /admin/identities",outcome="ok"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
