package templates

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// The org admins' page in both shipped locales: every text comes from the
// catalogue (no bare key is shown), the tables have headers with scope,
// every control has a label, and an invitation's delivery state shows its
// label, reason and time, or a dash when there is none; the CSV upload
// form and its results table are as accessible.
func TestOrgAdminPage(t *testing.T) {
	t.Parallel()
	r := mustNew(t, "")
	for _, tc := range []struct{ locale, title, bounced string }{
		{"en", "Acme &amp; Co: members and invitations", "Bounced"},
		{"de", "Acme &amp; Co: Mitglieder und Einladungen", "Unzustellbar"},
	} {
		page := sampleOrgAdminPage(Base{Nonce: "n", Lang: tc.locale})
		page.Invitations[0].Delivery.Label = tc.bounced
		page.Invitations = append(page.Invitations, OrgInvitationView{ID: "inv_nodelivery", Email: "x@example.com", Role: "member"})
		var b bytes.Buffer
		if err := r.Page(&b, "orgadmin.html", page); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for _, want := range []string{"<title>" + tc.title + "</title>", `<th scope="col">`, `<th scope="row">`, "<legend>",
			`<span class="delivery-bounced">` + tc.bounced + `</span> <span class="muted">(mailbox does not exist)</span>`,
			`<span class="muted">–</span>`, `<style nonce="n">`, `/orgs/acme/invitations/inv_sample/revoke`,
			// The CSV upload: a labelled file input with its hint, and the
			// results as a table with a caption and row headers.
			`enctype="multipart/form-data"`, `name="upload_key" value="sample-upload-key-0000"`,
			`type="file" accept=".csv,text/csv" required aria-describedby="upload-hint"`, `<caption>`,
			`<tr data-result="invalid_email"><td>2</td><th scope="row">alan at example</th>`} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: the page lacks %q", tc.locale, want)
			}
		}
		if bare := regexp.MustCompile(`orgadmin\.[a-z_.]+`).FindString(out); bare != "" {
			t.Errorf("%s: a message key is shown as is: %s", tc.locale, bare)
		}
		// Every select and text input has a label naming it.
		for _, m := range regexp.MustCompile(`<(?:select|input) id="([^"]+)"`).FindAllStringSubmatch(out, -1) {
			if !strings.Contains(out, `<label for="`+m[1]+`"`) && !strings.Contains(out, `for="`+m[1]+`">`) {
				t.Errorf("%s: control %s has no label", tc.locale, m[1])
			}
		}
		if t.Failed() {
			t.Log(out)
		}
	}
}
