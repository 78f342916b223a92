package invites

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/templates"
	"github.com/kratos-orgs/kratos-orgs/textcheck"
)

// hostileNames are names people may type, with whether the name rule
// refuses them at input (400 invalid_name).
var hostileNames = []struct {
	name    string
	in      string
	refused bool
}{
	{"issue 10's registration", "Spam Co <b>Click http://evil.example/login</b>", true},
	{"anchor markup", `<a href="https://evil.example">Acme</a>`, true},
	{"script markup", `<script>alert(1)</script>`, false},
	{"img markup", `<img src=x onerror=alert(1)>`, false},
	{"RLO", "Acme \u202emoc.evil", true},
	{"zero-width space", "pay\u200bpal", true},
	{"10 kB", strings.Repeat("Acme ", 2048), true},
	{"header injection", "Acme\r\nBcc: victim@example.com", true},
	{"www", "Acme www.evil.example", true},
	{"full-width host", "ｅｖｉｌ．ｃｏｍ", true},
	{"bare host", "Support at paypal.com", true},
	{"display-name injection", `"Ada" <ada@evil.example>`, true},
	{"quotes and angle brackets", `Ada "The Countess" <Lovelace>`, false},
	{"plain", "Ada Lovelace", false},
}

func TestHostileNamesAreRefusedAtInput(t *testing.T) {
	h := newHarness(t)
	for i, tt := range hostileNames {
		t.Run(tt.name, func(t *testing.T) {
			_, orgErr := orgs.CheckName(tt.in)
			_, _, invErr := h.invite(fmt.Sprintf("hostile%d@example.com", i), func(r *InviteRequest) { r.Inviter = &Inviter{Name: tt.in} })
			for what, err := range map[string]error{"organization name": orgErr, "inviter name": invErr} {
				if !tt.refused {
					if err != nil {
						t.Fatalf("%s %q refused: %v", what, tt.in, err)
					}
					continue
				}
				if e, ok := apperr.As(err); !ok || e.Kind != apperr.Invalid || e.Code != "invalid_name" {
					t.Fatalf("%s %q: %v, want 400 invalid_name", what, tt.in, err)
				}
			}
		})
	}
	// Refused invitations wrote nothing and queue no mail.
	h.drain()
	page, err := h.svc.List(h.ctx, h.org.ID, Filter{Status: "all", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for _, tt := range hostileNames {
		if !tt.refused {
			accepted++
		}
	}
	if page.Total != int64(accepted) || len(h.resend.Emails()) != accepted {
		t.Fatalf("%d invitations and %d mails, want %d of each", page.Total, len(h.resend.Emails()), accepted)
	}
	t.Logf("%d hostile names, %d refused at input", len(hostileNames), len(hostileNames)-accepted)
}

var hrefPattern = regexp.MustCompile(`href="([^"]*)"`)

// TestEveryMailTemplateWithHostileNames renders every mail set, for a new
// and an existing person, with each hostile name as the organization's and
// the inviter's: either as typed (when the rule accepts it) or as stored
// before the rule existed (what the mailer makes of it). No mail may carry
// a link but the accept or login link, a subject more than one line, or an
// invisible or direction-changing character.
func TestEveryMailTemplateWithHostileNames(t *testing.T) {
	t.Parallel()
	render, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	m := &Mailer{fromName: "Example"}
	const accept = "https://orgs.example.com/invitations/accept/0TOKEN"
	const login = "https://auth.example.com/self-service/login/browser"
	renders := 0
	for _, tt := range hostileNames {
		for _, set := range templates.MailSets {
			for _, existing := range []bool{false, true} {
				name := tt.in
				if clean, p := textcheck.Check(tt.in, orgs.MaxNameLen, true); p == nil {
					name = clean
				}
				// What the mailer shows, whether the name came through the
				// rule or was stored before it.
				data := templates.MailData{
					Organization: templates.Organization{ID: "org_x", Slug: "acme", Name: shownOrgName(name, "acme")},
					Inviter:      templates.Person{Name: shownName(name, MaxNameLen), Email: "ada@example.com"},
					Invitee:      templates.Invitee{Email: "grace@example.com", Existing: existing},
					Role:         "member", AcceptURL: accept, LoginURL: login, ExpiresAt: time.Now(),
				}
				got, err := render.Mail(set, data)
				if err != nil {
					t.Fatal(err)
				}
				renders++
				where := tt.name + "/" + set
				checkMail(t, where, got, accept, login, data)
				from := m.fromDisplayName(data.Inviter.Name)
				if strings.ContainsAny(from, "\r\n<>\"") || textcheck.LooksLikeLink(from) || len([]rune(from)) > maxFromName+len(" via Example") {
					t.Errorf("%s: From display name %q", where, from)
				}
			}
		}
	}
	t.Logf("%d renders checked", renders)
}

func checkMail(t *testing.T, where string, got templates.Mail, accept, login string, data templates.MailData) {
	t.Helper()
	if strings.ContainsAny(got.Subject, "\r\n") || strings.ContainsFunc(got.Subject, unicode.IsControl) {
		t.Errorf("%s: subject not one line: %q", where, got.Subject)
	}
	for _, m := range hrefPattern.FindAllStringSubmatch(got.HTML, -1) {
		if m[1] != accept && m[1] != login {
			t.Errorf("%s: link %q in the HTML", where, m[1])
		}
	}
	if strings.Contains(got.HTML, "<script") || strings.Contains(got.HTML, "<img") || strings.Contains(got.HTML, "<b>") {
		t.Errorf("%s: unescaped markup in the HTML:\n%s", where, got.HTML)
	}
	for _, part := range []string{got.Subject, got.Text, got.HTML} {
		if strings.ContainsFunc(part, func(r rune) bool { return unicode.Is(unicode.Cf, r) }) {
			t.Errorf("%s: format character in the mail", where)
		}
		// Once the links kratos-orgs put there and the addresses of the two
		// people are taken out, nothing a mail client would link is left.
		rest := part
		for _, known := range []string{accept, login, data.Invitee.Email, data.Inviter.Email} {
			rest = strings.ReplaceAll(rest, known, " ")
		}
		rest = strings.ReplaceAll(rest, "www.w3.org", " ") // none today, but a doctype may carry it
		if textcheck.LooksLikeLink(stripTags(rest)) {
			t.Errorf("%s: a user-supplied link in:\n%s", where, rest)
		}
	}
}

var tagPattern = regexp.MustCompile(`<[^>]*>`)

func stripTags(s string) string { return tagPattern.ReplaceAllString(s, " ") }

func TestFromAndReplyToComeFromTheCheckedInviter(t *testing.T) {
	h := newHarness(t)
	verified := h.ids.AddWith("ada@example.com", "Ada Lovelace", true)
	unverified := h.ids.AddWith("mallory@example.com", "Mallory", false)
	// A name set in Kratos never went through the rule: the mailer checks it.
	hostile := h.ids.AddWith("eve@example.com", "Eve www.evil.example", true)
	long := h.ids.AddWith("long@example.com", strings.Repeat("Lovelace ", 20), true)
	quoted := h.ids.AddWith("quoted@example.com", `Ada "The Countess" <Lovelace>`, true)
	tests := []struct {
		name, inviterID, email, from, replyTo string
	}{
		{"verified inviter", verified.ID, "a@example.com", "Ada Lovelace via Example", "ada@example.com"},
		{"unverified inviter: no Reply-To", unverified.ID, "b@example.com", "Mallory via Example", ""},
		{"hostile Kratos name: dropped", hostile.ID, "c@example.com", "Example", "eve@example.com"},
		{"long name: cut", long.ID, "d@example.com", strings.TrimSpace(strings.Repeat("Lovelace ", 20)[:maxFromName-1]) + "… via Example", "long@example.com"},
		{"quotes and brackets leave the From", quoted.ID, "e@example.com", "Ada The Countess Lovelace via Example", "quoted@example.com"},
	}
	for i, tt := range tests {
		h.mustInvite(tt.email, func(r *InviteRequest) { r.Inviter = &Inviter{ID: tt.inviterID} })
		h.drain()
		emails := h.resend.Emails()
		if len(emails) != i+1 {
			t.Fatalf("%s: %d mails", tt.name, len(emails))
		}
		e := emails[i]
		from, err := mail.ParseAddress(e.From)
		if err != nil || from.Name != tt.from || from.Address != "invites@example.com" || e.ReplyTo != tt.replyTo {
			t.Errorf("%s: From %q (%v) Reply-To %q, want %q %q", tt.name, e.From, err, e.ReplyTo, tt.from, tt.replyTo)
		}
		if tt.replyTo == "" && strings.Contains(e.Text, "mallory@example.com") {
			t.Errorf("%s: the unverified address is shown in the body", tt.name)
		}
		if strings.Contains(e.Text, "evil") || strings.Contains(e.HTML, "evil") {
			t.Errorf("%s: the hostile Kratos name reached the mail", tt.name)
		}
	}
}

func TestLegacyHostileOrganizationNameIsNotMailed(t *testing.T) {
	h := newHarness(t)
	// Stored straight into Redis, as before the name rule existed.
	evil, err := h.orgs.Create(h.ctx, orgs.Organization{Name: "Click http://evil.example/login", Slug: "legacy", State: orgs.StateActive}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.svc.Invite(h.ctx, evil.ID, InviteRequest{Email: "x@example.com"}); err != nil {
		t.Fatal(err)
	}
	h.drain()
	e := h.resend.Emails()[0]
	if strings.Contains(e.Subject+e.Text+e.HTML, "evil") || !strings.Contains(e.Subject, "legacy") {
		t.Fatalf("subject %q text:\n%s", e.Subject, e.Text)
	}
}
