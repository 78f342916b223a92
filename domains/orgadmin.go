package domains

import (
	"context"
	"fmt"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// The rules for an organization's own members managing its domains on the
// org admins' API (/api). The operator's admin API and CLI call the plain
// methods (Claim, Update, Verify, Release); these wrap them with who may.

// ManageRole is the least role that lists and manages an organization's
// domains on /api. Owners only, as the peers do: Clerk gives its domain
// permissions (org:sys_domains:read, :manage) to the top, creator role
// alone by default, and WorkOS hands domain verification to the
// organization's IT contact. An auto_join domain admits everyone at the
// domain without an invitation, past the invitation quotas an admin
// works within: that is the owner's decision.
const ManageRole = "owner"

// Access authorizes a member (orgs.Service).
type Access interface {
	Authorize(ctx context.Context, orgRef, identityID, minRole string) (orgs.Organization, orgs.Member, error)
	CheckCeiling(callerRole, role string) error
}

// Quota spends one unit of a quota for key; a refusal is apperr
// rate_limited (ratelimit.Limiter.Check with its limit bound).
type Quota func(ctx context.Context, key string) error

func noQuota(context.Context, string) error { return nil }

// manager authorizes callerID to manage the organization's domains.
func (s *Service) manager(ctx context.Context, ref, callerID string) (orgs.Organization, orgs.Member, error) {
	if s.access == nil {
		return orgs.Organization{}, orgs.Member{}, fmt.Errorf("domains: no Access configured for the org admins' API")
	}
	return s.access.Authorize(ctx, ref, callerID, ManageRole)
}

// ListAs lists the organization's domains for callerID.
func (s *Service) ListAs(ctx context.Context, ref, callerID string) ([]Domain, error) {
	o, _, err := s.manager(ctx, ref, callerID)
	if err != nil {
		return nil, err
	}
	return s.store.List(ctx, o.ID)
}

// ClaimAs claims a domain for callerID's organization: the role it grants
// is within the caller's, and each claim counts against the organization's
// claim quota (once the caller is known to manage it, so nobody spends
// another organization's quota).
func (s *Service) ClaimAs(ctx context.Context, ref, callerID string, r ClaimRequest) (Domain, bool, error) {
	if _, err := Normalize(r.Domain); err != nil {
		return Domain{}, false, err
	}
	o, me, err := s.manager(ctx, ref, callerID)
	if err != nil {
		return Domain{}, false, err
	}
	role := r.Role
	if role == "" {
		role = orgs.DefaultRole
	}
	if err := s.checkRole(role); err != nil {
		return Domain{}, false, err
	}
	if err := s.access.CheckCeiling(me.Role, role); err != nil {
		return Domain{}, false, err
	}
	if err := s.claimQuota(ctx, o.ID); err != nil {
		return Domain{}, false, err
	}
	return s.Claim(ctx, o.ID, r)
}

// errOperatorOnly refuses verification without DNS on /api.
func errOperatorOnly() error {
	return apperr.New(apperr.Forbidden, "operator_only",
		"only the operator verifies a domain without DNS; publish the TXT record and run the DNS check (POST …/verify)").
		WithDetails("field", "verified")
}

// held returns the organization's claim on domain for callerID, within
// the caller's role: 404 domain_not_found when the organization does not
// hold it, 403 role_ceiling when it grants a role above the caller's.
func (s *Service) held(ctx context.Context, ref, callerID, domain string) (Domain, orgs.Member, error) {
	o, me, err := s.manager(ctx, ref, callerID)
	if err != nil {
		return Domain{}, me, err
	}
	name, err := Normalize(domain)
	if err != nil {
		return Domain{}, me, errNotClaimed(domain)
	}
	d, found, err := s.store.Get(ctx, name)
	if err != nil {
		return Domain{}, me, err
	}
	if !found || d.OrganizationID != o.ID {
		return Domain{}, me, errNotClaimed(name)
	}
	if err := s.access.CheckCeiling(me.Role, d.Role); err != nil {
		return Domain{}, me, err
	}
	return d, me, nil
}

// UpdateAs changes a claim's policy or role for callerID. Verifying
// without DNS (verified) is the operator's alone: 403 operator_only.
func (s *Service) UpdateAs(ctx context.Context, ref, callerID, domain string, r UpdateRequest) (Domain, error) {
	if r.Verified != nil {
		return Domain{}, errOperatorOnly()
	}
	if r.Policy == nil && r.Role == nil {
		return Domain{}, apperr.Invalidf("empty_update", "give policy or role")
	}
	d, me, err := s.held(ctx, ref, callerID, domain)
	if err != nil {
		return Domain{}, err
	}
	if r.Role != nil {
		if err := s.checkRole(*r.Role); err != nil {
			return Domain{}, err
		}
		if err := s.access.CheckCeiling(me.Role, *r.Role); err != nil {
			return Domain{}, err
		}
	}
	return s.Update(ctx, d.OrganizationID, d.Domain, r)
}

// VerifyAs runs the DNS check for callerID; it counts against the
// domain's DNS check quota only once the caller is known to hold it.
func (s *Service) VerifyAs(ctx context.Context, ref, callerID, domain string) (Domain, error) {
	d, _, err := s.held(ctx, ref, callerID, domain)
	if err != nil {
		return Domain{}, err
	}
	return s.Verify(ctx, d.OrganizationID, d.Domain)
}

// ReleaseAs gives a domain up for callerID.
func (s *Service) ReleaseAs(ctx context.Context, ref, callerID, domain string) error {
	d, _, err := s.held(ctx, ref, callerID, domain)
	if err != nil {
		return err
	}
	return s.Release(ctx, d.OrganizationID, d.Domain)
}
