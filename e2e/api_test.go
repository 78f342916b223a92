package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// sessionToken logs in through Kratos' API flow and returns the token.
func (st *stack) sessionToken(email, password string) string {
	st.t.Helper()
	resp, err := http.Get(st.kratos.PublicURL + "/self-service/login/api")
	if err != nil {
		st.t.Fatal(err)
	}
	var flow struct {
		UI struct{ Action string } `json:"ui"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&flow)
	resp.Body.Close()
	body, _ := json.Marshal(map[string]string{"method": "password", "identifier": email, "password": password})
	resp, err = http.Post(flow.UI.Action, "application/json", bytes.NewReader(body))
	if err != nil {
		st.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		SessionToken string `json:"session_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if out.SessionToken == "" {
		st.t.Fatalf("no session token for %s (%d)", email, resp.StatusCode)
	}
	return out.SessionToken
}

type apiResp struct {
	status int
	body   map[string]any
}

func (r apiResp) code() string {
	if e, ok := r.body["error"].(map[string]any); ok {
		return e["code"].(string)
	}
	return ""
}

func (st *stack) api(token, method, path string, body any, headers ...string) apiResp {
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
	if token != "" {
		req.Header.Set("X-Session-Token", token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		st.t.Fatal(err)
	}
	defer resp.Body.Close()
	out := apiResp{status: resp.StatusCode}
	_ = json.NewDecoder(resp.Body).Decode(&out.body)
	return out
}

func TestOrgAdminAPI(t *testing.T) {
	st := startStack(t, "kratos_settings")
	ctx := context.Background()
	people := map[string]string{}
	tokens := map[string]string{}
	for _, name := range []string{"owner", "admin", "member", "outsider"} {
		email := name + ".api@example.com"
		people[name] = st.createPerson(email, name+" has a long password", true)
		tokens[name] = st.sessionToken(email, name+" has a long password")
	}
	o, err := st.srv.Orgs.Create(ctx, orgs.CreateRequest{Name: "API Org", OwnerIdentityID: people["owner"]}, orgs.StateActive)
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"admin", "member"} {
		if _, _, err := st.srv.Orgs.AddMember(ctx, o.ID, orgs.AddMemberRequest{IdentityID: people[who], Role: who}); err != nil {
			t.Fatal(err)
		}
	}
	org := "/organizations/" + o.Slug

	// Everyone sees their own organizations; the outsider none.
	eventuallyTrue(t, "the identity index has the memberships", func() bool {
		return st.api(tokens["member"], "GET", "/organizations", nil).body["total"] == float64(1)
	})
	if r := st.api(tokens["outsider"], "GET", "/organizations", nil); r.body["total"] != float64(0) {
		t.Fatalf("outsider sees %v", r.body)
	}
	cases := []struct {
		name, who, method, path string
		body                    any
		status                  int
		code                    string
	}{
		{"no session", "", "GET", "/organizations", nil, 401, "no_session"},
		{"member lists members", "member", "GET", org + "/members", nil, 200, ""},
		{"outsider gets 404, not 403", "outsider", "GET", org + "/members", nil, 404, "organization_not_found"},
		{"member cannot list invitations", "member", "GET", org + "/invitations", nil, 403, "role_too_low"},
		{"member cannot invite", "member", "POST", org + "/invitations", map[string]any{"email": "x@example.com"}, 403, "role_too_low"},
		{"admin invites an admin", "admin", "POST", org + "/invitations", map[string]any{"email": "new.admin@example.com", "role": "admin"}, 201, ""},
		{"admin cannot invite an owner", "admin", "POST", org + "/invitations", map[string]any{"email": "new.owner@example.com", "role": "owner"}, 403, "role_ceiling"},
		{"admin cannot demote the owner", "admin", "PATCH", org + "/members/" + people["owner"], map[string]any{"role": "member"}, 403, "role_ceiling"},
		{"admin cannot make someone owner", "admin", "PATCH", org + "/members/" + people["member"], map[string]any{"role": "owner"}, 403, "role_ceiling"},
		{"owner promotes the member", "owner", "PATCH", org + "/members/" + people["member"], map[string]any{"role": "admin"}, 200, ""},
		{"the last owner cannot leave", "owner", "DELETE", org + "/members/" + people["owner"], nil, 409, "last_owner"},
		{"admin lists invitations", "admin", "GET", org + "/invitations", nil, 200, ""},
		{"outsider cannot invite", "outsider", "POST", org + "/invitations", map[string]any{"email": "y@example.com"}, 404, "organization_not_found"},
		{"unknown fields are refused", "owner", "POST", org + "/invitations", map[string]any{"email": "z@example.com", "inviter": "me"}, 400, "unknown_field"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := st.api(tokens[c.who], c.method, c.path, c.body)
			if r.status != c.status || r.code() != c.code {
				t.Fatalf("%d %v, want %d %q", r.status, r.body, c.status, c.code)
			}
		})
	}
	// The inviter of an API invitation is the caller.
	list := st.api(tokens["owner"], "GET", org+"/invitations", nil)
	items := list.body["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["inviter"].(map[string]any)["id"] != people["admin"] {
		t.Fatalf("invitations %v", list.body)
	}
	invID := items[0].(map[string]any)["id"].(string)
	if r := st.api(tokens["admin"], "POST", org+"/invitations/"+invID+"/resend", nil); r.status != 200 {
		t.Fatalf("resend: %d %v", r.status, r.body)
	}
	st.remindThroughAPI(tokens, org, invID, "new.admin@example.com")
	if r := st.api(tokens["admin"], "DELETE", org+"/invitations/"+invID, nil); r.status != 200 || r.body["status"] != "revoked" {
		t.Fatalf("revoke: %d %v", r.status, r.body)
	}
	// A member removes themselves.
	if r := st.api(tokens["admin"], "DELETE", org+"/members/"+people["admin"], nil); r.status != 204 {
		t.Fatalf("leave: %d %v", r.status, r.body)
	}

	// With a cookie instead of a token, changes need an allowed Origin.
	cookie := "ory_kratos_session=whatever"
	r := st.api("", "POST", org+"/invitations", map[string]any{"email": "c@example.com"}, "Cookie", cookie)
	if r.status != 403 || r.code() != "origin_not_allowed" {
		t.Fatalf("cookie POST without Origin: %d %v", r.status, r.body)
	}
	r = st.api("", "POST", org+"/invitations", map[string]any{"email": "c@example.com"}, "Cookie", cookie, "Origin", "https://evil.example.net")
	if r.status != 403 {
		t.Fatalf("cookie POST from another origin: %d %v", r.status, r.body)
	}
	r = st.api("", "POST", org+"/invitations", map[string]any{"email": "c@example.com"}, "Cookie", cookie, "Origin", st.base)
	if r.status != 401 {
		t.Fatalf("cookie POST from our origin with a bogus cookie: %d %v (want 401: the origin passes, the session does not)", r.status, r.body)
	}
}

