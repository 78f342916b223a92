package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// Issue 9 §4 through the org admins' API, with real Kratos sessions: an
// admin cannot re-issue (and so rewrite) an owner's pending invitation; an
// admin's invitation whose grant lapsed (the admin was demoted) is refused
// on its page, stays pending and listed, and works once an owner re-issues
// it.
func TestRolesStayWithinTheCeilingThroughTheAPI(t *testing.T) {
	st := startStack(t, "kratos_settings")
	ctx := context.Background()
	people, tokens := map[string]string{}, map[string]string{}
	for _, name := range []string{"owner", "admin"} {
		email := name + ".ceiling@example.com"
		people[name] = st.createPerson(email, name+" has a long password", true)
		tokens[name] = st.sessionToken(email, name+" has a long password")
	}
	o, err := st.srv.Orgs.Create(ctx, orgs.CreateRequest{Name: "Ceiling Org", OwnerIdentityID: people["owner"]}, orgs.StateActive)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.srv.Orgs.AddMember(ctx, o.ID, orgs.AddMemberRequest{IdentityID: people["admin"], Role: "admin"}); err != nil {
		t.Fatal(err)
	}
	path := "/organizations/" + o.Slug + "/invitations"

	// The owner invites a future owner; the admin cannot rewrite it.
	if r := st.api(tokens["owner"], "POST", path, map[string]any{"email": "future.owner@example.com", "role": "owner"}); r.status != 201 {
		t.Fatalf("owner invites: %d %v", r.status, r.body)
	}
	for _, role := range []string{"member", "admin", "owner"} {
		r := st.api(tokens["admin"], "POST", path, map[string]any{"email": "future.owner@example.com", "role": role})
		if r.status != http.StatusForbidden || r.code() != "role_ceiling" {
			t.Fatalf("admin re-issues the owner invitation as %s: %d %v", role, r.status, r.body)
		}
	}
	page, _ := st.srv.Invites.List(ctx, o.ID, invites.Filter{Email: "future.owner@example.com", Limit: 10})
	if page.Total != 1 || page.Items[0].Role != "owner" || page.Items[0].Inviter.ID != people["owner"] {
		t.Fatalf("the owner invitation changed: %+v", page.Items)
	}
	st.link(1)
	time.Sleep(200 * time.Millisecond) // a mail queued by a refused call would be sent by now
	if n := len(st.resend.Emails()); n != 1 {
		t.Fatalf("%d mails: a refused re-issue sent one", n)
	}

	// The admin invites an admin, then is demoted: the link says so and
	// accepts nothing.
	if r := st.api(tokens["admin"], "POST", path, map[string]any{"email": "second.admin@example.com", "role": "admin"}); r.status != 201 {
		t.Fatalf("admin invites: %d %v", r.status, r.body)
	}
	link := st.link(2)
	if _, err := st.srv.Orgs.SetRole(ctx, o.ID, people["admin"], "member"); err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, client(t), link)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "This invitation needs to be confirmed") {
		t.Fatalf("lapsed invitation page: %d\n%s", resp.StatusCode, body)
	}
	r := st.api(tokens["owner"], "GET", path+"?email=second.admin@example.com", nil)
	if r.status != 200 || r.body["total"] != float64(1) {
		t.Fatalf("the owner no longer sees the pending invitation: %v", r.body)
	}
	if st.kratosIdentity("second.admin@example.com")["state"] != "inactive" {
		t.Fatal("the lapsed invitation changed the identity")
	}

	// The owner re-issues it: the new link shows the form.
	if r := st.api(tokens["owner"], "POST", path, map[string]any{"email": "second.admin@example.com", "role": "admin"}); r.status != 200 {
		t.Fatalf("owner re-issues: %d %v", r.status, r.body)
	}
	if resp, body := get(t, client(t), st.link(3)); resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="accept"`) {
		t.Fatalf("re-issued link: %d\n%s", resp.StatusCode, body)
	}
}
