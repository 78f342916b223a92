package invites

import (
	"context"
	"strconv"
	"time"

	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/redisx"
	"github.com/kratos-orgs/kratos-orgs/tokens"
)

// Automatic reminders (README "Automatic reminders").
//
// A plan lists offsets after an invitation was created ("a<ms>") and
// before it expires ("b<ms>"); the organization's own plan (its reminders
// field) wins over the configured one. Each offset that falls between the
// invitation's creation and its expiry is a point in time; a pending
// invitation's earliest point not done yet is its next reminder: its rn
// field and its score in the shard's remind set (redisx key Remind).
// Writing an invitation schedules it; ending one removes it from the set
// (the prelude's end_invitation).
//
// The sweep (remindScript) takes what is due in a shard, and for each
// invitation decides and enqueues in one script on the shard's slot: the
// reminder goes through rotate, the step manual reminders take (a new
// link, the expiry kept, the reminder mail queued in the outbox, refused
// within invitations.remind_interval of the last reminder), and the points
// due by then are marked done in the same step. Two replicas sweeping at
// once, or a restart between the decision and the mail, cannot send an
// offset twice: the decision and the outbox entry are one write, and the
// mail job's idempotency key is the link's version. A reminder inside the
// interval is deferred (rescheduled to its end), never dropped; one waiting
// for the mail budget waits in the outbox like any mail.
//
// An invitation whose link the caller delivers itself (send_email=false)
// gets no automatic reminder: a new link would kill the one they hold.

// reminderSteps extend the shard prelude for the scripts that write an
// invitation's schedule (create, rotate, remind). They read the configured
// plan from the script's argument rem (orgs.ReminderPlan).
const reminderSteps = `
local function offsets(list)
  if type(list) == 'table' then return list end
  return {}
end

-- reminder_points lists an invitation's reminder times as {label, ms}: each
-- offset of its organization's plan, else the configured one, that falls
-- between its creation and its expiry.
local function reminder_points(org, created, expires)
  local own = redis.call('HGET', k_org(org), 'reminders')
  local plan = A.rem or {}
  if own then plan = cjson.decode(own) end
  local pts = {}
  for _, ms in ipairs(offsets(plan.a)) do
    if created + ms < expires then pts[#pts + 1] = {'a' .. ms, created + ms} end
  end
  for _, ms in ipairs(offsets(plan.b)) do
    if expires - ms > created then pts[#pts + 1] = {'b' .. ms, expires - ms} end
  end
  return pts
end

local function reminded(done, label)
  return string.find(' ' .. (done or '') .. ' ', ' ' .. label .. ' ', 1, true) ~= nil
end

-- due_points lists the labels of an invitation's points due by now and not
-- done yet, and the labels already done.
local function due_points(id)
  local f = redis.call('HMGET', k_inv(id), 'o', 'c', 'x', 'rd')
  local due = {}
  for _, p in ipairs(reminder_points(f[1], tonumber(f[2]), tonumber(f[3]))) do
    if p[2] <= NOW and not reminded(f[4], p[1]) then due[#due + 1] = p[1] end
  end
  return due, f[4]
end

-- mark_reminded records the points due by now as done: one reminder mail
-- stands for all of them, manual or automatic.
local function mark_reminded(id)
  local due, done = due_points(id)
  if #due == 0 then return end
  if done then table.insert(due, 1, done) end
  redis.call('HSET', k_inv(id), 'rd', table.concat(due, ' '))
end

-- schedule_reminder sets a pending invitation's next automatic reminder
-- (its rn field and the shard's remind set) to its earliest point not done,
-- not before at (ms, optional); or clears both when there is none (a
-- registration, a link the caller delivers, no point left before expiry).
local function schedule_reminder(id, at)
  local ik = k_inv(id)
  local f = redis.call('HMGET', ik, 'o', 's', 'k', 'c', 'x', 'd', 'rd')
  local nxt = false
  if f[2] == 'pending' and not f[3] and f[6] ~= 'skipped' then
    for _, p in ipairs(reminder_points(f[1], tonumber(f[4]), tonumber(f[5]))) do
      if not reminded(f[7], p[1]) and (not nxt or p[2] < nxt) then nxt = p[2] end
    end
  end
  if nxt and at and nxt < at then nxt = at end
  if nxt and nxt < tonumber(f[5]) then
    redis.call('ZADD', k_remind(), nxt, id)
    redis.call('HSET', ik, 'rn', nxt)
  else
    redis.call('ZREM', k_remind(), id)
    redis.call('HDEL', ik, 'rn')
  end
end

-- rotate gives pending invitation id a new link (token hash th; the old
-- link dies) and queues its mail when sealed is not empty. A reminder
-- (mode remind, manual or automatic) keeps the expiry, counts in rs, marks
-- the points due by now done, and is refused within interval ms of the
-- last one ('too_soon', ms to wait); a resend extends the expiry by the
-- invitation's TTL.
local function rotate(id, th, sealed, mode, interval, template)
  local ik = k_inv(id)
  local f = redis.call('HMGET', ik, 't', 'v', 'x', 'l', 're', 'rs')
  local exp = tonumber(f[3])
  if mode == 'remind' then
    local next_at = tonumber(f[5] or 0) + interval
    if f[5] and next_at > NOW then return 'too_soon', next_at - NOW end
    redis.call('HSET', ik, 're', NOW, 'rs', tonumber(f[6] or 0) + 1)
    mark_reminded(id)
  else
    exp = NOW + tonumber(f[4])
  end
  local ver = tonumber(f[2]) + 1
  local delivery = 'skipped'
  if sealed ~= '' then delivery = 'queued' end
  put(ik, {'t', tok_field(th), 'v', ver, 'x', exp, 'u', NOW, 'd', delivery, 'dn', '', 'de', '', 'dm', '', 'dr', '', 'dt', '', 'da', NOW})
  index_token(th, id, f[1])
  redis.call('ZADD', k_due(), exp, id)
  local g = redis.call('HMGET', ik, 'o', 'e', 'r')
  local ev = 'invitation.resent'
  if mode == 'remind' then ev = 'invitation.reminded' end
  record(g[1], ev, {invitation_id = id, organization_id = g[1], email = g[2], role = g[3], expires_at = exp})
  if sealed ~= '' then enqueue({k = 'mail', r = id, v = ver, t = template, s = sealed}) end
  enqueue({k = 'invitation.sync', r = id})
  schedule_reminder(id)
  return 'ok'
end
`

