package invites

import "github.com/kratos-orgs/kratos-orgs/redisx"

// The scripts below run on the organization's shard (see redisx/keys.go for
// the layout and redisx/lua.go for the prelude they share).

// createScript writes a new invitation, or rotates the token of the pending
// one for the same address: record, indexes, token key and outbox entries
// in one atomic step.
//
// KEYS: org hash. ARGV[4..]: 4 org id, 5 new invitation id, 6 email,
// 7 role, 8 expires (ms), 9 ttl (ms), 10 token hash, 11 inviter id,
// 12 inviter name, 13 context JSON, 14 redirect_to, 15 identity id,
// 16 identity existed (1/0), 17 identity created by us (1/0), 18 send mail
// (1/0), 19 sealed token, 20 mail template set, 21 kind, 22 roles the
// caller may grant (comma-separated; empty: no ceiling), 23 granted by
// (member identity id, or empty for the operator), 24 write-by (ms) of the
// invitation's address reference, or 0.
//
// Past the write-by time the reference may have been dropped as never
// written, so nothing is written (see placeholders.go). A placeholder that
// a Kratos sign-up is replacing (its Moved marker) is not pointed at: the
// invitation is written detached, for whoever holds the address.
var createScript = redisx.NewScript(`
local ok = KEYS[1]
local org, email, exp, th = ARGV[4], ARGV[6], tonumber(ARGV[8]), ARGV[10]
if tonumber(ARGV[24]) > 0 and NOW > tonumber(ARGV[24]) then return {'too_late'} end
if ARGV[17] == '1' and ARGV[15] ~= '' and redis.call('EXISTS', P .. 'moved:' .. ARGV[15]) == 1 then
  ARGV[15], ARGV[16], ARGV[17] = '', '1', '0'
end
if redis.call('EXISTS', ok) == 0 then return {'org_not_found'} end
if ARGV[21] == 'invitation' and redis.call('HGET', ok, 'state') ~= 'active' then return {'org_inactive'} end
-- A registration's owner is a member of the pending organization already.
if ARGV[21] == 'invitation' and ARGV[15] ~= '' and redis.call('HEXISTS', ok .. ':members', ARGV[15]) == 1 then
  return {'already_member'}
end

local delivery = 'skipped'
if ARGV[18] == '1' then delivery = 'queued' end
local fields = {'role', ARGV[7], 'expires_at', exp, 'ttl_ms', ARGV[9], 'token_hash', th,
  'inviter_id', ARGV[11], 'inviter_name', ARGV[12], 'context', ARGV[13], 'redirect_to', ARGV[14],
  'identity_id', ARGV[15], 'identity_existing', ARGV[16], 'identity_created', ARGV[17],
  'updated_at', NOW, 'delivery', delivery, 'delivery_attempts', 0, 'delivery_error', '', 'delivery_id', '',
  'delivery_at', NOW, 'granted_by', ARGV[23]}

local id = redis.call('HGET', ok .. ':inv:email', email)
local outcome = 'rotated'
local st = id and current_status(id)
local replaced = false
if st == 'accepting' then return {'accepting'} end
if st == 'pending' and ARGV[22] ~= '' then
  -- Re-issuing rewrites the invitation: only within the caller's ceiling.
  local cur = redis.call('HGET', k_inv(id), 'role')
  if not string.find(',' .. ARGV[22] .. ',', ',' .. cur .. ',', 1, true) then return {'role_ceiling', cur} end
end
if st == 'pending' then
  local ik = k_inv(id)
  local old = redis.call('HMGET', ik, 'token_hash', 'token_version')
  replaced = old[1]
  redis.call('DEL', k_tok(old[1]))
  redis.call('HSET', ik, 'token_version', tonumber(old[2]) + 1, unpack(fields))
else
  id = ARGV[5]
  outcome = 'created'
  local ik = k_inv(id)
  redis.call('HSET', ik, 'id', id, 'org', org, 'email', email, 'status', 'pending', 'kind', ARGV[21],
    'created_at', NOW, 'token_version', 1, unpack(fields))
  redis.call('ZADD', ok .. ':inv:ids', 0, id)
  redis.call('ZADD', ok .. ':inv:st:pending', 0, id)
  redis.call('HSET', ok .. ':inv:email', email, id)
  redis.call('SADD', ok .. ':inv:addr:' .. email, id)
end
redis.call('ZADD', ok .. ':inv:pending', exp, id)
redis.call('ZADD', P .. 'due', exp, id)
redis.call('SET', k_tok(th), id, 'PX', exp - NOW)
remember_token(th, id, exp, replaced)
redis.call('HINCRBY', P .. 'stats', outcome, 1)
local ik = k_inv(id)
if ARGV[18] == '1' then
  enqueue({k = 'mail', r = id, v = tonumber(redis.call('HGET', ik, 'token_version')), t = ARGV[20], s = ARGV[19]})
end
enqueue({k = 'invitation.sync', r = id})
return {outcome, flat(ik)}
`)

