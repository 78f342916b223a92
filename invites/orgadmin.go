package invites

import (
	"context"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// orgAdmin holds the rules for a member managing their organization's
// invitations, shared by the org admins' API (api.go) and their page
// (orgpage.go): both call these, never rules of their own.
type orgAdmin struct {
	svc  *Service
	orgs *orgs.Service
}

// authorize checks that callerID is an admin or higher of the organization.
func (a orgAdmin) authorize(ctx context.Context, orgRef, callerID string) (orgs.Organization, orgs.Member, error) {
	return a.orgs.Authorize(ctx, orgRef, callerID, "admin")
}

// own loads an invitation of the organization for callerID: 404 when it
// belongs to another one, 403 role_ceiling when it grants a role above the
// caller's.
func (a orgAdmin) own(ctx context.Context, orgRef, callerID, id string) (Invitation, error) {
	o, me, err := a.authorize(ctx, orgRef, callerID)
	if err != nil {
		return Invitation{}, err
	}
	inv, err := a.svc.Get(ctx, id)
	if err != nil {
		return inv, err
	}
	if inv.OrganizationID != o.ID {
		return inv, errNotFound(id)
	}
	if err := a.orgs.CheckCeiling(me.Role, inv.Role); err != nil {
		return inv, apperr.New(apperr.Forbidden, "role_ceiling", "this invitation grants a role above yours")
	}
	return inv, nil
}

// actor is the member as the inviter of what they send: their name from
// Kratos (dropped when it would not pass as a name) and their role.
func actor(identityID, name string, me orgs.Member) Actor {
	return Actor{IdentityID: identityID, Name: sessionName(name), Role: me.Role}
}

// invite sends one invitation on behalf of the member me, as the org
// admins' API does: the member is the inviter, the role within theirs, and
// Kratos sees the same work whether the address has an account or not.
func (a orgAdmin) invite(ctx context.Context, o orgs.Organization, me orgs.Member, callerID, callerName string, r InviteRequest) (Invitation, bool, error) {
	r.UniformKratosWork = true
	return a.svc.InviteAs(ctx, o.ID, actor(callerID, callerName, me), r)
}

// bulk invites many rows on behalf of the member me, as the org admins'
// bulk API does: each row within their role ceiling, counted against
// quota, run once under idem.
func (a orgAdmin) bulk(ctx context.Context, o orgs.Organization, me orgs.Member, callerID, callerName string,
	rows []BulkRow, quota RowQuota, idem Idempotent) (BulkResponse, bool, error) {
	who := actor(callerID, callerName, me)
	return a.svc.RunBulk(ctx, o.ID, idem, func(ctx context.Context) (BulkResponse, error) {
		return a.svc.BulkInvite(ctx, o.ID, rows, BulkOptions{Actor: &who, Quota: quota})
	})
}
