package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// The org admins' remind (POST /api/organizations/{org}/invitations/{id}/remind),
// against the real router, quotas and Redis, with the Kratos fake.

// remindFixture is two organizations: org1 owned by A, with B an admin and
// M a plain member; org2 owned by D. S belongs to neither.
type remindFixture struct {
	st                            *quotaStack
	org1, org2                    orgs.Organization
	tokA, tokB, tokM, tokD, tokS  string
	pending, ownerInv, foreignInv string
	mailsBefore                   int
}

func newRemindFixture(t *testing.T, mutate ...func(*config.Config)) *remindFixture {
	t.Helper()
	st := startQuotaStack(t, mutate...)
	f := &remindFixture{st: st}
	var a, b, m, d *identity.Identity
	a, f.tokA = st.ids.signIn("a@example.com")
	b, f.tokB = st.ids.signIn("b@example.com")
	m, f.tokM = st.ids.signIn("m@example.com")
	d, f.tokD = st.ids.signIn("d@example.com")
	_, f.tokS = st.ids.signIn("s@example.com")
	f.org1, f.org2 = st.orgOwnedBy("Org One", a), st.orgOwnedBy("Org Two", d)
	for who, role := range map[*identity.Identity]string{b: "admin", m: "member"} {
		if _, _, err := st.srv.Orgs.AddMember(context.Background(), f.org1.ID, orgs.AddMemberRequest{IdentityID: who.ID, Role: role}); err != nil {
			t.Fatal(err)
		}
	}
	f.pending = f.invite(f.org1.ID, "invitee@example.com", "member")
	f.ownerInv = f.invite(f.org1.ID, "future-owner@example.com", "owner")
	f.foreignInv = f.invite(f.org2.ID, "elsewhere@example.com", "member")
	st.drain()
	f.mailsBefore = st.mail.count()
	return f
}

// invite is the operator's invitation (admin API path): no /api quota.
func (f *remindFixture) invite(org, email, role string) string {
	f.st.t.Helper()
	inv, _, err := f.st.srv.Invites.Invite(context.Background(), org, invites.InviteRequest{Email: email, Role: role})
	if err != nil {
		f.st.t.Fatal(err)
	}
	return inv.ID
}

func (f *remindFixture) post(token, org, id, action, body string) reply {
	f.st.t.Helper()
	h := map[string]string{}
	if token != "" {
		h["X-Session-Token"] = token
	} else {
		h["Origin"] = f.st.srv.cfg.Serve.Public.BaseURL // a browser without a session
	}
	if body != "" {
		h["Content-Type"] = "application/json"
	}
	return f.st.do(http.MethodPost, f.st.public+"/api/organizations/"+org+"/invitations/"+id+"/"+action, body, h)
}

// Remind refuses exactly whom and what resend refuses, with the same
// answers, and mails nobody while doing so.
func TestAPIRemindAuthorizationMirrorsResend(t *testing.T) {
	f := newRemindFixture(t)
	// A bad body still spends resend's per-invitation cooldown (the quota
	// runs before the handler reads the body), so each try gets its own.
	n := 0
	fresh := func() string { n++; return f.invite(f.org1.ID, fmt.Sprintf("fresh%d@example.com", n), "member") }
	tests := []struct {
		name            string
		token, org, inv func() string
		body            string
		wantStatus      int
		wantCode        string
	}{
		{"member below admin", func() string { return f.tokM }, func() string { return f.org1.ID }, func() string { return f.pending }, "",
			http.StatusForbidden, "role_too_low"},
		{"outsider", func() string { return f.tokS }, func() string { return f.org1.ID }, func() string { return f.pending }, "",
			http.StatusNotFound, "organization_not_found"},
		{"owner of another organization", func() string { return f.tokD }, func() string { return f.org1.ID }, func() string { return f.pending }, "",
			http.StatusNotFound, "organization_not_found"},
		{"another organization's invitation through one's own", func() string { return f.tokB }, func() string { return f.org1.ID }, func() string { return f.foreignInv }, "",
			http.StatusNotFound, "invitation_not_found"},
		{"unknown invitation", func() string { return f.tokB }, func() string { return f.org1.ID }, func() string { return "inv_nope" }, "",
			http.StatusNotFound, "invitation_not_found"},
		{"admin and an owner's invitation", func() string { return f.tokB }, func() string { return f.org1.ID }, func() string { return f.ownerInv }, "",
			http.StatusForbidden, "role_ceiling"},
		{"null body", func() string { return f.tokA }, func() string { return f.org1.ID }, fresh, "null",
			http.StatusBadRequest, "invalid_json"},
		{"array body", func() string { return f.tokA }, func() string { return f.org1.ID }, fresh, "[]",
			http.StatusBadRequest, "invalid_json"},
		{"a field", func() string { return f.tokA }, func() string { return f.org1.ID }, fresh, `{"send_email":false}`,
			http.StatusBadRequest, "unknown_field"},
		{"no session", func() string { return "" }, func() string { return f.org1.ID }, func() string { return f.pending }, "",
			http.StatusUnauthorized, "no_session"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, action := range []string{"resend", "remind"} {
				r := f.post(tt.token(), tt.org(), tt.inv(), action, tt.body)
				code, _ := r.errorBody(t)
				if r.status != tt.wantStatus || code != tt.wantCode {
					t.Errorf("%s: %d %s, want %d %s", action, r.status, code, tt.wantStatus, tt.wantCode)
				}
			}
		})
	}
	f.st.drain()
	if sent := f.st.mail.count() - f.mailsBefore; sent != n {
		t.Errorf("%d mails, want only the %d invitations made for the body cases", sent, n)
	}
}

