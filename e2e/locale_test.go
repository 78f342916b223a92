package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/invites"
)

// A German invitation, accepted in a browser set to German: the mail, the
// accept page, the Kratos settings page kratos-orgs renders and the welcome
// page are German, and the acceptance works as in English.
func TestGermanBrowserAcceptsGermanInvitation(t *testing.T) {
	st := startStack(t, "kratos_settings")
	org := st.org("Firma GmbH")
	inv, _, err := st.srv.Invites.Invite(context.Background(), org.ID, invites.InviteRequest{
		Email: "gerda.de@example.com", Role: "admin", Inviter: &invites.Inviter{Name: "Ada Lovelace"}, Locale: "de",
	})
	if err != nil {
		t.Fatal(err)
	}
	link := st.link(1)
	if m := st.resend.Emails()[0]; m.Subject != "Ada Lovelace hat Sie zu Firma GmbH eingeladen" || !strings.Contains(m.Text, "Einladung annehmen") {
		t.Fatalf("mail not German: %q\n%s", m.Subject, m.Text)
	}

	b := testenv.NewBrowser(t)
	b.AcceptLanguage("de-DE,de;q=0.9,en;q=0.5")
	b.Do(chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("form#accept")))
	b.Shot("accept-form-de")
	if h := b.Text("h1"); h != "Firma GmbH beitreten" {
		t.Fatalf("heading %q", h)
	}
	if !strings.Contains(b.HTML(), `lang="de"`) || !strings.Contains(b.Text("main"), "Ada Lovelace hat Sie eingeladen") {
		t.Fatalf("accept page not German:\n%s", b.Text("main"))
	}
	b.Do(
		chromedp.SendKeys(chromedp.CSS(`input[name="name.first"]`), "Gerda"),
		chromedp.Click(chromedp.CSS(`form#accept button[type="submit"]`)),
	)
	b.WaitURL(`/kratos/settings\?flow=`)
	b.Do(chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`)))
	b.Shot("kratos-settings-de")
	if h := b.Text("h1"); h != "Ihr Konto" {
		t.Fatalf("settings heading %q", h)
	}
	b.Do(
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "Zugspitze ist hoch und kalt"),
		chromedp.Click(chromedp.CSS(`button[name="method"][value="password"]`)),
	)
	b.WaitURL(`/welcome$`)
	b.Do(chromedp.WaitVisible(chromedp.CSS("h1")))
	b.Shot("welcome-de")
	if !strings.HasPrefix(b.Text("h1"), "Willkommen") || !strings.Contains(b.Text("main"), "Ihre Organisationen") {
		t.Fatalf("welcome page not German:\n%s", b.Text("main"))
	}
	st.proveMember(org, inv.IdentityID, "admin")
}
