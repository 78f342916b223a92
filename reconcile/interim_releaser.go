package reconcile

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// PlaceholderIdentities is what InterimReleaser needs from Kratos.
type PlaceholderIdentities interface {
	Get(ctx context.Context, id string) (*identity.Identity, error)
	Delete(ctx context.Context, id string) error
}

// InterimReleaser is today's placeholder cleanup, the same checks as the
// invitation.sync job's (invites.AddressIndex.cleanupIdentity), plus the
// identity's organization index: nothing pending in the address index, no
// membership (a pending registration's organization), and the identity
// still ours and inactive. The checks and the delete are separate steps, so
// an invitation created in between can still lose its placeholder; the
// atomic claim of issue 9 §2 replaces this adapter (server wiring).
type InterimReleaser struct {
	Redis      redis.UniversalClient
	Keyspace   redisx.Keyspace
	Identities PlaceholderIdentities
	Now        func() time.Time
}

// ReleasePlaceholder implements PlaceholderReleaser.
func (x InterimReleaser) ReleasePlaceholder(ctx context.Context, email, identityID string) (bool, error) {
	now := time.Now
	if x.Now != nil {
		now = x.Now
	}
	pending, err := x.Redis.ZCount(ctx, x.Keyspace.AddressPending(email), "("+ms(now().UnixMilli()), "+inf").Result()
	if err != nil {
		return false, fmt.Errorf("reconcile: address index: %w", err)
	}
	orgs, err := x.Redis.HLen(ctx, x.Keyspace.IdentityOrgs(identityID)).Result()
	if err != nil {
		return false, fmt.Errorf("reconcile: identity index: %w", err)
	}
	if pending > 0 || orgs > 0 {
		return false, nil
	}
	who, err := x.Identities.Get(ctx, identityID)
	if err != nil {
		return false, err
	}
	if who == nil || !who.CreatedByUs || who.State != "inactive" || who.Email != email {
		return false, nil
	}
	if err := x.Identities.Delete(ctx, identityID); err != nil {
		return false, err
	}
	return true, nil
}
