package invites

import (
	"strings"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// The mail's locale through the Resend stand-in: the invitation's own
// (stored canonical), else the organization's default, else English.
func TestInvitationMailLocale(t *testing.T) {
	h := newHarness(t)
	german := h.newOrgWithLocale("Deutsche Firma", "de")
	for _, tc := range []struct {
		name, org, locale, email string
		wantStored, wantSubject  string
	}{
		{"the invitation's", h.org.ID, "de-de", "anna@example.com", "de-DE", "Ada Lovelace hat Sie zu Acme & Co eingeladen"},
		{"the organization's", german.ID, "", "bernd@example.com", "", "Ada Lovelace hat Sie zu Deutsche Firma eingeladen"},
		{"the invitation's over the organization's", german.ID, "en", "clara@example.com", "en", "Ada Lovelace invited you to join Deutsche Firma"},
		{"unsupported: the organization's", german.ID, "fr", "dora@example.com", "fr", "Ada Lovelace hat Sie zu Deutsche Firma eingeladen"},
		{"none: English", h.org.ID, "", "emil@example.com", "", "Ada Lovelace invited you to join Acme & Co"},
	} {
		inv, _, err := h.svc.Invite(h.ctx, tc.org, InviteRequest{Email: tc.email, Role: "admin", Inviter: &Inviter{Name: "Ada Lovelace"}, Locale: tc.locale})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if inv.Locale != tc.wantStored {
			t.Errorf("%s: stored locale %q, want %q", tc.name, inv.Locale, tc.wantStored)
		}
		if got, _ := h.svc.Get(h.ctx, inv.ID); got.Locale != tc.wantStored {
			t.Errorf("%s: read back locale %q, want %q", tc.name, got.Locale, tc.wantStored)
		}
	}
	h.drain()
	subjects := map[string]string{}
	bodies := map[string]string{}
	for _, e := range h.resend.Emails() {
		subjects[e.To[0]], bodies[e.To[0]] = e.Subject, e.Text+e.HTML
	}
	if subjects["anna@example.com"] != "Ada Lovelace hat Sie zu Acme & Co eingeladen" ||
		!strings.Contains(bodies["anna@example.com"], "Einladung annehmen") {
		t.Errorf("German invitation: %q\n%s", subjects["anna@example.com"], bodies["anna@example.com"])
	}
	for email, want := range map[string]string{
		"bernd@example.com": "Ada Lovelace hat Sie zu Deutsche Firma eingeladen",
		"clara@example.com": "Ada Lovelace invited you to join Deutsche Firma",
		"dora@example.com":  "Ada Lovelace hat Sie zu Deutsche Firma eingeladen",
		"emil@example.com":  "Ada Lovelace invited you to join Acme & Co",
	} {
		if subjects[email] != want {
			t.Errorf("mail to %s: subject %q, want %q", email, subjects[email], want)
		}
	}
}

func TestInvalidLocaleIsRefused(t *testing.T) {
	h := newHarness(t)
	_, _, err := h.invite("x@example.com", func(r *InviteRequest) { r.Locale = "not a locale" })
	mustCode(t, err, "invalid_locale")
	if n := len(h.keys()); n == 0 {
		t.Fatal("no keys at all: the harness' organization is missing")
	}
	if calls := h.ids.Calls["CreateInvited"]; calls != 0 {
		t.Errorf("a refused locale still called Kratos %d times", calls)
	}
}

func (h *harness) newOrgWithLocale(name, locale string) orgs.Organization {
	h.t.Helper()
	o, err := h.orgs.Create(h.ctx, orgs.Organization{Name: name, Slug: orgs.Slugify(name), State: orgs.StateActive, Locale: locale}, false, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return o
}
