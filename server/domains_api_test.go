package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/domains"
	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// The org admins' /api for domains runs the real router, quotas and
// domain store against a real redis-server, with Kratos faked (sessions
// included) and the DNS check answered by a local DNS server that counts
// the queries it gets. Every response goes through the OpenAPI recorder.

// domainStack is a quota stack whose DNS check asks a local server.
func domainStack(t *testing.T, mutate ...func(*config.Config)) (*quotaStack, *testenv.TXTServer) {
	t.Helper()
	dns := testenv.StartTXTServer(t)
	st := startQuotaStack(t, append([]func(*config.Config){func(c *config.Config) {
		c.Domains.DNSServer = dns.Addr
		c.Domains.DNSTimeout = 2 * time.Second
	}}, mutate...)...)
	return st, dns
}

// domainAPI calls an /api domain route with a session token.
func (st *quotaStack) domainAPI(token, method, path, body string) reply {
	st.t.Helper()
	h := map[string]string{"X-Session-Token": token}
	if body != "" {
		h["Content-Type"] = "application/json"
	}
	return st.do(method, st.public+"/api/organizations/"+path, body, h)
}

func (r reply) object(t *testing.T) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal([]byte(r.body), &out); err != nil {
		t.Fatalf("%d: not JSON: %s", r.status, r.body)
	}
	return out
}

// An owner lists, claims, changes, verifies through DNS and releases the
// organization's domains; an admin and a stranger cannot; verified:true
// without DNS stays the operator's.
func TestAPIDomainsOwnerManages(t *testing.T) {
	st, dns := domainStack(t)
	owner, tokOwner := st.ids.signIn("owner@acme.example")
	admin, tokAdmin := st.ids.signIn("admin@acme.example")
	_, tokStranger := st.ids.signIn("stranger@elsewhere.example")
	org := st.orgOwnedBy("Acme", owner)
	if _, _, err := st.srv.Orgs.AddMember(context.Background(), org.ID, orgs.AddMemberRequest{IdentityID: admin.ID, Role: "admin"}); err != nil {
		t.Fatal(err)
	}
	base := org.ID + "/domains"
	if r := st.domainAPI(tokAdmin, "GET", base, ""); r.status != http.StatusForbidden || mustCode(t, r) != "role_too_low" {
		t.Fatalf("admin lists: %d %s", r.status, r.body)
	}
	if r := st.domainAPI(tokStranger, "POST", base, `{"domain":"acme.example"}`); r.status != http.StatusNotFound {
		t.Fatalf("stranger claims: %d %s", r.status, r.body)
	}
	r := st.domainAPI(tokOwner, "POST", base, `{"domain":"ACME.example","policy":"auto_join"}`)
	claim := r.object(t)
	if r.status != http.StatusCreated || claim["domain"] != "acme.example" || claim["verified"] != false {
		t.Fatalf("owner claims: %d %s", r.status, r.body)
	}
	token := claim["dns_record"].(map[string]any)["value"].(string)
	if r := st.domainAPI(tokOwner, "PATCH", base+"/acme.example", `{"verified":true}`); r.status != http.StatusForbidden || mustCode(t, r) != "operator_only" {
		t.Fatalf("owner verifies without DNS: %d %s", r.status, r.body)
	}
	if r := st.domainAPI(tokOwner, "PATCH", base+"/acme.example", `{"policy":"suggest","role":"admin"}`); r.status != http.StatusOK ||
		r.object(t)["policy"] != "suggest" || r.object(t)["verified"] != false {
		t.Fatalf("owner changes policy: %d %s", r.status, r.body)
	}
	if r := st.domainAPI(tokOwner, "POST", base+"/acme.example/verify", ""); r.status != http.StatusConflict || mustCode(t, r) != "domain_unverified" {
		t.Fatalf("verify without a record: %d %s", r.status, r.body)
	}
	dns.Set("_kratos-orgs.acme.example", token)
	r = st.domainAPI(tokOwner, "POST", base+"/acme.example/verify", "")
	if r.status != http.StatusOK || r.object(t)["verified"] != true || r.object(t)["verified_by"] != "dns" {
		t.Fatalf("verify with the record: %d %s", r.status, r.body)
	}
	if n := dns.Count("_kratos-orgs.acme.example"); n != 2 {
		t.Errorf("the resolver got %d queries for two checks", n)
	}
	r = st.domainAPI(tokOwner, "GET", base, "")
	if items := r.object(t)["items"].([]any); r.status != http.StatusOK || len(items) != 1 {
		t.Fatalf("owner lists: %d %s", r.status, r.body)
	}
	if r := st.domainAPI(tokAdmin, "DELETE", base+"/acme.example", ""); r.status != http.StatusForbidden {
		t.Fatalf("admin releases: %d %s", r.status, r.body)
	}
	if r := st.domainAPI(tokOwner, "DELETE", base+"/acme.example", ""); r.status != http.StatusNoContent {
		t.Fatalf("owner releases: %d %s", r.status, r.body)
	}
	if r := st.domainAPI(tokOwner, "DELETE", base+"/acme.example", ""); r.status != http.StatusNotFound {
		t.Fatalf("second release: %d %s", r.status, r.body)
	}
}

