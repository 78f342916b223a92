package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// rawAPI calls the org admins' API and returns the status and the body as
// sent.
func (st *stack) rawAPI(token, method, path string, body any) (int, []byte) {
	st.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, st.base+"/api"+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Session-Token", token)
	resp, err := apiClient.Do(req)
	if err != nil {
		st.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

var (
	maskIDs   = regexp.MustCompile(`"(id|message_id)":"[^"]*"`)
	maskTimes = regexp.MustCompile(`"\d{4}-\d\d-\d\dT[^"]*"`)
)

// masked replaces what differs between any two invitations (ids,
// timestamps, the address itself) so that what is left can be compared
// byte for byte.
func masked(body []byte, email string) string {
	s := maskIDs.ReplaceAllString(string(body), `"$1":"<id>"`)
	s = maskTimes.ReplaceAllString(s, `"<time>"`)
	return strings.ReplaceAll(s, email, "<email>")
}

// kratosAccount creates an account (no password: quicker) for an address.
func (st *stack) kratosAccount(email string) {
	st.t.Helper()
	body := fmt.Sprintf(`{"schema_id":"default","traits":{"email":%q,"name":{"first":"Known"}}}`, email)
	resp, err := http.Post(st.kratos.AdminURL+"/admin/identities", "application/json", strings.NewReader(body))
	if err != nil {
		st.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		st.t.Fatalf("create identity %s: %d", email, resp.StatusCode)
	}
}

// TestOrgAdminAPIDoesNotTellWhetherAnAddressHasAnAccount invites, lists,
// re-invites, resends and revokes for an address with a Kratos account and
// one without, through the org admins' API against a real Kratos: every
// answer is the same byte for byte once ids, timestamps and the address are
// masked, and the invitation takes as long either way.
func TestOrgAdminAPIDoesNotTellWhetherAnAddressHasAnAccount(t *testing.T) {
	st := startStack(t, "kratos_settings")
	owner := st.createPerson("owner.enum@example.com", "owner has a long password", true)
	token := st.sessionToken("owner.enum@example.com", "owner has a long password")
	o, err := st.srv.Orgs.Create(context.Background(), orgs.CreateRequest{Name: "Enum Org", OwnerIdentityID: owner}, orgs.StateActive)
	if err != nil {
		t.Fatal(err)
	}
	org := "/organizations/" + o.Slug
	known, unknown := "known.enum@example.com", "unknown.enum@example.com"
	st.kratosAccount(known)

	type step struct {
		name, method string
		path         func(id string) string
		body         func(email string) any
	}
	invite := func(email string) any { return map[string]any{"email": email, "role": "member"} }
	steps := []step{
		{"invite", "POST", func(string) string { return org + "/invitations" }, invite},
		{"list", "GET", func(string) string { return org + "/invitations?status=all&email=" }, nil},
		{"invite again", "POST", func(string) string { return org + "/invitations" }, invite},
		{"resend", "POST", func(id string) string { return org + "/invitations/" + id + "/resend" }, nil},
		{"revoke", "DELETE", func(id string) string { return org + "/invitations/" + id }, nil},
		{"list ended", "GET", func(string) string { return org + "/invitations?status=revoked&email=" }, nil},
	}
	ids := map[string]string{}
	// Mail goes out in the background: wait until both deliveries are
	// settled, so that the answers compare what the API says, not how far
	// the outbox got.
	settled := func() bool {
		for _, id := range ids {
			if st.adminGet("/admin/invitations/" + id)["delivery"].(map[string]any)["status"] != "sent" {
				return false
			}
		}
		return true
	}
	for _, s := range steps {
		eventuallyTrue(t, "the mail of both invitations is sent", settled)
		got := map[string]string{}
		status := map[string]int{}
		for _, email := range []string{known, unknown} {
			path := s.path(ids[email])
			if strings.HasSuffix(path, "email=") {
				path += email
			}
			var body any
			if s.body != nil {
				body = s.body(email)
			}
			code, b := st.rawAPI(token, s.method, path, body)
			status[email], got[email] = code, masked(b, email)
			if s.name == "invite" {
				var inv struct{ ID string }
				_ = json.Unmarshal(b, &inv)
				ids[email] = inv.ID
			}
			for _, leak := range []string{"identity_id", "existing_identity"} {
				if strings.Contains(string(b), leak) {
					t.Errorf("%s %s: the answer carries %s: %s", s.name, email, leak, b)
				}
			}
		}
		if status[known] != status[unknown] || got[known] != got[unknown] {
			t.Errorf("%s differs:\n known   %d %s\n unknown %d %s", s.name, status[known], got[known], status[unknown], got[unknown])
		}
		if status[known] >= 300 {
			t.Errorf("%s: %d %s", s.name, status[known], got[known])
		}
	}
	// The operator's admin API keeps the fields.
	adm := st.adminGet("/admin/invitations/" + ids[known])
	if adm["identity_id"] == nil || adm["existing_identity"] != true {
		t.Errorf("admin API view %v", adm)
	}
	st.compareInviteTimes(token, org)
}

func (st *stack) adminGet(path string) map[string]any {
	st.t.Helper()
	req, _ := http.NewRequest("GET", st.admin+path, nil)
	req.Header.Set("Authorization", "Bearer "+st.cfg.Admin.APIKeys[0])
	resp, err := apiClient.Do(req)
	if err != nil {
		st.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out
}

// compareInviteTimes times invitations of addresses with and without an
// account, interleaved. The medians must differ by less than the noise:
// the larger spread (interquartile range) within one kind, or half the
// slower median. That catches a gross difference (a path that does much
// more work for one kind); the exact proof that both kinds do the same
// Kratos work is the call count in invites'
// TestUniformKratosWorkForKnownAndUnknownAddresses: at 16 samples on a
// shared machine, the spread hides the few milliseconds one Kratos call
// costs.
func (st *stack) compareInviteTimes(token, org string) {
	st.t.Helper()
	const n = 16
	var knownD, unknownD []time.Duration
	for i := range n {
		k, u := fmt.Sprintf("known%d.time@example.com", i), fmt.Sprintf("unknown%d.time@example.com", i)
		st.kratosAccount(k)
		for _, c := range []struct {
			email string
			into  *[]time.Duration
		}{{k, &knownD}, {u, &unknownD}} {
			start := time.Now()
			code, b := st.rawAPI(token, "POST", org+"/invitations", map[string]any{"email": c.email})
			*c.into = append(*c.into, time.Since(start))
			if code != http.StatusCreated {
				st.t.Fatalf("invite %s: %d %s", c.email, code, b)
			}
		}
	}
	mk, mu := median(knownD), median(unknownD)
	diff := max(mk-mu, mu-mk)
	noise := max(iqr(knownD), iqr(unknownD), max(mk, mu)/2)
	st.t.Logf("invite via /api, %d each: median with an account %v (IQR %v), without %v (IQR %v), difference %v, allowed %v",
		n, mk, iqr(knownD), mu, iqr(unknownD), diff, noise)
	if diff > noise {
		st.t.Errorf("an invitation takes %v longer or shorter when the address has an account: more than the noise (%v)", diff, noise)
	}
}

func iqr(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)*3/4] - s[len(s)/4]
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
