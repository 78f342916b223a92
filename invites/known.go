package invites

// Known identities: what kratos-orgs has seen of an address in Kratos,
// kept so that inviting it again costs Kratos nothing: no create, no
// look-up by identifier (which on SQLite grows with the number of
// identities: seconds at a few thousand), no read by id.
//
// The invitation.sync job (AddressIndex.Handle) remembers the identity of
// every pending or accepted invitation in the address slot (redisx
// AddressIdentity), with its kind: "<id> a" for an account, "<id> p" for a
// placeholder kratos-orgs created. The reference script reads it in the
// same step that registers the new invitation's reference, and the
// invitation names that identity without asking Kratos.
//
// Why that is safe:
//   - A placeholder is deleted by kratos-orgs only under the address'
//     claim (ReleasePlaceholder, TakeOver), and the hint is dropped under
//     that claim before the delete; a reference registered before the claim
//     keeps the placeholder alive. So a placeholder hint read by the
//     reference script names a live placeholder, unless someone deleted it
//     in Kratos directly.
//   - Such staleness is caught where it matters, at acceptance: the form's
//     submit reads the placeholder anyway (Acceptor.NewPerson), and one that is
//     gone or has another address detaches the invitation from it (the
//     takeover's step): it becomes an invitation for whoever holds the
//     address, accepted signed in or on verification. Nothing is ever
//     attached to the deleted identity.
//   - An account hint only decides the mail's wording ("sign in") and the
//     identity_id the API shows: an account's acceptance is bound to the
//     address, verified in the visitor's own session (CheckSession), never
//     to the id.
//
// A hint without a kind (written before kinds existed) is read by id, as
// it used to be.

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// KnownIdentityTTL is how long the identity seen for an address is
// remembered after the last invitation event for it. Past it, inviting
// the address costs a create attempt and, for an account, a look-up.
const KnownIdentityTTL = 30 * 24 * time.Hour

// forgetIdentityScript deletes an address' known identity if it is this one.
// KEYS: known identity. Arguments: id (the identity).
var forgetIdentityScript = redisx.NewScript("invites.forget_identity", redisx.Standalone, `
local v = redis.call('GET', KEYS[1])
if v and (v == A.id or string.sub(v, 1, #A.id + 1) == A.id .. ' ') then return redis.call('DEL', KEYS[1]) end
return 0
`)

// Kinds of known identity (the hint's second word).
const (
	knownAccount     = "a"
	knownPlaceholder = "p"
)

// knownValue is the hint for an identity.
func knownValue(id string, placeholder bool) string {
	if placeholder {
		return id + " " + knownPlaceholder
	}
	return id + " " + knownAccount
}

// parseKnown splits a hint; kind is "" for one written before kinds.
func parseKnown(v string) (id, kind string) {
	id, kind, _ = strings.Cut(v, " ")
	return id, kind
}

// forgetIdentity drops the identity seen for an address if it is this one.
func (s *Store) forgetIdentity(ctx context.Context, email, identityID string) error {
	return storeErr(forgetIdentityScript.Eval(ctx, s.rdb, []string{s.ks.AddressIdentity(email)},
		map[string]string{"id": identityID}).Err())
}

// known is the hint the invitation.sync job remembers for an invitation
// (in its index step): the identity a pending or accepted invitation names
// for its address — the one that accepted it, or the one it was sent to;
// "" for none.
func (x *AddressIndex) known(inv Invitation) string {
	if inv.Status != Pending && inv.Status != Accepted {
		return ""
	}
	id, placeholder := inv.IdentityID, inv.identityCreated
	if inv.Status == Accepted {
		// Whoever accepted is an active account now: a placeholder that
		// accepted was activated. The accept page's GET reads this
		// (Acceptor.newPersonKnown).
		placeholder = false
		if inv.AcceptedBy != "" {
			id = inv.AcceptedBy
		}
	}
	if id == "" {
		return ""
	}
	return knownValue(id, placeholder)
}

// knownOf is the identity an address' hint names and its kind; "" for
// none.
func (s *Store) knownOf(ctx context.Context, email string) (id, kind string, err error) {
	v, err := s.rdb.Get(ctx, s.ks.AddressIdentity(email)).Result()
	if errors.Is(err, redis.Nil) {
		return "", "", nil
	}
	if err != nil {
		return "", "", storeErr(err)
	}
	id, kind = parseKnown(v)
	return id, kind, nil
}

// RememberAccount records the account Kratos shows for an address (a
// sign-up, the reconciler's listing), so that inviting it costs Kratos
// nothing. Placeholders are remembered by the invitations that name them.
func (s *Service) RememberAccount(ctx context.Context, email, identityID string) error {
	return storeErr(s.store.rdb.Set(ctx, s.store.ks.AddressIdentity(email), knownValue(identityID, false), KnownIdentityTTL).Err())
}

// knownIdentity is the identity a hint names, as the invitation path uses
// it; nil when the hint has no kind (read it by id).
func knownIdentity(hint, email string) *identity.Identity {
	id, kind := parseKnown(hint)
	switch kind {
	case knownAccount:
		return &identity.Identity{ID: id, Email: email}
	case knownPlaceholder:
		return &identity.Identity{ID: id, Email: email, CreatedByUs: true}
	}
	return nil
}

// detachStale moves a pending invitation off a placeholder that is gone
// from Kratos (deleted there directly) or no longer has the invited
// address, and drops the hint that named it: the invitation becomes one
// for whoever holds the address. Failures are logged: the caller goes on
// as for an account, which is what the invitation becomes.
func (s *Service) detachStale(ctx context.Context, inv Invitation) {
	ctx = context.WithoutCancel(ctx)
	if _, err := s.store.detach(ctx, inv.ID, inv.IdentityID, false); err != nil {
		s.log.Warn("could not detach an invitation from a placeholder Kratos no longer has", "invitation", inv.ID, "err", err)
	}
	s.forgetKnown(ctx, inv.Email, inv.IdentityID)
}

// forgetKnown drops a placeholder from its address' hint. A failure is
// logged: acceptance checks placeholders anyway (detachStale).
func (s *Service) forgetKnown(ctx context.Context, email, identityID string) {
	if err := s.store.forgetIdentity(context.WithoutCancel(ctx), email, identityID); err != nil {
		s.log.Warn("could not drop the known identity of an address", "err", err)
	}
}
