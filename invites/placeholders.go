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

	"github.com/redis/go-redis/v9"

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

// referenceScript registers an invitation for an address before it is
// written, unless the address' placeholder is being deleted (then the
// caller waits). During a takeover the reference is registered and the
// caller is told not to use the placeholder.
// KEYS: refs, claim. ARGV: invitation id, "<org id> <ms>".
var referenceScript = redis.NewScript(`
local c = redis.call('GET', KEYS[2])
if c and string.sub(c, 1, 7) == 'delete|' then return {'wait', redis.call('PTTL', KEYS[2])} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if c then return {'takeover', 0} end
return {'ok', 0}
`)

// claimDeleteScript takes the delete claim of an address if nothing
// references it: no reference and no live entry in the pending index
// (which covers invitations written before references existed).
// KEYS: refs, claim, pending. ARGV: claim value, lease (ms), now (ms).
var claimDeleteScript = redis.NewScript(`
local c = redis.call('GET', KEYS[2])
if c then return {'busy', c} end
local refs = redis.call('HGETALL', KEYS[1])
if #refs > 0 then return {'referenced', refs} end
if redis.call('ZCOUNT', KEYS[3], '(' .. ARGV[3], '+inf') > 0 then return {'pending', ''} end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return {'ok', ''}
`)

// unclaimScript drops a claim: exactly this value (mode 'exact') or any
// value with this prefix (mode 'prefix').
// KEYS: claim. ARGV: value, mode.
var unclaimScript = redis.NewScript(`
local c = redis.call('GET', KEYS[1])
if not c then return 0 end
if c == ARGV[1] or (ARGV[2] == 'prefix' and string.sub(c, 1, #ARGV[1]) == ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`)

