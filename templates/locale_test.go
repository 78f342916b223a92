package templates

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// The mail's locale: the invitation's, else the organization's, else the
// configured default, else English; a candidate the templates do not
// have is skipped, a regional one uses its language.
func TestResolve(t *testing.T) {
	t.Parallel()
	plain := mustNew(t, "")
	german, err := Load(Options{DefaultLocale: "de"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                  string
		r                     *Renderer
		invitation, org, want string
	}{
		{"nothing set: English", plain, "", "", "en"},
		{"nothing set: the configured default", german, "", "", "de"},
		{"the invitation's", plain, "de", "", "de"},
		{"the invitation's over the organization's", german, "en", "de", "en"},
		{"the organization's", plain, "", "de", "de"},
		{"the organization's over the config's", german, "", "en", "en"},
		{"a region uses its language", plain, "de-AT", "", "de"},
		{"unsupported invitation locale: the organization's", plain, "fr", "de", "de"},
		{"unsupported everywhere: the config's", german, "fr", "ja", "de"},
		{"unsupported everywhere: English", plain, "pt-BR", "", "en"},
		{"malformed is skipped", plain, "not a tag", "de", "de"},
		{"English variant", german, "en-GB", "", "en"},
	} {
		if got := tc.r.Resolve(tc.invitation, tc.org); got != tc.want {
			t.Errorf("%s: Resolve(%q, %q) = %q, want %q", tc.name, tc.invitation, tc.org, got, tc.want)
		}
	}
}

func TestNegotiate(t *testing.T) {
	t.Parallel()
	plain := mustNew(t, "")
	german, err := Load(Options{DefaultLocale: "de"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		r      *Renderer
		header string
		want   string
	}{
		{plain, "", "en"},
		{german, "", "de"},
		{plain, "de", "de"},
		{plain, "de-DE,de;q=0.9,en;q=0.8", "de"},
		{plain, "en;q=0.5, de;q=0.9", "de"},
		{plain, "de;q=0.4, en;q=0.6", "en"},
		{plain, "fr-FR, fr;q=0.9, de;q=0.3", "de"},
		{plain, "fr, ja", "en"},
		{german, "fr, ja", "de"},
		{german, "en-US", "en"},
		{plain, "*", "en"},
		{plain, "de;q=garbage", "en"},
	} {
		if got := tc.r.Negotiate(tc.header); got != tc.want {
			t.Errorf("Negotiate(%q) with default %s = %q, want %q", tc.header, tc.r.DefaultLocale(), got, tc.want)
		}
	}
}

func TestParseLocale(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "", "de": "de", "DE": "de", "de-at": "de-AT", "pt_BR": "pt-BR", "en-US": "en-US"} {
		got, err := ParseLocale("locale", in)
		if err != nil || got != want {
			t.Errorf("ParseLocale(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"german", "x", "de-", "123", "und", strings.Repeat("de-", 20) + "de"} {
		_, err := ParseLocale("locale", in)
		if apperr.CodeOf(err) != "invalid_locale" || apperr.KindOf(err) != apperr.Invalid {
			t.Errorf("ParseLocale(%q) err = %v, want invalid_locale", in, err)
		}
	}
}

func TestDefaultLocaleMustBeSupported(t *testing.T) {
	t.Parallel()
	if _, err := Load(Options{DefaultLocale: "fr"}); err == nil || !strings.Contains(err.Error(), "en, de") {
		t.Errorf("Load(default fr) err = %v, want one listing en, de", err)
	}
	r, err := Load(Options{DefaultLocale: "de-CH"})
	if err != nil || r.DefaultLocale() != "de" {
		t.Errorf("Load(default de-CH) = %v, %v; want de", r, err)
	}
}

// The shipped German locale is complete: every mail template and every
// message key (this is what `kratos-orgs templates check` runs).
func TestShippedLocalesAreComplete(t *testing.T) {
	t.Parallel()
	r := mustNew(t, "")
	if got := r.Locales(); !slices.Equal(got, []string{"en", "de"}) {
		t.Errorf("Locales() = %q, want [en de]", got)
	}
	if miss := r.Missing(); len(miss) > 0 {
		t.Errorf("missing translations: %v", miss)
	}
}

func TestMailInGerman(t *testing.T) {
	t.Parallel()
	r := mustNew(t, "")
	d := SampleMailData("invitation")
	d.Locale = "de"
	m, err := r.Mail("invitation", d)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Ada Lovelace hat Sie zu Acme & Co eingeladen" {
		t.Errorf("subject = %q", m.Subject)
	}
	for _, want := range []string{"Einladung annehmen", "läuft am 08.01.2030 ab", d.AcceptURL} {
		if !strings.Contains(m.Text, want) || !strings.Contains(m.HTML, want) {
			t.Errorf("German mail lacks %q:\ntext: %s\nhtml: %s", want, m.Text, m.HTML)
		}
	}
	if !strings.Contains(m.HTML, `<html lang="de">`) {
		t.Errorf("html is not marked German: %s", m.HTML)
	}
}

// A locale added by the override directory, with only some files: the
// rest falls back to English, and Missing names each gap.
func TestPartialLocaleFallsBackAndIsReported(t *testing.T) {
	t.Parallel()
	dir := overrides(t, map[string]string{
		"invitation_subject.fr.txt": "Rejoignez {{.Organization.Name}}",
		"messages.fr.json":          `{"join.title": "Rejoindre %s", "format.date": "02/01/2006"}`,
	})
	r := mustNew(t, dir)
	if got := r.Locales(); !slices.Equal(got, []string{"en", "de", "fr"}) {
		t.Fatalf("Locales() = %q", got)
	}
	d := SampleMailData("invitation")
	d.Locale = "fr"
	m, err := r.Mail("invitation", d)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Rejoignez Acme & Co" || !strings.Contains(m.Text, "Accept the invitation") {
		t.Errorf("fr mail: subject %q, text %q; want the French subject and the English body", m.Subject, m.Text)
	}
	miss := r.Missing()["fr"]
	for _, want := range []string{"invitation_body.txt", "invitation_body.html", "reminder_subject.txt", "messages.fr.json: welcome.title"} {
		want = strings.Replace(want, ".txt", ".fr.txt", 1)
		want = strings.Replace(want, "body.html", "body.fr.html", 1)
		if !slices.Contains(miss, want) {
			t.Errorf("Missing()[fr] lacks %q: %q", want, miss)
		}
	}
	if slices.Contains(miss, "invitation_subject.fr.txt") || slices.Contains(miss, "messages.fr.json: join.title") {
		t.Errorf("Missing()[fr] lists what fr has: %q", miss)
	}
	var b bytes.Buffer
	if err := r.Page(&b, "join.html", SamplePageData("join.html", "fr")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "<h1>Rejoindre Acme &amp; Co</h1>") || !strings.Contains(b.String(), "Signed in as") {
		t.Errorf("fr page: want the French title and English for the rest:\n%s", b.String())
	}
}

func TestOverrideLocaleNames(t *testing.T) {
	t.Parallel()
	for name, wantErr := range map[string]string{
		"invitation_subject.xx-yy-zz.txt": "names no locale",
		"invitation_subject.DE.txt":       "names no locale",
		"hook_invite_only.de.txt":         "overrides no template",
		"invitation_subject.en.txt":       "names English",
		"nope.de.txt":                     "overrides no template",
		"messages.de.json":                "",
		"accept.de.html":                  "",
	} {
		content := `{{define "title"}}x{{end}}{{define "content"}}x{{end}}`
		if strings.HasSuffix(name, ".json") {
			content = `{"join.title": "Beitreten: %s"}`
		}
		_, err := New(overrides(t, map[string]string{name: content}))
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("%s: err = %v, want %q", name, err, wantErr)
		}
	}
	// A key English does not have is a typo, not a message.
	if _, err := New(overrides(t, map[string]string{"messages.de.json": `{"join.titel": "x"}`})); err == nil || !strings.Contains(err.Error(), "join.titel") {
		t.Errorf("unknown key: err = %v", err)
	}
}

