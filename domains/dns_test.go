package domains

import (
	"context"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
)

// TestVerifyByDNS: the TXT check through a configured resolver verifies a
// domain only when a record at _kratos-orgs.<domain> holds the claim's
// token; a wrong token or no record leaves it unverified.
func TestVerifyByDNS(t *testing.T) {
	srv := testenv.StartTXTServer(t)
	h := newHarness(t, "redis-server", NewResolver(srv.Addr, 2*time.Second))
	ctx := context.Background()
	a := h.org("DNS Co")
	claim := func(domain string) Domain {
		d, _, err := h.svc.Claim(ctx, a.ID, ClaimRequest{Domain: domain, Policy: AutoJoin})
		if err != nil {
			t.Fatal(err)
		}
		if d.DNSRecord.Name != RecordPrefix+domain || d.DNSRecord.Type != "TXT" {
			t.Fatalf("dns record: %+v", d.DNSRecord)
		}
		return d
	}
	right, wrong, none := claim("right.example"), claim("wrong.example"), claim("none.example")
	srv.Set("_kratos-orgs.right.example", "v=spf1 -all", right.DNSRecord.Value)
	srv.Set("_kratos-orgs.wrong.example", wrong.DNSRecord.Value+"x", right.DNSRecord.Value)
	_ = none

	for _, tc := range []struct {
		domain string
		ok     bool
	}{{"right.example", true}, {"wrong.example", false}, {"none.example", false}} {
		d, err := h.svc.Verify(ctx, a.ID, tc.domain)
		if tc.ok {
			if err != nil || !d.Verified || d.VerifiedBy != VerifiedByDNS {
				t.Errorf("%s: %+v %v; want verified by dns", tc.domain, d, err)
			}
		} else if apperr.CodeOf(err) != "domain_unverified" || apperr.KindOf(err) != apperr.Conflict {
			t.Errorf("%s: %v; want domain_unverified", tc.domain, err)
		}
		list, _ := h.svc.List(ctx, a.ID)
		for _, x := range list {
			if x.Domain == tc.domain && x.Verified != tc.ok {
				t.Errorf("%s stored verified=%v", tc.domain, x.Verified)
			}
		}
	}
	if n := srv.Count(""); n != 3 {
		t.Fatalf("the local resolver answered %d queries, want one per check (3)", n)
	}
	// A resolver that does not answer: 503, not "unverified".
	dead := NewService(Options{Store: h.store, Orgs: h.orgs, Identities: h.ids, Resolver: NewResolver("127.0.0.1:1", 300*time.Millisecond), Roles: h.svc.roles})
	if _, err := dead.Verify(ctx, a.ID, "wrong.example"); apperr.KindOf(err) != apperr.Unavailable {
		t.Fatalf("dead resolver: %v; want unavailable", err)
	}
}
