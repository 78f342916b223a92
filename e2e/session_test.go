package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// signIn runs a Kratos browser login flow with c's cookie jar, as a
// browser does: afterwards c carries the Kratos session cookie, which the
// sidecar (same host, other port) receives too.
func (st *stack) signIn(c *http.Client, email, password string) {
	st.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, st.kratos.PublicURL+"/self-service/login/browser", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		st.t.Fatal(err)
	}
	var flow struct {
		UI struct {
			Action string `json:"action"`
			Nodes  []struct {
				Attributes struct {
					Name  string `json:"name"`
					Value any    `json:"value"`
				} `json:"attributes"`
			} `json:"nodes"`
		} `json:"ui"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&flow)
	resp.Body.Close()
	csrf := ""
	for _, n := range flow.UI.Nodes {
		if n.Attributes.Name == "csrf_token" {
			csrf, _ = n.Attributes.Value.(string)
		}
	}
	if flow.UI.Action == "" || csrf == "" {
		st.t.Fatalf("no browser login flow (%d)", resp.StatusCode)
	}
	body, _ := json.Marshal(map[string]string{"method": "password", "identifier": email, "password": password, "csrf_token": csrf})
	req, _ = http.NewRequest(http.MethodPost, flow.UI.Action, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err = c.Do(req)
	if err != nil {
		st.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		st.t.Fatalf("browser login of %s: %d", email, resp.StatusCode)
	}
}

// sessionIdentity is the identity id of a whoami answer ("" for none).
func sessionIdentity(s map[string]any) string {
	id, _ := s["identity"].(map[string]any)
	v, _ := id["id"].(string)
	return v
}

// cookies is the Cookie header c sends to Kratos.
func cookies(c *http.Client, rawURL string) string {
	u, _ := url.Parse(rawURL)
	var parts []string
	for _, k := range c.Jar.Cookies(u) {
		parts = append(parts, k.Name+"="+k.Value)
	}
	return strings.Join(parts, "; ")
}

// proveUntouched checks that an invitation is still pending and its
// placeholder identity still inactive.
func (st *stack) proveUntouched(inv invites.Invitation) {
	st.t.Helper()
	got, err := st.srv.Invites.Get(context.Background(), inv.ID)
	if err != nil || got.Status != invites.Pending {
		st.t.Fatalf("invitation %s: %+v %v (want pending)", inv.ID, got.Status, err)
	}
	if state := st.kratosIdentity(inv.Email)["state"]; state != "inactive" {
		st.t.Fatalf("the invited identity is %v", state)
	}
}

// Signed in as somebody else, an invitation or activation link for a new
// person neither accepts nor switches the session, on GET and on a POST
// from a form opened before signing in; it names both addresses and offers
// Kratos' logout returning to the same link, and the link keeps working.
// In both login modes, for invitations and for registrations' activation
// links.
func TestSignedInAsSomeoneElseNeverAccepts(t *testing.T) {
	for _, tc := range []struct{ mode, kind string }{
		{"kratos_settings", "invitation"},
		{"password", "invitation"},
		{"kratos_settings", "registration"},
		{"password", "registration"},
	} {
		t.Run(tc.mode+"/"+tc.kind, func(t *testing.T) {
			st := startStack(t, tc.mode, func(c *config.Config) { c.Register.Enabled = true })
			adminID := st.createPerson("boss@example.com", "the boss has a password", true)
			var inv invites.Invitation
			var link string
			if tc.kind == "invitation" {
				inv = st.invite(st.org("Session Rules"), "newbie@example.com", "member")
				link = st.link(1)
			} else {
				if err := st.srv.Registrar.Register(context.Background(), invites.RegisterRequest{OrganizationName: "Fresh Org", Email: "newbie@example.com"}); err != nil {
					t.Fatal(err)
				}
				link = st.link(1)
				if !strings.Contains(link, st.cfg.Register.ActivatePath) {
					t.Fatalf("activation mail links to %s, not %s", link, st.cfg.Register.ActivatePath)
				}
				tok := link[strings.LastIndex(link, "/")+1:]
				l, err := st.srv.Invites.Lookup(context.Background(), tok)
				if err != nil {
					t.Fatal(err)
				}
				inv = l.Invitation
			}

			c := client(t)
			_, form := get(t, c, link) // opened before signing in: the form
			m := csrfRE.FindStringSubmatch(form)
			if m == nil {
				t.Fatalf("no form:\n%s", form)
			}
			st.signIn(c, "boss@example.com", "the boss has a password")

			notice := func(resp *http.Response, body string) {
				t.Helper()
				text := html.UnescapeString(body)
				if resp.StatusCode != http.StatusForbidden ||
					!strings.Contains(text, "You are signed in as boss@example.com; this") ||
					!strings.Contains(text, "is for newbie@example.com.") ||
					!strings.Contains(text, "Sign out and continue") || !strings.Contains(text, "Cancel") {
					t.Fatalf("%d\n%s", resp.StatusCode, body)
				}
				logout := regexpLogout.FindStringSubmatch(body)
				if logout == nil {
					t.Fatalf("no logout link:\n%s", body)
				}
				u, _ := url.Parse(html.UnescapeString(logout[1]))
				// Back through the resume path: the token stays out of Kratos' return_to.
				if !strings.HasPrefix(u.String(), st.kratos.PublicURL+"/self-service/logout?") || u.Query().Get("return_to") != st.base+"/invitations/accept/resume" ||
					strings.Contains(u.String(), link[strings.LastIndexByte(link, '/')+1:]) {
					t.Fatalf("logout link %s does not return to %s through the resume path", u, link)
				}
			}
			notice(get(t, c, link))
			post := url.Values{"csrf_token": {m[1]}, "name.first": {"Newbie"}, "password": {"a long new password 1"}, "password2": {"a long new password 1"}}
			resp, body := postWith(t, c, link, post, "")
			notice(resp, body)
			resp, body = postWith(t, c, link, post, "application/json") // the password mode's script
			notice(resp, body)

			st.proveUntouched(inv)
			s := st.whoami(cookies(c, st.kratos.PublicURL))
			if sessionIdentity(s) != adminID {
				t.Fatalf("the session changed: %v", s)
			}
			// Without the session the same link still shows its form.
			if resp, body := get(t, client(t), link); resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="accept"`) {
				t.Fatalf("the link stopped working: %d\n%s", resp.StatusCode, body)
			}
		})
	}
}

