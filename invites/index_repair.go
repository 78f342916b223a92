package invites

import (
	"context"
	"errors"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// The methods below serve the reconciler (package reconcile): they compare
// the per-address index with the invitation records it is built from and,
// when apply is true, repair it with the same stamped script as the
// invitation.sync job, so a repair never overwrites a newer observation.

// RepairInvitation checks that a pending invitation is in its address'
// index with its current expiry. When it was not, it returns the address
// (for the caller's bookkeeping; never log it), "" otherwise.
func (x *AddressIndex) RepairInvitation(ctx context.Context, id string, apply bool) (string, error) {
	observed := x.now()
	inv, err := x.invitations.Get(ctx, id)
	if apperr.KindOf(err) == apperr.NotFound {
		return "", nil
	}
	if err != nil || inv.Status != Pending {
		return "", err
	}
	score, err := x.rdb.ZScore(ctx, x.ks.AddressPending(inv.Email), inv.OrganizationID).Result()
	switch {
	case err == nil && int64(score) == inv.ExpiresAt.UnixMilli():
		return "", nil
	case err != nil && !errors.Is(err, redis.Nil):
		return "", storeErr(err)
	case !apply:
		return inv.Email, nil
	}
	err = indexScript.Eval(ctx, x.rdb, x.indexKeys(inv.Email), &indexArgs{
		Org: inv.OrganizationID, Op: "add", Stamp: observed.UnixMilli(), ExpiresAt: inv.ExpiresAt.UnixMilli(),
		Now: x.now().UnixMilli(), StampsTTL: x.stampsTTL.Milliseconds(),
		ID: inv.ID, Ref: inv.OrganizationID + " " + strconv.FormatInt(inv.CreatedAt.UnixMilli(), 10),
	}).Err()
	if err != nil {
		return "", storeErr(err)
	}
	return inv.Email, nil
}

// RepairAddress drops from an address' index the organizations that have
// no pending invitation for it any more; it returns how many it found.
func (x *AddressIndex) RepairAddress(ctx context.Context, email string, apply bool) (int, error) {
	observed := x.now()
	orgIDs, err := x.PendingOrganizations(ctx, email)
	if err != nil {
		return 0, storeErr(err)
	}
	stale := 0
	for _, org := range orgIDs {
		pending, err := x.pendingIn(ctx, org, email)
		if err != nil {
			return stale, err
		}
		if pending {
			continue
		}
		stale++
		if !apply {
			continue
		}
		// No invitation id: references are the placeholder claim's, and go
		// with their invitations, not with a stale index entry.
		err = indexScript.Eval(ctx, x.rdb, x.indexKeys(email), &indexArgs{
			Org: org, Op: "remove", Stamp: observed.UnixMilli(), Now: x.now().UnixMilli(),
			StampsTTL: x.stampsTTL.Milliseconds(),
		}).Err()
		if err != nil {
			return stale, storeErr(err)
		}
	}
	return stale, nil
}

// pendingIn reports whether org has a pending invitation for email.
func (x *AddressIndex) pendingIn(ctx context.Context, org, email string) (bool, error) {
	id, err := x.rdb.HGet(ctx, x.ks.OrgPendingByEmail(org), email).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, storeErr(err)
	}
	inv, err := x.invitations.Get(ctx, id)
	if apperr.KindOf(err) == apperr.NotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return inv.Status == Pending && inv.Email == email, nil
}
