package domains

import (
	"context"
	"errors"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// JoinVerified makes an identity a member of the organizations whose
// verified auto_join domains hold one of its verified addresses. who must
// come from Kratos' admin API (the webhooks re-read it), never from a
// webhook body. An organization with no free seat is skipped (logged): a
// retry would not free one. It is idempotent.
func (s *Service) JoinVerified(ctx context.Context, who *identity.Identity) error {
	if who == nil || who.State != "active" {
		return nil
	}
	var errs []error
	for _, email := range verifiedAddresses(who) {
		d, o, ok, err := s.Lookup(ctx, email)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok || d.Policy != AutoJoin {
			continue
		}
		if _, err := s.join(ctx, o.ID, who.ID, email, d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// join adds the membership; a full organization is logged and skipped.
func (s *Service) join(ctx context.Context, org, identityID, email string, d Domain) (bool, error) {
	_, added, err := s.orgs.AddMember(ctx, org, orgs.Member{IdentityID: identityID, Email: email, Role: d.Role})
	switch {
	case apperr.CodeOf(err) == "seat_limit":
		s.log.Info("domain join refused: the organization has no free seat", "org", org, "domain", d.Domain)
		return false, nil
	case apperr.KindOf(err) == apperr.NotFound:
		return false, nil // deleted meanwhile
	case err != nil:
		return false, err
	}
	if added {
		s.log.Info("member by verified domain", "org", org, "domain", d.Domain, "policy", d.Policy, "identity", identityID)
		s.wake()
	}
	return added, nil
}

// Suggestion is an organization offered to a person for a verified
// address in its suggest domain.
type Suggestion struct {
	Organization orgs.Organization
	Domain       string
	Role         string
}

// Suggestions lists the organizations a person may join with one click:
// those whose verified suggest domain holds one of the addresses Kratos
// shows verified, and that the person is not a member of.
func (s *Service) Suggestions(ctx context.Context, identityID string, verified []string) ([]Suggestion, error) {
	var out []Suggestion
	seen := map[string]bool{}
	for _, email := range verifiedAddresses(&identity.Identity{VerifiedAddresses: verified}) {
		d, o, ok, err := s.Lookup(ctx, email)
		if err != nil {
			return nil, err
		}
		if !ok || d.Policy != Suggest || seen[o.ID] {
			continue
		}
		seen[o.ID] = true
		_, err = s.orgs.Member(ctx, o.ID, identityID)
		if err == nil {
			continue
		}
		if apperr.KindOf(err) != apperr.NotFound {
			return nil, err
		}
		out = append(out, Suggestion{Organization: o, Domain: d.Domain, Role: d.Role})
	}
	return out, nil
}

// Join is the one click: the identity joins the organization holding
// domain, if Kratos (asked again here) shows one of its addresses in the
// domain verified and the domain is verified. It returns the organization.
func (s *Service) Join(ctx context.Context, identityID, domain string) (orgs.Organization, error) {
	name, err := Normalize(domain)
	if err != nil {
		return orgs.Organization{}, err
	}
	who, err := s.ids.Get(ctx, identityID)
	if err != nil {
		return orgs.Organization{}, err
	}
	if who == nil || who.State != "active" {
		return orgs.Organization{}, apperr.New(apperr.Forbidden, "not_allowed", "this account cannot join organizations")
	}
	for _, email := range verifiedAddresses(who) {
		if OfAddress(email) != name {
			continue
		}
		d, o, ok, err := s.Lookup(ctx, email)
		if err != nil {
			return orgs.Organization{}, err
		}
		if !ok {
			break
		}
		added, err := s.join(ctx, o.ID, who.ID, email, d)
		if err != nil {
			return o, err
		}
		if !added {
			if _, merr := s.orgs.Member(ctx, o.ID, who.ID); merr != nil {
				return o, apperr.Conflictf("seat_limit", "%s has no free seat", o.Name)
			}
		}
		return o, nil
	}
	return orgs.Organization{}, apperr.New(apperr.Forbidden, "domain_not_verified_for_you",
		"none of your verified addresses is in a verified domain of an organization you can join")
}
