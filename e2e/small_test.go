package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// adminCall calls the admin API (validated against the OpenAPI document).
// body is sent as is, with a JSON content type when not nil.
func (st *stack) adminCall(method, path string, body []byte) apiResp {
	st.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, st.admin+"/admin"+path, rd)
	req.Header.Set("Authorization", "Bearer "+st.cfg.Admin.APIKeys[0])
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
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

// Small things a user hits (issue 9 §7), against the real stack.
func TestSmallThingsAUserHits(t *testing.T) {
	st := startStack(t, "kratos_settings", func(c *config.Config) { c.Register.Enabled = true })
	org := st.org("Small Things")
	owner := st.createPerson("small.owner@example.com", "small owner password", true)
	if _, _, err := st.srv.Orgs.Store().AddMember(context.Background(), org.ID, orgs.Member{IdentityID: owner, Email: "small.owner@example.com", Role: "owner"}); err != nil {
		t.Fatal(err)
	}
	inv := st.invite(org, "small.newbie@example.com", "member")
	link := st.link(1)
	forged := link[:len(link)-5] + "AAAAA"

	t.Run("malformed link paths get the invalid-link page", func(t *testing.T) {
		_, want := get(t, client(t), forged)
		if !strings.Contains(want, "This link is not valid") {
			t.Fatalf("forged token page:\n%s", want)
		}
		plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for _, path := range []string{
			"/invitations/accept/", "/invitations/accept/abc", "/invitations/accept/" + strings.Repeat("A", 300),
			strings.TrimPrefix(link, st.base) + "/extra", "/invitations/accept/a/b/c", "/invitations/accept//",
			"/register/activate/", "/register/activate/short", "/register/activate/x/y",
		} {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				req, _ := http.NewRequest(method, st.base+path, strings.NewReader("csrf_token=x"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := plain.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
					!strings.Contains(string(body), "This link is not valid") {
					t.Errorf("%s %s: %d %s\n%.200s", method, path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
				}
			}
		}
		// The real link still works.
		if resp, _ := get(t, client(t), link); resp.StatusCode != http.StatusOK {
			t.Fatalf("the real link: %d", resp.StatusCode)
		}
	})

	t.Run("undecodable cursors are 400 invalid_cursor", func(t *testing.T) {
		token := st.sessionToken("small.owner@example.com", "small owner password")
		for _, cursor := range []string{"garbage", "org_notanid", "inv_" + strings.Repeat("x", 26), org.ID + "x", "%7B%7D"} {
			for _, path := range []string{
				"/organizations?cursor=" + cursor,
				"/organizations/" + org.ID + "/members?cursor=" + cursor,
				"/organizations/" + org.ID + "/invitations?cursor=" + cursor,
			} {
				if r := st.adminCall(http.MethodGet, path, nil); r.status != http.StatusBadRequest || r.code() != "invalid_cursor" {
					t.Errorf("admin %s: %d %v", path, r.status, r.body)
				}
			}
			for _, path := range []string{
				"/organizations/" + org.ID + "/members?cursor=" + cursor,
				"/organizations/" + org.ID + "/invitations?cursor=" + cursor,
			} {
				if r := st.api(token, http.MethodGet, path, nil); r.status != http.StatusBadRequest || r.code() != "invalid_cursor" {
					t.Errorf("api %s: %d %v", path, r.status, r.body)
				}
			}
		}
		// Cursors the listings hand out still work.
		for _, path := range []string{"/organizations?limit=1", "/organizations/" + org.ID + "/members?limit=1", "/organizations/" + org.ID + "/invitations?limit=1"} {
			r := st.adminCall(http.MethodGet, path, nil)
			next, _ := r.body["next_cursor"].(string)
			if r.status != http.StatusOK {
				t.Fatalf("%s: %d %v", path, r.status, r.body)
			}
			if next != "" {
				if r := st.adminCall(http.MethodGet, path+"&cursor="+next, nil); r.status != http.StatusOK {
					t.Errorf("%s with its own cursor: %d %v", path, r.status, r.body)
				}
			}
		}
	})

	t.Run("null or empty bodies to resend and remind are 400", func(t *testing.T) {
		for _, action := range []string{"resend", "remind"} {
			for _, body := range []string{"null", "", "  "} {
				r := st.adminCall(http.MethodPost, "/invitations/"+inv.ID+"/"+action, []byte(body))
				if r.status != http.StatusBadRequest || r.code() != "invalid_json" {
					t.Errorf("%s with body %q: %d %v", action, body, r.status, r.body)
				}
			}
		}
		got, _ := st.srv.Invites.Get(context.Background(), inv.ID)
		if got.UpdatedAt != inv.UpdatedAt || got.RemindedAt != nil {
			t.Fatalf("a refused call changed the invitation: %+v", got)
		}
		if n := len(st.resend.Emails()); n != 1 {
			t.Fatalf("%d mails, want 1", n)
		}
	})

	t.Run("an inviter.id that is not a Kratos identity is 422", func(t *testing.T) {
		body := []byte(`{"email":"ghost.invitee@example.com","inviter":{"id":"7f1b8f0e-0000-4000-8000-000000000000"}}`)
		r := st.adminCall(http.MethodPost, "/organizations/"+org.ID+"/invitations", body)
		if r.status != http.StatusUnprocessableEntity || r.code() != "unknown_inviter" {
			t.Fatalf("%d %v", r.status, r.body)
		}
		resp, err := http.Get(st.kratos.AdminURL + "/admin/identities?credentials_identifier=ghost.invitee@example.com")
		if err != nil {
			t.Fatal(err)
		}
		var list []any
		_ = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if len(list) != 0 {
			t.Fatal("an identity was created for a refused invitation")
		}
		body = []byte(`{"email":"real.invitee@example.com","inviter":{"id":"` + owner + `"}}`)
		if r := st.adminCall(http.MethodPost, "/organizations/"+org.ID+"/invitations", body); r.status != http.StatusCreated {
			t.Fatalf("a real inviter: %d %v", r.status, r.body)
		}
	})
}
