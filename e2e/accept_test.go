package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
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