func mustCode(t *testing.T, r reply) string {
	t.Helper()
	code, _ := r.errorBody(t)
	return code
}

// N DNS checks of one domain in a window: exactly the quota reaches the
// resolver (counted at the local DNS server), the rest are 429
// rate_limited with Retry-After. A stranger's attempts and checks of a
// domain the organization does not hold spend nothing; the admin API
// shares the domain's bucket.
func TestAPIDomainVerifyQuotaCountsResolverQueries(t *testing.T) {
	const quota, attempts = 3, 8
	st, dns := domainStack(t, func(c *config.Config) {
		c.Domains.VerifyPerDomain = config.Rate{Requests: quota, Period: time.Hour}
	})
	owner, tok := st.ids.signIn("owner@quota.example")
	_, tokStranger := st.ids.signIn("stranger@quota.example")
	org := st.orgOwnedBy("Quota Co", owner)
	if r := st.domainAPI(tok, "POST", org.ID+"/domains", `{"domain":"quota.example"}`); r.status != http.StatusCreated {
		t.Fatalf("claim: %d %s", r.status, r.body)
	}
	const record = "_kratos-orgs.quota.example"
	for range 5 {
		st.domainAPI(tokStranger, "POST", org.ID+"/domains/quota.example/verify", "")
		st.domainAPI(tok, "POST", org.ID+"/domains/other.example/verify", "")
	}
	if n := dns.Count(""); n != 0 {
		t.Fatalf("refused callers reached the resolver %d times", n)
	}
	reached, refused := 0, 0
	for i := range attempts {
		r := st.domainAPI(tok, "POST", org.ID+"/domains/quota.example/verify", "")
		switch code, limit := r.errorBody(t); {
		case r.status == http.StatusConflict && code == "domain_unverified":
			reached++
		case r.status == http.StatusTooManyRequests && code == "rate_limited" && limit == "domains_verify_per_domain":
			refused++
			assertRetryAfter(t, r)
		default:
			t.Fatalf("check %d: %d %s", i, r.status, r.body)
		}
	}
	t.Logf("%d DNS checks of one domain: %d reached the resolver (%d queries), %d refused (quota %d)", attempts, reached, dns.Count(record), refused, quota)
	if reached != quota || dns.Count(record) != quota || refused != attempts-quota {
		t.Fatalf("%d checks answered, %d queries, %d refused; want %d, %d, %d", reached, dns.Count(record), refused, quota, quota, attempts-quota)
	}
	r := st.do(http.MethodPost, st.admin+"/admin/organizations/"+org.ID+"/domains/quota.example/verify", "", map[string]string{"Authorization": "Bearer " + adminKey})
	if assertRetryAfter(t, r); dns.Count(record) != quota {
		t.Fatalf("the admin API's check reached the resolver past the domain's quota")
	}
}

