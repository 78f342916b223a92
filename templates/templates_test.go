package templates

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func mustNew(t *testing.T, dir string) *Renderer {
	t.Helper()
	r, err := New(dir)
	if err != nil {
		t.Fatalf("New(%q): %v", dir, err)
	}
	return r
}

// overrides writes files into a fresh directory and returns it.
func overrides(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func embeddedNames(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, dir := range dirs {
		entries, err := fs.ReadDir(embedded, dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names
}

func TestNewParsesEveryEmbeddedTemplate(t *testing.T) {
	t.Parallel()
	r := mustNew(t, "")
	names := r.Names()
	if want := embeddedNames(t); !slices.Equal(names, want) {
		t.Errorf("Names() = %q, want %q", names, want)
	}
	// Three files per mail set, plus the layout and the pages.
	pages := []string{"accept.html", "join.html", "kratos_flow.html", "message.html", "orgadmin.html", "register.html", "welcome.html"}
	// English and German mail and message catalogues.
	const hookMessages, locales = 8, 2
	if want := locales*(3*len(MailSets)+1) + 1 + len(pages) + hookMessages; len(names) != want {
		t.Errorf("%d templates, want %d", len(names), want)
	}
	for _, p := range pages {
		if !r.HasPage(p) {
			t.Errorf("HasPage(%s) = false", p)
		}
	}
	for _, set := range MailSets {
		for _, suffix := range []string{"_subject.txt", "_body.txt", "_body.html"} {
			name := set + suffix
			if got := r.Sources[name]; !strings.HasPrefix(got, "embedded:mail/"+name) {
				t.Errorf("Sources[%q] = %q, want the embedded file", name, got)
			}
		}
	}
	if !r.HasPage("message.html") {
		t.Error("HasPage(message.html) = false")
	}
	if r.HasPage("layout.html") || r.HasPage("nope.html") {
		t.Error("HasPage is true for the layout or an unknown page")
	}
}

func TestMailRendersSampleData(t *testing.T) {
	t.Parallel()
	r := mustNew(t, "")
	for _, set := range MailSets {
		t.Run(set, func(t *testing.T) {
			t.Parallel()
			d := SampleMailData(set)
			m, err := r.Mail(set, d)
			if err != nil {
				t.Fatalf("Mail: %v", err)
			}
			if m.Subject == "" || strings.ContainsAny(m.Subject, "\r\n") {
				t.Errorf("subject %q is empty or not one line", m.Subject)
			}
			if !strings.Contains(m.Subject, "Acme & Co") {
				t.Errorf("subject %q lacks the organization's name", m.Subject)
			}
			if !strings.Contains(m.Text, d.AcceptURL) || !strings.Contains(m.HTML, d.AcceptURL) {
				t.Errorf("the accept URL is missing:\ntext: %s\nhtml: %s", m.Text, m.HTML)
			}
			if !strings.Contains(m.Text, "January 8, 2030") {
				t.Errorf("text lacks the expiry date: %s", m.Text)
			}
			// HTML escapes the ampersand of the sample name; text does not.
			if !strings.Contains(m.HTML, "Acme &amp; Co") || strings.Contains(m.HTML, "Acme & Co") {
				t.Errorf("html does not escape the organization's name: %s", m.HTML)
			}
			if !strings.Contains(m.Text, "Acme & Co") {
				t.Errorf("text lacks the plain organization's name: %s", m.Text)
			}
		})
	}
}

func TestMailUnknownSet(t *testing.T) {
	t.Parallel()
	r := mustNew(t, "")
	if _, err := r.Mail("welcome", SampleMailData("welcome")); err == nil || !strings.Contains(err.Error(), "welcome") {
		t.Errorf("Mail(welcome) err = %v, want an error naming the set", err)
	}
}

func TestSubjectIsOneLine(t *testing.T) {
	t.Parallel()
	dir := overrides(t, map[string]string{
		"invitation_subject.txt": "Join\n  {{.Organization.Name}}\r\n\tnow\n\n",
	})
	r := mustNew(t, dir)
	m, err := r.Mail("invitation", SampleMailData("invitation"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Join Acme & Co now" {
		t.Errorf("subject = %q, want %q", m.Subject, "Join Acme & Co now")
	}

	// A name smuggling a header stays on the subject line.
	d := SampleMailData("invitation")
	d.Organization.Name = "Evil\r\nBcc: victim@example.com"
	m, err = mustNew(t, "").Mail("invitation", d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		t.Errorf("subject %q spans lines", m.Subject)
	}
}

func TestHTMLEscapesOrganizationName(t *testing.T) {
	t.Parallel()
	r := mustNew(t, "")
	const name = `<script>alert("x")</script>`
	for _, set := range MailSets {
		d := SampleMailData(set)
		d.Organization.Name = name
		d.Inviter.Name = "<b>Mallory</b>"
		m, err := r.Mail(set, d)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(m.HTML, "<script>") || strings.Contains(m.HTML, "<b>Mallory") {
			t.Errorf("%s: html holds raw markup from data: %s", set, m.HTML)
		}
		if !strings.Contains(m.HTML, "&lt;script&gt;") {
			t.Errorf("%s: html lacks the escaped name: %s", set, m.HTML)
		}
		// The text part is plain: the name appears as written.
		if !strings.Contains(m.Text, name) {
			t.Errorf("%s: text does not hold the name verbatim: %s", set, m.Text)
		}
		if strings.Contains(m.Text, "&lt;") {
			t.Errorf("%s: text is HTML-escaped: %s", set, m.Text)
		}
	}
}

func TestHTMLRefusesJavaScriptAcceptURL(t *testing.T) {
	t.Parallel()
	d := SampleMailData("invitation")
	d.AcceptURL = "javascript:alert(1)"
	m, err := mustNew(t, "").Mail("invitation", d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(m.HTML, `href="javascript:`) {
		t.Errorf("html links to a javascript: URL: %s", m.HTML)
	}
}

func TestInvitationWordingForExistingAndNewInvitees(t *testing.T) {
	t.Parallel()
	r := mustNew(t, "")
	d := SampleMailData("invitation")
	d.Invitee.Existing = false
	fresh, err := r.Mail("invitation", d)
	if err != nil {
		t.Fatal(err)
	}
	d.Invitee.Existing = true
	existing, err := r.Mail("invitation", d)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Text == existing.Text {
		t.Fatal("invitation_body.txt reads the same for existing and new invitees")
	}
	if !strings.Contains(existing.Text, "You will be asked to sign in with grace@example.com.") {
		t.Errorf("existing invitee's text:\n%s", existing.Text)
	}
	if !strings.Contains(fresh.Text, "You will choose how to sign in when you accept.") || strings.Contains(fresh.Text, "sign in with grace@") {
		t.Errorf("new invitee's text:\n%s", fresh.Text)
	}
}

func TestInviterWithoutName(t *testing.T) {
	t.Parallel()
	d := SampleMailData("invitation")
	d.Inviter = Person{}
	m, err := mustNew(t, "").Mail("invitation", d)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "You are invited to join Acme & Co" {
		t.Errorf("subject = %q", m.Subject)
	}
	if !strings.Contains(m.Text, "You have been invited to join Acme & Co as admin.") {
		t.Errorf("text:\n%s", m.Text)
	}
}

func TestOverrideReplacesTemplate(t *testing.T) {
	t.Parallel()
	dir := overrides(t, map[string]string{
		"invitation_body.txt":  "Custom text for {{.Organization.Name}} ({{.Context.team}})",
		"invitation_body.html": "<p>Custom {{.Organization.Name}}</p>",
		"message.html":         `{{define "title"}}T:{{.Title}}{{end}}{{define "content"}}<div class="custom">{{.Title}}</div>{{end}}`,
		".hidden":              "ignored: dot files are skipped",
	})
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := mustNew(t, dir)
	m, err := r.Mail("invitation", SampleMailData("invitation"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Text != "Custom text for Acme & Co (Platform)" {
		t.Errorf("text = %q", m.Text)
	}
	if m.HTML != "<p>Custom Acme &amp; Co</p>" {
		t.Errorf("html = %q", m.HTML)
	}
	// The subject is still the embedded one.
	if m.Subject != "Ada Lovelace invited you to join Acme & Co" {
		t.Errorf("subject = %q", m.Subject)
	}
	if got, want := r.Sources["invitation_body.txt"], filepath.Join(dir, "invitation_body.txt"); got != want {
		t.Errorf("Sources = %q, want %q", got, want)
	}
	if got := r.Sources["invitation_subject.txt"]; got != "embedded:mail/invitation_subject.txt" {
		t.Errorf("Sources of a template not overridden = %q", got)
	}

	var page bytes.Buffer
	if err := r.Page(&page, "message.html", MessagePage{Title: "Gone <now>"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), `<div class="custom">Gone &lt;now&gt;</div>`) ||
		!strings.Contains(page.String(), "<title>T:Gone &lt;now&gt;</title>") {
		t.Errorf("page override not used or not escaped:\n%s", page.String())
	}
	// The layout is still the embedded one.
	if !strings.Contains(page.String(), `<meta name="referrer" content="no-referrer">`) {
		t.Errorf("page lacks the layout:\n%s", page.String())
	}
}

func TestOverrideLayout(t *testing.T) {
	t.Parallel()
	dir := overrides(t, map[string]string{
		"layout.html": `<html><title>{{block "title" .}}x{{end}}</title><body class="brand">{{block "content" .}}{{end}}</body></html>`,
	})
	r := mustNew(t, dir)
	var b bytes.Buffer
	if err := r.Page(&b, "message.html", SamplePageData("message.html", "")); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), `<html><title>This invitation has expired</title><body class="brand">`) {
		t.Errorf("layout override not used:\n%s", b.String())
	}
	// The preview of layout.html shows the override too.
	var preview bytes.Buffer
	if err := r.Render(&preview, "layout.html"); err != nil {
		t.Fatal(err)
	}
	if preview.String() != b.String() {
		t.Errorf("Render(layout.html) = %q, want the sample page in the overriding layout %q", preview.String(), b.String())
	}
}

func TestOverrideUnknownNameFails(t *testing.T) {
	t.Parallel()
	dir := overrides(t, map[string]string{"invitation_subjet.txt": "typo"})
	_, err := New(dir)
	if err == nil {
		t.Fatal("a misspelt override was accepted")
	}
	for _, want := range []string{filepath.Join(dir, "invitation_subjet.txt"), "invitation_subject.txt"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestOverrideDirMissing(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "absent")
	if _, err := New(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("err = %v, want an error naming %s", err, dir)
	}
}

func TestBrokenOverrideFailsStartUp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, content string
		line                string
	}{
		{"unclosed action in subject", "invitation_subject.txt", "Join {{.Organization.Name", ":1:"},
		{"unknown field in text body", "invitation_body.txt", "Hello {{.Nope}}", ":1:"},
		{"unknown field on line 3", "reminder_body.txt", "Hello,\n\n{{.Organization.Nope}}\n", ":3:"},
		{"missing context key", "activation_body.txt", "{{.Context.missing}}", ":1:"},
		{"unknown function", "reminder_subject.txt", "{{shout .Role}}", ":1:"},
		{"unclosed if in html", "invitation_body.html", "<p>\n{{if .Role}}x", ":2:"},
		{"unknown field in html", "activation_body.html", "<p>{{.Nope}}</p>", ":1:"},
		{"unknown field in page", "message.html", `{{define "content"}}{{.Nope}}{{end}}`, ":1:"},
		{"broken layout", "layout.html", "<html>{{block \"content\" .}}", ":1:"},
		// Only the existing-invitee branch uses the field: the self-check
		// renders both.
		{"error in the existing branch", "invitation_body.txt", "{{if .Invitee.Existing}}{{.Invitee.Nope}}{{end}}", ":1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := overrides(t, map[string]string{tt.file: tt.content})
			r, err := New(dir)
			if err == nil {
				t.Fatalf("broken %s accepted", tt.file)
			}
			if r != nil {
				t.Error("New returned a renderer along with its error")
			}
			for _, want := range []string{filepath.Join(dir, tt.file), tt.line} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestRenderEveryName(t *testing.T) {
	t.Parallel()
	r := mustNew(t, "")
	for _, name := range r.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			if err := r.Render(&b, name); err != nil {
				t.Fatalf("Render(%q): %v", name, err)
			}
			if b.Len() == 0 {
				t.Fatalf("Render(%q) wrote nothing", name)
			}
			out := b.String()
			switch {
			case strings.HasSuffix(name, "_subject.txt"):
				if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
					t.Errorf("subject preview %q is not one line", out)
				}
			case strings.HasSuffix(name, ".html"):
				if !strings.Contains(out, "<html") {
					t.Errorf("html preview lacks <html: %s", out)
				}
			case strings.HasSuffix(name, "_body.txt"):
				if strings.Contains(out, "<") {
					t.Errorf("text preview holds markup: %s", out)
				}
			}
		})
	}
}

func TestRenderPicksTheRightPart(t *testing.T) {
	t.Parallel()
	r := mustNew(t, "")
	m, err := r.Mail("reminder", SampleMailData("reminder"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"reminder_subject.txt": m.Subject + "\n",
		"reminder_body.txt":    m.Text,
		"reminder_body.html":   m.HTML,
	} {
		var b bytes.Buffer
		if err := r.Render(&b, name); err != nil {
			t.Fatal(err)
		}
		if b.String() != want {
			t.Errorf("Render(%q) = %q, want %q", name, b.String(), want)
		}
	}
}

func TestRenderUnknownName(t *testing.T) {
	t.Parallel()
	r := mustNew(t, "")
	for _, name := range []string{"nope.txt", "", "welcome_subject.txt", "message", "invitation_body.htm", "invitation_nope.txt", "reminder_"} {
		var b bytes.Buffer
		err := r.Render(&b, name)
		if err == nil {
			t.Errorf("Render(%q) succeeded", name)
			continue
		}
		if !strings.Contains(err.Error(), "invitation_subject.txt") {
			t.Errorf("Render(%q) error %q does not list the known names", name, err)
		}
		if b.Len() != 0 {
			t.Errorf("Render(%q) wrote %q before failing", name, b.String())
		}
	}
	if err := r.Page(&bytes.Buffer{}, "nope.html", nil); err == nil {
		t.Error("Page of an unknown page succeeded")
	}
}

func TestHookMessagesAreOneLineAndOverridable(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hook_not_invited.txt"), []byte("Nope,\n{{.Email}}\nis not on the list.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := mustNew(t, dir)
	if got := r.HookMessage("not_invited", HookData{Email: "a@b.io"}); got != "Nope, a@b.io is not on the list." {
		t.Fatalf("override = %q", got)
	}
	if got := r.HookMessage("domain_not_allowed", HookData{Domains: "example.com, example.org"}); got != "Sign-up is limited to addresses at example.com, example.org." {
		t.Fatalf("default = %q", got)
	}
}
