package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// An account holder without a session is sent to Kratos' login with a
// return_to that does not carry the invitation token (Kratos keeps
// return_to in its flows and logs); the browser remembers the link in a
// cookie scoped to the resume path and comes back to it from there.
func TestReturnToCarriesNoToken(t *testing.T) {
	st := startStack(t, "kratos_settings")
	org := st.org("Return To")
	st.createPerson("dora@example.com", "dora has a fine password", true)
	st.invite(org, "dora@example.com", "member")
	link := st.link(1)
	token := link[strings.LastIndexByte(link, '/')+1:]

	c := client(t)
	resp, _ := get(t, c, link)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || err != nil || !strings.Contains(loc.Path, "/self-service/login/browser") {
		t.Fatalf("%d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	returnTo := loc.Query().Get("return_to")
	if strings.Contains(resp.Header.Get("Location"), token) || returnTo != st.base+"/invitations/accept/resume" {
		t.Fatalf("return_to %q (the token must not be in it)", returnTo)
	}
	var resume *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "kratos_orgs_resume" {
			resume = ck
		}
	}
	if resume == nil || !resume.HttpOnly || resume.Path != "/invitations/accept/resume" || resume.SameSite != http.SameSiteLaxMode {
		t.Fatalf("resume cookie %+v", resume)
	}
	// Back from Kratos: the resume path sends the browser to the link.
	resp, _ = get(t, c, st.base+"/invitations/accept/resume")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != link {
		t.Fatalf("resume: %d Location %q, want %s", resp.StatusCode, resp.Header.Get("Location"), link)
	}
	// Without the cookie (another browser) there is nothing to resume.
	resp, body := get(t, client(t), st.base+"/invitations/accept/resume")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Open the link from the email again") {
		t.Fatalf("resume without cookie: %d", resp.StatusCode)
	}
	// And the token is in no log line.
	if strings.Contains(st.logs.String(), token) {
		t.Fatal("the token appears in the logs")
	}
}

// JSON answers are never cached; the accept form refuses a web address in a
// name like every other name.
func TestNoStoreAndNoLinksInTheForm(t *testing.T) {
	st := startStack(t, "kratos_settings")
	req, _ := http.NewRequest("GET", st.base+"/api/organizations", nil)
	resp, err := apiClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("/api: %d Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	org := st.org("Form Links")
	st.invite(org, "links@example.com", "member")
	link := st.link(1)
	c := client(t)
	_, body := get(t, c, link)
	token := csrfRE.FindStringSubmatch(body)[1]
	for _, name := range []string{"Eve http://evil.example/login", "www.evil.example", "Eve\u202e", "pay\u200bpal"} {
		resp, body := post(t, c, link, url.Values{"csrf_token": {token}, "name.first": {name}})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `class="field-error"`) {
			t.Fatalf("%q: %d", name, resp.StatusCode)
		}
	}
	if st.kratosIdentity("links@example.com")["state"] != "inactive" {
		t.Fatal("a refused form changed the identity")
	}
}

// A sign-up through Kratos that asks for an organization with a link in
// its name is refused on Kratos' form (message 4000111), before Kratos
// stores an identity; no organization appears.
func TestSignUpWithHostileOrganizationNameIsRefused(t *testing.T) {
	st := startStack(t, "kratos_settings")
	before, _ := st.srv.Orgs.Store().List(context.Background(), "", 100)
	status, out := st.signUp("spam.hook@example.com", map[string]any{"organization_name": "Spam Co <b>Click http://evil.example/login</b>"})
	if status == http.StatusOK {
		t.Fatalf("sign-up succeeded: %v", out)
	}
	if ids := nodeMessages(out); !has(ids, 4000111) {
		t.Fatalf("sign-up: %d, messages %v, want 4000111", status, ids)
	}
	resp, err := http.Get(st.kratos.AdminURL + "/admin/identities?credentials_identifier=spam.hook@example.com")
	if err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list) != 0 {
		t.Fatalf("Kratos stored the identity: %v", list)
	}
	after, _ := st.srv.Orgs.Store().List(context.Background(), "", 100)
	if after.Total != before.Total {
		t.Fatalf("%d organizations, want %d", after.Total, before.Total)
	}
}

// Issue 10's scenario: anonymous sign-ups with an organization name that
// carries markup and a link. Every one is refused on the form (400, the
// reason on the name field) and no mail goes out.
func TestRegisterWithHostileNameSendsNoMail(t *testing.T) {
	st := startStack(t, "kratos_settings")
	c := client(t)
	_, body := get(t, c, st.base+"/register")
	token := csrfRE.FindStringSubmatch(body)[1]
	const n = 30
	refused, limited := 0, 0
	for i := range n {
		resp, body := post(t, c, st.base+"/register", url.Values{"csrf_token": {token},
			"name":  {"Spam Co <b>Click http://evil.example/login</b>"},
			"email": {fmt.Sprintf("stranger%d@example.com", i)}})
		// Refused for the name, or (once the per-address sign-up quota is
		// spent) for the rate: either way nothing is sent.
		switch {
		case resp.StatusCode == http.StatusBadRequest && strings.Contains(body, "must not contain a web address"):
			refused++
		case resp.StatusCode == http.StatusTooManyRequests && i > 0:
			limited++
		default:
			t.Fatalf("sign-up %d: %d\n%s", i, resp.StatusCode, body)
		}
	}
	// Give the outbox the time it would need to send.
	time.Sleep(300 * time.Millisecond)
	if got := len(st.resend.Emails()); got != 0 {
		t.Fatalf("%d mails after %d refused sign-ups, want 0", got, n)
	}
	t.Logf("%d sign-ups with a hostile name: %d refused for the name, %d rate-limited, %d mails", n, refused, limited, len(st.resend.Emails()))
}