// Claims on /api are bounded per organization, counted only once the
// caller is known to be an owner; every /api domain request is bounded
// per identity.
func TestAPIDomainClaimAndIdentityQuotas(t *testing.T) {
	st, _ := domainStack(t, func(c *config.Config) {
		c.Domains.ClaimsPerOrganization = config.Rate{Requests: 2, Period: 24 * time.Hour}
		c.Domains.APIPerIdentity = config.Rate{Requests: 6, Period: time.Hour}
	})
	owner, tok := st.ids.signIn("owner@claims.example")
	admin, tokAdmin := st.ids.signIn("admin@claims.example")
	org := st.orgOwnedBy("Claims Co", owner)
	if _, _, err := st.srv.Orgs.AddMember(context.Background(), org.ID, orgs.AddMemberRequest{IdentityID: admin.ID, Role: "admin"}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // refused as an admin: spends the admin's own quota only
		if r := st.domainAPI(tokAdmin, "POST", org.ID+"/domains", fmt.Sprintf(`{"domain":"a%d.example"}`, i)); r.status != http.StatusForbidden {
			t.Fatalf("admin's claim: %d %s", r.status, r.body)
		}
	}
	passed := 0
	for i := range 4 {
		r := st.domainAPI(tok, "POST", org.ID+"/domains", fmt.Sprintf(`{"domain":"d%d.example"}`, i))
		if r.status == http.StatusCreated {
			passed++
			continue
		}
		if code, limit := r.errorBody(t); code != "rate_limited" || limit != "domains_claims_per_organization" {
			t.Fatalf("claim %d: %d %s", i, r.status, r.body)
		}
		assertRetryAfter(t, r)
	}
	list := st.domainAPI(tok, "GET", org.ID+"/domains", "").object(t)["items"].([]any)
	if passed != 2 || len(list) != 2 {
		t.Fatalf("%d claims passed, %d held; want the quota (2)", passed, len(list))
	}
	// The owner has made 5 requests; the 6th passes, the 7th is refused.
	if r := st.domainAPI(tok, "GET", org.ID+"/domains", ""); r.status != http.StatusOK {
		t.Fatalf("6th request: %d %s", r.status, r.body)
	}
	r := st.domainAPI(tok, "GET", org.ID+"/domains", "")
	if code, limit := r.errorBody(t); code != "rate_limited" || limit != "domains_api_per_identity" {
		t.Fatalf("7th request: %d %s", r.status, r.body)
	}
}

