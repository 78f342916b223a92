package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// A person new to Kratos accepts with the default login mode: the sidecar
// activates the identity and hands the browser to Kratos with a recovery
// link; Kratos asks for a password on its settings page and then goes to
// the success URL with a session.
func TestNewPersonKratosSettingsMode(t *testing.T) {
	st := startStack(t, "kratos_settings")
	org := st.org("Acme Corp")
	inv := st.invite(org, "grace.settings@example.com", "admin")
	link := st.link(1)

	b := testenv.NewBrowser(t)
	b.Do(chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("form#accept")))
	b.Shot("accept-form")
	if h := b.Text("h1"); h != "Join Acme Corp" {
		t.Fatalf("heading %q", h)
	}
	b.Do(
		chromedp.SendKeys(chromedp.CSS(`input[name="name.first"]`), "Grace"),
		chromedp.SendKeys(chromedp.CSS(`input[name="name.last"]`), "Hopper"),
		chromedp.Click(chromedp.CSS(`form#accept button[type="submit"]`)),
	)
	b.WaitURL(`/kratos/settings\?flow=`)
	b.Do(chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`)))
	b.Shot("kratos-settings")
	b.Do(
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "correct horse battery staple"),
		chromedp.Click(chromedp.CSS(`button[name="method"][value="password"]`)),
	)
	b.WaitURL(`/welcome$`)
	b.Do(chromedp.WaitVisible(chromedp.CSS("h1")))
	b.Shot("welcome")

	session := st.whoami(b.CookieHeader(st.kratos.PublicURL))
	if session == nil {
		t.Fatal("no Kratos session after accepting")
	}
	id := st.proveVerifiedActive("grace.settings@example.com")
	if session["identity"].(map[string]any)["id"] != inv.IdentityID || id["id"] != inv.IdentityID {
		t.Fatalf("session identity %v, invited identity %s", session["identity"], inv.IdentityID)
	}
	traits := id["traits"].(map[string]any)
	if name := traits["name"].(map[string]any); name["first"] != "Grace" || name["last"] != "Hopper" {
		t.Fatalf("traits %v", traits)
	}
	st.proveMember(org, inv.IdentityID, "admin")
	if !strings.Contains(b.Text("main"), "grace.settings@example.com") {
		t.Fatalf("welcome page: %s", b.Text("main"))
	}
}

// login signs in through the sidecar's Kratos UI.
func login(b *testenv.Browser, email, password string) {
	b.Do(
		chromedp.WaitVisible(chromedp.CSS(`input[name="identifier"]`)),
		chromedp.SetValue(chromedp.CSS(`input[name="identifier"]`), email),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), password),
	)
	b.Shot("kratos-login")
	b.Do(chromedp.Click(chromedp.CSS(`button[name="method"][value="password"]`)))
}

// In password mode the form takes the password and the page signs in with
// it through a Kratos browser login flow.
func TestNewPersonPasswordMode(t *testing.T) {
	st := startStack(t, "password")
	org := st.org("Password Inc")
	inv := st.invite(org, "linus.pw@example.com", "member")

	b := testenv.NewBrowser(t)
	b.Do(chromedp.Navigate(st.link(1)), chromedp.WaitVisible(chromedp.CSS("form#accept")))
	// First a password that is too similar to the address: refused, nothing written.
	b.Do(
		chromedp.SendKeys(chromedp.CSS(`input[name="name.first"]`), "Linus"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "linus.pw-2024"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password2"]`), "linus.pw-2024"),
		chromedp.Click(chromedp.CSS(`form#accept button[type="submit"]`)),
	)
	b.WaitText(".field-error", "similar")
	b.Shot("password-refused")
	if msg := b.Text(".field-error"); !strings.Contains(msg, "similar") {
		t.Fatalf("field error %q", msg)
	}
	if st.kratosIdentity("linus.pw@example.com")["state"] != "inactive" {
		t.Fatal("a refused form changed the identity")
	}
	// The page came back with the name kept and the passwords empty.
	if v, _ := chromedp.Run(b.Ctx, chromedp.Value(chromedp.CSS(`input[name="name.first"]`))); v != "Linus" {
		t.Fatalf("the name was not kept: %q", v)
	}
	b.Do(
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "penguins swim in cold seas"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password2"]`), "penguins swim in cold seas"),
	)
	b.Shot("accept-form")
	b.Do(chromedp.Click(chromedp.CSS(`form#accept button[type="submit"]`)))
	b.WaitURL(`/welcome$`)
	b.Do(chromedp.WaitVisible(chromedp.CSS("h1")))
	b.Shot("welcome")
	if st.whoami(b.CookieHeader(st.kratos.PublicURL)) == nil {
		t.Fatal("no Kratos session after accepting in password mode")
	}
	st.proveVerifiedActive("linus.pw@example.com")
	st.proveMember(org, inv.IdentityID, "member")
}

