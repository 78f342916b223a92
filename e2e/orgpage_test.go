package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/mail/resendtest"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// The org admins' page in Chromium, without JavaScript, against a real
// Kratos: an owner signs in from the page's own redirect, invites two
// people (one by keyboard alone), one of them accepts through the link in
// their mail, the owner revokes the other and makes the new member an
// admin; a plain member is refused the page. Screenshots are kept in
// .cache/screenshots/<test>/ (not in the repository).
func TestOrgAdminPageJourney(t *testing.T) {
	st := startStack(t, "kratos_settings")
	ctx := context.Background()
	org := st.org("Page Journey")
	ownerID := st.createPerson("owner.page@example.com", "owner page password 1", true)
	memberID := st.createPerson("member.page@example.com", "member page password 1", true)
	for id, m := range map[string][2]string{ownerID: {"owner.page@example.com", "owner"}, memberID: {"member.page@example.com", "member"}} {
		if _, _, err := st.srv.Orgs.Store().AddMember(ctx, org.ID, orgs.Member{IdentityID: id, Email: m[0], Role: m[1]}); err != nil {
			t.Fatal(err)
		}
	}
	page := st.base + "/orgs/" + org.Slug

	owner := testenv.NewBrowser(as(t, "owner"))
	owner.DisableScripts()
	owner.Do(chromedp.Navigate(page))
	owner.WaitURL(`/kratos/login\?flow=`)
	login(owner, "owner.page@example.com", "owner page password 1")
	owner.WaitURL(`/orgs/` + org.Slug + `$`)
	owner.Do(chromedp.WaitVisible(chromedp.CSS("form#invite")))
	owner.Shot("owner-page")
	if h := owner.Text("h1"); h != "Page Journey: members and invitations" {
		t.Fatalf("heading %q", h)
	}

	// The first invitation by keyboard alone: type the address, Enter.
	owner.Do(chromedp.Focus(chromedp.CSS("#invite-email")), chromedp.SendKeys(chromedp.CSS("#invite-email"), "ann.page@example.com"+kb.Enter))
	owner.WaitURL(`\?notice=invited$`)
	owner.Do(chromedp.WaitVisible(chromedp.CSS("form#invite")),
		chromedp.SendKeys(chromedp.CSS("#invite-email"), "bob.page@example.com"),
		chromedp.Click(chromedp.CSS(`form#invite button[type="submit"]`)))
	owner.WaitText(`p[role="status"]`, "on its way")
	mails := st.resend.WaitForEmails(t, 2, 10*time.Second)
	owner.Do(chromedp.Reload())
	owner.WaitText("#invitations", "bob.page@example.com")
	owner.Shot("two-invited")
	pending := pendingByEmail(t, st, org)

	// Ann accepts through the link in her mail.
	invitee := testenv.NewBrowser(as(t, "invitee"))
	invitee.Do(chromedp.Navigate(linkFor(t, mails, "ann.page@example.com")), chromedp.WaitVisible(chromedp.CSS("form#accept")),
		chromedp.SendKeys(chromedp.CSS(`input[name="name.first"]`), "Ann"),
		chromedp.Click(chromedp.CSS(`form#accept button[type="submit"]`)))
	invitee.WaitURL(`/kratos/settings\?flow=`)
	invitee.Do(chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "ann accepts the page invitation"),
		chromedp.Click(chromedp.CSS(`button[name="method"][value="password"]`)))
	invitee.WaitURL(`/welcome$`)
	invitee.Shot("accepted")
	annID := pending["ann.page@example.com"].IdentityID
	st.proveMember(org, annID, "member")

	// The owner revokes Bob's invitation, then makes Ann an admin.
	bob := pending["bob.page@example.com"]
	owner.Do(chromedp.Navigate(page),
		chromedp.Click(chromedp.CSS(`tr[data-invitation="`+bob.ID+`"] button[value="revoke"]`)))
	owner.WaitURL(`\?notice=revoked$`)
	owner.Shot("revoked")
	if got, _ := st.srv.Invites.Get(ctx, bob.ID); got.Status != invites.Revoked {
		t.Fatalf("Bob's invitation is %s", got.Status)
	}
	if strings.Contains(owner.Text("main"), "bob.page@example.com") {
		t.Fatal("a revoked invitation is still listed as pending")
	}
	owner.Do(chromedp.SetValue(chromedp.CSS(`#role-`+annID), "admin"),
		chromedp.Click(chromedp.CSS(`tr[data-member="`+annID+`"] form[action$="/role"] button`)))
	owner.WaitURL(`\?notice=role_changed$`)
	owner.Shot("role-changed")
	st.proveMember(org, annID, "admin")

	// The welcome page links the page for the roles that may use it.
	owner.Do(chromedp.Navigate(st.base+"/welcome"), chromedp.Click(chromedp.CSS(`a[href="/orgs/`+org.Slug+`"]`)))
	owner.WaitURL(`/orgs/` + org.Slug + `$`)

	// A plain member signs in and is refused, readably.
	member := testenv.NewBrowser(as(t, "member"))
	member.Do(chromedp.Navigate(page))
	member.WaitURL(`/kratos/login\?flow=`)
	login(member, "member.page@example.com", "member page password 1")
	member.WaitURL(`/orgs/` + org.Slug + `$`)
	member.Do(chromedp.WaitVisible(chromedp.CSS("h1")))
	member.Shot("member-refused")
	if h := member.Text("h1"); h != "Only owners and admins can manage Page Journey" {
		t.Fatalf("a plain member sees %q", h)
	}
}

func pendingByEmail(t *testing.T, st *stack, org orgs.Organization) map[string]invites.Invitation {
	t.Helper()
	p, err := st.srv.Invites.List(context.Background(), org.ID, invites.Filter{Status: "pending", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]invites.Invitation{}
	for _, inv := range p.Items {
		out[inv.Email] = inv
	}
	return out
}

// linkFor is the link in the mail to one address.
func linkFor(t *testing.T, mails []resendtest.Email, to string) string {
	t.Helper()
	for _, m := range mails {
		if len(m.To) == 1 && m.To[0] == to {
			if l := linkRE.FindString(m.Text); l != "" {
				return l
			}
		}
	}
	t.Fatalf("no mail with a link to %s", to)
	return ""
}

// named gives one person's browser a folder of screenshots of its own
// (.cache/screenshots/<test>_<person>/) when a test has several people.
type named struct {
	testing.TB
	name string
}

func (n named) Name() string { return n.TB.Name() + "/" + n.name }

func as(t testing.TB, person string) testing.TB { return named{t, person} }
