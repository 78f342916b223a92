package domains

import (
	"context"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// A claim nobody verified holds its domain for UnverifiedTTL; after that,
// another organization's claim takes it over (the squatter's listing no
// longer shows it). A verified claim is never taken over, however old.
func TestUnverifiedClaimsExpire(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		ctx := context.Background()
		now := time.Now()
		svc := NewService(Options{Store: h.store, Orgs: h.orgs, Identities: h.ids, Roles: h.svc.roles,
			UnverifiedTTL: 7 * 24 * time.Hour, Now: func() time.Time { return now }})
		squatter, company, late := h.org("Squatter"), h.org("Company"), h.org("Late")
		for _, name := range []string{"squatted.example", "verified.example"} {
			if _, _, err := svc.Claim(ctx, squatter.ID, ClaimRequest{Domain: name}); err != nil {
				t.Fatal(err)
			}
		}
		yes := true
		if _, err := svc.Update(ctx, squatter.ID, "verified.example", UpdateRequest{Verified: &yes}); err != nil {
			t.Fatal(err)
		}
		now = now.Add(6 * 24 * time.Hour)
		if _, _, err := svc.Claim(ctx, company.ID, ClaimRequest{Domain: "squatted.example"}); apperr.CodeOf(err) != "domain_taken" {
			t.Fatalf("within the TTL: %v, want domain_taken", err)
		}
		now = now.Add(2 * 24 * time.Hour)
		d, created, err := svc.Claim(ctx, company.ID, ClaimRequest{Domain: "squatted.example"})
		if err != nil || !created || d.OrganizationID != company.ID || d.DNSRecord.Value == "" {
			t.Fatalf("after the TTL: %+v %v %v", d, created, err)
		}
		if _, _, err := svc.Claim(ctx, late.ID, ClaimRequest{Domain: "squatted.example"}); apperr.CodeOf(err) != "domain_taken" {
			t.Fatalf("the new claim is fresh: %v, want domain_taken", err)
		}
		if _, _, err := svc.Claim(ctx, company.ID, ClaimRequest{Domain: "verified.example"}); apperr.CodeOf(err) != "domain_taken" {
			t.Fatalf("a verified claim was taken over: %v", err)
		}
		list, err := svc.List(ctx, squatter.ID)
		if err != nil || len(list) != 1 || list[0].Domain != "verified.example" {
			t.Fatalf("the squatter still lists %+v %v", list, err)
		}
		if err := svc.Release(ctx, squatter.ID, "squatted.example"); apperr.CodeOf(err) != "domain_not_found" {
			t.Fatalf("the squatter released the company's domain: %v", err)
		}
	})
}
