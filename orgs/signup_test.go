package orgs

import (
	"context"
	"testing"
)

// A sign-up's organization is claimed once per flow, only while the flow's
// webhook record lives, and a released claim can be taken again.
func TestStoreSignupOrganizationClaim(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s, rdb, ks := newTestStore(t, backend)
		ctx := context.Background()
		claim := func(flow, wantOutcome, wantOrg string) {
			t.Helper()
			outcome, org, err := s.ClaimSignupOrganization(ctx, flow)
			if err != nil || outcome != wantOutcome || org != wantOrg {
				t.Fatalf("claim %s = %q, %q, %v; want %q, %q", flow, outcome, org, err, wantOutcome, wantOrg)
			}
		}
		claim("flow-without-record", SignupExpired, "")
		// The registration webhook's replay record is what the claim lives in.
		if err := rdb.HSet(ctx, ks.SignupOrganization("flow-1"), "d", "digest").Err(); err != nil {
			t.Fatal(err)
		}
		claim("flow-1", SignupFirst, "")
		claim("flow-1", SignupDone, "creating")
		if err := s.ReleaseSignupOrganization(ctx, "flow-1"); err != nil {
			t.Fatal(err)
		}
		claim("flow-1", SignupFirst, "")
		if err := s.SetSignupOrganization(ctx, "flow-1", "org-42"); err != nil {
			t.Fatal(err)
		}
		claim("flow-1", SignupDone, "org-42")
	})
}
