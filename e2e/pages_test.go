package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// client is a cookie-keeping HTTP client that does not follow redirects.
func client(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Transport: recorder.Transport(nil), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func post(t *testing.T, c *http.Client, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// Of 50 concurrent POSTs on one token exactly one wins; the others get a
// clear page, and the identity is activated once.
func TestFiftyConcurrentAcceptsOneWins(t *testing.T) {
	st := startStack(t, "kratos_settings")
	org := st.org("Race Corp")
	inv := st.invite(org, "race@example.com", "member")
	link := st.link(1)

	const n = 50
	clients := make([]*http.Client, n)
	forms := make([]url.Values, n)
	for i := range clients {
		clients[i] = client(t)
		_, body := get(t, clients[i], link)
		m := csrfRE.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no CSRF token on the form:\n%s", body)
		}
		forms[i] = url.Values{"csrf_token": {m[1]}, "name.first": {fmt.Sprintf("Racer %d", i)}}
	}
	statuses := make([]int, n)
	bodies := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, body := post(t, clients[i], link, forms[i])
			statuses[i], bodies[i] = resp.StatusCode, body
		}()
	}
	close(start)
	wg.Wait()
	winners := 0
	for i, s := range statuses {
		switch s {
		case http.StatusSeeOther:
			winners++
		case http.StatusConflict, http.StatusGone:
			if !strings.Contains(bodies[i], "<h1>") {
				t.Errorf("loser %d got a page without an explanation:\n%s", i, bodies[i])
			}
		default:
			t.Errorf("POST %d: status %d\n%s", i, s, bodies[i])
		}
	}
	if winners != 1 {
		t.Fatalf("%d POSTs won, want exactly 1 (statuses %v)", winners, statuses)
	}
	st.proveVerifiedActive("race@example.com")
	st.proveMember(org, inv.IdentityID, "member")
	page, _ := st.srv.Orgs.Store().Members(context.Background(), org.ID, "", 100)
	if page.Total != 1 {
		t.Fatalf("%d memberships", page.Total)
	}
}

func TestFormsRefuseMissingOrForgedCSRF(t *testing.T) {
	st := startStack(t, "kratos_settings")
	org := st.org("Csrf Corp")
	st.invite(org, "csrf@example.com", "member")
	link := st.link(1)
	c := client(t)
	_, body := get(t, c, link)
	token := csrfRE.FindStringSubmatch(body)[1]

	other := client(t) // another browser: has no cookie
	for name, tc := range map[string]struct {
		c    *http.Client
		form url.Values
	}{
		"missing token":            {c, url.Values{"name.first": {"A"}}},
		"forged token":             {c, url.Values{"csrf_token": {"AAAA" + token[4:]}, "name.first": {"A"}}},
		"token without its cookie": {other, url.Values{"csrf_token": {token}, "name.first": {"A"}}},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := post(t, tc.c, link, tc.form)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Please try again") {
				t.Fatalf("%d\n%s", resp.StatusCode, body)
			}
		})
	}
	// A token is bound to its invitation: it does not work for another one.
	st.invite(org, "second@example.com", "member")
	resp, _ := post(t, c, st.link(2), url.Values{"csrf_token": {token}, "name.first": {"A"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a token of another invitation: %d", resp.StatusCode)
	}
	// A cross-site Origin is refused even with a valid token.
	req, _ := http.NewRequest(http.MethodPost, link, strings.NewReader(url.Values{"csrf_token": {token}, "name.first": {"A"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example.net")
	r2, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site origin: %d", r2.StatusCode)
	}
	if st.kratosIdentity("csrf@example.com")["state"] != "inactive" {
		t.Fatal("a refused POST changed the identity")
	}
}

func TestOversizedAndBadFields(t *testing.T) {
	st := startStack(t, "kratos_settings")
	org := st.org("Sizes")
	st.invite(org, "sizes@example.com", "member")
	link := st.link(1)
	c := client(t)
	_, body := get(t, c, link)
	token := csrfRE.FindStringSubmatch(body)[1]
	for name, form := range map[string]url.Values{
		"required field missing": {"csrf_token": {token}},
		"field too long":         {"csrf_token": {token}, "name.first": {strings.Repeat("x", 101)}},
		"control characters":     {"csrf_token": {token}, "name.first": {"Bad\x07Bell"}},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := post(t, c, link, form)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `class="field-error"`) {
				t.Fatalf("%d\n%s", resp.StatusCode, body)
			}
		})
	}
	// A body over the limit is refused before the form is read.
	resp, _ := post(t, c, link, url.Values{"csrf_token": {token}, "name.first": {strings.Repeat("x", 2<<20)}})
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("2 MiB form: %d", resp.StatusCode)
	}
	if st.kratosIdentity("sizes@example.com")["state"] != "inactive" {
		t.Fatal("a refused form changed the identity")
	}
}

// Markup in names is escaped on every page and in every mail.
func TestMarkupIsEscapedEverywhere(t *testing.T) {
	st := startStack(t, "kratos_settings")
	org := st.org(`<script>alert("org")</script>`)
	if _, _, err := st.srv.Invites.Invite(context.Background(), org.ID, invitationWithInviter("xss@example.com", `<img src=x onerror=alert(1)>`)); err != nil {
		t.Fatal(err)
	}
	link := st.link(1)
	mail := st.resend.Emails()[0]
	for where, text := range map[string]string{"mail html": mail.HTML} {
		if strings.Contains(text, "<script>alert") || strings.Contains(text, "<img src=x") {
			t.Fatalf("%s carries raw markup", where)
		}
	}
	c := client(t)
	resp, body := get(t, c, link)
	if resp.StatusCode != http.StatusOK || strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
		t.Fatalf("accept page carries raw markup (%d)", resp.StatusCode)
	}
	if !strings.Contains(body, "&lt;script&gt;alert(&#34;org&#34;)&lt;/script&gt;") {
		t.Fatalf("the organization name is not shown escaped:\n%s", body)
	}
	token := csrfRE.FindStringSubmatch(body)[1]
	_, body = post(t, c, link, url.Values{"csrf_token": {token}, "name.first": {`<b onmouseover=x>Eve</b>`}})
	if strings.Contains(body, "<b onmouseover") {
		t.Fatal("a submitted value was echoed unescaped")
	}
}

func TestPageHeaders(t *testing.T) {
	st := startStack(t, "kratos_settings")
	org := st.org("Headers")
	st.invite(org, "headers@example.com", "member")
	for _, u := range []string{st.link(1), st.base + "/register", st.base + "/invitations/accept/0nope", st.base + "/orgs/" + org.Slug} {
		resp, body := get(t, client(t), u)
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'", "script-src 'nonce-"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", u, csp, want)
			}
		}
		if h.Get("Referrer-Policy") != "no-referrer" || h.Get("Cache-Control") != "no-store" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: headers %v", u, h)
		}
		if strings.Contains(body, "https://") && strings.Contains(body, "<link") {
			t.Errorf("%s loads an external asset", u)
		}
	}
	resp, _ := get(t, client(t), st.base+"/invitations/accept/0nope")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("forged token: %d", resp.StatusCode)
	}
	// The access log never holds the token: routes are logged by pattern.
}
