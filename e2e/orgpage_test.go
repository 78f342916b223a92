package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/mail/resendtest"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// The org admins' page in Chromium, without JavaScript, against a real
// Kratos: an owner signs in from the page's own redirect and invites two
// people (one by keyboard alone); Bob's mail bounces (the fake Resend
// posts its signed email.bounced webhook) and the page reports it; the
// owner revokes Bob's invitation; Ann accepts through the link in her mail
// and the owner makes her an admin; the owner uploads a CSV file and reads
// each row's result; a plain member is refused the page. Screenshots are
// kept in .cache/screenshots/<test>/ (not in the repository).
func TestOrgAdminPageJourney(t *testing.T) {
	secret := resendtest.NewWebhookSecret()
	st := startStack(t, "kratos_settings", func(c *config.Config) { c.Mail.Resend.WebhookSecrets = []string{secret} })
	j := newPageJourney(t, st)
	j.ownerSignsIn()
	mails := j.inviteAnnAndBob()
	bob := j.bobBounces(mails, secret)
	j.revoke(bob)
	annID := j.annAccepts(mails)
	j.makeAdmin(annID)
	j.uploadCSV()

	// The welcome page links the page for the roles that may use it.
	j.owner.Do(chromedp.Navigate(st.base+"/welcome"), chromedp.Click(chromedp.CSS(`a[href="/orgs/`+j.org.Slug+`"]`)))
	j.owner.WaitURL(`/orgs/` + j.org.Slug + `$`)

	// A plain member signs in and is refused, readably.
	member := testenv.NewBrowser(as(t, "member"))
	member.Do(chromedp.Navigate(j.page))
	member.WaitURL(`/kratos/login\?flow=`)
	login(member, "member.page@example.com", "member page password 1")
	member.WaitURL(`/orgs/` + j.org.Slug + `$`)
	member.Do(chromedp.WaitVisible(chromedp.CSS("h1")))
	member.Shot("member-refused")
	if h := member.Text("h1"); h != "Only owners and admins can manage Page Journey" {
		t.Fatalf("a plain member sees %q", h)
	}
}

// pageJourney is the organization of TestOrgAdminPageJourney and its
// owner's browser.
type pageJourney struct {
	t     *testing.T
	st    *stack
	org   orgs.Organization
	page  string
	owner *testenv.Browser
}

func newPageJourney(t *testing.T, st *stack) *pageJourney {
	org := st.org("Page Journey")
	ownerID := st.createPerson("owner.page@example.com", "owner page password 1", true)
	memberID := st.createPerson("member.page@example.com", "member page password 1", true)
	for id, m := range map[string][2]string{ownerID: {"owner.page@example.com", "owner"}, memberID: {"member.page@example.com", "member"}} {
		if _, _, err := st.srv.Orgs.Store().AddMember(context.Background(), org.ID, orgs.Member{IdentityID: id, Email: m[0], Role: m[1]}); err != nil {
			t.Fatal(err)
		}
	}
	owner := testenv.NewBrowser(as(t, "owner"))
	owner.DisableScripts()
	return &pageJourney{t: t, st: st, org: org, page: st.base + "/orgs/" + org.Slug, owner: owner}
}

func (j *pageJourney) ownerSignsIn() {
	j.owner.Do(chromedp.Navigate(j.page))
	j.owner.WaitURL(`/kratos/login\?flow=`)
	login(j.owner, "owner.page@example.com", "owner page password 1")
	j.owner.WaitURL(`/orgs/` + j.org.Slug + `$`)
	j.owner.Do(chromedp.WaitVisible(chromedp.CSS("form#invite")))
	j.owner.Shot("owner-page")
	if h := j.owner.Text("h1"); h != "Page Journey: members and invitations" {
		j.t.Fatalf("heading %q", h)
	}
}

// inviteAnnAndBob sends the two invitations from the page and returns
// their mails.
func (j *pageJourney) inviteAnnAndBob() []resendtest.Email {
	// The first invitation by keyboard alone: type the address, Enter.
	j.owner.Do(chromedp.Focus(chromedp.CSS("#invite-email")), chromedp.SendKeys(chromedp.CSS("#invite-email"), "ann.page@example.com"+kb.Enter))
	j.owner.WaitURL(`\?notice=invited$`)
	j.owner.Do(chromedp.WaitVisible(chromedp.CSS("form#invite")),
		chromedp.SendKeys(chromedp.CSS("#invite-email"), "bob.page@example.com"),
		chromedp.Click(chromedp.CSS(`form#invite button[type="submit"]`)))
	j.owner.WaitText(`p[role="status"]`, "on its way")
	mails := j.st.resend.WaitForEmails(j.t, 2, 10*time.Second)
	j.owner.Do(chromedp.Reload())
	j.owner.WaitText("#invitations", "bob.page@example.com")
	j.owner.Shot("two-invited")
	return mails
}