var regexpLogout = regexp.MustCompile(`<a class="button" id="primary" href="([^"]+)">Sign out and continue</a>`)

func postWith(t *testing.T, c *http.Client, u string, form url.Values, accept string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp, b.String()
}

// The journey of issue 9 §1 in Chromium: an admin, signed in, opens the
// link of the person they invited; the page says who is signed in and for
// whom the invitation is; "Sign out and continue" ends the admin's session
// and returns to the link; the invitee accepts; the admin signs in again
// and is still the admin, a member once.
func TestAdminOpensInviteeLinkSignsOutAndInviteeAccepts(t *testing.T) {
	st := startStack(t, "kratos_settings")
	org := st.org("Careful Co")
	adminID := st.createPerson("admin.careful@example.com", "admin careful password", true)
	if _, _, err := st.srv.Orgs.Store().AddMember(context.Background(), org.ID, orgs.Member{IdentityID: adminID, Email: "admin.careful@example.com", Role: "owner"}); err != nil {
		t.Fatal(err)
	}
	b := testenv.NewBrowser(t)
	b.Do(chromedp.Navigate(st.base + "/kratos/login"))
	login(b, "admin.careful@example.com", "admin careful password")
	b.WaitURL(`/welcome$`)

	inv, _, err := st.srv.Invites.Invite(context.Background(), org.ID, invites.InviteRequest{
		Email: "newcomer.careful@example.com", Role: "admin", Inviter: &invites.Inviter{ID: adminID, Name: "Admin Careful"},
	})
	if err != nil {
		t.Fatal(err)
	}
	link := st.link(1)
	b.Do(chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("h1")))
	b.Shot("signed-in-as-someone-else")
	if h := b.Text("h1"); h != "This invitation is for someone else" {
		t.Fatalf("heading %q", h)
	}
	if text := b.Text("main"); !strings.Contains(text, "You are signed in as admin.careful@example.com; this invitation is for newcomer.careful@example.com.") {
		t.Fatalf("page: %s", text)
	}
	st.proveUntouched(inv)

	b.Do(chromedp.Click(chromedp.CSS("a#primary")))
	b.WaitURL(`/invitations/accept/`)
	b.Do(chromedp.WaitVisible(chromedp.CSS("form#accept")))
	b.Shot("accept-form-after-sign-out")
	if st.whoami(b.CookieHeader(st.kratos.PublicURL)) != nil {
		t.Fatal("the admin is still signed in")
	}
	b.Do(
		chromedp.SendKeys(chromedp.CSS(`input[name="name.first"]`), "Newcomer"),
		chromedp.Click(chromedp.CSS(`form#accept button[type="submit"]`)),
	)
	b.WaitURL(`/kratos/settings\?flow=`)
	b.Do(
		chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "newcomer picks a password"),
		chromedp.Click(chromedp.CSS(`button[name="method"][value="password"]`)),
	)
	b.WaitURL(`/welcome$`)
	b.Shot("invitee-welcome")
	if s := st.whoami(b.CookieHeader(st.kratos.PublicURL)); sessionIdentity(s) != inv.IdentityID {
		t.Fatalf("invitee session: %v", s)
	}
	st.proveMember(org, inv.IdentityID, "admin")

	// The admin signs in again: still the admin, a member once.
	b.Do(chromedp.WaitVisible(chromedp.CSS("a.button.secondary")), chromedp.Click(chromedp.CSS("a.button.secondary")))
	b.WaitURL(`/kratos/login\?flow=|/$`)
	b.Do(chromedp.Navigate(st.base + "/kratos/login"))
	login(b, "admin.careful@example.com", "admin careful password")
	b.WaitURL(`/welcome$`)
	b.Shot("admin-welcome-again")
	if s := st.whoami(b.CookieHeader(st.kratos.PublicURL)); sessionIdentity(s) != adminID {
		t.Fatalf("admin session: %v", s)
	}
	st.proveMember(org, adminID, "owner")
	page, err := st.srv.Orgs.Store().Members(context.Background(), org.ID, "", 10)
	if err != nil || page.Total != 2 {
		t.Fatalf("members: %+v %v (want the admin and the invitee)", page.Items, err)
	}
	if strings.Count(b.Text("main"), "Careful Co") != 1 {
		t.Fatalf("welcome page: %s", b.Text("main"))
	}
}
