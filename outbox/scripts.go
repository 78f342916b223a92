package outbox

import "github.com/kratos-orgs/kratos-orgs/redisx"

// Each script touches the keys of one shard only.

// ackScript acknowledges and deletes finished entries of one stream (a
// round's, together), so the stream holds only work in progress (and
// sealed tokens do not linger).
// KEYS: stream. Arguments: ackArgs (group, ids).
var ackScript = redisx.NewScript("outbox.ack", redisx.Standalone, `
redis.call('XACK', KEYS[1], A.group, unpack(A.ids))
redis.call('XDEL', KEYS[1], unpack(A.ids))
return 1
`)

// ackArgs name finished entries of a consumer group.
type ackArgs struct {
	Group string   `json:"group"`
	IDs   []string `json:"ids"`
}

// delayScript replaces an entry by a delayed retry, atomically. It does
// nothing (returns 0) when the entry is no longer pending: another worker
// took it over while this one was presumed dead, and owns its outcome.
// KEYS: stream, delayed. Arguments: entryArgs (group, id, job, due).
var delayScript = redisx.NewScript("outbox.delay", redisx.Standalone, `
if redis.call('XACK', KEYS[1], A.group, A.id) == 0 then return 0 end
redis.call('XDEL', KEYS[1], A.id)
redis.call('ZADD', KEYS[2], A.due, A.job)
return 1
`)

// deadScript moves an entry to the dead-letter stream, atomically; like
// delayScript it leaves an entry another worker took over alone.
// KEYS: stream, dead. Arguments: entryArgs (group, id, job).
var deadScript = redisx.NewScript("outbox.dead", redisx.Standalone, `
if redis.call('XACK', KEYS[1], A.group, A.id) == 0 then return 0 end
redis.call('XDEL', KEYS[1], A.id)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 10000, '*', 'job', A.job)
return 1
`)

// entryArgs name a stream entry of a consumer group, and what becomes of
// it.
type entryArgs struct {
	Group string `json:"group"`
	ID    string `json:"id"`
	Job   string `json:"job,omitempty"` // the job's JSON, re-encoded
	Due   int64  `json:"due,omitempty"` // unix ms
}

// promoteScript moves due retries back into the stream (at most limit)
// and answers {promoted, the next due time (unix ms) or -1 when none is
// left}. When nothing is due it costs one command.
// KEYS: delayed, stream. Arguments: now (unix ms), limit.
var promoteScript = redisx.NewScript("outbox.promote", redisx.Standalone, `
local n = 0
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] and tonumber(first[2]) <= A.now then
  local due = redis.call('ZRANGE', KEYS[1], '-inf', A.now, 'BYSCORE', 'LIMIT', 0, A.limit)
  for _, job in ipairs(due) do
    redis.call('XADD', KEYS[2], '*', 'job', job)
    redis.call('ZREM', KEYS[1], job)
  end
  n = #due
  first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
end
if first[2] then return {n, tonumber(first[2])} end
return {n, -1}
`)

// promoteArgs are promoteScript's arguments.
type promoteArgs struct {
	Now   int64 `json:"now"`
	Limit int   `json:"limit"`
}