func TestPagesInGerman(t *testing.T) {
	t.Parallel()
	r := mustNew(t, "")
	var b bytes.Buffer
	if err := r.Page(&b, "accept.html", SamplePageData("accept.html", "de")); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{`<html lang="de">`, "<title>Acme &amp; Co beitreten</title>",
		"<strong>Ada Lovelace</strong> hat Sie eingeladen, <strong>Acme &amp; Co</strong> als <strong>admin</strong> beizutreten.",
		"Konto anlegen und beitreten"} {
		if !strings.Contains(out, want) {
			t.Errorf("German accept page lacks %q:\n%s", want, out)
		}
	}
	// Names stay escaped inside a bold argument.
	page := SamplePageData("join.html", "de").(JoinPage)
	page.Inviter = `<script>alert(1)</script>`
	b.Reset()
	if err := r.Page(&b, "join.html", page); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<script>alert") || !strings.Contains(b.String(), "&lt;script&gt;") {
		t.Errorf("inviter not escaped:\n%s", b.String())
	}
}

func TestRenderCatalogue(t *testing.T) {
	t.Parallel()
	r := mustNew(t, "")
	var b bytes.Buffer
	if err := r.Render(&b, "messages.de.json"); err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["join.title"] != "%s beitreten" || r.T("de", "join.title", "X") != "X beitreten" || r.T("xx", "join.title", "X") != "Join X" {
		t.Errorf("catalogue: %q / %q", m["join.title"], r.T("de", "join.title", "X"))
	}
}
