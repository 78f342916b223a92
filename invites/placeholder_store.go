package invites

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// The Redis side of placeholders (see placeholders.go): the address slot's
// references and claim, and the steps on invitations that a takeover needs.

// referenceScript registers an invitation for an address before it is
// written, unless the address' placeholder is being deleted (then the
// caller waits). During a takeover the reference is registered and the
// caller is told not to use the placeholder. The third value is the
// identity last seen for the address (known.go), read in the same step;
// the fourth, with a fourth key, whether the address is on the suppression
// list (1), so an invitation costs no round trip of its own to ask.
// KEYS: refs, claim, known identity[, suppression]. Arguments: id (the
// invitation), ref ("<org id> <ms>").
var referenceScript = redisx.NewScript("invites.reference", redisx.Standalone, `
local c = redis.call('GET', KEYS[2])
if c and string.sub(c, 1, 7) == 'delete|' then return {'wait', redis.call('PTTL', KEYS[2]), '', 0} end
redis.call('HSET', KEYS[1], A.id, A.ref)
local sup = 0
if KEYS[4] then sup = redis.call('EXISTS', KEYS[4]) end
if c then return {'takeover', 0, '', sup} end
return {'ok', 0, redis.call('GET', KEYS[3]) or '', sup}
`)

// claimDeleteScript takes the delete claim of an address if nothing
// references it: no reference and no live entry in the pending index
// (which covers invitations written before references existed).
// KEYS: refs, claim, pending. Arguments: claim (the value), lease and now
// (ms).
var claimDeleteScript = redisx.NewScript("invites.claim_delete", redisx.Standalone, `
local c = redis.call('GET', KEYS[2])
if c then return {'busy', c} end
local refs = redis.call('HGETALL', KEYS[1])
if #refs > 0 then return {'referenced', refs} end
if redis.call('ZCOUNT', KEYS[3], string.format('(%d', A.now), '+inf') > 0 then return {'pending', ''} end
redis.call('SET', KEYS[2], A.claim, 'PX', A.lease)
return {'ok', ''}
`)

// unclaimScript drops a claim: exactly this value (mode 'exact') or any
// value with this prefix (mode 'prefix').
// KEYS: claim. Arguments: value, mode.
var unclaimScript = redisx.NewScript("invites.unclaim", redisx.Standalone, `
local c = redis.call('GET', KEYS[1])
if not c then return 0 end
if c == A.value or (A.mode == 'prefix' and string.sub(c, 1, #A.value) == A.value) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`)

// detachScript moves a pending invitation off a placeholder that a Kratos
// sign-up replaces: it becomes an invitation for whoever holds the address
// (accepted signed in, or on verification). One being accepted on a page
// right now is left alone and reported.
// Mode 'check' only reports.
// KEYS: invitation hash. Arguments: detachArgs.
var detachScript = redisx.NewScript("invites.detach", redisx.OnShard, `
local st = current_status(A.id)
if st == 'accepting' then return {'accepting'} end
if st ~= 'pending' or redis.call('HGET', KEYS[1], 'ki') ~= A.placeholder then return {'none'} end
if A.mode == 'check' then return {'pending'} end
redis.call('HDEL', KEYS[1], 'ki', 'kc')
redis.call('HSET', KEYS[1], 'ke', '1', 'u', NOW)
return {'detached'}
`)

// detachArgs are detachScript's arguments.
type detachArgs struct {
	redisx.Env
	ID          string `json:"id"`
	Placeholder string `json:"placeholder"`
	Mode        string `json:"mode"` // check or detach
}

// reference registers invitation id (of org) for an address: "ok" (with
// the identity last seen for the address, or ""), "takeover", or "wait"
// with the time left on a delete claim.
func (s *Store) reference(ctx context.Context, email, id, org string, at time.Time) (outcome string, wait time.Duration, known string, suppressed bool, err error) {
	keys := []string{s.ks.AddressRefs(email), s.ks.AddressClaim(email), s.ks.AddressIdentity(email), s.ks.AddressSuppression(email)}
	res, err := referenceScript.Eval(ctx, s.rdb, keys,
		map[string]string{"id": id, "ref": org + " " + strconv.FormatInt(at.UnixMilli(), 10)}).Slice()
	if err != nil {
		return "", 0, "", false, storeErr(err)
	}
	return redisx.Str(res[0]), time.Duration(redisx.Int(res[1])) * time.Millisecond, redisx.Str(res[2]), redisx.Int(res[3]) == 1, nil
}

