package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// bulkResp is a bulk answer with its headers.
type bulkResp struct {
	apiResp
	header http.Header
}

// results maps each row's email to its result, and lists them in order.
func (r bulkResp) results(t *testing.T) (byRow []string, ids map[string]string) {
	t.Helper()
	rows, ok := r.body["results"].([]any)
	if !ok {
		t.Fatalf("no results: %d %v", r.status, r.body)
	}
	ids = map[string]string{}
	for i, x := range rows {
		row := x.(map[string]any)
		if row["row"] != float64(i) {
			t.Fatalf("result %d is row %v", i, row["row"])
		}
		byRow = append(byRow, row["result"].(string))
		if id, ok := row["invitation_id"].(string); ok {
			ids[row["email"].(string)] = id
		}
	}
	return byRow, ids
}

// bulkCall posts a bulk body (JSON or CSV) to url with the given headers.
func (st *stack) bulkCall(url, contentType string, body []byte, headers ...string) bulkResp {
	st.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if strings.HasPrefix(url, st.admin) {
		req.Header.Set("Authorization", "Bearer "+st.cfg.Admin.APIKeys[0])
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		st.t.Fatal(err)
	}
	defer resp.Body.Close()
	out := bulkResp{apiResp: apiResp{status: resp.StatusCode}, header: resp.Header}
	_ = json.NewDecoder(resp.Body).Decode(&out.body)
	return out
}

// identities counts the Kratos identities of an address.
func (st *stack) identities(email string) int {
	st.t.Helper()
	resp, err := http.Get(st.kratos.AdminURL + "/admin/identities?credentials_identifier=" + email)
	if err != nil {
		st.t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&list)
	return len(list)
}

// A mixed batch on the org admins' API against a real Kratos: new
// addresses, an existing Kratos account, a member, an invalid address, a
// duplicate, a role above the caller's and a row past the seat limit each
// get their result in request order; then the same request under its
// Idempotency-Key answers the same and sends no second mail.
func TestBulkMixedBatchAPI(t *testing.T) {
	st := startStack(t, "kratos_settings")
	ctx := context.Background()
	admin := st.createPerson("bulk.admin@example.com", "bulk admin long password", true)
	token := st.sessionToken("bulk.admin@example.com", "bulk admin long password")
	member := st.createPerson("bulk.member@example.com", "bulk member long password", true)
	account := st.createPerson("bulk.account@example.com", "bulk account long password", true)
	six := int64(6)
	o, err := st.srv.Orgs.Create(ctx, orgs.CreateRequest{Name: "Bulk Corp", MaxMembers: &six}, orgs.StateActive)
	if err != nil {
		t.Fatal(err)
	}
	for id, role := range map[string]string{admin: "admin", member: "member"} {
		if _, _, err := st.srv.Orgs.AddMember(ctx, o.ID, orgs.AddMemberRequest{IdentityID: id, Role: role}); err != nil {
			t.Fatal(err)
		}
	}
	rows := []map[string]any{
		{"email": "bulk.new1@example.com", "first_name": "Ann"},
		{"email": "bulk.account@example.com"},
		{"email": "bulk.member@example.com"},
		{"email": "not an address"},
		{"email": "BULK.NEW1@example.com"},
		{"email": "bulk.boss@example.com", "role": "owner"},
		{"email": "bulk.new2@example.com"},
		{"email": "bulk.new3@example.com"},
		{"email": "bulk.new4@example.com"},
	}
	body, _ := json.Marshal(map[string]any{"invitations": rows})
	url := st.base + "/api/organizations/" + o.ID + "/invitations/bulk"
	r := st.bulkCall(url, "application/json", body, "X-Session-Token", token, "Idempotency-Key", "batch-1")
	got, ids := r.results(t)
	want := []string{"created", "created", "already_member", "invalid_email", "duplicate_in_request", "role_too_high", "created", "created", "seat_limit"}
	if r.status != http.StatusOK || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("results %d %v\nwant %v\n%v", r.status, got, want, r.body)
	}
	if len(ids) != 4 {
		t.Fatalf("invitation ids %v", ids)
	}
	mails := st.resend.WaitForEmails(t, 4, 10*time.Second)
	// Kratos: placeholders for the new addresses, the account untouched,
	// nothing left for the row past the seat limit.
	for _, e := range []string{"bulk.new1@example.com", "bulk.new2@example.com", "bulk.new3@example.com"} {
		if who := st.kratosIdentity(e); who["state"] != "inactive" {
			t.Errorf("%s: %v", e, who["state"])
		}
	}
	if who := st.kratosIdentity("bulk.account@example.com"); who["id"] != account || who["state"] != "active" {
		t.Errorf("the account: %v", who)
	}
	eventuallyTrue(t, "the placeholder of the refused row is gone", func() bool { return st.identities("bulk.new4@example.com") == 0 })
	inv, err := st.srv.Invites.Get(ctx, ids["bulk.new1@example.com"])
	if err != nil || inv.Context["first_name"] != "Ann" || inv.Inviter == nil || inv.Inviter.ID != admin {
		t.Fatalf("row 0's invitation: %+v %v", inv, err)
	}

	// The same request again: the first answer, nothing sent.
	again := st.bulkCall(url, "application/json", body, "X-Session-Token", token, "Idempotency-Key", "batch-1")
	if g, _ := again.results(t); again.header.Get("Idempotent-Replayed") != "true" || fmt.Sprint(g) != fmt.Sprint(want) {
		t.Fatalf("repeat: %v %v", again.header, again.body)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(st.resend.Emails()); n != len(mails) {
		t.Fatalf("%d mails after the repeat, want %d", n, len(mails))
	}
	other := st.bulkCall(url, "application/json", []byte(`{"invitations":[{"email":"bulk.other@example.com"}]}`),
		"X-Session-Token", token, "Idempotency-Key", "batch-1")
	if other.status != http.StatusUnprocessableEntity || other.code() != "idempotency_key_reused" {
		t.Fatalf("same key, other body: %d %v", other.status, other.body)
	}
	if st.identities("bulk.other@example.com") != 0 {
		t.Fatal("a refused request created an identity")
	}
	// Without the key, a repeat re-issues the pending invitations.
	if g, _ := st.bulkCall(url, "application/json", body, "X-Session-Token", token).results(t); g[0] != "reinvited" || g[6] != "reinvited" {
		t.Fatalf("repeat without a key: %v", g)
	}
}

