package redisx

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// luaPrelude is prepended to every script of orgs and invites. It mirrors
// the key layout in keys.go and holds the steps several scripts share, so an
// invitation ends the same way whether it is revoked, expires, is accepted
// or its organization is deleted.
//
// Calling convention: ARGV[1] is the shard prefix "P{s}:", ARGV[2] the
// current time in unix ms, ARGV[3] the retention of ended invitations in ms;
// script arguments start at ARGV[4]. KEYS[1] is a key of the same shard, so
// that Redis Cluster routes the script there. Keys built from ARGV[1] share
// KEYS[1]'s hash tag and therefore its slot.
const luaPrelude = `
local P = ARGV[1]
local NOW = tonumber(ARGV[2])
local RETENTION = tonumber(ARGV[3])

local function k_org(org) return P .. 'org:' .. org end
local function k_inv(id) return P .. 'inv:' .. id end
local function k_tok(hash) return P .. 'tok:' .. hash end

local function enqueue(job)
  job['at'] = NOW
  redis.call('XADD', P .. 'outbox', '*', 'job', cjson.encode(job))
end

-- flat returns a hash as a flat array, or false when it does not exist.
local function flat(key)
  local h = redis.call('HGETALL', key)
  if #h == 0 then return false end
  return h
end

-- end_invitation moves a pending invitation to a final status.
local function end_invitation(id, status, by)
  local ik = k_inv(id)
  local f = redis.call('HMGET', ik, 'org', 'email', 'token_hash')
  local ok = k_org(f[1])
  redis.call('HSET', ik, 'status', status, 'ended_at', NOW, 'updated_at', NOW)
  if by and by ~= '' then redis.call('HSET', ik, 'accepted_by', by) end
  if f[3] then redis.call('DEL', k_tok(f[3])) end
  redis.call('ZREM', ok .. ':inv:st:pending', id)
  redis.call('ZADD', ok .. ':inv:st:' .. status, 0, id)
  redis.call('ZREM', ok .. ':inv:pending', id)
  if redis.call('HGET', ok .. ':inv:email', f[2]) == id then
    redis.call('HDEL', ok .. ':inv:email', f[2])
  end
  redis.call('ZREM', P .. 'due', id)
  -- Always scheduled: a retention of 0 purges at the next sweep, so no
  -- ended invitation is kept for ever.
  redis.call('ZADD', P .. 'purge', NOW + RETENTION, id)
  redis.call('HINCRBY', P .. 'stats', status, 1)
  enqueue({k = 'invitation.sync', r = id})
end

-- current_status reads an invitation's status, ending it first when it is
-- pending past its expiry; false when it does not exist.
local function current_status(id)
  local f = redis.call('HMGET', k_inv(id), 'status', 'expires_at')
  if not f[1] then return false end
  if f[1] == 'pending' and tonumber(f[2]) <= NOW then
    end_invitation(id, 'expired')
    return 'expired'
  end
  return f[1]
end

-- remember_token keeps, past the token's life, which invitation it was
-- for: a dead link then explains itself (expired, revoked, replaced,
-- accepted) instead of looking forged. It never makes a token valid.
-- An invitation keeps such records for two links only: its newest and the
-- one that newest replaced (old is the replaced token's hash, or false);
-- a link older than that reads as unknown (the generic invalid-link page).
-- The sweeper deletes both when it purges the invitation; the TTL, which
-- no record outlives the invitation by, is a backstop.
local function remember_token(hash, id, exp, old)
  local ik = k_inv(id)
  if old then
    local prev = redis.call('HGET', ik, 'prev_token_hash')
    if prev and prev ~= '' and prev ~= hash then redis.call('DEL', P .. 'tokinfo:' .. prev) end
    redis.call('HSET', ik, 'prev_token_hash', old)
  end
  redis.call('SET', P .. 'tokinfo:' .. hash, id, 'PX', math.max(exp - NOW, 0) + RETENTION + 1000)
end

-- forget_tokens deletes an invitation's token records (at purge).
local function forget_tokens(ik)
  local f = redis.call('HMGET', ik, 'token_hash', 'prev_token_hash')
  for _, h in ipairs({f[1], f[2]}) do
    if h and h ~= '' then redis.call('DEL', P .. 'tok:' .. h, P .. 'tokinfo:' .. h) end
  end
end

-- release_claim puts an invitation that was being accepted back to
-- pending, with its link alive again (unless it expired meanwhile).
local function release_claim(id)
  local ik = k_inv(id)
  redis.call('ZREM', P .. 'claims', id)
  if redis.call('HGET', ik, 'status') ~= 'accepting' then return false end
  local f = redis.call('HMGET', ik, 'token_hash', 'expires_at')
  redis.call('HSET', ik, 'status', 'pending', 'claim_until', '', 'updated_at', NOW)
  if tonumber(f[2]) > NOW then
    redis.call('SET', k_tok(f[1]), id, 'PX', tonumber(f[2]) - NOW)
  end
  return true
end

-- add_member writes a membership; the caller checked it does not exist.
local function put_member(org, identity, role, email, joined)
  local ok = k_org(org)
  redis.call('HSET', ok .. ':members', identity,
    cjson.encode({role = role, email = email, joined_at = joined, updated_at = NOW}))
  redis.call('ZADD', ok .. ':member_ids', 0, identity)
  if role == 'owner' then
    redis.call('SADD', ok .. ':owners', identity)
  else
    redis.call('SREM', ok .. ':owners', identity)
  end
  enqueue({k = 'member.sync', r = org, i = identity})
end
`

// Script is a Lua script with the shared prelude.
type Script struct {
	*redis.Script
}

// NewScript prepends the prelude to body.
func NewScript(body string) Script {
	return Script{redis.NewScript(luaPrelude + body)}
}

// Args builds the conventional leading arguments.
func (k Keyspace) Args(shard int, now time.Time, retention time.Duration, rest ...any) []any {
	args := make([]any, 0, 3+len(rest))
	args = append(args, k.Shard(shard), now.UnixMilli(), retention.Milliseconds())
	return append(args, rest...)
}

// Reply is a script's answer: an outcome word followed by values.
type Reply struct {
	Outcome string
	Values  []any
}

// Run executes the script and splits its reply.
func (s Script) Run(ctx context.Context, c redis.Scripter, keys []string, args ...any) (Reply, error) {
	res, err := s.Script.Run(ctx, c, keys, args...).Slice()
	if err != nil {
		return Reply{}, err
	}
	if len(res) == 0 {
		return Reply{}, errors.New("redisx: empty script reply")
	}
	outcome, _ := res[0].(string)
	return Reply{Outcome: outcome, Values: res[1:]}, nil
}

// Hash turns a flat HGETALL-style array into a map.
func Hash(v any) map[string]string {
	arr, ok := v.([]any)
	if !ok {
		return nil
	}
	m := make(map[string]string, len(arr)/2)
	for i := 0; i+1 < len(arr); i += 2 {
		k, _ := arr[i].(string)
		m[k] = toString(arr[i+1])
	}
	return m
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case nil:
		return ""
	default:
		return ""
	}
}

// Int reads an integer reply value.
func Int(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

// Str reads a string reply value.
func Str(v any) string { return toString(v) }

// MsTime reads a unix-ms field; zero for empty.
func MsTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}
