package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// kratosFlow starts an API flow (registration, verification, settings).
func (st *stack) kratosFlow(kind string, sessionToken string) (id, action string) {
	st.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, st.kratos.PublicURL+"/self-service/"+kind+"/api", nil)
	if sessionToken != "" {
		req.Header.Set("X-Session-Token", sessionToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		st.t.Fatal(err)
	}
	defer resp.Body.Close()
	var flow struct {
		ID string                  `json:"id"`
		UI struct{ Action string } `json:"ui"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&flow); err != nil || flow.UI.Action == "" {
		st.t.Fatalf("start %s flow: %d %v", kind, resp.StatusCode, err)
	}
	return flow.ID, flow.UI.Action
}

// submit posts JSON to a flow action and returns status and body.
func (st *stack) submit(action string, body any, sessionToken string) (int, map[string]any) {
	st.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, action, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if sessionToken != "" {
		req.Header.Set("X-Session-Token", sessionToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		st.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// signUp registers through Kratos' API flow with a password.
func (st *stack) signUp(email string, transient map[string]any) (int, map[string]any) {
	st.t.Helper()
	_, action := st.kratosFlow("registration", "")
	body := map[string]any{"method": "password", "password": "Correct-Horse-Battery-9",
		"traits": map[string]any{"email": email, "name": map[string]any{"first": "Signed"}}}
	if transient != nil {
		body["transient_payload"] = transient
	}
	return st.submit(action, body, "")
}

var codeRE = regexp.MustCompile(`\b(\d{6})\b`)

// courierCode reads the newest one-time code Kratos queued for an address.
func (st *stack) courierCode(email string) string {
	st.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(st.kratos.AdminURL + "/admin/courier/messages?recipient=" + url.QueryEscape(email))
		if err != nil {
			st.t.Fatal(err)
		}
		var msgs []struct {
			Body      string    `json:"body"`
			CreatedAt time.Time `json:"created_at"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&msgs)
		resp.Body.Close()
		var newest string
		var at time.Time
		for _, m := range msgs {
			if c := codeRE.FindStringSubmatch(m.Body); c != nil && !m.CreatedAt.Before(at) {
				newest, at = c[1], m.CreatedAt
			}
		}
		if newest != "" {
			return newest
		}
		time.Sleep(50 * time.Millisecond)
	}
	st.t.Fatalf("no code mailed to %s", email)
	return ""
}

func nodeMessages(flow map[string]any) []float64 {
	var ids []float64
	ui, _ := flow["ui"].(map[string]any)
	for _, m := range asList(ui["messages"]) {
		ids = append(ids, m.(map[string]any)["id"].(float64))
	}
	for _, n := range asList(ui["nodes"]) {
		for _, m := range asList(n.(map[string]any)["messages"]) {
			ids = append(ids, m.(map[string]any)["id"].(float64))
		}
	}
	return ids
}

func asList(v any) []any { l, _ := v.([]any); return l }

func has(ids []float64, id float64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func inviteOnly(c *config.Config) { c.Register.Mode = "invite_only" }

func TestInviteOnlySignUpWithoutInvitationIsRefused(t *testing.T) {
	st := startStack(t, "kratos_settings", inviteOnly)
	status, flow := st.signUp("stranger@example.com", nil)
	if status != http.StatusBadRequest || !has(nodeMessages(flow), 4000100) || !has(nodeMessages(flow), 4000101) {
		t.Fatalf("sign-up without invitation: %d, messages %v", status, nodeMessages(flow))
	}
	text := fmt.Sprint(flow["ui"])
	if !strings.Contains(text, "has not been invited") {
		t.Fatalf("our message is not in the flow's UI nodes: %s", text)
	}
	resp, _ := http.Get(st.kratos.AdminURL + "/admin/identities?credentials_identifier=stranger@example.com")
	var list []any
	_ = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list) != 0 {
		t.Fatal("a refused sign-up created an identity")
	}
}