// Without JavaScript, password mode falls back to Kratos' login page with
// return_to: the person types the password once more.
func TestNewPersonPasswordModeWithoutJavaScript(t *testing.T) {
	st := startStack(t, "password")
	org := st.org("No Script Ltd")
	inv := st.invite(org, "ada.nojs@example.com", "member")

	b := testenv.NewBrowser(t)
	b.DisableScripts()
	b.Do(chromedp.Navigate(st.link(1)), chromedp.WaitVisible(chromedp.CSS("form#accept")),
		chromedp.SendKeys(chromedp.CSS(`input[name="name.first"]`), "Ada"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "analytical engine notes"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password2"]`), "analytical engine notes"),
		chromedp.Click(chromedp.CSS(`form#accept button[type="submit"]`)),
	)
	b.WaitURL(`/kratos/login\?flow=`)
	login(b, "ada.nojs@example.com", "analytical engine notes")
	b.WaitURL(`/welcome$`)
	b.Shot("welcome")
	if st.whoami(b.CookieHeader(st.kratos.PublicURL)) == nil {
		t.Fatal("no session after the no-JavaScript fallback")
	}
	st.proveVerifiedActive("ada.nojs@example.com")
	st.proveMember(org, inv.IdentityID, "member")
}

// A person with an account and a session joins with one click.
func TestExistingPersonWithSession(t *testing.T) {
	st := startStack(t, "kratos_settings")
	org := st.org("Existing Co")
	id := st.createPerson("barbara@example.com", "a long and good password", true)
	st.invite(org, "Barbara@Example.com", "admin")

	b := testenv.NewBrowser(t)
	b.Do(chromedp.Navigate(st.base + "/kratos/login"))
	login(b, "barbara@example.com", "a long and good password")
	b.WaitURL(`/welcome$`)
	b.Do(chromedp.Navigate(st.link(1)), chromedp.WaitVisible(chromedp.CSS(`button[type="submit"]`)))
	b.Shot("join")
	if h := b.Text("h1"); h != "Join Existing Co" {
		t.Fatalf("heading %q", h)
	}
	b.Do(chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	b.WaitURL(`/welcome$`)
	b.Shot("welcome")
	st.proveMember(org, id, "admin")
	if st.whoami(b.CookieHeader(st.kratos.PublicURL)) == nil {
		t.Fatal("the session was lost")
	}
	// The link is used up now.
	b.Do(chromedp.Navigate(st.link(1)), chromedp.WaitVisible(chromedp.CSS("h1")))
	if h := b.Text("h1"); !strings.Contains(h, "already used") {
		t.Fatalf("reused link shows %q", h)
	}
	b.Shot("reused-link")
}

// Without a session the link sends the person to Kratos' login and back.
func TestExistingPersonWithoutSession(t *testing.T) {
	st := startStack(t, "kratos_settings")
	org := st.org("Login First")
	id := st.createPerson("carl@example.com", "carl has a fine password", true)
	st.invite(org, "carl@example.com", "member")

	b := testenv.NewBrowser(t)
	b.Do(chromedp.Navigate(st.link(1)))
	b.WaitURL(`/kratos/login\?flow=`)
	login(b, "carl@example.com", "carl has a fine password")
	b.WaitURL(`/invitations/accept/`)
	b.Do(chromedp.WaitVisible(chromedp.CSS(`button[type="submit"]`)))
	b.Shot("join")
	b.Do(chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	b.WaitURL(`/welcome$`)
	st.proveMember(org, id, "member")
}

// Signed in as somebody else: the page refuses and says who is signed in
// and for whom the invitation is (issue 9 §1), with a way to sign out.
func TestWrongAccount(t *testing.T) {
	st := startStack(t, "kratos_settings")
	org := st.org("Wrong Door")
	st.createPerson("invited@example.com", "the invited password", true)
	st.createPerson("intruder@example.com", "the intruder password", true)
	st.invite(org, "invited@example.com", "member")

	b := testenv.NewBrowser(t)
	b.Do(chromedp.Navigate(st.base + "/kratos/login"))
	login(b, "intruder@example.com", "the intruder password")
	b.WaitURL(`/welcome$`)
	b.Do(chromedp.Navigate(st.link(1)), chromedp.WaitVisible(chromedp.CSS("h1")))
	b.Shot("wrong-account")
	if h := b.Text("h1"); h != "This invitation is for someone else" {
		t.Fatalf("heading %q", h)
	}
	if text := b.Text("main"); !strings.Contains(text, "You are signed in as intruder@example.com; this invitation is for invited@example.com.") {
		t.Fatalf("page: %s", text)
	}
	if page, _ := st.srv.Orgs.Store().Members(context.Background(), org.ID, "", 10); page.Total != 0 {
		t.Fatal("the wrong account became a member")
	}
}

// An expired link explains itself (410) and changes nothing.
func TestExpiredLink(t *testing.T) {
	st := startStack(t, "kratos_settings")
	org := st.org("Too Late")
	inv := st.invite(org, "late@example.com", "member")
	link := st.link(1)
	expire(t, st, inv)

	b := testenv.NewBrowser(t)
	b.Do(chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("h1")))
	b.Shot("expired")
	if h := b.Text("h1"); h != "This invitation has expired" || !strings.Contains(b.Text("main"), "Ada Lovelace") {
		t.Fatalf("page %q: %s", h, b.Text("main"))
	}
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone {
		t.Fatalf("status %d, want 410", resp.StatusCode)
	}
}

// expire moves an invitation's expiry into the past, as time would.
func expire(t *testing.T, st *stack, inv invites.Invitation) {
	t.Helper()
	rdb := st.srv.Redis()
	ks := st.srv.Keyspace()
	past := time.Now().Add(-time.Second).UnixMilli()
	// The link dies with the invitation's expiry ("x", redisx/fields.go).
	if err := rdb.HSet(context.Background(), ks.Invitation(inv.ID), "x", past).Err(); err != nil {
		t.Fatal(err)
	}
}

// Registration: a new organization and its owner, activated from the mail.
func TestRegistrationAndActivation(t *testing.T) {
	st := startStack(t, "kratos_settings")
	b := testenv.NewBrowser(t)
	b.Do(chromedp.Navigate(st.base+"/register"), chromedp.WaitVisible(chromedp.CSS(`input[name="name"]`)))
	b.Do(
		chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), "Hopper & Co"),
		chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), "Founder@Example.com"),
	)
	b.Shot("register")
	b.Do(chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	b.WaitText("h1", `^Check your email$`)
	b.Shot("check-email")
	o, err := st.srv.Orgs.Store().Resolve(context.Background(), "hopper-co")
	if err != nil || o.State != "pending" {
		t.Fatalf("organization before activation: %+v %v", o, err)
	}
	mail := st.resend.WaitForEmails(t, 1, 10*time.Second)[0]
	if mail.Subject != "Activate Hopper & Co" {
		t.Fatalf("subject %q", mail.Subject)
	}
	b.Do(chromedp.Navigate(st.link(1)), chromedp.WaitVisible(chromedp.CSS("form#accept")))
	b.Shot("activate")
	b.Do(
		chromedp.SendKeys(chromedp.CSS(`input[name="name.first"]`), "Grace"),
		chromedp.Click(chromedp.CSS(`form#accept button[type="submit"]`)),
	)
	b.WaitURL(`/kratos/settings\?flow=`)
	b.Do(
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "founders keep going"),
		chromedp.Click(chromedp.CSS(`button[name="method"][value="password"]`)),
	)
	b.WaitURL(`/welcome$`)
	b.Shot("welcome")
	id := st.proveVerifiedActive("founder@example.com")
	o, _ = st.srv.Orgs.Store().Resolve(context.Background(), "hopper-co")
	if o.State != "active" {
		t.Fatalf("organization after activation: %s", o.State)
	}
	st.proveMember(o, id["id"].(string), "owner")
	if st.whoami(b.CookieHeader(st.kratos.PublicURL)) == nil {
		t.Fatal("no session after activation")
	}
}

