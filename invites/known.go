package invites

// Known identities: what kratos-orgs has seen of an address in Kratos,
// kept so that inviting it again costs Kratos one cheap read instead of a
// look-up by identifier (which on SQLite grows with the number of
// identities: seconds at a few thousand).
//
// The invitation.sync job (AddressIndex.Handle) remembers the identity of
// every pending or accepted invitation in the address slot
// (redisx AddressIdentity); the reference script reads it in the same step
// that registers the new invitation's reference. It is only a hint: the
// invitation path reads the identity by id in Kratos and uses it only if it
// still exists and still has the address. Otherwise (deleted meanwhile,
// address changed) it creates an identity first, and only a conflict (409)
// leads to the look-up. Reading after the reference is registered is what
// makes the hint safe for placeholders: from then on the placeholder cannot
// be deleted (placeholders.go), so "it exists" stays true until the
// invitation is written.

import (
	"context"
	"time"

	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// KnownIdentityTTL is how long the identity seen for an address is
// remembered after the last invitation event for it. Past it, inviting
// the address costs a create attempt and, for an account, a look-up.
const KnownIdentityTTL = 30 * 24 * time.Hour

// forgetIdentityScript deletes an address' known identity if it is this one.
// KEYS: known identity. Arguments: id (the identity).
var forgetIdentityScript = redisx.NewScript("invites.forget_identity", redisx.Standalone, `
if redis.call('GET', KEYS[1]) == A.id then return redis.call('DEL', KEYS[1]) end
return 0
`)

// forgetIdentity drops the identity seen for an address if it is this one.
func (s *Store) forgetIdentity(ctx context.Context, email, identityID string) error {
	return storeErr(forgetIdentityScript.Eval(ctx, s.rdb, []string{s.ks.AddressIdentity(email)},
		map[string]string{"id": identityID}).Err())
}

// forgetKnown drops a deleted placeholder from its address' hint. A failure
// is harmless: a stale hint is checked before use.
func (s *Service) forgetKnown(ctx context.Context, email, identityID string) {
	if err := s.store.forgetIdentity(context.WithoutCancel(ctx), email, identityID); err != nil {
		s.log.Warn("could not drop the known identity of an address; it is checked before use", "err", err)
	}
}

// remember records, from the invitation.sync job, the identity a pending or
// accepted invitation names for its address.
func (x *AddressIndex) remember(ctx context.Context, inv Invitation) error {
	if inv.IdentityID == "" || (inv.Status != Pending && inv.Status != Accepted) {
		return nil
	}
	return storeErr(x.rdb.Set(ctx, x.ks.AddressIdentity(inv.Email), inv.IdentityID, x.knownTTL).Err())
}
