package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// domainCall calls the admin API with a JSON body (through adminCall:
// the OpenAPI check).
func (st *stack) domainCall(method, path string, body any) (int, map[string]any) {
	st.t.Helper()
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	r := st.adminCall(method, path, raw)
	return r.status, r.body
}

// verifiedDomain claims domain for org with policy and verifies it as the
// operator.
func (st *stack) verifiedDomain(org orgs.Organization, domain, policy string) {
	st.t.Helper()
	if status, out := st.domainCall("POST", "/organizations/"+org.ID+"/domains", map[string]any{"domain": domain, "policy": policy}); status != http.StatusCreated {
		st.t.Fatalf("claim %s: %d %v", domain, status, out)
	}
	if status, out := st.domainCall("PATCH", "/organizations/"+org.ID+"/domains/"+domain, map[string]any{"verified": true}); status != http.StatusOK || out["verified"] != true {
		st.t.Fatalf("verify %s: %d %v", domain, status, out)
	}
}

func (st *stack) isMember(org orgs.Organization, identityID string) bool {
	_, err := st.srv.Orgs.Store().Member(context.Background(), org.ID, identityID)
	return err == nil
}

// Verified-domain auto-join against a real Kratos: signing up with an
// address in a verified auto_join domain makes a member once Kratos shows
// the address verified, with the domain's role, in the session claims; an
// address nobody verified never does; a second organization cannot claim
// the domain.
func TestDomainAutoJoinAfterVerification(t *testing.T) {
	st := startStack(t, "kratos_settings")
	org := st.org("Auto Domain Inc")
	st.verifiedDomain(org, "auto-join.example", "auto_join")
	other := st.org("Squatter Ltd")
	if status, out := st.domainCall("POST", "/organizations/"+other.ID+"/domains", map[string]any{"domain": "AUTO-JOIN.example"}); status != http.StatusConflict ||
		out["error"].(map[string]any)["code"] != "domain_taken" {
		t.Fatalf("second organization's claim: %d %v", status, out)
	}

	status, out := st.signUp("ada@auto-join.example", nil)
	if status != http.StatusOK {
		t.Fatalf("sign-up: %d %v", status, out)
	}
	ada := out["identity"].(map[string]any)["id"].(string)
	status, out = st.signUp("bo@auto-join.example", nil)
	if status != http.StatusOK {
		t.Fatalf("sign-up: %d %v", status, out)
	}
	bo := out["identity"].(map[string]any)["id"].(string)
	time.Sleep(300 * time.Millisecond) // the post-registration hook ran
	if st.isMember(org, ada) || st.isMember(org, bo) {
		t.Fatal("a member before the address was verified")
	}

	st.verifyAddress("ada@auto-join.example")
	eventuallyTrue(t, "the verified address joins through its domain", func() bool { return st.isMember(org, ada) })
	st.proveMember(org, ada, "member")
	eventuallyTrue(t, "the membership is in the session claims", func() bool {
		meta, _ := st.kratosIdentity("ada@auto-join.example")["metadata_public"].(map[string]any)
		for _, c := range asList(meta["organizations"]) {
			if c.(map[string]any)["id"] == org.ID {
				return true
			}
		}
		return false
	})
	if st.isMember(org, bo) || st.isMember(other, ada) {
		t.Fatal("an unverified address joined, or the wrong organization got a member")
	}
}