// revokeScript ends a pending invitation; its link dies at once.
// KEYS: invitation hash. ARGV[4]: invitation id.
var revokeScript = redisx.NewScript(`
local st = current_status(ARGV[4])
if not st then return {'not_found'} end
if st ~= 'pending' then return {'not_pending', flat(KEYS[1])} end
end_invitation(ARGV[4], 'revoked')
return {'ok', flat(KEYS[1])}
`)

// rotateScript gives a pending invitation a new token (the old link dies)
// and queues its mail. A resend extends the expiry by the invitation's TTL;
// a reminder keeps it and is allowed once per interval.
// KEYS: invitation hash. ARGV[4..]: 4 invitation id, 5 new token hash,
// 6 sealed token, 7 mode (resend|remind), 8 remind interval (ms),
// 9 send mail (1/0), 10 mail template set.
var rotateScript = redisx.NewScript(`
local ik, id = KEYS[1], ARGV[4]
local st = current_status(id)
if not st then return {'not_found'} end
if st ~= 'pending' then return {'not_pending', flat(ik)} end
local f = redis.call('HMGET', ik, 'token_hash', 'token_version', 'expires_at', 'ttl_ms', 'reminded_at', 'org')
local exp = tonumber(f[3])
if ARGV[7] == 'remind' then
  local next_at = tonumber(f[5] or 0) + tonumber(ARGV[8])
  if f[5] and next_at > NOW then return {'too_soon', next_at - NOW} end
  redis.call('HSET', ik, 'reminded_at', NOW)
else
  exp = NOW + tonumber(f[4])
end
local th = ARGV[5]
redis.call('DEL', k_tok(f[1]))
local ver = tonumber(f[2]) + 1
local delivery = 'skipped'
if ARGV[9] == '1' then delivery = 'queued' end
redis.call('HSET', ik, 'token_hash', th, 'token_version', ver, 'expires_at', exp, 'updated_at', NOW,
  'delivery', delivery, 'delivery_attempts', 0, 'delivery_error', '', 'delivery_id', '', 'delivery_at', NOW)
redis.call('SET', k_tok(th), id, 'PX', exp - NOW)
remember_token(th, id, exp, f[1])
redis.call('ZADD', k_org(f[6]) .. ':inv:pending', exp, id)
redis.call('ZADD', P .. 'due', exp, id)
if ARGV[9] == '1' then enqueue({k = 'mail', r = id, v = ver, t = ARGV[10], s = ARGV[6]}) end
enqueue({k = 'invitation.sync', r = id})
return {'ok', flat(ik)}
`)