// An admin reminds: the org admins' view comes back and a reminder mail
// leaves; a second remind within invitations.remind_interval is 429
// remind_too_soon with Retry-After, and mails nobody.
func TestAPIRemindSendsAReminderOncePerInterval(t *testing.T) {
	f := newRemindFixture(t)
	r := f.post(f.tokB, f.org1.ID, f.pending, "remind", "")
	if r.status != http.StatusOK {
		t.Fatalf("remind: %d %s", r.status, r.body)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatal(err)
	}
	for _, hidden := range []string{"identity_id", "existing_identity", "accept_url"} {
		if _, ok := body[hidden]; ok {
			t.Errorf("the org admins' view shows %s: %s", hidden, r.body)
		}
	}
	if body["id"] != f.pending || body["reminded_at"] == nil {
		t.Errorf("remind answered %s", r.body)
	}
	f.st.drain()
	f.st.mail.mu.Lock()
	sent := append(f.st.mail.sent[:0:0], f.st.mail.sent[f.mailsBefore:]...)
	f.st.mail.mu.Unlock()
	if len(sent) != 1 || len(sent[0].To) != 1 || sent[0].To[0] != "invitee@example.com" ||
		!strings.HasPrefix(sent[0].Subject, "Reminder:") || sent[0].Tags["kind"] != "reminder" {
		t.Fatalf("mails after the remind: %+v", sent)
	}

	for _, token := range []string{f.tokB, f.tokA} { // the interval is the invitation's, not the caller's
		r = f.post(token, f.org1.ID, f.pending, "remind", "{}")
		assertRetryAfter(t, r)
		if code, _ := r.errorBody(t); code != "remind_too_soon" {
			t.Errorf("second remind: %s, want remind_too_soon", code)
		}
		if ra, _ := strconv.Atoi(r.header.Get("Retry-After")); ra < 3500 || ra > 3600 {
			t.Errorf("Retry-After %d, want about invitations.remind_interval (3600)", ra)
		}
	}
	f.st.drain()
	if n := f.st.mail.count() - f.mailsBefore; n != 1 {
		t.Errorf("%d mails after three reminds, want 1", n)
	}
}

// Remind counts against the /api quotas of invite and resend: per signed-in
// identity and per organization; refusals by authorization spend no
// organization's quota.
func TestAPIRemindQuotas(t *testing.T) {
	f := newRemindFixture(t, func(c *config.Config) {
		c.Limits.APIInvitesPerIdentity = config.Rate{Requests: 2, Period: 3600e9}
		c.Limits.APIInvitesPerOrganization = config.Rate{Requests: 3, Period: 86400e9}
	})
	var ids []string
	for i := range 5 {
		ids = append(ids, f.invite(f.org1.ID, fmt.Sprintf("x%d@example.com", i), "member"))
	}
	f.st.drain()
	before := f.st.mail.count()
	// An outsider and a member below admin get their refusals (then their
	// own identity's 429); org1's quota is untouched.
	for i := range 4 {
		for _, tok := range []string{f.tokS, f.tokM} {
			r := f.post(tok, f.org1.ID, ids[0], "remind", "")
			if _, limit := r.errorBody(t); r.status == http.StatusOK || (i >= 2 && limit != "api_invites_per_identity") {
				t.Fatalf("refused caller's attempt %d: %d %s", i, r.status, r.body)
			}
		}
	}
	// A: two reminds, then their identity's quota is spent.
	for i := range 2 {
		if r := f.post(f.tokA, f.org1.ID, ids[i], "remind", ""); r.status != http.StatusOK {
			t.Fatalf("A's remind %d: %d %s", i, r.status, r.body)
		}
	}
	r := f.post(f.tokA, f.org1.ID, ids[2], "remind", "")
	assertRetryAfter(t, r)
	if code, limit := r.errorBody(t); code != "rate_limited" || limit != "api_invites_per_identity" {
		t.Errorf("A's third remind: %s/%s, want rate_limited/api_invites_per_identity", code, limit)
	}
	// B: the organization's third, then its quota is spent.
	if r := f.post(f.tokB, f.org1.ID, ids[2], "remind", ""); r.status != http.StatusOK {
		t.Fatalf("B's remind: %d %s", r.status, r.body)
	}
	r = f.post(f.tokB, f.org1.ID, ids[3], "remind", "")
	assertRetryAfter(t, r)
	if code, limit := r.errorBody(t); code != "rate_limited" || limit != "api_invites_per_organization" {
		t.Errorf("the organization's fourth remind: %s/%s, want rate_limited/api_invites_per_organization", code, limit)
	}
	// Resend and invite share the spent quota.
	if r := f.post(f.tokB, f.org1.ID, ids[4], "resend", ""); r.status != http.StatusTooManyRequests {
		t.Errorf("resend after the organization's quota went to reminds: %d %s", r.status, r.body)
	}
	f.st.drain()
	if n := f.st.mail.count() - before; n != 3 {
		t.Errorf("%d reminder mails, want 3", n)
	}
	t.Logf("reminds: 3 mailed, identity refusals %d, organization refusals %d",
		f.st.refusals("api_invites_per_identity"), f.st.refusals("api_invites_per_organization"))
}