// Signing up through Kratos with the invitation token: the identity is
// created verified (no verification mail) and becomes a member; the
// placeholder created at invite time makes way.
func TestSignUpWithInviteToken(t *testing.T) {
	st := startStack(t, "kratos_settings", inviteOnly)
	org := st.org("Token Corp")
	inv, _, err := st.srv.Invites.Invite(context.Background(), org.ID, invites.InviteRequest{Email: "tok@example.com", Role: "admin", SendEmail: ptr(false)})
	if err != nil {
		t.Fatal(err)
	}
	token := inv.AcceptURL[strings.LastIndexByte(inv.AcceptURL, '/')+1:]
	// The token is bound to its address.
	if status, flow := st.signUp("someone.else@example.com", map[string]any{"invite_token": token}); status != 400 || !has(nodeMessages(flow), 4000103) {
		t.Fatalf("token with another address: %d %v", status, nodeMessages(flow))
	}
	status, out := st.signUp("Tok@Example.com", map[string]any{"invite_token": token})
	if status != http.StatusOK {
		t.Fatalf("sign-up with token: %d %v", status, out)
	}
	id := st.proveVerifiedActive("tok@example.com")
	if id["id"] == inv.IdentityID {
		t.Fatal("the placeholder identity was reused instead of Kratos creating the person's own")
	}
	st.proveMember(org, id["id"].(string), "admin")
	got, _ := st.srv.Invites.Get(context.Background(), inv.ID)
	if got.Status != invites.Accepted || got.AcceptedBy != id["id"] {
		t.Fatalf("invitation %+v", got)
	}
	// The token is used up.
	if status, flow := st.signUp("tok2@example.com", map[string]any{"invite_token": token}); status != 400 || !has(nodeMessages(flow), 4000104) {
		t.Fatalf("reused token: %d %v", status, nodeMessages(flow))
	}
	// Memberships are mirrored into metadata_public for applications.
	eventuallyTrue(t, "metadata_public.organizations is written", func() bool {
		meta, _ := st.kratosIdentity("tok@example.com")["metadata_public"].(map[string]any)
		claims := asList(meta["organizations"])
		return len(claims) == 1 && claims[0].(map[string]any)["id"] == org.ID && claims[0].(map[string]any)["role"] == "admin"
	})
}

func ptr[T any](v T) *T { return &v }

// A sign-up can create its organization (the RegistrationBackend through
// Kratos' own form), once, however often Kratos delivers the hook.
func TestSignUpCreatesOrganization(t *testing.T) {
	st := startStack(t, "kratos_settings")
	status, out := st.signUp("founder.hook@example.com", map[string]any{"organization_name": "Hooked Ltd"})
	if status != http.StatusOK {
		t.Fatalf("sign-up: %d %v", status, out)
	}
	identityID := out["identity"].(map[string]any)["id"].(string)
	o, err := st.srv.Orgs.Store().Resolve(context.Background(), "hooked-ltd")
	if err != nil || o.State != orgs.StateActive {
		t.Fatalf("organization: %+v %v", o, err)
	}
	st.proveMember(o, identityID, "owner")
	// Kratos retrying the post-persist hook changes nothing.
	flowID := "replayed-flow"
	body := fmt.Sprintf(`{"flow_id":%q,"identity_id":%q,"traits":{"email":"founder.hook@example.com"},"verifiable_addresses":[],"invite_token":null,"organization_name":"Replay Org"}`, flowID, identityID)
	for i := 0; i < 3; i++ {
		if code, _ := st.hook("/hooks/registration/post", body, testenv.HooksSecret); code != 200 {
			t.Fatalf("delivery %d: %d", i, code)
		}
	}
	page, _ := st.srv.Orgs.Store().List(context.Background(), "", 100)
	n := 0
	for _, o := range page.Items {
		if o.Name == "Replay Org" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d organizations after three deliveries, want 1", n)
	}
}

// Invited, signed up through Kratos without the token, then verified the
// address: the pending invitation becomes a membership at verification.
func TestVerificationAcceptsPendingInvitations(t *testing.T) {
	st := startStack(t, "kratos_settings", inviteOnly)
	org := st.org("Verify Inc")
	st.invite(org, "verify.me@example.com", "member")
	status, out := st.signUp("verify.me@example.com", nil)
	if status != http.StatusOK {
		t.Fatalf("an invited address may sign up in invite_only mode: %d %v", status, out)
	}
	identityID := out["identity"].(map[string]any)["id"].(string)
	if _, err := st.srv.Orgs.Store().Member(context.Background(), org.ID, identityID); err == nil {
		t.Fatal("a member before the address was verified")
	}
	_, action := st.kratosFlow("verification", "")
	if code, body := st.submit(action, map[string]any{"method": "code", "email": "verify.me@example.com"}, ""); code != 200 {
		t.Fatalf("verification step 1: %d %v", code, body)
	}
	code := st.courierCode("verify.me@example.com")
	if status, body := st.submit(action, map[string]any{"method": "code", "code": code}, ""); status != 200 {
		t.Fatalf("verification step 2: %d %v", status, body)
	}
	eventuallyTrue(t, "the invitation is accepted at verification", func() bool {
		_, err := st.srv.Orgs.Store().Member(context.Background(), org.ID, identityID)
		return err == nil
	})
	st.proveMember(org, identityID, "member")
}