// The operator's API: a CSV with a byte-order mark, a dry run that writes
// nothing, and 1,001 rows refused as a whole.
func TestBulkCSVAndLimitsAdmin(t *testing.T) {
	st := startStack(t, "kratos_settings")
	ctx := context.Background()
	o := st.org("Bulk CSV")
	url := st.admin + "/admin/organizations/" + o.ID + "/invitations/bulk"

	// An address with a Kratos account in the batch: Kratos v1.3 rolls a
	// batch with a conflicting item back whole (identity.createBatch).
	account := st.createPerson("bulk.csvacct@example.com", "bulk csv account password", true)
	csv := "\uFEFFemail,role,first_name\r\nbulk.csv1@example.com,admin,Zoë\r\nbulk.csvacct@example.com,,\r\nbulk.csv2@example.com,,\r\n"
	dry := st.bulkCall(url+"?dry_run=true", "text/csv; charset=utf-8", []byte(csv))
	if g, _ := dry.results(t); dry.status != http.StatusOK || fmt.Sprint(g) != "[created created created]" || dry.body["dry_run"] != true {
		t.Fatalf("dry run: %d %v", dry.status, dry.body)
	}
	first := dry.body["results"].([]any)[0].(map[string]any)
	if m, _ := first["mail"].(map[string]any); m == nil || !strings.Contains(m["text"].(string), invites.DryRunToken) {
		t.Fatalf("dry run mail: %v", first)
	}
	if st.identities("bulk.csv1@example.com") != 0 {
		t.Fatal("the dry run created an identity")
	}
	if page, _ := st.srv.Invites.List(ctx, o.ID, invites.Filter{Status: "all", Limit: 10}); page.Total != 0 {
		t.Fatalf("the dry run wrote %d invitations", page.Total)
	}

	r := st.bulkCall(url, "text/csv", []byte(csv))
	g, ids := r.results(t)
	if r.status != http.StatusOK || fmt.Sprint(g) != "[created created created]" {
		t.Fatalf("csv: %d %v", r.status, r.body)
	}
	if inv, _ := st.srv.Invites.Get(ctx, ids["bulk.csv1@example.com"]); inv.Role != "admin" || inv.Context["first_name"] != "Zoë" {
		t.Fatalf("csv row 0: %+v", inv)
	}
	if inv, _ := st.srv.Invites.Get(ctx, ids["bulk.csvacct@example.com"]); inv.IdentityID != account || !inv.ExistingIdentity {
		t.Fatalf("the account's row: %+v", inv)
	}
	for _, e := range []string{"bulk.csv1@example.com", "bulk.csv2@example.com"} {
		if inv, _ := st.srv.Invites.Get(ctx, ids[e]); st.kratosIdentity(e)["id"] != inv.IdentityID {
			t.Fatalf("%s: the invitation names %s, Kratos has %v", e, inv.IdentityID, st.kratosIdentity(e)["id"])
		}
	}
	st.resend.WaitForEmails(t, 3, 10*time.Second)

	var b strings.Builder
	b.WriteString("email\n")
	for i := 0; i < invites.MaxBulkRows+1; i++ {
		fmt.Fprintf(&b, "bulk.many%d@example.com\n", i)
	}
	r = st.bulkCall(url, "text/csv", []byte(b.String()))
	if r.status != http.StatusRequestEntityTooLarge || r.code() != "too_many_rows" {
		t.Fatalf("1,001 rows: %d %v", r.status, r.body)
	}
	if st.identities("bulk.many0@example.com") != 0 {
		t.Fatal("a refused request created an identity")
	}
	for _, c := range []struct{ ct, body, code string }{
		{"text/plain", "email\nx@example.com\n", "unsupported_media_type"},
		{"text/csv", "email,colour\nx@example.com,red\n", "unknown_column"},
		{"application/json", `{"invitations":[{"email":"x@example.com","colour":"red"}]}`, "unknown_field"},
		{"application/json", `{"invitations":[]}`, "no_rows"},
	} {
		if r := st.bulkCall(url, c.ct, []byte(c.body)); r.status/100 != 4 || r.code() != c.code {
			t.Errorf("%s %q: %d %v, want %s", c.ct, c.body, r.status, r.body, c.code)
		}
	}
	if page, _ := st.srv.Invites.List(ctx, o.ID, invites.Filter{Status: "all", Limit: 10}); page.Total != 3 {
		t.Fatalf("%d invitations after the refused requests, want 3", page.Total)
	}
}
