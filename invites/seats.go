package invites

import (
	"context"
	"errors"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// errSeatLimit is a new invitation past the organization's max_members:
// its members plus pending invitations use every seat.
func errSeatLimit(limit, used int64) error {
	return apperr.Conflictf("seat_limit", "the organization has no free seat: %d of %d used by members and pending invitations", used, limit).
		WithDetails("limit", limit, "used", used)
}

// errSeatLimitAccept is an acceptance that would take the organization's
// members past its max_members (lowered since the invitation was sent);
// the invitation stays pending.
func errSeatLimitAccept(limit, used int64) error {
	return apperr.Conflictf("seat_limit", "the organization is full: it has reached its limit of %d members; the invitation stays open", limit).
		WithDetails("limit", limit, "used", used)
}

// seatLimitReply turns a script's {'seat_limit', limit, used} reply into
// its error; accept says which side refused.
func seatLimitReply(rep redisx.Reply, accept bool) error {
	var limit, used int64
	if len(rep.Values) >= 2 {
		limit, used = redisx.Int(rep.Values[0]), redisx.Int(rep.Values[1])
	}
	if accept {
		return errSeatLimitAccept(limit, used)
	}
	return errSeatLimit(limit, used)
}

// CheckSeats says, before a form is filled, whether an acceptance by a
// person who is not a member yet would be refused for want of a seat. It
// is advice for the pages: the claim and the finalize step decide,
// atomically.
func (s *Store) CheckSeats(ctx context.Context, org string) error {
	if _, ok := redisx.ParseID("org", org); !ok {
		return nil
	}
	pipe := s.rdb.Pipeline()
	limitCmd := pipe.HGet(ctx, s.ks.Org(org), redisx.OrgMaxMembers)
	membersCmd := pipe.HLen(ctx, s.ks.OrgMembers(org))
	pendingCmd := pipe.ZCard(ctx, s.ks.OrgInvitationsByStatus(org, string(Pending)))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return storeErr(err)
	}
	limit, err := strconv.ParseInt(limitCmd.Val(), 10, 64)
	if err != nil || membersCmd.Val() < limit {
		return nil
	}
	return errSeatLimitAccept(limit, membersCmd.Val()+pendingCmd.Val())
}

// seatCounter counts seats on the side (a dry run): limit < 0 is unlimited.
type seatCounter struct{ limit, used int64 }

// take uses a seat, or says there is none (seat_limit).
func (c *seatCounter) take() error {
	if c.limit < 0 {
		return nil
	}
	if c.used >= c.limit {
		return errSeatLimit(c.limit, c.used)
	}
	c.used++
	return nil
}

// freeSeats reads an organization's seat limit and what is used now.
func (s *Store) freeSeats(ctx context.Context, org string) (*seatCounter, error) {
	pipe := s.rdb.Pipeline()
	limitCmd := pipe.HGet(ctx, s.ks.Org(org), redisx.OrgMaxMembers)
	membersCmd := pipe.HLen(ctx, s.ks.OrgMembers(org))
	pendingCmd := pipe.ZCard(ctx, s.ks.OrgInvitationsByStatus(org, string(Pending)))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, storeErr(err)
	}
	limit, err := strconv.ParseInt(limitCmd.Val(), 10, 64)
	if err != nil {
		return &seatCounter{limit: -1}, nil
	}
	return &seatCounter{limit: limit, used: membersCmd.Val() + pendingCmd.Val()}, nil
}
