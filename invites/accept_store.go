package invites

import (
	"context"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/redisx"
	"github.com/kratos-orgs/kratos-orgs/tokens"
)

// Link is what a token in a link leads to.
type Link struct {
	Invitation   Invitation
	Organization map[string]string // the organization's stored fields (empty when it is gone)
	Live         bool              // the token is the invitation's live one
}

// LookupToken resolves a link's token without consuming it. An unknown or
// malformed token is invitation_not_found; a dead one still finds its
// invitation so the page can say why it no longer works.
func (s *Store) LookupToken(ctx context.Context, token string) (Link, error) {
	shard, hash, ok := tokens.Parse(token)
	if !ok {
		return Link{}, errLinkNotFound()
	}
	link, err := s.lookupHash(ctx, shard, hash)
	if err == nil && link.Invitation.ID == "" {
		return Link{}, errLinkNotFound()
	}
	return link, err
}

// lookupHash resolves a token hash; a zero Link when it is unknown.
func (s *Store) lookupHash(ctx context.Context, shard int, hash string) (Link, error) {
	rep, err := lookupScript.Run(ctx, s.rdb, []string{s.ks.Tokens(shard)}, tokenArgs{Env: s.env(shard, s.now()), TokenHash: hash})
	if err != nil {
		return Link{}, storeErr(err)
	}
	if rep.Outcome == "unknown" {
		return Link{}, nil
	}
	inv := parseInvitation(redisx.Hash(rep.Values[0]), s.now())
	return Link{
		Invitation:   inv,
		Organization: redisx.Hash(rep.Values[1]),
		Live:         rep.Outcome == "live" && inv.hasToken(hash) && inv.Status == Pending && !inv.claimed,
	}, nil
}

func errLinkNotFound() error {
	return apperr.NotFoundf("link_not_found", "this invitation link is not valid")
}

// errLinkUsed is what every POST but the winning one gets.
func errLinkUsed() error {
	return apperr.Conflictf("link_used", "this invitation link has just been used")
}

// Claim consumes a token: exactly one of concurrent claims succeeds; the
// invitation then waits in 'accepting' for Finalize or Release. An
// organization whose members fill its max_members refuses (seat_limit)
// and the invitation stays pending.
func (s *Store) Claim(ctx context.Context, token string, timeout time.Duration) (Invitation, error) {
	return s.ClaimFor(ctx, token, timeout, "")
}

// ClaimFor is Claim by a known identity: one that is a member already
// takes no new seat.
func (s *Store) ClaimFor(ctx context.Context, token string, timeout time.Duration, identityID string) (Invitation, error) {
	shard, hash, ok := tokens.Parse(token)
	if !ok {
		return Invitation{}, errLinkNotFound()
	}
	now := s.now()
	rep, err := claimScript.Run(ctx, s.rdb, []string{s.ks.Tokens(shard)},
		tokenArgs{Env: s.env(shard, now), TokenHash: hash, ClaimUntil: now.Add(timeout).UnixMilli(), Identity: identityID})
	if err != nil {
		return Invitation{}, storeErr(err)
	}
	if rep.Outcome == "seat_limit" {
		return Invitation{}, seatLimitReply(rep, true)
	}
	if rep.Outcome != "ok" {
		return Invitation{}, errLinkUsed()
	}
	return parseInvitation(redisx.Hash(rep.Values[0]), now), nil
}

// Release gives a claimed invitation back: its link works again.
func (s *Store) Release(ctx context.Context, id string) error {
	_, err := releaseScript.Run(ctx, s.rdb, []string{s.ks.Invitation(id)}, invitationArgs{Env: s.env(redisx.ShardOf(id), s.now()), ID: id})
	return storeErr(err)
}

// Finalized is the outcome of an acceptance.
type Finalized struct {
	Invitation    Invitation
	AlreadyMember bool
	Organization  map[string]string
}

// Finalize completes a claimed acceptance for an identity. claims is the
// digest of the claims the acceptance wrote to Kratos with the activation
// ("" when it wrote none): the member.sync job carries it.
func (s *Store) Finalize(ctx context.Context, id, identityID, email, claims string) (Finalized, error) {
	rep, err := finalizeScript.RunWaiting(ctx, s.rdb, s.wait, []string{s.ks.Invitation(id)},
		finalizeArgs{Env: s.env(redisx.ShardOf(id), s.now()), ID: id, Identity: identityID, Email: email, Claims: claims})
	if err != nil {
		return Finalized{}, storeErr(err)
	}
	switch rep.Outcome {
	case "ok":
		return Finalized{
			Invitation:    parseInvitation(redisx.Hash(rep.Values[0]), s.now()),
			AlreadyMember: redisx.Int(rep.Values[1]) == 1,
			Organization:  redisx.Hash(rep.Values[2]),
		}, nil
	case "org_gone":
		return Finalized{}, apperr.New(apperr.Gone, "organization_deleted", "the organization was deleted")
	case "seat_limit":
		// The script gave the claim back: the invitation is pending again.
		return Finalized{}, seatLimitReply(rep, true)
	default:
		// The claim expired and was released (or taken) meanwhile.
		return Finalized{}, errLinkUsed()
	}
}
