package invites

import (
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// The scripts below run on the organization's shard (see redisx/keys.go for
// the layout and redisx/lua.go for the prelude they share).

// createScript writes a new invitation, or rotates the token of the pending
// one for the same address: record, indexes, token key and outbox entries
// in one atomic step.
//
// KEYS: org hash. Arguments: createArgs.
//
// Past the write-by time the reference may have been dropped as never
// written, so nothing is written (see placeholders.go). A placeholder that
// a Kratos sign-up is replacing (its Moved marker) is not pointed at: the
// invitation is written detached, for whoever holds the address.
var createScript = redisx.NewScript("invites.create", redisx.OnShard, reminderSteps+`
local org, email, exp, th = A.org, A.email, A.expires_at, A.token_hash
local identity, existing, created = A.identity_id, A.identity_existing, A.identity_created
if A.write_by > 0 and NOW > A.write_by then return {'too_late'} end
if created == '1' and identity ~= '' and redis.call('EXISTS', k_moved(identity)) == 1 then
  identity, existing, created = '', '1', '0'
end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'org_not_found'} end
if A.kind == 'invitation' and redis.call('HGET', KEYS[1], 'state') ~= 'active' then return {'org_inactive'} end
-- A registration's owner is a member of the pending organization already.
if A.kind == 'invitation' and identity ~= '' and redis.call('HEXISTS', k_org_members(org), identity) == 1 then
  return {'already_member'}
end

local function flag(v) if v == '1' then return '1' end return '' end
local delivery = 'skipped'
if A.send_mail then delivery = 'queued' end
-- Absent fields read as empty; kind as invitation, and updated_at and the
-- delivery's as created_at (redisx/fields.go).
local fields = {'r', A.role, 'x', exp, 'l', A.ttl_ms, 't', tok_field(th), 'ii', A.inviter_id, 'in', A.inviter_name,
  'cx', A.context, 'rt', A.redirect_to, 'ki', identity, 'ke', flag(existing), 'kc', flag(created),
  'd', delivery, 'dn', '', 'de', '', 'dm', '', 'dr', '', 'dt', '', 'g', A.granted_by, 'lc', A.locale}

local id = redis.call('HGET', k_org_inv_email(org), email)
local outcome = 'rotated'
local st = id and current_status(id)
local replaced = false
if st == 'accepting' then return {'accepting'} end
if st == 'pending' and A.within ~= '' then
  -- Re-issuing rewrites the invitation: only within the caller's ceiling.
  local cur = redis.call('HGET', k_inv(id), 'r')
  if not string.find(',' .. A.within .. ',', ',' .. cur .. ',', 1, true) then return {'role_ceiling', cur} end
end
local ik
if st == 'pending' then
  ik = k_inv(id)
  local old = redis.call('HMGET', ik, 't', 'v')
  replaced = old[1]
  for _, v in ipairs({'v', tonumber(old[2]) + 1, 'u', NOW, 'da', NOW}) do fields[#fields + 1] = v end
  put(ik, fields)
else
  -- A new invitation takes a seat; re-issuing a pending one does not.
  local full, limit, used = seats_full(org, 1)
  if full then return {'seat_limit', limit, used} end
  id = A.id
  outcome = 'created'
  ik = k_inv(id)
  local kind = A.kind
  if kind == 'invitation' then kind = '' end
  for _, v in ipairs({'v', 1, 'k', kind}) do fields[#fields + 1] = v end
  put(ik, fields)
  redis.call('HSET', ik, 'o', org, 'e', email, 's', 'pending', 'c', NOW)
  redis.call('ZADD', k_org_inv_status(org, 'pending'), 0, id)
  redis.call('HSET', k_org_inv_email(org), email, id)
end
redis.call('ZADD', k_due(), exp, id)
index_token(th, id, replaced)
redis.call('HINCRBY', k_stats(), outcome, 1)
local ev = 'invitation.created'
if outcome == 'rotated' then ev = 'invitation.resent' end
record(org, ev, {invitation_id = id, organization_id = org, email = email, role = redis.call('HGET', ik, 'r'),
  kind = A.kind, expires_at = exp, identity_id = identity, invited_by = A.granted_by})
if A.send_mail then
  enqueue({k = 'mail', r = id, v = tonumber(redis.call('HGET', ik, 'v')), t = A.template, s = A.sealed})
end
enqueue({k = 'invitation.sync', r = id})
schedule_reminder(id)
if outcome == 'created' then
  -- The caller knows every field but these (createdRecord): reading the
  -- whole record back cost it more than the rest of the reply.
  return {outcome, identity, flag(existing), flag(created), redis.call('HGET', ik, 'rn') or ''}
end
return {outcome, inv_flat(id)}
`)

// createArgs are createScript's arguments.
type createArgs struct {
	redisx.Env
	Org              string `json:"org"`
	ID               string `json:"id"` // the new invitation's id (unused on rotation)
	Email            string `json:"email"`
	Role             string `json:"role"`
	ExpiresAt        int64  `json:"expires_at"` // ms
	TTL              int64  `json:"ttl_ms"`
	TokenHash        string `json:"token_hash"`
	InviterID        string `json:"inviter_id"`
	InviterName      string `json:"inviter_name"`
	Context          string `json:"context"` // JSON or empty
	RedirectTo       string `json:"redirect_to"`
	IdentityID       string `json:"identity_id"`
	IdentityExisting string `json:"identity_existing"` // "1"/"0", stored as is
	IdentityCreated  string `json:"identity_created"`  // "1"/"0": a placeholder we created
	SendMail         bool   `json:"send_mail"`
	Sealed           string `json:"sealed"` // the sealed token, for the mail job
	Template         string `json:"template"`
	Kind             string `json:"kind"`
	Within           string `json:"within"`     // roles the caller may grant, comma-separated; empty: no ceiling
	GrantedBy        string `json:"granted_by"` // member identity id; empty for the operator
	WriteBy          int64  `json:"write_by"`   // ms deadline of the address reference, or 0
	Locale           string `json:"locale"`     // BCP 47, canonical, or empty
	// Rem is the configured reminder plan (reminders.go).
	Rem orgs.ReminderPlan `json:"rem"`
}

// revokeScript ends a pending invitation; its link dies at once.
// KEYS: invitation hash. Arguments: invitationArgs.
var revokeScript = redisx.NewScript("invites.revoke", redisx.OnShard, `
local st = current_status(A.id)
if not st then return {'not_found'} end
if st ~= 'pending' then return {'not_pending', inv_flat(A.id)} end
end_invitation(A.id, 'revoked')
return {'ok', inv_flat(A.id)}
`)

// invitationArgs name one invitation.
type invitationArgs struct {
	redisx.Env
	ID string `json:"id"`
}

// rotateScript gives a pending invitation a new token (the old link dies)
// and queues its mail: the rotate step of reminders.go, which automatic
// reminders take too. A resend extends the expiry by the invitation's TTL;
// a reminder keeps it and is allowed once per interval.
// KEYS: invitation hash. Arguments: rotateArgs.
var rotateScript = redisx.NewScript("invites.rotate", redisx.OnShard, reminderSteps+`
local st = current_status(A.id)
if not st then return {'not_found'} end
if st ~= 'pending' then return {'not_pending', inv_flat(A.id)} end
local sealed = ''
if A.send_mail then sealed = A.sealed end
local res, wait = rotate(A.id, A.token_hash, sealed, A.mode, A.remind_interval, A.template)
if res == 'too_soon' then return {'too_soon', wait} end
return {'ok', inv_flat(A.id)}
`)

// rotateArgs are rotateScript's arguments.
type rotateArgs struct {
	redisx.Env
	ID             string `json:"id"`
	TokenHash      string `json:"token_hash"`
	Sealed         string `json:"sealed"`
	Mode           string `json:"mode"`            // resend or remind
	RemindInterval int64  `json:"remind_interval"` // ms
	SendMail       bool   `json:"send_mail"`
	Template       string `json:"template"`
	// Rem is the configured reminder plan (reminders.go).
	Rem orgs.ReminderPlan `json:"rem"`
}

// deliveryScript records the outcome of a mail, unless the token was
// rotated since (a newer mail is under way and owns the status). When the
// provider's webhook about this very mail came first (dm is its id and dt
// is set: delivery.go), the webhook's status stays.
// A mail that failed for good is an invitation.delivery_failed event, once.
// KEYS: invitation hash. Arguments: deliveryArgs.
var deliveryScript = redisx.NewScript("invites.delivery", redisx.OnShard, `
upgrade(A.id)
if redis.call('HGET', KEYS[1], 'v') ~= A.version then return {'stale'} end
local attempts = ''
if A.attempts > 0 then attempts = A.attempts end
local cur = redis.call('HMGET', KEYS[1], 'dm', 'dt', 'd', 'o', 'e', 'r')
if A.message_id ~= '' and cur[1] == A.message_id and cur[2] then
  put(KEYS[1], {'dn', attempts})
  return {'ok'}
end
put(KEYS[1], {'d', A.status, 'dn', attempts, 'de', A.error, 'dm', A.message_id, 'dr', A.reason, 'da', NOW, 'dt', ''})
if A.status == 'failed' and cur[3] ~= 'failed' then
  record(cur[4], 'invitation.delivery_failed', {invitation_id = A.id, organization_id = cur[4], email = cur[5], role = cur[6], reason = A.reason})
end
return {'ok'}
`)

// deliveryEventScript records what the mail provider reported about an
// invitation's mail (delivery.go): only for the mail of the invitation's
// current link (its token version, and its message id once the mail job
// stored it), and never going back: a status ranks above another (sent <
// delayed < delivered < bounced < complained) and, within one rank, the
// later event wins; dt holds the time of the event applied. It answers
// the invitation's address, to suppress it.
// KEYS: invitation hash. Arguments: deliveryEventArgs.
var deliveryEventScript = redisx.NewScript("invites.delivery_event", redisx.OnShard, `
upgrade(A.id)
local f = redis.call('HMGET', KEYS[1], 'v', 'dm', 'd', 'dt', 'e')
if not f[1] then return {'not_found', ''} end
local email = f[5] or ''
if f[1] ~= A.version or (f[2] and f[2] ~= A.email_id) then return {'stale', email} end
local RANK = {sent = 1, delayed = 2, delivered = 3, bounced = 4, complained = 5}
if f[4] then
  local cur, new = RANK[f[3]] or 0, RANK[A.status]
  if new < cur or (new == cur and A.at <= tonumber(f[4])) then return {'older', email} end
end
put(KEYS[1], {'d', A.status, 'dm', A.email_id, 'dt', A.at, 'dr', A.reason, 'de', A.error, 'da', NOW})
return {'ok', email}
`)

// deliveryEventArgs are deliveryEventScript's arguments.
type deliveryEventArgs struct {
	redisx.Env
	ID      string `json:"id"`
	Version string `json:"version"` // the token version the mail was sent for
	EmailID string `json:"email_id"`
	Status  string `json:"status"`
	At      int64  `json:"at"` // the event's time (ms)
	Reason  string `json:"reason"`
	Error   string `json:"error"`
}

// deliveryArgs are deliveryScript's arguments.
type deliveryArgs struct {
	redisx.Env
	ID        string `json:"id"`
	Version   string `json:"version"` // the token version, as the hash stores it
	Status    string `json:"status"`
	Attempts  int    `json:"attempts"`
	Error     string `json:"error"`
	MessageID string `json:"message_id"`
	Reason    string `json:"reason"`
}

// listScript pages through an organization's invitations. It first ends
// the shard's invitations that are past their expiry (up to 1,000: what
// the sweeper has not reached yet), so the status filter and the total
// are exact. Pages start after the cursor's id in each status set (by
// lexical range, never an offset), so a page costs the same at any depth.
// KEYS: org hash. Arguments: listArgs.
var listScript = redisx.NewScript("invites.list", redisx.OnShard, `
local org = A.org
if redis.call('EXISTS', KEYS[1]) == 0 then return {'org_not_found'} end
for _, id in ipairs(redis.call('ZRANGE', k_due(), '-inf', NOW, 'BYSCORE', 'LIMIT', 0, 1000)) do
  current_status(id)
end
local status, email, start, limit = A.status, A.email, A.start, A.limit
local ids, total = {}, 0
-- delivery_ok applies the delivery filter (d; the first layout's name
-- before an upgrade).
local function delivery_ok(id)
  if A.delivery == '' then return true end
  local d = redis.call('HMGET', k_inv(id), 'd', 'delivery')
  return (d[1] or d[2]) == A.delivery
end
local after = ''
if start ~= '-' then after = string.sub(start, 2) end
if email ~= '' then
  -- The address' invitations: its pending one, its ended ones, and those
  -- of the first layout's address set not upgraded yet.
  local all, seen = {}, {}
  local function add(id)
    if id and not seen[id] then
      seen[id] = true
      all[#all + 1] = id
    end
  end
  add(redis.call('HGET', k_org_inv_email(org), email))
  for id in string.gmatch(redis.call('HGET', k_org_inv_ended(org), email) or '', '%S+') do add(id) end
  for _, id in ipairs(redis.call('SMEMBERS', k_org_inv_addr(org, email))) do add(id) end
  table.sort(all)
  for _, id in ipairs(all) do
    local st = current_status(id)
    if st == 'accepting' then st = 'pending' end
    if st and (status == 'all' or st == status) and delivery_ok(id) then
      total = total + 1
      if id > after and #ids < limit then table.insert(ids, id) end
    end
  end
else
  -- Each status set is in creation order; 'all' merges the four pages.
  local sets = {status}
  if status == 'all' then sets = {'pending', 'accepted', 'revoked', 'expired'} end
  if A.delivery ~= '' then
    -- Filtered by delivery: every id of the sets is read (one
    -- organization's, in one script), so the total is exact.
    local set = sets
    sets = {}
    for _, st in ipairs(set) do
      for _, id in ipairs(redis.call('ZRANGE', k_org_inv_status(org, st), '-', '+', 'BYLEX')) do
        if delivery_ok(id) then
          total = total + 1
          if id > after then ids[#ids + 1] = id end
        end
      end
    end
    table.sort(ids)
    for i = #ids, limit + 1, -1 do ids[i] = nil end
  end
  for _, st in ipairs(sets) do
    local set = k_org_inv_status(org, st)
    total = total + redis.call('ZCARD', set)
    for _, id in ipairs(redis.call('ZRANGE', set, start, '+', 'BYLEX', 'LIMIT', 0, limit)) do ids[#ids + 1] = id end
  end
  if #sets > 1 then
    table.sort(ids)
    for i = #ids, limit + 1, -1 do ids[i] = nil end
  end
end
local out = {'ok', total}
for _, id in ipairs(ids) do
  local h = inv_flat(id)
  if h then table.insert(out, h) end
end
return out
`)

// listArgs are listScript's arguments.
type listArgs struct {
	redisx.Env
	Org    string `json:"org"`
	Status string `json:"status"` // pending, accepted, revoked, expired or all
	Email  string `json:"email"`  // or empty
	Start  string `json:"start"`  // lexical start: "-" or "(<id>"
	Limit  int    `json:"limit"`  // one more than the page
	// Delivery keeps the invitations whose delivery status it is (empty:
	// all).
	Delivery string `json:"delivery"`
}

// sweepScript ends the shard's invitations that are past their expiry and
// purges ended ones past their retention.
// KEYS: the shard's due set. Arguments: sweepArgs.
var sweepScript = redisx.NewScript("invites.sweep", redisx.OnShard, `
local n = A.batch
local expired, purged = 0, 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], '-inf', NOW, 'BYSCORE', 'LIMIT', 0, n)) do
  local st = current_status(id)
  if st == 'expired' then expired = expired + 1 end
  -- end_invitation already left the set; drop what is not pending any more
  if st ~= 'pending' then redis.call('ZREM', KEYS[1], id) end
end
-- A claim whose process died mid-acceptance: the link works again.
for _, id in ipairs(redis.call('ZRANGE', k_claims(), '-inf', NOW, 'BYSCORE', 'LIMIT', 0, n)) do
  release_claim(id)
end
for _, id in ipairs(redis.call('ZRANGE', k_purge(), '-inf', NOW, 'BYSCORE', 'LIMIT', 0, n)) do
  upgrade(id)
  local ik = k_inv(id)
  local f = redis.call('HMGET', ik, 'o', 'e', 's')
  if f[1] then
    redis.call('ZREM', k_org_inv_status(f[1], f[3]), id)
    drop_ended(f[1], f[2], id)
    forget_tokens(ik)
    redis.call('DEL', ik)
    purged = purged + 1
  end
  redis.call('ZREM', k_purge(), id)
end
return {'ok', expired, purged}
`)

// sweepArgs are sweepScript's arguments.
type sweepArgs struct {
	redisx.Env
	Batch int `json:"batch"`
}

// readWithOrgScript reads an invitation and its organization in one round
// trip, for the mail worker and the pages (it writes only to upgrade a
// record of the first layout).
// KEYS: invitation hash. Arguments: invitationArgs.
var readWithOrgScript = redisx.NewScript("invites.read_with_org", redisx.OnShard, `
local h = inv_flat(A.id)
if not h then return {'not_found'} end
return {'ok', h, flat(k_org(redis.call('HGET', KEYS[1], 'o'))) or {}}
`)