// Bad input is a structured error and changes nothing: not the claims,
// not the organization's list, not the resolver.
func TestAPIDomainsBadInput(t *testing.T) {
	st, dns := domainStack(t, func(c *config.Config) { c.Serve.MaxBodyBytes = 4096 })
	owner, tok := st.ids.signIn("owner@bad.example")
	org := st.orgOwnedBy("Bad Input Co", owner)
	if r := st.domainAPI(tok, "POST", org.ID+"/domains", `{"domain":"held.example","policy":"auto_join"}`); r.status != http.StatusCreated {
		t.Fatalf("claim: %d %s", r.status, r.body)
	}
	claims, base := org.ID+"/domains", org.ID+"/domains/held.example"
	for _, tc := range []struct {
		name, method, path, contentType, body string
		status                                int
		code                                  string
	}{
		{"not a domain", "POST", claims, "application/json", `{"domain":"not a domain"}`, 400, "invalid_domain"},
		{"public suffix", "POST", claims, "application/json", `{"domain":"co.uk"}`, 400, "invalid_domain"},
		{"IP address", "POST", claims, "application/json", `{"domain":"192.0.2.1"}`, 400, "invalid_domain"},
		{"an address", "POST", claims, "application/json", `{"domain":"ada@new.example"}`, 400, "invalid_domain"},
		{"unknown field", "POST", claims, "application/json", `{"domain":"new.example","colour":"red"}`, 400, "unknown_field"},
		{"wrong type", "POST", claims, "application/json", `{"domain":["new.example"]}`, 400, "invalid_field"},
		{"unknown policy", "POST", claims, "application/json", `{"domain":"new.example","policy":"everyone"}`, 400, "invalid_policy"},
		{"unknown role", "POST", claims, "application/json", `{"domain":"new.example","role":"king"}`, 400, "invalid_role"},
		{"owner role", "POST", claims, "application/json", `{"domain":"new.example","role":"owner"}`, 400, "role_too_high"},
		{"null body", "POST", claims, "application/json", `null`, 400, "invalid_json"},
		{"two values", "POST", claims, "application/json", `{"domain":"new.example"}{}`, 400, "invalid_json"},
		{"oversized body", "POST", claims, "application/json", `{"domain":"new.example","x":"` + strings.Repeat("a", 5000) + `"}`, 413, "body_too_large"},
		{"wrong content type", "POST", claims, "text/plain", `{"domain":"new.example"}`, 415, "unsupported_media_type"},
		{"form content type", "POST", claims, "application/x-www-form-urlencoded", `domain=new.example`, 415, "unsupported_media_type"},
		{"verified by an owner", "PATCH", base, "application/json", `{"verified":true}`, 403, "operator_only"},
		{"verified with policy", "PATCH", base, "application/json", `{"policy":"suggest","verified":true}`, 403, "operator_only"},
		{"empty change", "PATCH", base, "application/json", `{}`, 400, "empty_update"},
		{"change unknown field", "PATCH", base, "application/json", `{"policy":"suggest","owner":"me"}`, 400, "unknown_field"},
		{"change to owner role", "PATCH", base, "application/json", `{"role":"owner"}`, 400, "role_too_high"},
		{"change bad policy", "PATCH", base, "application/json", `{"policy":"all"}`, 400, "invalid_policy"},
		{"change wrong content type", "PATCH", base, "text/csv", `policy\nsuggest\n`, 415, "unsupported_media_type"},
		{"change a domain not held", "PATCH", org.ID + "/domains/other.example", "application/json", `{"policy":"suggest"}`, 404, "domain_not_found"},
		{"change a malformed domain", "PATCH", org.ID + "/domains/co.uk", "application/json", `{"policy":"suggest"}`, 404, "domain_not_found"},
		{"verify with a body", "POST", base + "/verify", "application/json", `{"now":true}`, 400, "unknown_field"},
		{"release a domain not held", "DELETE", org.ID + "/domains/other.example", "", "", 404, "domain_not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := st.domainState(org.ID)
			h := map[string]string{"X-Session-Token": tok}
			if tc.contentType != "" {
				h["Content-Type"] = tc.contentType
			}
			r := st.do(tc.method, st.public+"/api/organizations/"+tc.path, tc.body, h)
			if code, _ := r.errorBody(t); r.status != tc.status || code != tc.code {
				t.Fatalf("%d %s; want %d %s", r.status, r.body, tc.status, tc.code)
			}
			if after := st.domainState(org.ID); after != before {
				t.Fatalf("changed:\n%s\nto\n%s", before, after)
			}
			if n := dns.Count(""); n != 0 {
				t.Fatalf("bad input reached the resolver (%d queries)", n)
			}
		})
	}
}

// domainState is everything the domain store holds about an organization.
func (st *quotaStack) domainState(org string) string {
	st.t.Helper()
	ctx := context.Background()
	claims, err := st.srv.Redis().HGetAll(ctx, st.srv.Keyspace().Domains()).Result()
	if err != nil {
		st.t.Fatal(err)
	}
	set, err := st.srv.Redis().SMembers(ctx, st.srv.Keyspace().OrgDomains(org)).Result()
	if err != nil {
		st.t.Fatal(err)
	}
	return fmt.Sprint(claims, set)
}

// signInVerified creates an identity whose address Kratos shows verified,
// with a session.
func (f *sessionFake) signInVerified(email string) (*identity.Identity, string) {
	who := f.AddWith(email, "Member "+email, true)
	f.mu.Lock()
	defer f.mu.Unlock()
	token := "token-" + who.ID
	f.sessions[token] = who
	return who, token
}

