package invites

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// pendingOrganizations lists the organizations with a pending invitation
// for an address, live at now (one round trip on the address' slot).
func pendingOrganizations(ctx context.Context, rdb redis.UniversalClient, ks redisx.Keyspace, email string, now time.Time) ([]string, error) {
	orgIDs, err := rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: ks.AddressPending(email), ByScore: true, Start: "(" + fmt.Sprint(now.UnixMilli()), Stop: "+inf",
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return orgIDs, err
}

// candidateOrganizations lists the organizations that may have a pending
// invitation for an address: the pending index (AddressIndex), and the
// references, which are written before the invitation and so also name
// invitations whose index job has not run yet. A superset: acceptance
// checks each atomically.
func (s *Store) candidateOrganizations(ctx context.Context, email string) ([]string, error) {
	pending, err := pendingOrganizations(ctx, s.rdb, s.ks, email, s.now())
	if err != nil {
		return nil, err
	}
	refs, err := s.rdb.HVals(ctx, s.ks.AddressRefs(email)).Result()
	if err != nil {
		return nil, err
	}
	for _, v := range refs {
		org, _, _ := strings.Cut(v, " ")
		if org != "" && !slices.Contains(pending, org) {
			pending = append(pending, org)
		}
	}
	return pending, nil
}