// The code (passwordless) method runs the same hooks.
func TestSignUpWithCodeMethodAndToken(t *testing.T) {
	st := startStack(t, "kratos_settings", inviteOnly)
	org := st.org("Code Co")
	inv, _, err := st.srv.Invites.Invite(context.Background(), org.ID, invites.InviteRequest{Email: "code@example.com", SendEmail: ptr(false)})
	if err != nil {
		t.Fatal(err)
	}
	token := inv.AcceptURL[strings.LastIndexByte(inv.AcceptURL, '/')+1:]
	_, action := st.kratosFlow("registration", "")
	traits := map[string]any{"email": "code@example.com"}
	payload := map[string]any{"invite_token": token}
	if status, body := st.submit(action, map[string]any{"method": "code", "traits": traits, "transient_payload": payload}, ""); status != 200 && status != 400 {
		t.Fatalf("code step 1: %d %v", status, body)
	}
	code := st.courierCode("code@example.com")
	status, out := st.submit(action, map[string]any{"method": "code", "code": code, "traits": traits, "transient_payload": payload}, "")
	if status != 200 {
		t.Fatalf("code step 2: %d %v", status, out)
	}
	id := st.proveVerifiedActive("code@example.com")
	st.proveMember(org, id["id"].(string), "member")
}

func TestDomainsMode(t *testing.T) {
	st := startStack(t, "kratos_settings", func(c *config.Config) {
		c.Register.Mode, c.Register.AllowedDomains = "domains", []string{"allowed.example"}
	})
	if status, flow := st.signUp("someone@other.example", nil); status != 400 || !has(nodeMessages(flow), 4000102) {
		t.Fatalf("foreign domain: %d %v", status, nodeMessages(flow))
	}
	if status, out := st.signUp("someone@allowed.example", nil); status != 200 {
		t.Fatalf("allowed domain: %d %v", status, out)
	}
}

// hook calls a webhook endpoint directly, as Kratos would.
func (st *stack) hook(path, body, secret string) (int, map[string]any) {
	st.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, st.admin+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set("X-Kratos-Orgs-Secret", secret)
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		st.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestHookBadRequestsGetKratosMessages(t *testing.T) {
	st := startStack(t, "kratos_settings")
	good := `{"flow_id":"f","traits":{"email":"a@example.com"},"verifiable_addresses":[],"invite_token":null,"organization_name":null}`
	cases := []struct {
		name, path, body, secret string
		status                   int
	}{
		{"no secret", "/hooks/registration/pre", good, "", 401},
		{"wrong secret", "/hooks/registration/pre", good, "not-the-secret-at-all", 401},
		{"malformed JSON", "/hooks/registration/pre", `{"flow_id":`, testenv.HooksSecret, 400},
		{"unknown field", "/hooks/registration/pre", `{"flow_id":"f","cookies":{}}`, testenv.HooksSecret, 400},
		{"no email", "/hooks/registration/pre", `{"flow_id":"f","traits":{}}`, testenv.HooksSecret, 400},
		{"oversized", "/hooks/registration/pre", `{"flow_id":"` + strings.Repeat("x", 300<<10) + `"}`, testenv.HooksSecret, 413},
		{"post-persist without identity", "/hooks/registration/post", good, testenv.HooksSecret, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := st.hook(c.path, c.body, c.secret)
			msgs := asList(body["messages"])
			if status != c.status || len(msgs) != 1 || len(asList(msgs[0].(map[string]any)["messages"])) != 1 {
				t.Fatalf("%d %v, want %d with one Kratos message", status, body, c.status)
			}
		})
	}
	// Basic auth with the secret as password works too (Kratos' basic_auth).
	req, _ := http.NewRequest(http.MethodPost, st.admin+"/hooks/registration/pre", strings.NewReader(good))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("kratos", testenv.HooksSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("basic auth: %d", resp.StatusCode)
	}
}