// seatedOrg is an organization of owner with a seat limit and a verified
// domain of the given policy.
func (st *quotaStack) seatedOrg(name string, owner *identity.Identity, seats int64, domain, policy string) orgs.Organization {
	st.t.Helper()
	o := organization(name)
	o.Seats.Limit = &seats
	org, err := st.srv.Orgs.Store().Create(context.Background(), o, false, &orgs.Member{IdentityID: owner.ID, Email: owner.Email, Role: "owner"})
	if err != nil {
		st.t.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err := st.srv.Domains.Claim(ctx, org.ID, domains.ClaimRequest{Domain: domain, Policy: policy}); err != nil {
		st.t.Fatal(err)
	}
	yes := true
	if _, err := st.srv.Domains.Update(ctx, org.ID, domain, domains.UpdateRequest{Verified: &yes}); err != nil {
		st.t.Fatal(err)
	}
	return org
}

func (st *quotaStack) members(org orgs.Organization) int {
	st.t.Helper()
	page, err := st.srv.Orgs.Members(context.Background(), org.ID, "", 100)
	if err != nil {
		st.t.Fatal(err)
	}
	return len(page.Items)
}

// Auto-join through Kratos' verification webhook: of 6 people with a
// verified address in the domain, exactly the free seats (3 of 4, the
// owner holds one) become members; the others are left out, and the
// webhook still answers Kratos 200.
func TestDomainAutoJoinsStopAtTheSeatLimit(t *testing.T) {
	const secret = "domain-hook-secret-0123456789"
	st, _ := domainStack(t, func(c *config.Config) { c.Hooks.Secret = secret })
	owner, _ := st.ids.signIn("owner@seats.example")
	org := st.seatedOrg("Seats Co", owner, 4, "seats.example", domains.AutoJoin)
	for i := range 6 {
		who, _ := st.ids.signInVerified(fmt.Sprintf("p%d@seats.example", i))
		r := st.do(http.MethodPost, st.admin+"/hooks/verification/after", fmt.Sprintf(`{"flow_id":"f%d","identity_id":"%s","verifiable_addresses":[]}`, i, who.ID),
			map[string]string{"Content-Type": "application/json", "X-Kratos-Orgs-Secret": secret})
		if r.status != http.StatusOK {
			t.Fatalf("webhook %d: %d %s", i, r.status, r.body)
		}
	}
	n := st.members(org)
	t.Logf("6 verified addresses in an auto_join domain, 4 seats: %d members (owner included)", n)
	if n != 4 {
		t.Fatalf("%d members, want the seat limit (4)", n)
	}
}

// The one-click join of a suggest domain: per identity at most
// domains.join_per_identity attempts pass (429 page after), and of 5
// people clicking, exactly the free seats join.
func TestDomainSuggestJoinsAreBounded(t *testing.T) {
	st, _ := domainStack(t, func(c *config.Config) { c.Domains.JoinPerIdentity = config.Rate{Requests: 2, Period: time.Hour} })
	owner, _ := st.ids.signIn("owner@suggest.example")
	org := st.seatedOrg("Suggest Co", owner, 3, "suggest.example", domains.Suggest)
	joined, full := 0, 0
	var last *browser
	for i := range 5 {
		_, tok := st.ids.signInVerified(fmt.Sprintf("p%d@suggest.example", i))
		last = st.browserOf(tok)
		r := last.post(domains.JoinPath, "/welcome", "", url.Values{"domain": {"suggest.example"}})
		switch {
		case r.status == http.StatusSeeOther:
			joined++
		case r.status == http.StatusConflict:
			full++
		default:
			t.Fatalf("join %d: %d %s", i, r.status, r.body)
		}
	}
	t.Logf("5 one-click joins, 3 seats: %d joined, %d refused for want of a seat; %d members", joined, full, st.members(org))
	if joined != 2 || st.members(org) != 3 {
		t.Fatalf("%d joined, %d members; want 2 and 3", joined, st.members(org))
	}
	// The last person has spent one attempt of 2: one more passes the
	// quota (and finds no seat), the next is the 429 page.
	if r := last.post(domains.JoinPath, "/welcome", "", url.Values{"domain": {"suggest.example"}}); r.status != http.StatusConflict {
		t.Fatalf("second attempt: %d, want 409 (no seat)", r.status)
	}
	r := last.post(domains.JoinPath, "/welcome", "", url.Values{"domain": {"suggest.example"}})
	if assertRetryAfter(t, r); st.refusals("domains_join_per_identity") != 1 {
		t.Fatalf("refusals of domains_join_per_identity: %d", st.refusals("domains_join_per_identity"))
	}
	if full != 3 || st.members(org) != 3 {
		t.Fatalf("%d refused for want of a seat, %d members", full, st.members(org))
	}
}