// A person who already has an account and registers gets a notice, and
// the page says exactly what it says to a newcomer.
func TestRegistrationByExistingPersonRevealsNothing(t *testing.T) {
	st := startStack(t, "kratos_settings")
	st.createPerson("known@example.com", "known person password", true)
	pageFor := func(email string) string {
		b := testenv.NewBrowser(t)
		b.Do(chromedp.Navigate(st.base+"/register"), chromedp.WaitVisible(chromedp.CSS(`input[name="name"]`)),
			chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), "Same Answer "+email[:3]),
			chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), email),
			chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
		b.WaitText("h1", `^Check your email$`)
		return strings.ReplaceAll(b.Text("main"), email, "EMAIL")
	}
	known, unknown := pageFor("known@example.com"), pageFor("new@example.com")
	if known != unknown {
		t.Fatalf("the answers differ:\n%s\n---\n%s", known, unknown)
	}
	mails := st.resend.WaitForEmails(t, 2, 10*time.Second)
	for _, m := range mails {
		if m.To[0] == "known@example.com" && (linkRE.MatchString(m.Text) || !strings.Contains(m.Text, "already have an account")) {
			t.Fatalf("the existing person's mail:\n%s", m.Text)
		}
	}
	if _, err := st.srv.Orgs.Store().Resolve(context.Background(), "same-answer-kno"); err == nil {
		t.Fatal("an organization was created for an existing account's registration")
	}
}