// Logging in refreshes the claims; changing the email in settings leaves
// pending invitations with the address they were sent to.
func TestLoginRefreshesClaimsAndEmailChangeKeepsInvitations(t *testing.T) {
	st := startStack(t, "kratos_settings")
	id := st.createPerson("mover@example.com", "mover has a password", true)
	o := st.org("Claims Co")
	if _, _, err := st.srv.Orgs.AddMember(context.Background(), o.ID, orgs.AddMemberRequest{IdentityID: id, Role: "admin"}); err != nil {
		t.Fatal(err)
	}
	claimsOf := func() []any {
		meta, _ := st.kratosIdentity("mover@example.com")["metadata_public"].(map[string]any)
		return asList(meta["organizations"])
	}
	eventuallyTrue(t, "claims written after the membership change", func() bool { return len(claimsOf()) == 1 })
	// Somebody wipes the claims; the next login puts them back.
	wipe, _ := http.NewRequest(http.MethodPatch, st.kratos.AdminURL+"/admin/identities/"+id,
		strings.NewReader(`[{"op":"add","path":"/metadata_public","value":{"other":"kept"}}]`))
	wipe.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(wipe); err != nil || resp.StatusCode != 200 {
		t.Fatalf("wipe: %v", err)
	}
	token := st.sessionToken("mover@example.com", "mover has a password")
	eventuallyTrue(t, "the login refreshed the claims", func() bool { return len(claimsOf()) == 1 })
	meta := st.kratosIdentity("mover@example.com")["metadata_public"].(map[string]any)
	if meta["other"] != "kept" {
		t.Fatalf("other metadata_public keys must be kept: %v", meta)
	}

	other := st.org("Pending For Old Address")
	pending := st.invite(other, "mover@example.com", "member")
	_, action := st.kratosFlow("settings", token)
	status, out := st.submit(action, map[string]any{"method": "profile", "traits": map[string]any{"email": "moved@example.com"}}, token)
	if status != 200 {
		t.Fatalf("settings: %d %v", status, out)
	}
	got, _ := st.srv.Invites.Get(context.Background(), pending.ID)
	if got.Status != invites.Pending || got.Email != "mover@example.com" {
		t.Fatalf("the pending invitation moved: %+v", got)
	}
	if orgIDs, _ := st.srv.Addresses.PendingOrganizations(context.Background(), "moved@example.com"); len(orgIDs) != 0 {
		t.Fatalf("the new address inherited invitations: %v", orgIDs)
	}
}

// Invited, then signed up through Kratos without the link (the
// placeholder made way), then clicked the mailed link after all: the page
// treats them as the account holder they now are.
func TestLinkAfterSigningUpThroughKratos(t *testing.T) {
	st := startStack(t, "kratos_settings")
	org := st.org("Late Clicker")
	st.invite(org, "late.clicker@example.com", "member")
	link := st.link(1)
	if status, out := st.signUp("late.clicker@example.com", nil); status != 200 {
		t.Fatalf("sign-up: %d %v", status, out)
	}
	id := st.kratosIdentity("late.clicker@example.com")["id"].(string)
	b := testenv.NewBrowser(t)
	b.Do(chromedp.Navigate(link))
	b.WaitURL(`/kratos/login\?flow=`)
	login(b, "late.clicker@example.com", "Correct-Horse-Battery-9")
	b.WaitURL(`/invitations/accept/`)
	// Signed up without the link, the address is not proven yet.
	b.WaitText("h1", `^Verify your email address first$`)
	b.Shot("verify-first")
	_, action := st.kratosFlow("verification", "")
	st.submit(action, map[string]any{"method": "code", "email": "late.clicker@example.com"}, "")
	if status, body := st.submit(action, map[string]any{"method": "code", "code": st.courierCode("late.clicker@example.com")}, ""); status != 200 {
		t.Fatalf("verification: %d %v", status, body)
	}
	// Verifying turned the invitation into a membership; the link is used up.
	eventuallyTrue(t, "the verification accepted the invitation", func() bool {
		_, err := st.srv.Orgs.Store().Member(context.Background(), org.ID, id)
		return err == nil
	})
	st.proveMember(org, id, "member")
	b.Do(chromedp.Navigate(link))
	b.WaitText("h1", `already used`)
}
