package domains

import (
	"context"
	"sync"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// spent counts what a quota was asked for, per key.
type spent struct {
	mu   sync.Mutex
	keys map[string]int
}

func (q *spent) quota(_ context.Context, key string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.keys[key]++
	return nil
}

func (q *spent) of(key string) int { q.mu.Lock(); defer q.mu.Unlock(); return q.keys[key] }

// The org owners' rules, without HTTP: owners manage, admins and members
// get role_too_low, non-members organization_not_found; verified is the
// operator's; a domain of another organization is not found; quotas are
// spent only by a caller who may act, on a domain the organization holds.
func TestOrgOwnersManageDomains(t *testing.T) {
	h := newHarness(t, "redis-server", nil)
	ctx := context.Background()
	claims, checks := &spent{keys: map[string]int{}}, &spent{keys: map[string]int{}}
	access := orgs.NewService(h.orgs, nil, h.svc.roles, nil)
	svc := NewService(Options{Store: h.store, Orgs: h.orgs, Identities: h.ids, Resolver: failingResolver{}, Roles: h.svc.roles,
		Access: access, ClaimQuota: claims.quota, VerifyQuota: checks.quota})
	a, b := h.org("Owned A"), h.org("Owned B")
	for id, role := range map[string]string{"owner-a": "owner", "admin-a": "admin", "member-a": "member"} {
		if _, _, err := h.orgs.AddMember(ctx, a.ID, orgs.Member{IdentityID: id, Role: role}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := svc.Claim(ctx, b.ID, ClaimRequest{Domain: "b.example"}); err != nil {
		t.Fatal(err)
	}
	for caller, code := range map[string]string{"admin-a": "role_too_low", "member-a": "role_too_low", "stranger": "organization_not_found"} {
		if _, _, err := svc.ClaimAs(ctx, a.ID, caller, ClaimRequest{Domain: "a.example"}); apperr.CodeOf(err) != code {
			t.Errorf("%s claims: %v, want %s", caller, err, code)
		}
		if _, err := svc.ListAs(ctx, a.ID, caller); apperr.CodeOf(err) != code {
			t.Errorf("%s lists: %v, want %s", caller, err, code)
		}
	}
	if claims.of(a.ID) != 0 {
		t.Fatal("refused callers spent the organization's claim quota")
	}
	d, created, err := svc.ClaimAs(ctx, a.ID, "owner-a", ClaimRequest{Domain: "A.example", Policy: AutoJoin, Role: "admin"})
	if err != nil || !created || d.OrganizationID != a.ID || d.Role != "admin" || claims.of(a.ID) != 1 {
		t.Fatalf("owner claims: %+v %v %v (quota %d)", d, created, err, claims.of(a.ID))
	}
	yes := true
	if _, err := svc.UpdateAs(ctx, a.ID, "owner-a", "a.example", UpdateRequest{Verified: &yes}); apperr.CodeOf(err) != "operator_only" {
		t.Fatalf("owner verifies without DNS: %v", err)
	}
	for _, op := range []func() error{
		func() error { _, err := svc.VerifyAs(ctx, a.ID, "owner-a", "b.example"); return err },
		func() error { return svc.ReleaseAs(ctx, a.ID, "owner-a", "b.example") },
		func() error {
			_, err := svc.UpdateAs(ctx, a.ID, "owner-a", "b.example", UpdateRequest{Policy: ptr(AutoJoin)})
			return err
		},
	} {
		if err := op(); apperr.CodeOf(err) != "domain_not_found" {
			t.Errorf("acting on another organization's domain: %v", err)
		}
	}
	if _, err := svc.VerifyAs(ctx, a.ID, "admin-a", "a.example"); apperr.CodeOf(err) != "role_too_low" || checks.of("a.example") != 0 {
		t.Fatalf("admin's check: %v (quota %d)", err, checks.of("a.example"))
	}
	if _, err := svc.VerifyAs(ctx, a.ID, "owner-a", "a.example"); apperr.KindOf(err) != apperr.Unavailable || checks.of("a.example") != 1 {
		t.Fatalf("owner's check: %v (quota %d)", err, checks.of("a.example"))
	}
	if list, _ := svc.List(ctx, a.ID); len(list) != 1 || list[0].Verified {
		t.Fatalf("after the refusals: %+v", list)
	}
	if err := svc.ReleaseAs(ctx, a.ID, "owner-a", "a.example"); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

// failingResolver is a resolver that does not answer.
type failingResolver struct{}

func (failingResolver) LookupTXT(context.Context, string) ([]string, error) {
	return nil, context.DeadlineExceeded
}
