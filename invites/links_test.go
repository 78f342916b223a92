package invites

import (
	"strings"
	"testing"
)

// Activation mails link to registration.activate_path, as the README
// documents; invitation mails to the accept path (issue 9 §7).
func TestActivationMailLinksToTheActivatePath(t *testing.T) {
	h := newHarness(t)
	const activate = "https://orgs.example.com/register/activate/"
	h.svc.cfg.ActivateURL = activate
	reg := newRegistrar(h, RegistrarOptions{})
	if err := reg.Register(h.ctx, RegisterRequest{OrganizationName: "Fresh Start", Email: "founder@example.com"}); err != nil {
		t.Fatal(err)
	}
	h.mustInvite("invitee@example.com")
	h.drain()
	emails := h.resend.Emails()
	if len(emails) != 2 {
		t.Fatalf("%d emails, want 2", len(emails))
	}
	for _, e := range emails {
		want := testAcceptURL
		if e.To[0] == "founder@example.com" {
			want = activate
		}
		if !strings.Contains(e.Text, want) || !strings.Contains(e.HTML, want) {
			t.Fatalf("mail to %s does not link to %s:\n%s", e.To[0], want, e.Text)
		}
	}
}

// A cursor that no listing returned is 400 invalid_cursor, not an empty
// or shifted page (issue 9 §7).
func TestUndecodableCursorIsRefused(t *testing.T) {
	h := newHarness(t)
	h.mustInvite("a@example.com")
	for _, cursor := range []string{"garbage", "org_" + strings.Repeat("A", 26), h.org.ID, "inv_short"} {
		_, err := h.svc.List(h.ctx, h.org.ID, Filter{Status: "all", Cursor: cursor, Limit: 10})
		mustCode(t, err, "invalid_cursor")
	}
	page, err := h.svc.List(h.ctx, h.org.ID, Filter{Status: "all", Limit: 10})
	if err != nil || page.Total != 1 {
		t.Fatalf("%+v %v", page, err)
	}
	if _, err := h.svc.List(h.ctx, h.org.ID, Filter{Status: "all", Cursor: page.Items[0].ID, Limit: 10}); err != nil {
		t.Fatalf("a listed id as cursor: %v", err)
	}
}
