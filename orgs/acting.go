package orgs

import "context"

// The rules for a member acting on another member, shared by the org
// admins' API and their page: both call these, so the two can never
// disagree about who may do what.

// target authorizes callerID, an admin or higher of the organization, to
// act on identityID, whose role must not be above the caller's.
func (s *Service) target(ctx context.Context, orgRef, callerID, identityID string) (o Organization, me Member, err error) {
	o, me, err = s.Authorize(ctx, orgRef, callerID, "admin")
	if err != nil {
		return o, me, err
	}
	them, err := s.store.Member(ctx, o.ID, identityID)
	if err != nil {
		return o, me, err
	}
	return o, me, s.CheckCeiling(me.Role, them.Role)
}

// SetRoleAs changes a member's role on behalf of callerID: the caller is an
// admin or higher, and neither the member's current role nor the new one
// is above the caller's (403 role_ceiling).
func (s *Service) SetRoleAs(ctx context.Context, orgRef, callerID, identityID, role string) (Member, error) {
	o, me, err := s.target(ctx, orgRef, callerID, identityID)
	if err != nil {
		return Member{}, err
	}
	if err := s.roles.Check(role); err != nil {
		return Member{}, err
	}
	if err := s.CheckCeiling(me.Role, role); err != nil {
		return Member{}, err
	}
	return s.SetRole(ctx, o.ID, identityID, role)
}

// RemoveMemberAs ends a membership on behalf of callerID. Anyone may leave
// (the last owner cannot: the store refuses); removing someone else takes
// an admin or higher whose role is not below theirs.
func (s *Service) RemoveMemberAs(ctx context.Context, orgRef, callerID, identityID string) error {
	var o Organization
	var err error
	if identityID == callerID {
		o, _, err = s.Authorize(ctx, orgRef, callerID, "")
	} else {
		o, _, err = s.target(ctx, orgRef, callerID, identityID)
	}
	if err != nil {
		return err
	}
	return s.RemoveMember(ctx, o.ID, identityID)
}