// bobBounces has the fake Resend report that Bob's mail bounced, through
// the signed webhook Resend posts, and checks that the owner's page shows
// it on Bob's invitation.
func (j *pageJourney) bobBounces(mails []resendtest.Email, secret string) invites.Invitation {
	var emailID string
	for _, m := range mails {
		if len(m.To) == 1 && m.To[0] == "bob.page@example.com" {
			emailID = m.ID
		}
	}
	bob := pendingByEmail(j.t, j.st, j.org)["bob.page@example.com"]
	// The outbox records Resend's email id once Resend answered.
	for deadline := time.Now().Add(10 * time.Second); bob.Delivery.MessageID != emailID; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			j.t.Fatalf("Bob's invitation never recorded Resend's email id %s: %+v", emailID, bob.Delivery)
		}
		bob, _ = j.st.srv.Invites.Get(context.Background(), bob.ID)
	}
	d, err := j.st.resend.Emit(j.st.base+"/hooks/resend", secret, resendtest.Event{Type: "email.bounced", EmailID: emailID})
	if err != nil || d.Status != http.StatusOK {
		j.t.Fatalf("the bounce webhook: %v %d %s", err, d.Status, d.Answer)
	}
	j.owner.Do(chromedp.Navigate(j.page))
	row := `tr[data-invitation="` + bob.ID + `"]`
	j.owner.WaitText(row+` .delivery-bounced`, `^Bounced$`)
	if !strings.Contains(j.owner.Text(row), "(permanent)") {
		j.t.Fatalf("Bob's row does not say why: %q", j.owner.Text(row))
	}
	j.owner.Shot("bob-bounced")
	return bob
}

func (j *pageJourney) revoke(bob invites.Invitation) {
	j.owner.Do(chromedp.Click(chromedp.CSS(`tr[data-invitation="` + bob.ID + `"] button[value="revoke"]`)))
	j.owner.WaitURL(`\?notice=revoked$`)
	j.owner.Shot("revoked")
	if got, _ := j.st.srv.Invites.Get(context.Background(), bob.ID); got.Status != invites.Revoked {
		j.t.Fatalf("Bob's invitation is %s", got.Status)
	}
	if strings.Contains(j.owner.Text("main"), "bob.page@example.com") {
		j.t.Fatal("a revoked invitation is still listed as pending")
	}
}

// annAccepts follows the link in Ann's mail and returns her identity.
func (j *pageJourney) annAccepts(mails []resendtest.Email) string {
	annID := pendingByEmail(j.t, j.st, j.org)["ann.page@example.com"].IdentityID
	invitee := testenv.NewBrowser(as(j.t, "invitee"))
	invitee.Do(chromedp.Navigate(linkFor(j.t, mails, "ann.page@example.com")), chromedp.WaitVisible(chromedp.CSS("form#accept")),
		chromedp.SendKeys(chromedp.CSS(`input[name="name.first"]`), "Ann"),
		chromedp.Click(chromedp.CSS(`form#accept button[type="submit"]`)))
	invitee.WaitURL(`/kratos/settings\?flow=`)
	invitee.Do(chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "ann accepts the page invitation"),
		chromedp.Click(chromedp.CSS(`button[name="method"][value="password"]`)))
	invitee.WaitURL(`/welcome$`)
	invitee.Shot("accepted")
	j.st.proveMember(j.org, annID, "member")
	return annID
}

func (j *pageJourney) makeAdmin(annID string) {
	j.owner.Do(chromedp.Navigate(j.page), chromedp.SetValue(chromedp.CSS(`#role-`+annID), "admin"),
		chromedp.Click(chromedp.CSS(`tr[data-member="`+annID+`"] form[action$="/role"] button`)))
	j.owner.WaitURL(`\?notice=role_changed$`)
	j.owner.Shot("role-changed")
	j.st.proveMember(j.org, annID, "admin")
}

// uploadCSV picks a CSV file in the upload form and reads each row's
// result in the table the page comes back with: Bob's bounced address is
// not mailed again, Ann is already a member.
func (j *pageJourney) uploadCSV() {
	file := filepath.Join(j.t.TempDir(), "people.csv")
	csv := "email,first_name\ncarol.page@example.com,Carol\nnot an address,\nann.page@example.com,\n" +
		"carol.page@example.com,\nbob.page@example.com,\n"
	if err := os.WriteFile(file, []byte(csv), 0o600); err != nil {
		j.t.Fatal(err)
	}
	j.owner.Do(chromedp.SetUploadFiles(chromedp.CSS("#upload-file"), []string{file}))
	j.owner.Shot("csv-chosen")
	j.owner.Do(chromedp.Click(chromedp.CSS(`form#upload button[type="submit"]`)))
	j.owner.WaitURL(`\?upload=[A-Za-z0-9_-]+$`)
	j.owner.Do(chromedp.WaitVisible(chromedp.CSS("#upload-table")))
	j.owner.Shot("csv-results")
	if c := j.owner.Text("#upload-table caption"); c != "Each of the file's 5 rows and what became of it" {
		j.t.Fatalf("caption %q", c)
	}
	for result, email := range map[string]string{"created": "carol.page@example.com", "invalid_email": "not an address",
		"already_member": "ann.page@example.com", "duplicate_in_request": "carol.page@example.com",
		"address_suppressed": "bob.page@example.com"} {
		if got := j.owner.Text(`#upload-table tr[data-result="` + result + `"] th`); got != email {
			j.t.Errorf("the %s row names %q, want %s", result, got, email)
		}
	}
	if got := j.owner.Text(`#upload-table tr[data-result="address_suppressed"]`); !strings.Contains(got, "Not mailed: the address bounced") {
		j.t.Errorf("Bob's row: %q", got)
	}
	j.owner.WaitText("#invitations", "carol.page@example.com")
	if mails := j.st.resend.WaitForEmails(j.t, 3, 10*time.Second); len(mails) != 3 {
		j.t.Fatalf("%d mails after the upload, want Ann's, Bob's and Carol's", len(mails))
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