// The suggest journey in Chromium: a signed-in person with a verified
// address in a verified suggest domain sees the organization on the
// welcome page and joins with one click.
func TestDomainSuggestJoinInBrowser(t *testing.T) {
	st := startStack(t, "kratos_settings")
	org := st.org("Suggest Corp")
	st.verifiedDomain(org, "suggest.example", "suggest")
	id := st.createPerson("cleo@suggest.example", "cleo has a fine password", true)

	b := testenv.NewBrowser(t)
	b.Do(chromedp.Navigate(st.base + "/kratos/login"))
	login(b, "cleo@suggest.example", "cleo has a fine password")
	b.WaitURL(`/welcome$`)
	b.Do(chromedp.WaitVisible(chromedp.CSS(`button[data-join="suggest.example"]`)))
	b.Shot("suggested")
	if st.isMember(org, id) {
		t.Fatal("a suggest domain made a member without the click")
	}
	if txt := b.Text(`ul.orgs`); !strings.Contains(txt, "Suggest Corp") {
		t.Fatalf("suggestions list %q", txt)
	}
	b.Do(chromedp.Click(chromedp.CSS(`button[data-join="suggest.example"]`)))
	b.WaitURL(`/welcome$`)
	b.Do(chromedp.WaitVisible(chromedp.CSS("h1")))
	b.Shot("joined")
	st.proveMember(org, id, "member")
	if strings.Contains(b.HTML(), `data-join="suggest.example"`) {
		t.Fatal("a member is still offered the organization")
	}
	if st.whoami(b.CookieHeader(st.kratos.PublicURL)) == nil {
		t.Fatal("the session was lost")
	}
}

// An owner signed in to a real Kratos claims a domain on /api, proves it
// with the DNS TXT record (a local DNS server), turns on auto_join, and a
// person who then signs up with an address in it becomes a member once
// Kratos shows the address verified. An admin cannot touch the domains;
// verified:true without DNS is refused.
func TestDomainOwnerAPIWithKratos(t *testing.T) {
	dns := testenv.StartTXTServer(t)
	st := startStack(t, "kratos_settings", func(c *config.Config) { c.Domains.DNSServer = dns.Addr })
	ctx := context.Background()
	ownerID := st.createPerson("owner@owned.example", "owner has a long password", true)
	adminID := st.createPerson("admin@owned.example", "admin has a long password", true)
	o, err := st.srv.Orgs.Create(ctx, orgs.CreateRequest{Name: "Owned Domain Co", OwnerIdentityID: ownerID}, orgs.StateActive)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.srv.Orgs.AddMember(ctx, o.ID, orgs.AddMemberRequest{IdentityID: adminID, Role: "admin"}); err != nil {
		t.Fatal(err)
	}
	owner := st.sessionToken("owner@owned.example", "owner has a long password")
	admin := st.sessionToken("admin@owned.example", "admin has a long password")
	base := "/organizations/" + o.Slug + "/domains"
	if r := st.api(admin, "POST", base, map[string]any{"domain": "owned.example"}); r.status != http.StatusForbidden || r.code() != "role_too_low" {
		t.Fatalf("admin claims: %d %v", r.status, r.body)
	}
	r := st.api(owner, "POST", base, map[string]any{"domain": "owned.example", "policy": "suggest"})
	if r.status != http.StatusCreated {
		t.Fatalf("owner claims: %d %v", r.status, r.body)
	}
	if r := st.api(owner, "PATCH", base+"/owned.example", map[string]any{"verified": true}); r.status != http.StatusForbidden || r.code() != "operator_only" {
		t.Fatalf("owner verifies without DNS: %d %v", r.status, r.body)
	}
	dns.Set("_kratos-orgs.owned.example", r.body["dns_record"].(map[string]any)["value"].(string))
	if r := st.api(owner, "POST", base+"/owned.example/verify", nil); r.status != http.StatusOK || r.body["verified_by"] != "dns" {
		t.Fatalf("owner's DNS check: %d %v", r.status, r.body)
	}
	if r := st.api(owner, "PATCH", base+"/owned.example", map[string]any{"policy": "auto_join"}); r.status != http.StatusOK || r.body["policy"] != "auto_join" {
		t.Fatalf("owner turns on auto_join: %d %v", r.status, r.body)
	}
	status, out := st.signUp("dee@owned.example", nil)
	if status != http.StatusOK {
		t.Fatalf("sign-up: %d %v", status, out)
	}
	dee := out["identity"].(map[string]any)["id"].(string)
	st.verifyAddress("dee@owned.example")
	eventuallyTrue(t, "the verified address joins through the owner's domain", func() bool { return st.isMember(o, dee) })
	if r := st.api(owner, "DELETE", base+"/owned.example", nil); r.status != http.StatusNoContent || !st.isMember(o, dee) {
		t.Fatalf("release: %d %v; the membership must stay", r.status, r.body)
	}
}
