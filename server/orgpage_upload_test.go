package server

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/invites"
)

// The org admins' page's CSV upload against a real redis-server: the rows
// go through the /api's bulk invitation (role ceiling, results row by
// row), the browser is redirected to the results, a second submission of
// the same form invites nobody again, bad uploads are refused readably and
// write nothing, and the rows count against the /api's quotas.

var uploadKeyField = regexp.MustCompile(`name="upload_key" value="([^"]+)"`)

// uploadForm is what the page's upload form holds when it is submitted.
type uploadForm struct {
	csrf, key string // "" : the page's own; csrf "-": none
	role      string
	file      []byte // nil: no file part
	header    map[string]string
}

// upload submits the page's CSV upload form as a browser would.
func (b *browser) upload(page string, f uploadForm) reply {
	b.st.t.Helper()
	if f.csrf == "" || f.key == "" {
		r := b.get(page)
		c, k := csrfField.FindStringSubmatch(r.body), uploadKeyField.FindStringSubmatch(r.body)
		if c == nil || k == nil {
			b.st.t.Fatalf("no upload form on %s (%d): %s", page, r.status, r.body)
		}
		if f.csrf == "" {
			f.csrf = c[1]
		}
		if f.key == "" {
			f.key = k[1]
		}
	}
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	if f.csrf != "-" {
		_ = w.WriteField("csrf_token", f.csrf)
	}
	_ = w.WriteField("upload_key", f.key)
	_ = w.WriteField("role", f.role)
	if f.file != nil {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="file"; filename="people.csv"`)
		h.Set("Content-Type", "text/csv")
		part, _ := w.CreatePart(h)
		_, _ = part.Write(f.file)
	}
	_ = w.Close()
	req, _ := http.NewRequest(http.MethodPost, b.st.public+page+"/invitations/upload", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Origin", b.st.srv.cfg.Serve.Public.BaseURL)
	for k, v := range f.header {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.st.t.Fatal(err)
	}
	return readReply(b.st.t, resp)
}

var resultRow = regexp.MustCompile(`<tr data-result="([a-z_]+)"><td>(\d+)</td><th scope="row">([^<]*)</th>`)

// results follows an upload's redirect and returns each row's result by
// its address (and the page).
func (b *browser) results(t *testing.T, r reply) (map[string]string, reply) {
	t.Helper()
	wantStatus(t, "upload", r, http.StatusSeeOther)
	loc := r.header.Get("Location")
	if !strings.Contains(loc, "?upload=") {
		t.Fatalf("the upload redirected to %s", loc)
	}
	page := b.get(loc)
	wantStatus(t, "results page", page, http.StatusOK)
	out := map[string]string{}
	for _, m := range resultRow.FindAllStringSubmatch(page.body, -1) {
		out[m[3]+"#"+m[2]] = m[1]
	}
	return out, page
}

func TestOrgPageUpload(t *testing.T) {
	st := startQuotaStack(t)
	org, owner, admin, _, _ := orgPageOrg(t, st)
	page := "/orgs/" + org.Slug
	ctx := context.Background()
	if _, _, err := st.srv.Invites.Invite(ctx, org.ID, invites.InviteRequest{Email: "again@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := st.srv.Deliveries.Suppress(ctx, invites.Suppression{Email: "bounced@example.com", Reason: "bounced"}); err != nil {
		t.Fatal(err)
	}
	csv := []byte("\uFEFFemail,role,first_name\r\nann@example.com,,Ann\r\nnot an address,,\r\nadmin@example.com,,\r\n" +
		"ann@example.com,member,\r\nemperor@example.com,emperor,\r\nagain@example.com,member,\r\nowner2@example.com,owner,\r\n" +
		"bounced@example.com,,\r\n")
	r := owner.upload(page, uploadForm{role: "admin", file: csv})
	loc := r.header.Get("Location")
	got, res := owner.results(t, r)
	want := map[string]string{"ann@example.com#1": "created", "not an address#2": "invalid_email", "admin@example.com#3": "already_member",
		"ann@example.com#4": "duplicate_in_request", "emperor@example.com#5": "invalid_role", "again@example.com#6": "reinvited",
		"owner2@example.com#7": "created", "bounced@example.com#8": "address_suppressed"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("results %v, want %v\n%s", got, want, res.body)
	}
	for _, s := range []string{"<caption>Each of the file&#39;s 8 rows", "Invited: 2", "Not invited: 1", "Not mailed: the address bounced or reported spam before: 1", "Repeated in the file",
		`<th scope="col">Row</th>`, "The same address is in row 1.", "admin@example.com is already a member"} {
		if !strings.Contains(res.body, s) {
			t.Errorf("the results page lacks %q", s)
		}
	}
	pending := map[string]string{}
	for _, inv := range st.pending(org) {
		pending[inv.Email] = inv.Role
	}
	if fmt.Sprint(pending) != fmt.Sprint(map[string]string{"ann@example.com": "admin", "again@example.com": "member", "owner2@example.com": "owner"}) {
		t.Fatalf("pending %v: the form's role goes to rows without one", pending)
	}
	st.drain()
	mails := st.mail.count()

	// The same form again (a reload, a double click): its results, nothing sent.
	key := strings.TrimPrefix(loc, page+"?upload=")
	r = owner.upload(page, uploadForm{key: key, role: "admin", file: csv})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != loc {
		t.Fatalf("the same form again: %d %s", r.status, r.header.Get("Location"))
	}
	// Another file under the same form: refused, the form renewed.
	r = owner.upload(page, uploadForm{key: key, role: "admin", file: []byte("email\nzed@example.com\n")})
	wantStatus(t, "another file under a used form", r, http.StatusUnprocessableEntity)
	if !strings.Contains(r.body, "This form was already used for another file") || strings.Contains(r.body, `value="`+key+`"`) {
		t.Fatalf("another file under a used form:\n%s", r.body)
	}
	st.drain()
	if st.mail.count() != mails || len(st.pending(org)) != 3 {
		t.Fatalf("a repeated upload sent %d mails, %d pending", st.mail.count()-mails, len(st.pending(org)))
	}
	// The results are the uploader's: another admin with the key sees none.
	if r = admin.get(loc); !strings.Contains(r.body, "no longer kept") || strings.Contains(r.body, "upload-table") {
		t.Fatalf("another admin sees the owner's upload:\n%s", r.body)
	}
	// An admin's rows stop at their role.
	got, _ = admin.results(t, admin.upload(page, uploadForm{file: []byte("email,role\nboss@example.com,owner\nhelper@example.com,admin\n")}))
	if got["boss@example.com#1"] != "role_too_high" || got["helper@example.com#2"] != "created" {
		t.Fatalf("the admin's upload: %v", got)
	}
}

// Bad uploads get the page again with a clear reason and the error's
// status, and write nothing.
func TestOrgPageUploadRefusals(t *testing.T) {
	st := startQuotaStack(t, func(c *config.Config) { c.Serve.MaxBodyBytes = 64 << 10 })
	org, owner, _, _, _ := orgPageOrg(t, st)
	page := "/orgs/" + org.Slug
	many := "email\n" + strings.Repeat("x@example.com\n", invites.MaxBulkRows+1)
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01")
	for _, tc := range []struct {
		name   string
		form   uploadForm
		status int
		want   string
	}{
		{"no CSRF token", uploadForm{csrf: "-", file: []byte("email\na@example.com\n")}, http.StatusForbidden, "The form expired"},
		{"a forged CSRF token", uploadForm{csrf: "forged", file: []byte("email\na@example.com\n")}, http.StatusForbidden, "The form expired"},
		{"no file", uploadForm{}, http.StatusBadRequest, "Choose a CSV file to upload."},
		{"not CSV", uploadForm{file: png}, http.StatusUnsupportedMediaType, "The file is not a CSV file."},
		{"too many rows", uploadForm{file: []byte(many)}, http.StatusRequestEntityTooLarge, "The file has 1,001 rows; one upload may have at most 1,000."},
		{"oversized", uploadForm{file: bytes.Repeat([]byte("email\n"), 12<<10)}, http.StatusRequestEntityTooLarge, "an upload may be at most 64 KiB"},
		{"a header alone", uploadForm{file: []byte("email,role\n")}, http.StatusBadRequest, "The file has a header row but no one to invite."},
		{"an unknown column", uploadForm{file: []byte("email,password\na@example.com,x\n")}, http.StatusBadRequest, `Unknown CSV column &#34;password&#34;`},
		{"not UTF-8", uploadForm{file: []byte("email\nj\xe9r\xf4me@example.com\n")}, http.StatusBadRequest, "The CSV is not valid UTF-8."},
		{"in German", uploadForm{file: png, header: map[string]string{"Accept-Language": "de"}}, http.StatusUnsupportedMediaType, "Die Datei ist keine CSV-Datei."},
	} {
		r := owner.upload(page, tc.form)
		wantStatus(t, tc.name, r, tc.status)
		if !strings.Contains(r.body, tc.want) {
			t.Errorf("%s: the page does not say %q:\n%s", tc.name, tc.want, r.body)
		}
		if tc.status != http.StatusForbidden && !strings.Contains(r.body, `role="alert"`) {
			t.Errorf("%s: the reason is not an alert", tc.name)
		}
	}
	// A plain form post (no file can be in it) is refused too.
	r := owner.post(page+"/invitations/upload", page, "", url.Values{"upload_key": {"abcdefghijklmnopqrstuvwx"}})
	wantStatus(t, "a urlencoded upload", r, http.StatusUnsupportedMediaType)
	st.drain()
	if n := len(st.pending(org)); n != 0 || st.mail.count() != 0 {
		t.Fatalf("refused uploads wrote %d invitations and sent %d mails", n, st.mail.count())
	}
}

