package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// The org admins' page against a real redis-server, with Kratos' sessions
// from the fake: what each role sees, that every form needs its CSRF token
// and changes nothing without it, and that the page's actions apply the
// same rules as the /api.

// browser is one signed-in person's cookie jar on the public listener.
type browser struct {
	st *quotaStack
	c  *http.Client
}

func (st *quotaStack) browserOf(token string) *browser {
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(st.public)
	if token != "" {
		jar.SetCookies(u, []*http.Cookie{{Name: identity.DefaultSessionCookie, Value: token}})
	}
	return &browser{st: st, c: &http.Client{Transport: st.client.Transport, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(path string) reply {
	b.st.t.Helper()
	resp, err := b.c.Get(b.st.public + path)
	if err != nil {
		b.st.t.Fatal(err)
	}
	return readReply(b.st.t, resp)
}

// post submits a form as the page's browser would: with the Origin of
// the public URL and, unless csrf is "-", the page's CSRF token (csrf ""
// means the one the page shows now).
func (b *browser) post(path, page, csrf string, form url.Values) reply {
	b.st.t.Helper()
	if csrf == "" {
		r := b.get(page)
		m := csrfField.FindStringSubmatch(r.body)
		if m == nil {
			b.st.t.Fatalf("no CSRF token on %s (%d): %s", page, r.status, r.body)
		}
		csrf = m[1]
	}
	if form == nil {
		form = url.Values{}
	}
	if csrf != "-" {
		form.Set("csrf_token", csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, b.st.public+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.st.srv.cfg.Serve.Public.BaseURL)
	resp, err := b.c.Do(req)
	if err != nil {
		b.st.t.Fatal(err)
	}
	return readReply(b.st.t, resp)
}

func readReply(t *testing.T, resp *http.Response) reply {
	t.Helper()
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return reply{resp.StatusCode, resp.Header, sb.String()}
}

// orgPageOrg makes an organization with an owner, an admin and a member,
// each signed in.
func orgPageOrg(t *testing.T, st *quotaStack) (org orgs.Organization, owner, admin, member *browser, ids map[string]string) {
	t.Helper()
	o, tokO := st.ids.signIn("owner@example.com")
	a, tokA := st.ids.signIn("admin@example.com")
	m, tokM := st.ids.signIn("member@example.com")
	org = st.orgOwnedBy("Page Org", o)
	ctx := context.Background()
	for who, role := range map[*identity.Identity]string{a: "admin", m: "member"} {
		if _, _, err := st.srv.Orgs.Store().AddMember(ctx, org.ID, orgs.Member{IdentityID: who.ID, Email: who.Email, Role: role}); err != nil {
			t.Fatal(err)
		}
	}
	return org, st.browserOf(tokO), st.browserOf(tokA), st.browserOf(tokM), map[string]string{"owner": o.ID, "admin": a.ID, "member": m.ID}
}

func (st *quotaStack) role(org orgs.Organization, id string) string {
	st.t.Helper()
	m, err := st.srv.Orgs.Store().Member(context.Background(), org.ID, id)
	if err != nil {
		return "none"
	}
	return m.Role
}

func (st *quotaStack) pending(org orgs.Organization) []invites.Invitation {
	st.t.Helper()
	p, err := st.srv.Invites.List(context.Background(), org.ID, invites.Filter{Status: "pending", Limit: 100})
	if err != nil {
		st.t.Fatal(err)
	}
	return p.Items
}

func wantStatus(t *testing.T, what string, r reply, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: %d, want %d\n%s", what, r.status, status, r.body)
	}
}

func TestOrgPageSignInAndRefusals(t *testing.T) {
	st := startQuotaStack(t)
	org, _, _, member, _ := orgPageOrg(t, st)
	page := "/orgs/" + org.Slug

	r := st.browserOf("").get(page + "?notice=invited")
	wantStatus(t, "no session", r, http.StatusSeeOther)
	loc, _ := url.Parse(r.header.Get("Location"))
	if loc.Path != "/self-service/login/browser" || loc.Query().Get("return_to") != st.srv.cfg.Serve.Public.BaseURL+page+"?notice=invited" {
		t.Fatalf("no session: redirected to %s", r.header.Get("Location"))
	}
	r = member.get(page)
	wantStatus(t, "a plain member", r, http.StatusForbidden)
	if !strings.Contains(r.body, "Only owners and admins can manage Page Org") || !strings.Contains(r.body, "with the member role") {
		t.Fatalf("a plain member's page does not say why:\n%s", r.body)
	}
	_, tokS := st.ids.signIn("stranger@example.com")
	r = st.browserOf(tokS).get(page)
	wantStatus(t, "a stranger", r, http.StatusNotFound)
	if !strings.Contains(r.body, "Organization not found") {
		t.Fatalf("a stranger's page:\n%s", r.body)
	}
	// A member's forged form changes nothing either.
	r = member.post(page+"/invitations", page, "-", url.Values{"email": {"x@example.com"}})
	wantStatus(t, "a member's invite without a token", r, http.StatusForbidden)
	if len(st.pending(org)) != 0 {
		t.Fatal("a refused form wrote an invitation")
	}
}

func TestOrgPageOwnerActs(t *testing.T) {
	st := startQuotaStack(t)
	org, owner, _, _, ids := orgPageOrg(t, st)
	page := "/orgs/" + org.ID

	r := owner.get(page)
	wantStatus(t, "owner's page", r, http.StatusOK)
	for _, want := range []string{`<th scope="col">`, `<legend>Invite someone</legend>`, `<label for="invite-email">`,
		"admin@example.com", "member@example.com", `data-member="` + ids["admin"] + `"`, "No pending invitations."} {
		if !strings.Contains(r.body, want) {
			t.Fatalf("the owner's page lacks %q:\n%s", want, r.body)
		}
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("page headers: %v", r.header)
	}

	// No token, a forged one, a token of another page: nothing is written.
	for _, csrf := range []string{"-", "forged"} {
		r = owner.post(page+"/invitations", page, csrf, url.Values{"email": {"a@example.com"}})
		wantStatus(t, "invite with CSRF "+csrf, r, http.StatusForbidden)
	}
	if len(st.pending(org)) != 0 {
		t.Fatal("a form without a valid token wrote an invitation")
	}
	// A bad address: the page again, the address kept, the reason shown.
	r = owner.post(page+"/invitations", page, "", url.Values{"email": {"not an address"}, "role": {"member"}})
	wantStatus(t, "bad address", r, http.StatusBadRequest)
	if !strings.Contains(r.body, `role="alert"`) || !strings.Contains(r.body, `value="not an address"`) {
		t.Fatalf("bad address page:\n%s", r.body)
	}

	for _, email := range []string{"ann@example.com", "bob@example.com"} {
		r = owner.post(page+"/invitations", page, "", url.Values{"email": {email}, "role": {"member"}})
		wantStatus(t, "invite "+email, r, http.StatusSeeOther)
		if r.header.Get("Location") != page+"?notice=invited" {
			t.Fatalf("invite redirected to %s", r.header.Get("Location"))
		}
	}
	st.drain()
	inv := st.pending(org)
	if len(inv) != 2 || st.mail.count() != 2 {
		t.Fatalf("%d pending, %d mails; want 2 and 2", len(inv), st.mail.count())
	}
	r = owner.get(page + "?notice=invited")
	if !strings.Contains(r.body, "The invitation is on its way.") || !strings.Contains(r.body, "ann@example.com") || !strings.Contains(r.body, "Sent") {
		t.Fatalf("page after inviting:\n%s", r.body)
	}

	r = owner.post(page+"/invitations/"+inv[1].ID+"/revoke", page, "", nil)
	wantStatus(t, "revoke", r, http.StatusSeeOther)
	if got, _ := st.srv.Invites.Get(context.Background(), inv[1].ID); got.Status != invites.Revoked {
		t.Fatalf("after revoke: %s", got.Status)
	}
	r = owner.post(page+"/invitations/"+inv[0].ID+"/resend", page, "", nil)
	wantStatus(t, "resend", r, http.StatusSeeOther)

	r = owner.post(page+"/members/"+ids["member"]+"/role", page, "", url.Values{"role": {"admin"}})
	wantStatus(t, "change role", r, http.StatusSeeOther)
	if st.role(org, ids["member"]) != "admin" {
		t.Fatal("the role did not change")
	}
	r = owner.post(page+"/members/"+ids["member"]+"/role", page, "", url.Values{"role": {"emperor"}})
	wantStatus(t, "unknown role", r, http.StatusBadRequest)
	r = owner.post(page+"/members/"+ids["member"]+"/remove", page, "", nil)
	wantStatus(t, "remove", r, http.StatusSeeOther)
	if st.role(org, ids["member"]) != "none" {
		t.Fatal("the member was not removed")
	}
}

// An admin acts within their role: no forms for the owner's row or an
// owner's invitation, and forged ones are refused with the API's reason.
func TestOrgPageAdminCeiling(t *testing.T) {
	st := startQuotaStack(t)
	org, _, admin, _, ids := orgPageOrg(t, st)
	page := "/orgs/" + org.Slug
	ownersInvite, _, err := st.srv.Invites.Invite(context.Background(), org.ID, invites.InviteRequest{Email: "co-owner@example.com", Role: "owner"})
	if err != nil {
		t.Fatal(err)
	}
	r := admin.get(page)
	wantStatus(t, "admin's page", r, http.StatusOK)
	if strings.Contains(r.body, ids["owner"]+"/role") || strings.Contains(r.body, ownersInvite.ID+"/revoke") ||
		strings.Contains(r.body, `<option value="owner"`) {
		t.Fatalf("the admin is offered actions above their role:\n%s", r.body)
	}
	if !strings.Contains(r.body, ids["member"]+"/role") {
		t.Fatal("the admin is not offered the member's role")
	}
	for what, form := range map[string][2]string{
		"promote to owner":      {"/members/" + ids["member"] + "/role", "owner"},
		"demote the owner":      {"/members/" + ids["owner"] + "/role", "member"},
		"remove the owner":      {"/members/" + ids["owner"] + "/remove", ""},
		"revoke owner's invite": {"/invitations/" + ownersInvite.ID + "/revoke", ""},
		"invite an owner":       {"/invitations", "owner"},
	} {
		r = admin.post(page+form[0], page, "", url.Values{"role": {form[1]}, "email": {"new.owner@example.com"}})
		wantStatus(t, what, r, http.StatusForbidden)
		if !strings.Contains(r.body, "above yours") {
			t.Fatalf("%s: the reason is not shown:\n%s", what, r.body)
		}
	}
	if st.role(org, ids["owner"]) != "owner" || st.role(org, ids["member"]) != "member" || len(st.pending(org)) != 1 {
		t.Fatal("a refused action changed something")
	}
}

// Every action counts against the identity's quota, mailing ones against
// the organization's too: what gets through is exactly the quota.
func TestOrgPageQuotas(t *testing.T) {
	st := startQuotaStack(t, func(c *config.Config) {
		c.Limits.APIInvitesPerIdentity = config.Rate{Requests: 3, Period: 3600e9}
		c.Limits.APIInvitesPerOrganization = config.Rate{Requests: 4, Period: 86400e9}
	})
	org, owner, admin, _, _ := orgPageOrg(t, st)
	page := "/orgs/" + org.Slug
	through := 0
	for i := range 6 {
		r := owner.post(page+"/invitations", page, "", url.Values{"email": {fmt.Sprintf("o%d@example.com", i)}})
		if r.status == http.StatusSeeOther {
			through++
			continue
		}
		assertRetryAfter(t, r)
	}
	if through != 3 {
		t.Fatalf("%d of the owner's invites got through, want 3", through)
	}
	through = 0
	for i := range 3 {
		if r := admin.post(page+"/invitations", page, "", url.Values{"email": {fmt.Sprintf("a%d@example.com", i)}}); r.status == http.StatusSeeOther {
			through++
		} else {
			assertRetryAfter(t, r)
		}
	}
	if through != 1 || len(st.pending(org)) != 4 {
		t.Fatalf("%d of the admin's invites got through (want 1: the organization's quota is 4); %d pending", through, len(st.pending(org)))
	}
}
