package invites

// Placeholders are the inactive Kratos identities kratos-orgs creates for
// invited addresses that have no account (django-organizations creates an
// inactive user the same way). One address has at most one; every
// invitation for the address points at it until it is accepted.
//
// The rule that keeps a pending link working: a placeholder is deleted only
// under a claim taken in the same Redis script that finds nothing
// referencing the address. The truth (which invitations are pending) lives
// in the organizations' shards, but the decision must be atomic in ONE slot,
// so the address slot {a:<hash>} keeps a superset of it:
//
//   - refs: every invitation that may be pending has a reference, written
//     BEFORE the invitation is (and before the placeholder is looked up or
//     created). A crash after the reference and before the invitation
//     leaves a reference to nothing: it holds off deletion until its
//     deadline (refGrace; the invitation script refuses to write after it),
//     after which it is known never to have been written. A reference is
//     dropped only once its invitation is seen final — final states never
//     change, so no later event can make the dropped reference needed again.
//   - claim: "delete|<identity>|<nonce>", taken by claimDeleteScript only
//     when refs is empty (and the legacy pending index too). Registering a
//     reference while a delete is claimed waits for the claim to go, then
//     looks the placeholder up again: it finds none and creates a new one.
//     The delete happens inside the lease: every Kratos call under the
//     claim has a deadline well inside it.
//
// Linearised on the address slot, either the reference comes first (the
// deleter sees it and does not claim) or the claim does (the inviter waits
// until the delete is over). Neither side can miss the other.
//
// A person who signs up through Kratos while a placeholder exists takes the
// address over (TakeOver): see its comment.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

const (
	// refGrace is how long an invitation may take to be written after its
	// reference; the write is refused after it.
	refGrace = 10 * time.Minute
	// refDead is when a reference to an invitation that does not exist is
	// dropped: past refGrace with room for clock skew between replicas.
	refDead = 2 * refGrace
	// claimLease bounds a delete or takeover claim; a holder that died
	// frees the address after it.
	claimLease = time.Minute
	// kratosBudget bounds the Kratos calls made under a claim, well inside
	// claimLease, so a slow holder cannot delete after its claim expired.
	kratosBudget = 20 * time.Second
)

// errAddressBusy is retried: another process holds the address' claim.
func errAddressBusy() error {
	return apperr.Unavailablef(errors.New("invites: address claimed"), "placeholder_busy",
		"the invited address is being updated by another request; try again")
}

func nonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// reference registers invitation id (of org, "" when not known yet) for an
// address, waiting while the address' placeholder is being deleted.
// takeover reports a Kratos sign-up replacing the placeholder right now.
func (s *Service) reference(ctx context.Context, email, org, id string) (takeover bool, at time.Time, err error) {
	r, err := s.referenceAddress(ctx, email, org, id)
	return r.takeover, r.at, err
}

// addressRef is what registering a reference tells about the address.
type addressRef struct {
	takeover bool      // a Kratos sign-up is replacing the placeholder
	at       time.Time // when the reference was registered
	known    string    // the identity last seen for the address (a hint, see known.go)
	// suppressed: the address is on the suppression list (delivery.go).
	suppressed bool
}