// An upload counts once against the identity's quota, as every form of
// the page, and each row that would be invited against the identity's and
// the organization's, as /api bulk rows: what gets through is exactly the
// quotas, and the rows past them answer rate_limited.
func TestOrgPageUploadQuotas(t *testing.T) {
	st := startQuotaStack(t, func(c *config.Config) {
		c.Limits.APIInvitesPerIdentity = config.Rate{Requests: 5, Period: 3600e9}
		c.Limits.APIInvitesPerOrganization = config.Rate{Requests: 7, Period: 86400e9}
	})
	org, owner, admin, _, _ := orgPageOrg(t, st)
	page := "/orgs/" + org.Slug
	rows := func(prefix string, n int) []byte {
		var b strings.Builder
		b.WriteString("email\n")
		for i := range n {
			fmt.Fprintf(&b, "%s%d@example.com\n", prefix, i)
		}
		return []byte(b.String())
	}
	count := func(got map[string]string) (created, limited int) {
		for _, r := range got {
			switch r {
			case "created":
				created++
			case "rate_limited":
				limited++
			}
		}
		return
	}
	// The owner: 1 (the form) + 4 rows = 5 of their own quota.
	got, page1 := owner.results(t, owner.upload(page, uploadForm{file: rows("o", 6)}))
	if c, l := count(got); c != 4 || l != 2 || !strings.Contains(page1.body, "Too many invitations for now: 2") {
		t.Fatalf("owner's upload: %d created, %d rate limited; want 4 and 2\n%v", c, l, got)
	}
	assertRetryAfter(t, owner.upload(page, uploadForm{file: rows("p", 1)}))
	// The admin: the organization has 3 left.
	got, _ = admin.results(t, admin.upload(page, uploadForm{file: rows("a", 4)}))
	if c, l := count(got); c != 3 || l != 1 {
		t.Fatalf("admin's upload: %d created, %d rate limited; want 3 and 1\n%v", c, l, got)
	}
	if n := len(st.pending(org)); n != 7 {
		t.Fatalf("%d invitations, want the organization's quota of 7", n)
	}
}
