package invites

import "github.com/kratos-orgs/kratos-orgs/redisx"

// lookupScript resolves a token for the pages: the invitation and its
// organization, and whether the token is the invitation's newest ("live":
// the caller checks it is still pending) or the one that replaced ("dead").
// It writes only to upgrade a record of the first layout.
// KEYS: the shard's token index. Arguments: tokenArgs.
var lookupScript = redisx.NewScript("invites.lookup", redisx.OnShard, `
local th = A.token_hash
local id = token_invitation(th)
if not id then return {'unknown'} end
local h = inv_flat(id)
if not h then return {'unknown'} end
local f = redis.call('HMGET', k_inv(id), 't', 'pt', 'o')
local live = 'dead'
if same_token(f[1], th) then
  live = 'live'
elseif not same_token(f[2], th) then
  return {'unknown'}
end
return {live, h, flat(k_org(f[3])) or {}}
`)

// tokenArgs name a token; a claim also its deadline.
type tokenArgs struct {
	redisx.Env
	TokenHash  string `json:"token_hash"`
	ClaimUntil int64  `json:"claim_until,omitempty"` // ms
	Identity   string `json:"identity,omitempty"`    // who claims, when known (a member takes no new seat)
}

// claimScript consumes a token: of many concurrent claims exactly one
// finds its invitation pending with this token and makes it 'accepting'
// (the link is dead while it is) until finalized, released, or (if the
// process dies) released by the sweeper after claim_until.
// KEYS: the shard's token index. Arguments: tokenArgs.
var claimScript = redisx.NewScript("invites.claim", redisx.OnShard, `
local id = token_invitation(A.token_hash)
if not id then return {'gone'} end
local ik = k_inv(id)
if current_status(id) ~= 'pending' or not same_token(redis.call('HGET', ik, 't'), A.token_hash) then
  return {'gone'}
end
-- Refused before anything else happens (a new person's account is
-- activated before the finalize step checks again).
local org = redis.call('HGET', ik, 'o')
if (A.identity or '') == '' or redis.call('HEXISTS', k_org_members(org), A.identity) == 0 then
  local full, limit, used = members_full(org)
  if full then return {'seat_limit', limit, used} end
end
redis.call('HSET', ik, 's', 'accepting', 'cu', A.claim_until, 'u', NOW)
redis.call('ZADD', k_claims(), A.claim_until, id)
return {'ok', inv_flat(id)}
`)

// releaseScript gives a claimed invitation back (acceptance failed).
// KEYS: invitation hash. Arguments: invitationArgs.
var releaseScript = redisx.NewScript("invites.release", redisx.OnShard, `
if release_claim(A.id) then return {'ok'} end
return {'noop'}
`)

// finalizeScript completes an acceptance: the invitation is accepted, the
// identity becomes a member with the invited role (unless it already is
// one), and a registration's organization becomes active — atomically.
// This is the acceptance's commit point. A new person's claims may have
// been written to Kratos before it (Acceptor.AcceptNew): every way out
// that does not make the member (the claim released here or by Release or
// the sweeper, the organization gone) queues a claims.sync job that
// writes them back to the memberships.
// KEYS: invitation hash. Arguments: finalizeArgs.
var finalizeScript = redisx.NewScript("invites.finalize", redisx.OnShard, `
local id, identity = A.id, A.identity
upgrade(id)
local f = redis.call('HMGET', KEYS[1], 's', 'o', 'r', 'k')
if f[1] ~= 'accepting' then return {'not_claimed', f[1] or ''} end
redis.call('ZREM', k_claims(), id)
local org = f[2]
if redis.call('EXISTS', k_org(org)) == 0 then
  end_invitation(id, 'revoked')
  if A.claims then enqueue({k = 'claims.sync', r = id, i = identity}) end
  return {'org_gone'}
end
local already = redis.call('HEXISTS', k_org_members(org), identity)
if already == 0 then
  local full, limit, used = members_full(org)
  if full then
    release_claim(id)
    return {'seat_limit', limit, used}
  end
end
end_invitation(id, 'accepted', identity)
if already == 0 then put_member(org, identity, f[3], A.email, NOW, A.claims) end
if f[4] == 'registration' then activate(org) end
return {'ok', inv_flat(id), already, flat(k_org(org))}
`)

// finalizeArgs are finalizeScript's arguments.
type finalizeArgs struct {
	redisx.Env
	ID       string `json:"id"`
	Identity string `json:"identity"`
	Email    string `json:"email"`
	// Claims is the digest of the claims written with the activation
	// (orgs.ClaimsDigest); empty when the claims mirror writes them.
	Claims string `json:"claims,omitempty"`
}

// acceptAddressScript turns the pending invitation of an organization for
// an address into a membership, without a token: Kratos has shown the
// address verified. An invitation being accepted on a page is left alone.
// An invitation a member issued whose grant has lapsed (the member left or
// holds a role below the invitation's) is left pending too.
// KEYS: org hash. Arguments: acceptAddressArgs.
var acceptAddressScript = redisx.NewScript("invites.accept_address", redisx.OnShard, `
local org = A.org
local id = redis.call('HGET', k_org_inv_email(org), A.email)
if not id or current_status(id) ~= 'pending' then return {'none'} end
local f = redis.call('HMGET', k_inv(id), 'o', 'r', 'k', 'g')
if f[4] then
  local function rank(role)
    local i = 0
    for r in string.gmatch(A.roles, '[^,]+') do
      i = i + 1
      if r == role then return i end
    end
    return nil
  end
  local raw = redis.call('HGET', k_org_members(org), f[4])
  local held = raw and rank(cjson.decode(raw).role)
  local needed = rank(f[2])
  if not held or not needed or held > needed then return {'grant_lapsed', id} end
end
local already = redis.call('HEXISTS', k_org_members(org), A.identity)
if already == 0 and members_full(org) then return {'seat_limit', id} end
end_invitation(id, 'accepted', A.identity)
if already == 0 then put_member(f[1], A.identity, f[2], A.email, NOW) end
if f[3] == 'registration' then activate(org) end
return {'ok', id, already}
`)

// acceptAddressArgs are acceptAddressScript's arguments.
type acceptAddressArgs struct {
	redisx.Env
	Org      string `json:"org"`
	Email    string `json:"email"`
	Identity string `json:"identity"`
	Roles    string `json:"roles"` // most privileged first, comma-separated
}