// referenceAddress is reference, also returning the identity last seen for
// the address, read in the same step.
func (s *Service) referenceAddress(ctx context.Context, email, org, id string) (addressRef, error) {
	giveUp := time.Now().Add(claimLease)
	for {
		at := s.now()
		outcome, wait, known, suppressed, err := s.store.reference(ctx, email, id, org, at)
		if err != nil {
			return addressRef{at: at}, err
		}
		if outcome != "wait" {
			return addressRef{takeover: outcome == "takeover", at: at, known: known, suppressed: suppressed}, nil
		}
		wait = min(max(wait, 5*time.Millisecond), 50*time.Millisecond)
		if time.Now().Add(wait).After(giveUp) {
			return addressRef{at: at}, errAddressBusy()
		}
		select {
		case <-ctx.Done():
			return addressRef{at: at}, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// forget drops references whose invitations are known never to be pending.
func (s *Service) forget(ctx context.Context, email string, ids ...string) {
	if len(ids) == 0 {
		return
	}
	if err := s.store.forget(context.WithoutCancel(ctx), email, ids...); err != nil {
		// Harmless: the reference holds off deletion until it is found dead.
		s.log.Warn("could not drop an invitation reference", "err", err)
	}
}

// refLive reports whether a reference may still stand for a pending
// invitation or a pending organization.
func (s *Service) refLive(ctx context.Context, id, value string, now time.Time) (bool, error) {
	_, at, _ := strings.Cut(value, " ")
	ms, _ := strconv.ParseInt(at, 10, 64)
	young := now.Before(time.UnixMilli(ms).Add(refDead))
	if _, ok := redisx.ParseID("inv", id); !ok {
		return young, nil // provisional (registration before its organization exists)
	}
	st, err := s.store.referenced(ctx, id)
	if err != nil {
		return false, err
	}
	switch {
	case !st.exists:
		return young, nil // not written (yet, or ever) or purged long after it ended
	case st.status == accepting:
		return true, nil
	case st.status == Pending && now.Before(st.expiresAt):
		return true, nil
	}
	// An abandoned registration's organization is deleted before its
	// owner's placeholder is released; until then it references it.
	return st.pendingOrg, nil
}

// ReleasePlaceholder deletes the placeholder identity of an address if
// nothing references it any more: no invitation that may be pending, no
// pending organization, and in Kratos it is still ours (metadata_admin
// marker), inactive, for this address, and has never had a credential or a
// session. It reports whether it deleted. It is safe to call at any time,
// from any process, any number of times: the sync job calls it when an
// invitation ends, and the reconciler for placeholders it finds.
func (s *Service) ReleasePlaceholder(ctx context.Context, email, identityID string) (deleted bool, err error) {
	token := "delete|" + identityID + "|" + nonce()
	for round := 0; ; round++ {
		now := s.now()
		outcome, held, refs, err := s.store.claimDelete(ctx, email, token, now)
		if err != nil {
			return false, err
		}
		switch outcome {
		case "busy":
			if strings.HasPrefix(held, "delete|"+identityID+"|") || strings.HasPrefix(held, "takeover|"+identityID+"|") {
				return false, nil // its holder decides the same question about the same identity
			}
			return false, errAddressBusy()
		case "pending":
			return false, nil
		case "referenced":
			var dead []string
			for id, v := range refs {
				live, err := s.refLive(ctx, id, v, now)
				if err != nil {
					return false, err
				}
				if live {
					return false, nil
				}
				dead = append(dead, id)
			}
			if round == 3 {
				return false, errAddressBusy() // references keep coming and going
			}
			s.forget(ctx, email, dead...)
			continue
		}
		break
	}
	defer func() {
		if uerr := s.store.unclaim(context.WithoutCancel(ctx), email, token, false); uerr != nil {
			s.log.Warn("could not drop a placeholder claim; it expires with its lease", "err", uerr)
		}
	}()
	kctx, cancel := context.WithTimeout(ctx, kratosBudget)
	defer cancel()
	return s.deleteIfPlaceholder(kctx, email, identityID)
}

// deleteIfPlaceholder deletes an identity if Kratos shows it is a
// placeholder of this address nobody has used. The caller holds the claim.
func (s *Service) deleteIfPlaceholder(ctx context.Context, email, identityID string) (bool, error) {
	who, err := s.ids.Get(ctx, identityID)
	if err != nil || who == nil {
		return false, err
	}
	if !who.CreatedByUs || who.State != "inactive" || who.Email != email {
		return false, nil
	}
	untouched, err := s.ids.Untouched(ctx, identityID)
	if err != nil || !untouched {
		return false, err
	}
	// The hint goes first, under the claim: no invitation can be written
	// against it once the placeholder is gone (known.go).
	if err := s.store.forgetIdentity(ctx, email, identityID); err != nil {
		return false, err
	}
	if err := s.ids.Delete(ctx, identityID); err != nil {
		return false, err
	}
	s.log.Info("deleted a placeholder identity nothing references any more", "identity", identityID)
	return true, nil
}

// releaseQuietly is ReleasePlaceholder for undo paths: a failure leaves the
// placeholder to the reconciler.
func (s *Service) releaseQuietly(ctx context.Context, email, identityID string) {
	if _, err := s.ReleasePlaceholder(context.WithoutCancel(ctx), email, identityID); err != nil {
		s.log.Warn("could not delete a placeholder created for an invitation that was not written", "identity", identityID, "err", err)
	}
}

// errAccepting refuses a takeover while an invitation of the address is
// being accepted on its page.
var errAccepting = apperr.Conflictf("invitation_accepting", "an invitation for this address is being accepted right now")

// TakeOver makes way for a person signing up through Kratos for an address
// that has a placeholder (Kratos refuses a second identity with the same
// address). The sign-up keeps every pending invitation: each is detached
// from the placeholder and becomes an invitation for whoever holds the
// address, accepted from the usual pages once signed in, or on
// verification (hooks.accept_on_verified_address). Only then is the
// placeholder deleted. The claim (takeover mode) is kept until the sign-up
// is stored (EndTakeover) or the lease ends: meanwhile new invitations for
// the address are written detached instead of creating a placeholder that
// would collide with the person's identity.
//
// An invitation registered before the claim but not yet written cannot be
// seen by id alone: a marker in every shard (redisx Moved) makes its write
// come out detached. Nothing happens to an identity that is not an unused
// placeholder: Kratos then refuses the duplicate address itself.
func (s *Service) TakeOver(ctx context.Context, email string) error {
	who, err := s.ids.FindByEmail(ctx, email)
	if err != nil || who == nil || !who.CreatedByUs || who.State != "inactive" {
		return err
	}
	token := "takeover|" + who.ID + "|" + nonce()
	if err := s.claimTakeover(ctx, email, token); err != nil {
		return err
	}
	undo := func(cause error) error {
		_ = s.store.unclaim(context.WithoutCancel(ctx), email, token, false)
		return cause
	}
	kctx, cancel := context.WithTimeout(ctx, kratosBudget)
	defer cancel()
	if untouched, err := s.ids.Untouched(kctx, who.ID); err != nil || !untouched {
		return undo(err)
	}
	if err := s.store.markMoved(kctx, who.ID); err != nil {
		return undo(err)
	}
	if err := s.detachAll(kctx, email, who.ID); err != nil {
		s.store.unmarkMoved(context.WithoutCancel(ctx), who.ID)
		return undo(err)
	}
	// Under the claim, before the delete: the hint must not outlive the
	// placeholder (known.go). The sign-up's identity is remembered when
	// its registration webhook arrives.
	if err := s.store.forgetIdentity(kctx, email, who.ID); err != nil {
		return undo(err)
	}
	if err := s.ids.Delete(kctx, who.ID); err != nil {
		return undo(err)
	}
	s.log.Info("a person signs up through Kratos: their placeholder made way, their invitations kept", "identity", who.ID)
	return nil
}

// claimTakeover takes the address, waiting briefly for a delete claim.
func (s *Service) claimTakeover(ctx context.Context, email, token string) error {
	for i := 0; i < 100; i++ {
		ok, err := s.store.claimTakeover(ctx, email, token)
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return errAddressBusy()
}

// EndTakeover frees an address once Kratos stored the person's identity.
func (s *Service) EndTakeover(ctx context.Context, email string) error {
	return s.store.unclaim(ctx, email, "takeover|", true)
}

// detachAll detaches every pending invitation of the address from the
// placeholder. A first pass looks for one being accepted, so that an
// abandoned takeover rarely leaves some invitations detached (they would
// then ask the person to sign in, which they can do by signing up).
func (s *Service) detachAll(ctx context.Context, email, placeholder string) error {
	ids, err := s.store.addressInvitations(ctx, email)
	if err != nil {
		return err
	}
	for _, check := range []bool{true, false} {
		for _, id := range ids {
			outcome, err := s.store.detach(ctx, id, placeholder, check)
			if err != nil {
				return err
			}
			if outcome == "accepting" {
				return errAccepting
			}
		}
	}
	return nil
}