// detachScript moves a pending invitation off a placeholder that a Kratos
// sign-up replaces: it becomes an invitation for whoever holds the address
// (accepted signed in, or on verification). One being accepted on a page
// right now is left alone and reported.
// KEYS: invitation hash. ARGV[4..]: invitation id, placeholder id.
var detachScript = redisx.NewScript(`
local st = current_status(ARGV[4])
if st == 'accepting' then return {'accepting'} end
if st ~= 'pending' or redis.call('HGET', KEYS[1], 'identity_id') ~= ARGV[5] then return {'none'} end
redis.call('HSET', KEYS[1], 'identity_id', '', 'identity_created', '0', 'identity_existing', '1', 'updated_at', NOW)
return {'detached'}
`)

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
	giveUp := time.Now().Add(claimLease)
	for {
		at = s.now()
		res, err := referenceScript.Run(ctx, s.store.rdb, []string{s.store.ks.AddressRefs(email), s.store.ks.AddressClaim(email)},
			id, org+" "+strconv.FormatInt(at.UnixMilli(), 10)).Slice()
		if err != nil {
			return false, at, storeErr(err)
		}
		if res[0] != "wait" {
			return res[0] == "takeover", at, nil
		}
		wait := time.Duration(redisx.Int(res[1])) * time.Millisecond
		wait = min(max(wait, 5*time.Millisecond), 50*time.Millisecond)
		if time.Now().Add(wait).After(giveUp) {
			return false, at, errAddressBusy()
		}
		select {
		case <-ctx.Done():
			return false, at, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// forget drops references whose invitations are known never to be pending.
func (s *Service) forget(ctx context.Context, email string, ids ...string) {
	if len(ids) == 0 {
		return
	}
	if err := s.store.rdb.HDel(context.WithoutCancel(ctx), s.store.ks.AddressRefs(email), ids...).Err(); err != nil {
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
	f, err := s.store.rdb.HMGet(ctx, s.store.ks.Invitation(id), "status", "expires_at", "kind", "org").Result()
	if err != nil {
		return false, storeErr(err)
	}
	status, _ := f[0].(string)
	if status == "" {
		return young, nil // not written (yet, or ever) or purged long after it ended
	}
	exp, _ := f[1].(string)
	switch {
	case Status(status) == accepting:
		return true, nil
	case Status(status) == Pending && now.Before(redisx.MsTime(exp)):
		return true, nil
	case f[2] == "registration":
		// An abandoned registration's organization is deleted before its
		// owner's placeholder is released; until then it references it.
		org, _ := f[3].(string)
		state, err := s.store.rdb.HGet(ctx, s.store.ks.Org(org), "state").Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return false, storeErr(err)
		}
		return state == "pending", nil
	}
	return false, nil
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
	claimKeys := []string{s.store.ks.AddressRefs(email), s.store.ks.AddressClaim(email), s.store.ks.AddressPending(email)}
	for round := 0; ; round++ {
		now := s.now()
		res, err := claimDeleteScript.Run(ctx, s.store.rdb, claimKeys, token, claimLease.Milliseconds(), now.UnixMilli()).Slice()
		if err != nil {
			return false, storeErr(err)
		}
		switch res[0] {
		case "busy":
			held, _ := res[1].(string)
			if strings.HasPrefix(held, "delete|"+identityID+"|") || strings.HasPrefix(held, "takeover|"+identityID+"|") {
				return false, nil // its holder decides the same question about the same identity
			}
			return false, errAddressBusy()
		case "pending":
			return false, nil
		case "referenced":
			refs := redisx.Hash(res[1])
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
		if uerr := unclaimScript.Run(context.WithoutCancel(ctx), s.store.rdb, []string{s.store.ks.AddressClaim(email)}, token, "exact").Err(); uerr != nil {
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
		_ = unclaimScript.Run(context.WithoutCancel(ctx), s.store.rdb, []string{s.store.ks.AddressClaim(email)}, token, "exact").Err()
		return cause
	}
	kctx, cancel := context.WithTimeout(ctx, kratosBudget)
	defer cancel()
	if untouched, err := s.ids.Untouched(kctx, who.ID); err != nil || !untouched {
		return undo(err)
	}
	if err := s.markMoved(kctx, who.ID); err != nil {
		return undo(err)
	}
	if err := s.detachAll(kctx, email, who.ID); err != nil {
		s.unmarkMoved(ctx, who.ID)
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
	key := s.store.ks.AddressClaim(email)
	for i := 0; i < 100; i++ {
		ok, err := s.store.rdb.SetNX(ctx, key, token, claimLease).Result()
		if err != nil {
			return storeErr(err)
		}
		if ok {
			return nil
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
	return storeErr(unclaimScript.Run(ctx, s.store.rdb, []string{s.store.ks.AddressClaim(email)}, "takeover|", "prefix").Err())
}

func (s *Service) markMoved(ctx context.Context, identityID string) error {
	_, err := s.store.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for shard := 0; shard < redisx.Shards; shard++ {
			p.Set(ctx, s.store.ks.Moved(shard, identityID), "1", refGrace+time.Minute)
		}
		return nil
	})
	return storeErr(err)
}

func (s *Service) unmarkMoved(ctx context.Context, identityID string) {
	ctx = context.WithoutCancel(ctx)
	for shard := 0; shard < redisx.Shards; shard++ {
		s.store.rdb.Del(ctx, s.store.ks.Moved(shard, identityID))
	}
}

// detachAll detaches every pending invitation of the address from the
// placeholder: those referenced, and those in the pending index (written
// before references existed).
func (s *Service) detachAll(ctx context.Context, email, placeholder string) error {
	refs, err := s.store.rdb.HKeys(ctx, s.store.ks.AddressRefs(email)).Result()
	if err != nil {
		return storeErr(err)
	}
	orgIDs, err := s.store.rdb.ZRange(ctx, s.store.ks.AddressPending(email), 0, -1).Result()
	if err != nil {
		return storeErr(err)
	}
	for _, org := range orgIDs {
		if id, err := s.store.rdb.HGet(ctx, s.store.ks.Org(org)+":inv:email", email).Result(); err == nil {
			refs = append(refs, id)
		}
	}
	for _, id := range refs {
		shard, ok := redisx.ParseID("inv", id)
		if !ok {
			continue
		}
		rep, err := detachScript.Run(ctx, s.store.rdb, []string{s.store.ks.Invitation(id)},
			s.store.ks.Args(shard, s.now(), s.store.retention, id, placeholder)...)
		if err != nil {
			return storeErr(err)
		}
		if rep.Outcome == "accepting" {
			return errAccepting
		}
	}
	return nil
}