// Accepting while already a member consumes the invitation and says so.
func TestAlreadyMember(t *testing.T) {
	st := startStack(t, "kratos_settings")
	org := st.org("Member Already")
	id := st.createPerson("member@example.com", "member password here", true)
	st.invite(org, "member@example.com", "admin")
	// The membership appears between the invitation and its acceptance.
	if _, _, err := st.srv.Orgs.Store().AddMember(context.Background(), org.ID, orgs.Member{IdentityID: id, Role: "member"}); err != nil {
		t.Fatal(err)
	}
	b := testenv.NewBrowser(t)
	b.Do(chromedp.Navigate(st.base + "/kratos/login"))
	login(b, "member@example.com", "member password here")
	b.WaitURL(`/welcome$`)
	b.Do(chromedp.Navigate(st.link(1)), chromedp.WaitVisible(chromedp.CSS(`button[type="submit"]`)),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	b.WaitText("h1", `^You are already a member of Member Already$`)
	b.Shot("already-member")
	st.proveMember(org, id, "member") // unchanged: accepting never changes an existing role
	page, _ := st.srv.Invites.List(context.Background(), org.ID, invites.Filter{Status: "accepted", Limit: 10})
	if page.Total != 1 {
		t.Fatal("the invitation was not consumed")
	}
}
