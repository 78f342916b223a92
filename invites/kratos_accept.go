package invites

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// AcceptForAddress accepts the pending invitation of an organization for
// an address on behalf of an identity (Kratos shows the address verified).
// It reports the accepted invitation id, or "" when none was pending.
//
// roles are the configured roles, most privileged first: an invitation
// whose grant lapsed (Service.CheckGrant) is left pending.
func (s *Store) AcceptForAddress(ctx context.Context, org, email, identityID string, roles []string) (string, error) {
	if _, ok := redisx.ParseID("org", org); !ok {
		return "", nil
	}
	rep, err := acceptAddressScript.RunWaiting(ctx, s.rdb, s.wait, []string{s.ks.Org(org)}, acceptAddressArgs{
		Env: s.env(redisx.ShardOf(org), s.now()), Org: org, Email: email, Identity: identityID,
		Roles: strings.Join(roles, ","),
	})
	if err != nil {
		return "", storeErr(err)
	}
	if rep.Outcome != "ok" {
		return "", nil
	}
	return redisx.Str(rep.Values[0]), nil
}

// AcceptVerifiedAddress accepts every pending invitation for an address
// that Kratos shows verified, for the identity that owns it.
func (s *Service) AcceptVerifiedAddress(ctx context.Context, email, identityID string) ([]string, error) {
	orgIDs, err := s.store.candidateOrganizations(ctx, email)
	if err != nil {
		return nil, storeErr(err)
	}
	var accepted []string
	var errs []error
	for _, org := range orgIDs {
		id, err := s.store.AcceptForAddress(ctx, org, email, identityID, s.cfg.Roles)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if id != "" {
			accepted = append(accepted, id)
		}
	}
	if len(accepted) > 0 {
		s.wake()
	}
	return accepted, errors.Join(errs...)
}

// AcceptToken consumes an invitation token for an identity Kratos just
// created (sign-up through Kratos with the token in its transient
// payload). email is the identity's address as Kratos stores it (not as a
// webhook body claims it): the token is honoured only for the address the
// invitation was sent to. Repeating it for the same identity is a no-op:
// Kratos may deliver a webhook twice.
func (s *Service) AcceptToken(ctx context.Context, token, identityID, email string) (Invitation, error) {
	link, err := s.store.LookupToken(ctx, token)
	if err != nil {
		return Invitation{}, err
	}
	inv := link.Invitation
	if !strings.EqualFold(inv.Email, email) {
		return Invitation{}, apperr.New(apperr.Forbidden, "invitation_wrong_address", "the invitation was sent to another address")
	}
	if inv.Status == Accepted && inv.AcceptedBy == identityID {
		return inv, nil // done already
	}
	if !link.Live {
		return inv, apperr.New(apperr.Gone, "invitation_invalid", "the invitation is %s", inv.Status)
	}
	if err := s.CheckGrant(ctx, inv); err != nil {
		return inv, err
	}
	claimed, err := s.store.Claim(ctx, token, 30*time.Second)
	if err != nil {
		return inv, err
	}
	fin, err := s.store.Finalize(context.WithoutCancel(ctx), claimed.ID, identityID, claimed.Email, "")
	if err != nil {
		_ = s.store.Release(context.WithoutCancel(ctx), claimed.ID)
		return inv, err
	}
	s.wake()
	return fin.Invitation, nil
}

// Lookup resolves a link's token without consuming it.
func (s *Service) Lookup(ctx context.Context, token string) (Link, error) {
	return s.store.LookupToken(ctx, token)
}

// Seal protects a token that must wait in the outbox.
func (s *Service) Seal(token string) string { return s.sealer.Seal(token, sealContext) }

// Open reverses Seal.
func (s *Service) Open(sealed string) (string, error) { return s.sealer.Open(sealed, sealContext) }
