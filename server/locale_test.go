package server

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/invites"
)

// Pages speak the language the browser asks for (Accept-Language with
// q-values), else the configured default.
func TestPagesFollowAcceptLanguage(t *testing.T) {
	st := startQuotaStack(t, func(c *config.Config) { c.Register.Enabled = true })
	for _, tc := range []struct {
		path, header, lang, want string
	}{
		{"/invitations/accept/not-a-real-token", "de-DE,de;q=0.9,en;q=0.8", "de", "Dieser Link ist ungültig"},
		{"/invitations/accept/not-a-real-token", "fr;q=0.9, en;q=0.8, de;q=0.7", "en", "This link is not valid"},
		{"/invitations/accept/not-a-real-token", "", "en", "This link is not valid"},
		{"/register", "de", "de", "Organisation anlegen"},
		{"/register", "ja", "en", "Create an organization"},
		{"/invitations/accept/resume", "de-AT", "de", "Öffnen Sie den Link aus der E-Mail erneut"},
	} {
		r := st.do(http.MethodGet, st.public+tc.path, "", map[string]string{"Accept-Language": tc.header})
		if !strings.Contains(r.body, tc.want) || !strings.Contains(r.body, `<html lang="`+tc.lang+`">`) {
			t.Errorf("GET %s (Accept-Language %q): want %q in %s:\n%s", tc.path, tc.header, tc.want, tc.lang, r.body)
		}
		if got := r.header.Get("Content-Language"); got != tc.lang {
			t.Errorf("GET %s (Accept-Language %q): Content-Language %q, want %q", tc.path, tc.header, got, tc.lang)
		}
	}

	// A refusal page says the wait in the visitor's language.
	limited := startQuotaStack(t, func(c *config.Config) { c.Limits.LinkViewsPerClient = config.Rate{Requests: 1, Period: time.Hour} })
	limited.do(http.MethodGet, limited.public+"/invitations/accept/guess", "", nil)
	r := limited.do(http.MethodGet, limited.public+"/invitations/accept/guess", "", map[string]string{"Accept-Language": "de"})
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "Zu viele Versuche") || !strings.Contains(r.body, "in 60 Minuten erneut") {
		t.Errorf("German 429 page: %d\n%s", r.status, r.body)
	}

	german := startQuotaStack(t, func(c *config.Config) { c.Templates.DefaultLocale = "de" })
	r = german.do(http.MethodGet, german.public+"/invitations/accept/not-a-real-token", "", map[string]string{"Accept-Language": "fr"})
	if !strings.Contains(r.body, "Dieser Link ist ungültig") {
		t.Errorf("templates.default_locale de, browser fr: want German:\n%s", r.body)
	}
}

// dbSize is the number of keys in the (shared) Redis database.
func (st *quotaStack) dbSize() int64 {
	st.t.Helper()
	n, err := st.srv.Redis().DBSize(context.Background()).Result()
	if err != nil {
		st.t.Fatal(err)
	}
	return n
}

// Dry runs over HTTP on both APIs: 200 with the mail (German here), the
// same structured errors as the real call, and nothing written: DBSIZE
// unchanged, no Kratos write, no mail once the outbox has run.
func TestDryRunOverHTTP(t *testing.T) {
	st := startQuotaStack(t, func(c *config.Config) {
		c.Limits.APIInvitesPerIdentity.Requests = 0 // the quotas would count the calls in Redis
		c.Limits.APIInvitesPerOrganization.Requests = 0
	})
	owner, token := st.ids.signIn("owner@example.com")
	org := st.orgOwnedBy("Acme Dry", owner)
	admin := map[string]string{"Authorization": "Bearer " + adminKey, "Content-Type": "application/json"}
	session := map[string]string{"X-Session-Token": token, "Content-Type": "application/json"}
	adminURL := st.admin + "/admin/organizations/" + org.ID + "/invitations"
	apiURL := st.public + "/api/organizations/" + org.ID + "/invitations"

	st.drain() // the owner's membership jobs
	keys := st.dbSize()
	calls := maps.Clone(st.ids.Calls)
	r := st.do(http.MethodPost, adminURL+"?dry_run=true", `{"email":"neu@example.com","role":"admin","locale":"de","inviter":{"name":"Ada"}}`, admin)
	var d invites.DryRun
	if err := json.Unmarshal([]byte(r.body), &d); r.status != http.StatusOK || err != nil {
		t.Fatalf("admin dry run: %d %s", r.status, r.body)
	}
	if !d.DryRun || d.Locale != "de" || d.Mail == nil || d.Mail.Subject != "Ada hat Sie zu Acme Dry eingeladen" ||
		!strings.Contains(d.Mail.Text, invites.DryRunToken) {
		t.Errorf("admin dry run: %+v", d)
	}
	r = st.do(http.MethodPost, apiURL+"?dry_run=1", `{"email":"new@example.com","role":"member"}`, session)
	var o invites.OrgAdminDryRun
	if err := json.Unmarshal([]byte(r.body), &o); r.status != http.StatusOK || err != nil || o.Mail == nil || !o.DryRun {
		t.Fatalf("org admin dry run: %d %s", r.status, r.body)
	}
	if strings.Contains(r.body, "existing_identity") || strings.Contains(r.body, "identity_id") {
		t.Errorf("the org admins' dry run tells about Kratos: %s", r.body)
	}
	for _, url := range []string{adminURL, apiURL} {
		h := admin
		if url == apiURL {
			h = session
		}
		bad := st.do(http.MethodPost, url+"?dry_run=true", `{"email":"nope","role":"member"}`, h)
		if code, _ := bad.errorBody(t); bad.status != http.StatusBadRequest || code != "invalid_email" {
			t.Errorf("%s bad address: %d %s", url, bad.status, bad.body)
		}
		odd := st.do(http.MethodPost, url+"?dry_run=perhaps", `{"email":"a@example.com"}`, h)
		if code, _ := odd.errorBody(t); odd.status != http.StatusBadRequest || code != "invalid_dry_run" {
			t.Errorf("%s dry_run=perhaps: %d %s", url, odd.status, odd.body)
		}
	}
	st.drain()
	if after := st.dbSize(); after != keys {
		t.Errorf("DBSIZE %d before the dry runs, %d after", keys, after)
	}
	for _, name := range []string{"CreateInvited", "Delete"} {
		if n := st.ids.Calls[name] - calls[name]; n != 0 {
			t.Errorf("Kratos %s called %d times", name, n)
		}
	}
	if n := st.mail.count(); n != 0 {
		t.Errorf("%d mails sent", n)
	}
	// The same request without dry_run does what the dry run showed.
	if r := st.do(http.MethodPost, adminURL, `{"email":"neu@example.com","role":"admin","locale":"de","inviter":{"name":"Ada"}}`, admin); r.status != http.StatusCreated {
		t.Fatalf("real invite: %d %s", r.status, r.body)
	}
	st.drain()
	if st.mail.count() != 1 || st.mail.sent[0].Subject != d.Mail.Subject {
		t.Errorf("real mail %+v, dry run subject %q", st.mail.sent, d.Mail.Subject)
	}
}