// remindThroughAPI: an outsider's remind is 404; an admin's mails a
// reminder through Kratos sessions and the Resend fake and answers the org
// admins' view; a second one within the interval is 429 remind_too_soon.
func (st *stack) remindThroughAPI(tokens map[string]string, org, invID, email string) {
	t := st.t
	t.Helper()
	path := org + "/invitations/" + invID + "/remind"
	if r := st.api(tokens["outsider"], "POST", path, nil); r.status != 404 || r.code() != "organization_not_found" {
		t.Fatalf("outsider's remind: %d %v", r.status, r.body)
	}
	reminders := func() (n int) {
		for _, m := range st.resend.Emails() {
			if m.Tags["kind"] == "reminder" && m.Tags["invitation"] == invID {
				n++
				if len(m.To) != 1 || m.To[0] != email || !strings.HasPrefix(m.Subject, "Reminder:") {
					t.Fatalf("the reminder: to %v, subject %q", m.To, m.Subject)
				}
			}
		}
		return n
	}
	r := st.api(tokens["admin"], "POST", path, map[string]any{})
	if r.status != 200 || r.body["reminded_at"] == nil || r.body["identity_id"] != nil || r.body["existing_identity"] != nil {
		t.Fatalf("remind: %d %v", r.status, r.body)
	}
	eventuallyTrue(t, "the reminder reaches Resend", func() bool { return reminders() == 1 })
	if r := st.api(tokens["owner"], "POST", path, nil); r.status != 429 || r.code() != "remind_too_soon" {
		t.Fatalf("second remind: %d %v", r.status, r.body)
	}
	sleep()
	if n := reminders(); n != 1 {
		t.Fatalf("%d reminders after the refused second remind", n)
	}
}

func eventuallyTrue(t *testing.T, what string, f func() bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if f() {
			return
		}
		sleep()
	}
	t.Fatalf("timed out waiting until %s", what)
}