// deliveryScript records the outcome of a mail, unless the token was
// rotated since (a newer mail is under way and owns the status).
// KEYS: invitation hash. ARGV[4..]: token version, status, attempts,
// error, message id, failure reason.
var deliveryScript = redisx.NewScript(`
if redis.call('HGET', KEYS[1], 'token_version') ~= ARGV[4] then return {'stale'} end
redis.call('HSET', KEYS[1], 'delivery', ARGV[5], 'delivery_attempts', ARGV[6], 'delivery_error', ARGV[7],
  'delivery_id', ARGV[8], 'delivery_reason', ARGV[9], 'delivery_at', NOW)
return {'ok'}
`)

// listScript pages through an organization's invitations. It first ends
// the organization's invitations that are past their expiry, so the status
// filter and the total are exact.
// KEYS: org hash. ARGV[4..]: status (pending|accepted|revoked|expired|all),
// email or empty, lexical start, limit (one more than the page).
var listScript = redisx.NewScript(`
local ok = KEYS[1]
if redis.call('EXISTS', ok) == 0 then return {'org_not_found'} end
for _, id in ipairs(redis.call('ZRANGE', ok .. ':inv:pending', '-inf', NOW, 'BYSCORE', 'LIMIT', 0, 1000)) do
  current_status(id)
end
local status, email, start, limit = ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local ids, total
if email ~= '' then
  local all = redis.call('SMEMBERS', ok .. ':inv:addr:' .. email)
  table.sort(all)
  ids = {}
  total = 0
  local after = ''
  if start ~= '-' then after = string.sub(start, 2) end
  for _, id in ipairs(all) do
    local st = redis.call('HGET', k_inv(id), 'status')
    if st and (status == 'all' or st == status) then
      total = total + 1
      if id > after and #ids < limit then table.insert(ids, id) end
    end
  end
else
  local set = ok .. ':inv:st:' .. status
  if status == 'all' then set = ok .. ':inv:ids' end
  total = redis.call('ZCARD', set)
  ids = redis.call('ZRANGE', set, start, '+', 'BYLEX', 'LIMIT', 0, limit)
end
local out = {'ok', total}
for _, id in ipairs(ids) do
  local h = flat(k_inv(id))
  if h then table.insert(out, h) end
end
return out
`)

// sweepScript ends the shard's invitations that are past their expiry and
// purges ended ones past their retention.
// KEYS: the shard's due set. ARGV[4]: batch size.
var sweepScript = redisx.NewScript(`
local n = tonumber(ARGV[4])
local expired, purged = 0, 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], '-inf', NOW, 'BYSCORE', 'LIMIT', 0, n)) do
  local st = current_status(id)
  if st == 'expired' then expired = expired + 1 end
  -- end_invitation already left the set; drop what is not pending any more
  if st ~= 'pending' then redis.call('ZREM', KEYS[1], id) end
end
-- A claim whose process died mid-acceptance: the link works again.
for _, id in ipairs(redis.call('ZRANGE', P .. 'claims', '-inf', NOW, 'BYSCORE', 'LIMIT', 0, n)) do
  release_claim(id)
end
for _, id in ipairs(redis.call('ZRANGE', P .. 'purge', '-inf', NOW, 'BYSCORE', 'LIMIT', 0, n)) do
  local ik = k_inv(id)
  local f = redis.call('HMGET', ik, 'org', 'email', 'status')
  if f[1] then
    local ok = k_org(f[1])
    redis.call('ZREM', ok .. ':inv:ids', id)
    redis.call('ZREM', ok .. ':inv:st:' .. f[3], id)
    redis.call('SREM', ok .. ':inv:addr:' .. f[2], id)
    forget_tokens(ik)
    redis.call('DEL', ik)
    purged = purged + 1
  end
  redis.call('ZREM', P .. 'purge', id)
end
return {'ok', expired, purged}
`)

// readWithOrgScript reads an invitation and its organization in one round
// trip, for the mail worker and the pages (read-only).
// KEYS: invitation hash.
var readWithOrgScript = redisx.NewScript(`
local h = flat(KEYS[1])
if not h then return {'not_found'} end
return {'ok', h, flat(k_org(redis.call('HGET', KEYS[1], 'org'))) or {}}
`)