// remindScript sends the shard's due automatic reminders: up to one per
// fresh link in tokens, each decided and enqueued here, atomically.
// KEYS: the shard's remind set. Arguments: remindArgs.
var remindScript = redisx.NewScript("invites.remind_due", redisx.OnShard, reminderSteps+`
local sent, deferred = 0, 0
local due = redis.call('ZRANGE', KEYS[1], '-inf', NOW, 'BYSCORE', 'LIMIT', 0, #A.tokens)
for i, id in ipairs(due) do
  local st = current_status(id)
  if st == 'accepting' then
    -- Decided once the acceptance ends: accepted (removed) or released.
    local cu = tonumber(redis.call('HGET', k_inv(id), 'cu') or '0')
    redis.call('ZADD', KEYS[1], math.max(cu, NOW + 1000), id)
  elseif st ~= 'pending' then
    redis.call('ZREM', KEYS[1], id)
  elseif #due_points(id) == 0 then
    -- The plan changed since it was scheduled: schedule it anew.
    schedule_reminder(id)
  else
    local res, wait = rotate(id, A.tokens[i].h, A.tokens[i].s, 'remind', A.interval, 'reminder')
    if res == 'too_soon' then
      -- Within the reminder quota: retried when it allows, not dropped.
      schedule_reminder(id, NOW + wait)
      deferred = deferred + 1
    else
      sent = sent + 1
    end
  end
end
return {'ok', sent, deferred}
`)

// reminderLink is a fresh link for one automatic reminder: its token's
// hash, and the token sealed for the mail job.
type reminderLink struct {
	Hash   string `json:"h"`
	Sealed string `json:"s"`
}

// remindArgs are remindScript's arguments.
type remindArgs struct {
	redisx.Env
	Rem      orgs.ReminderPlan `json:"rem"`
	Interval int64             `json:"interval"` // invitations.remind_interval, ms
	Tokens   []reminderLink    `json:"tokens"`
}

// SetReminders sets the configured reminder plan (invitations.reminders);
// call it before use. Without it no invitation gets automatic reminders
// unless its organization has its own plan.
func (s *Store) SetReminders(r orgs.Reminders) { s.plan = r.ScriptPlan() }

// reminderPlan is the configured plan as scripts read it.
func (s *Store) reminderPlan() orgs.ReminderPlan {
	if s.plan.AfterSent == nil {
		return orgs.Reminders{}.ScriptPlan()
	}
	return s.plan
}

// dueReminders counts shard's invitations whose reminder is due, up to max.
func (s *Store) dueReminders(ctx context.Context, shard, max int, now time.Time) (int, error) {
	n, err := s.rdb.ZCount(ctx, s.ks.Remind(shard), "-inf", strconv.FormatInt(now.UnixMilli(), 10)).Result()
	if err != nil {
		return 0, storeErr(err)
	}
	return int(min(n, int64(max))), nil
}

// remindDue runs remindScript on shard with links (one per reminder it may
// send).
func (s *Store) remindDue(ctx context.Context, shard int, links []reminderLink, interval time.Duration, now time.Time) (sent, deferred int, err error) {
	rep, err := remindScript.Run(ctx, s.rdb, []string{s.ks.Remind(shard)}, &remindArgs{
		Env: s.env(shard, now), Rem: s.reminderPlan(), Interval: interval.Milliseconds(), Tokens: links,
	})
	if err != nil {
		return 0, 0, storeErr(err)
	}
	return int(redisx.Int(rep.Values[0])), int(redisx.Int(rep.Values[1])), nil
}

// SendDueReminders sends every due automatic reminder, batch per script
// run: O(due) work, nothing for a shard with none. It returns how many
// reminders it queued and how many the reminder quota deferred.
func (s *Service) SendDueReminders(ctx context.Context, batch int) (sent, deferred int, err error) {
	now := s.now()
	for shard := 0; shard < redisx.Shards; shard++ {
		// Every reminder handled leaves the due range (sent, deferred or
		// dropped), so a shard takes due/batch rounds; the bound is a guard.
		for round := 0; round < 1000; round++ {
			n, err := s.store.dueReminders(ctx, shard, batch, now)
			if err != nil || n == 0 {
				if err != nil {
					return sent, deferred, err
				}
				break
			}
			links := make([]reminderLink, n)
			for i := range links {
				token, hash := tokens.New(shard)
				links[i] = reminderLink{Hash: hash, Sealed: s.sealer.Seal(token, sealContext)}
			}
			sn, df, err := s.store.remindDue(ctx, shard, links, s.cfg.RemindInterval, now)
			if err != nil {
				return sent, deferred, err
			}
			sent, deferred = sent+sn, deferred+df
			if n < batch {
				break
			}
		}
	}
	if sent > 0 {
		s.wake()
	}
	return sent, deferred, nil
}
