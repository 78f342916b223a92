package outbox

import "github.com/redis/go-redis/v9"

// Each script touches the keys of one shard only.

// ackScript acknowledges and deletes a finished entry, so the stream holds
// only work in progress (and sealed tokens do not linger).
// KEYS: stream. ARGV: group, entry id.
var ackScript = redis.NewScript(`
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
`)

// delayScript replaces an entry by a delayed retry, atomically. It does
// nothing (returns 0) when the entry is no longer pending: another worker
// took it over while this one was presumed dead, and owns its outcome.
// KEYS: stream, delayed. ARGV: group, entry id, job JSON, due (unix ms).
var delayScript = redis.NewScript(`
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
return 1
`)

// deadScript moves an entry to the dead-letter stream, atomically; like
// delayScript it leaves an entry another worker took over alone.
// KEYS: stream, dead. ARGV: group, entry id, job JSON.
var deadScript = redis.NewScript(`
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 10000, '*', 'job', ARGV[3])
return 1
`)

// promoteScript moves due retries back into the stream.
// KEYS: delayed, stream. ARGV: now (unix ms), limit.
var promoteScript = redis.NewScript(`
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
for _, job in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'job', job)
  redis.call('ZREM', KEYS[1], job)
end
return #due
`)
