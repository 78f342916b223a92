package invites

import "github.com/kratos-orgs/kratos-orgs/redisx"

// lookupScript resolves a token for the pages (read-only): the invitation
// and its organization, and whether the token is the live one.
// KEYS: the live token key. ARGV[4]: token hash.
var lookupScript = redisx.NewScript(`
local id = redis.call('GET', KEYS[1])
local live = 'live'
if not id then
  live = 'dead'
  id = redis.call('GET', P .. 'tokinfo:' .. ARGV[4])
end
if not id then return {'unknown'} end
local h = flat(k_inv(id))
if not h then return {'unknown'} end
return {live, h, flat(k_org(redis.call('HGET', k_inv(id), 'org'))) or {}}
`)

// claimScript consumes a token: of many concurrent claims exactly one
// finds the live key and deletes it. The invitation becomes 'accepting'
// until finalized, released, or (if the process dies) released by the
// sweeper after claim_until.
// KEYS: the live token key. ARGV[4..]: token hash, claim deadline (ms).
var claimScript = redisx.NewScript(`
local id = redis.call('GET', KEYS[1])
if not id then return {'gone'} end
local ik = k_inv(id)
if current_status(id) ~= 'pending' or redis.call('HGET', ik, 'token_hash') ~= ARGV[4] then
  return {'gone'}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', ik, 'status', 'accepting', 'claim_until', ARGV[5], 'updated_at', NOW)
redis.call('ZADD', P .. 'claims', ARGV[5], id)
return {'ok', flat(ik)}
`)

// releaseScript gives a claimed invitation back (acceptance failed).
// KEYS: invitation hash. ARGV[4]: invitation id.
var releaseScript = redisx.NewScript(`
if release_claim(ARGV[4]) then return {'ok'} end
return {'noop'}
`)

// finalizeScript completes an acceptance: the invitation is accepted, the
// identity becomes a member with the invited role (unless it already is
// one), and a registration's organization becomes active — atomically.
// KEYS: invitation hash. ARGV[4..]: invitation id, identity id, email.
var finalizeScript = redisx.NewScript(`
local id, identity = ARGV[4], ARGV[5]
local f = redis.call('HMGET', KEYS[1], 'status', 'org', 'role', 'kind')
if f[1] ~= 'accepting' then return {'not_claimed', f[1] or ''} end
redis.call('ZREM', P .. 'claims', id)
local ok = k_org(f[2])
if redis.call('EXISTS', ok) == 0 then
  end_invitation(id, 'revoked')
  return {'org_gone'}
end
local already = redis.call('HEXISTS', ok .. ':members', identity)
end_invitation(id, 'accepted', identity)
if already == 0 then put_member(f[2], identity, f[3], ARGV[6], NOW) end
if f[4] == 'registration' then redis.call('HSET', ok, 'state', 'active', 'updated_at', NOW) end
return {'ok', flat(KEYS[1]), already, flat(ok)}
`)

// acceptAddressScript turns the pending invitation of an organization for
// an address into a membership, without a token: Kratos has shown the
// address verified. An invitation being accepted on a page is left alone.
// An invitation a member issued whose grant has lapsed (the member left or
// holds a role below the invitation's) is left pending too.
// KEYS: org hash. ARGV[4..]: email, identity id, roles (most privileged
// first, comma-separated).
var acceptAddressScript = redisx.NewScript(`
local ok = KEYS[1]
local id = redis.call('HGET', ok .. ':inv:email', ARGV[4])
if not id or current_status(id) ~= 'pending' then return {'none'} end
local f = redis.call('HMGET', k_inv(id), 'org', 'role', 'kind', 'granted_by')
if f[4] and f[4] ~= '' then
  local function rank(role)
    local i = 0
    for r in string.gmatch(ARGV[6], '[^,]+') do
      i = i + 1
      if r == role then return i end
    end
    return nil
  end
  local raw = redis.call('HGET', ok .. ':members', f[4])
  local held = raw and rank(cjson.decode(raw).role)
  local needed = rank(f[2])
  if not held or not needed or held > needed then return {'grant_lapsed', id} end
end
local already = redis.call('HEXISTS', ok .. ':members', ARGV[5])
end_invitation(id, 'accepted', ARGV[5])
if already == 0 then put_member(f[1], ARGV[5], f[2], ARGV[4], NOW) end
if f[3] == 'registration' then redis.call('HSET', ok, 'state', 'active', 'updated_at', NOW) end
return {'ok', id, already}
`)