// forget drops references.
func (s *Store) forget(ctx context.Context, email string, ids ...string) error {
	return storeErr(s.rdb.HDel(ctx, s.ks.AddressRefs(email), ids...).Err())
}

// claimDelete tries to take an address' delete claim: "ok", "busy" (with
// the claim held), "referenced" (with the references) or "pending".
func (s *Store) claimDelete(ctx context.Context, email, token string, now time.Time) (outcome, held string, refs map[string]string, err error) {
	keys := []string{s.ks.AddressRefs(email), s.ks.AddressClaim(email), s.ks.AddressPending(email)}
	res, err := claimDeleteScript.Eval(ctx, s.rdb, keys, map[string]any{
		"claim": token, "lease": claimLease.Milliseconds(), "now": now.UnixMilli(),
	}).Slice()
	if err != nil {
		return "", "", nil, storeErr(err)
	}
	outcome = redisx.Str(res[0])
	if outcome == "referenced" {
		return outcome, "", redisx.Hash(res[1]), nil
	}
	return outcome, redisx.Str(res[1]), nil, nil
}

// unclaim drops an address' claim if it is value (or starts with it).
func (s *Store) unclaim(ctx context.Context, email, value string, prefix bool) error {
	mode := "exact"
	if prefix {
		mode = "prefix"
	}
	return storeErr(unclaimScript.Eval(ctx, s.rdb, []string{s.ks.AddressClaim(email)},
		map[string]string{"value": value, "mode": mode}).Err())
}

// claimTakeover takes an address' claim if nobody holds it.
func (s *Store) claimTakeover(ctx context.Context, email, token string) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, s.ks.AddressClaim(email), token, claimLease).Result()
	return ok, storeErr(err)
}

// referencedInvitation is what a reference's liveness depends on.
type referencedInvitation struct {
	exists     bool
	status     Status // as stored: accepting is not folded into pending
	expiresAt  time.Time
	pendingOrg bool // a registration whose organization is still pending
}

func (s *Store) referenced(ctx context.Context, id string) (referencedInvitation, error) {
	f, err := s.readFields(ctx, id, "s", "x", "k", "o")
	if err != nil {
		return referencedInvitation{}, storeErr(err)
	}
	if f[0] == "" {
		return referencedInvitation{}, nil
	}
	r := referencedInvitation{exists: true, status: Status(f[0]), expiresAt: redisx.MsTime(f[1])}
	if f[2] == "registration" {
		org := f[3]
		state, err := s.rdb.HGet(ctx, s.ks.Org(org), "state").Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return r, storeErr(err)
		}
		r.pendingOrg = state == "pending"
	}
	return r, nil
}

// markMoved sets the Moved marker of a placeholder in every shard, for as
// long as an invitation registered before the takeover may be written.
func (s *Store) markMoved(ctx context.Context, identityID string) error {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for shard := 0; shard < redisx.Shards; shard++ {
			p.Set(ctx, s.ks.Moved(shard, identityID), "1", refGrace+time.Minute)
		}
		return nil
	})
	return storeErr(err)
}

func (s *Store) unmarkMoved(ctx context.Context, identityID string) {
	for shard := 0; shard < redisx.Shards; shard++ {
		s.rdb.Del(ctx, s.ks.Moved(shard, identityID))
	}
}

// addressInvitations lists the invitations of an address that may be
// pending: those referenced, and those in the pending index (written
// before references existed).
func (s *Store) addressInvitations(ctx context.Context, email string) ([]string, error) {
	ids, err := s.rdb.HKeys(ctx, s.ks.AddressRefs(email)).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	orgIDs, err := s.rdb.ZRange(ctx, s.ks.AddressPending(email), 0, -1).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	for _, org := range orgIDs {
		if id, err := s.rdb.HGet(ctx, s.ks.OrgPendingByEmail(org), email).Result(); err == nil {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// detach moves a pending invitation off a placeholder: "detached", "none"
// or "accepting" ("pending" instead of "detached" when only checking).
func (s *Store) detach(ctx context.Context, id, placeholder string, check bool) (string, error) {
	mode := "detach"
	if check {
		mode = "check"
	}
	shard, ok := redisx.ParseID("inv", id)
	if !ok {
		return "none", nil
	}
	rep, err := detachScript.Run(ctx, s.rdb, []string{s.ks.Invitation(id)},
		detachArgs{Env: s.env(shard, s.now()), ID: id, Placeholder: placeholder, Mode: mode})
	if err != nil {
		return "", storeErr(err)
	}
	return rep.Outcome, nil
}
