package redisx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// shardSteps is the part of the prelude that scripts on an organization's
// shard share: the steps several scripts take, so an invitation ends the
// same way whether it is revoked, expires, is accepted or its organization
// is deleted. Key names come only from the k_* functions, which
// luaKeyFunctions renders from the templates in layout.go.
const shardSteps = `
local function enqueue(job)
  job['at'] = NOW
  redis.call('XADD', k_outbox(), '*', 'job', cjson.encode(job))
end

-- flat returns a hash as a flat array, or false when it does not exist.
local function flat(key)
  local h = redis.call('HGETALL', key)
  if #h == 0 then return false end
  return h
end

-- tok_field is a token hash's first 128 bits: its field in the shard's
-- token index, and what a record keeps (the first layout kept it all).
local function tok_field(th) return string.sub(th, 1, 32) end

-- same_token reports whether a record's stored token is hash th.
local function same_token(stored, th)
  return stored and (stored == th or stored == tok_field(th))
end

-- add_ended and drop_ended keep an organization's ended invitation ids
-- per address (a space-separated list: an address has few).
local function add_ended(org, email, id)
  local k = k_org_inv_ended(org)
  local cur = redis.call('HGET', k, email)
  if not cur then
    redis.call('HSET', k, email, id)
  elseif not string.find(' ' .. cur .. ' ', ' ' .. id .. ' ', 1, true) then
    redis.call('HSET', k, email, cur .. ' ' .. id)
  end
end

local function drop_ended(org, email, id)
  local k = k_org_inv_ended(org)
  local cur = redis.call('HGET', k, email)
  if not cur then return end
  local rest = {}
  for x in string.gmatch(cur, '%S+') do
    if x ~= id then rest[#rest + 1] = x end
  end
  if #rest == 0 then
    redis.call('HDEL', k, email)
  else
    redis.call('HSET', k, email, table.concat(rest, ' '))
  end
end

-- upgrade rewrites an invitation the first layout wrote (long field names,
-- a key per token, a set per address, the ids and pending sets) into this
-- one; a no-op for any other record. Every step below calls it before it
-- reads a record, so script bodies only ever see today's layout.
local function upgrade(id)
  local ik = k_inv(id)
  if redis.call('HEXISTS', ik, 'status') == 0 then return end
  local old = redis.call('HGETALL', ik)
  local f, new = {}, {}
  for i = 1, #old, 2 do
    local name, v = old[i], old[i + 1]
    f[name] = v
    if LEGACY[name] then name = LEGACY[name] end
    if name ~= '' and v ~= '' then
      new[#new + 1] = name
      new[#new + 1] = v
    end
  end
  redis.call('DEL', ik)
  redis.call('HSET', ik, unpack(new))
  for _, h in ipairs({f['token_hash'], f['prev_token_hash']}) do
    if h and h ~= '' then
      redis.call('HSET', k_tokens(), tok_field(h), id)
      redis.call('DEL', k_tok(h), k_tokinfo(h))
    end
  end
  local org, email = f['org'], f['email']
  redis.call('ZREM', k_org_inv_ids(org), id)
  redis.call('ZREM', k_org_inv_pending(org), id)
  redis.call('SREM', k_org_inv_addr(org, email), id)
  if f['status'] ~= 'pending' and f['status'] ~= 'accepting' then add_ended(org, email, id) end
end

-- inv_flat returns an invitation as a flat array with its id, or false.
local function inv_flat(id)
  upgrade(id)
  local h = redis.call('HGETALL', k_inv(id))
  if #h == 0 then return false end
  h[#h + 1] = 'id'
  h[#h + 1] = id
  return h
end

-- put sets an invitation's fields from a flat list of names and values;
-- an empty value deletes its field (absent reads as empty).
local function put(ik, list)
  local set, del = {}, {}
  for i = 1, #list, 2 do
    local v = list[i + 1]
    if v == nil or v == '' then
      del[#del + 1] = list[i]
    else
      set[#set + 1] = list[i]
      set[#set + 1] = v
    end
  end
  if #set > 0 then redis.call('HSET', ik, unpack(set)) end
  if #del > 0 then redis.call('HDEL', ik, unpack(del)) end
end

-- end_invitation moves a pending invitation to a final status.
local function end_invitation(id, status, by)
  upgrade(id)
  local ik = k_inv(id)
  local f = redis.call('HMGET', ik, 'o', 'e', 'r', 'k')
  local org = f[1]
  local who = nil
  if status == 'expired' then who = {type = 'system'} end
  record(org, 'invitation.' .. status, {invitation_id = id, organization_id = org, email = f[2], role = f[3],
    kind = f[4] or 'invitation', identity_id = by}, who)
  redis.call('HSET', ik, 's', status, 'n', NOW, 'u', NOW)
  if by and by ~= '' then redis.call('HSET', ik, 'ab', by) end
  redis.call('ZREM', k_org_inv_status(org, 'pending'), id)
  redis.call('ZADD', k_org_inv_status(org, status), 0, id)
  if redis.call('HGET', k_org_inv_email(org), f[2]) == id then
    redis.call('HDEL', k_org_inv_email(org), f[2])
  end
  add_ended(org, f[2], id)
  redis.call('ZREM', k_due(), id)
  redis.call('ZREM', k_remind(), id)
  redis.call('HDEL', ik, 'rn')
  -- Always scheduled: a retention of 0 purges at the next sweep, so no
  -- ended invitation is kept for ever.
  redis.call('ZADD', k_purge(), NOW + RETENTION, id)
  redis.call('HINCRBY', k_stats(), status, 1)
  enqueue({k = 'invitation.sync', r = id})
end

-- current_status reads an invitation's status, ending it first when it is
-- pending past its expiry; false when it does not exist.
local function current_status(id)
  upgrade(id)
  local f = redis.call('HMGET', k_inv(id), 's', 'x')
  if not f[1] then return false end
  if f[1] == 'pending' and tonumber(f[2]) <= NOW then
    end_invitation(id, 'expired')
    return 'expired'
  end
  return f[1]
end

-- index_token records a new link of an invitation in the shard's token
-- index (old is the hash of the link it replaces, or false). A link is
-- live while the record's t is its hash and the invitation is pending and
-- unexpired; past that, the index still says which invitation it was for,
-- so a dead link explains itself (expired, revoked, replaced, accepted)
-- instead of looking forged. An invitation keeps two links in the index:
-- its newest and the one that newest replaced; an older link reads as
-- unknown (the generic invalid-link page). The purge removes both.
local function index_token(th, id, old)
  local ik = k_inv(id)
  if old then
    local prev = redis.call('HGET', ik, 'pt')
    if prev and not same_token(prev, th) then redis.call('HDEL', k_tokens(), tok_field(prev)) end
    redis.call('HSET', ik, 'pt', old)
  end
  redis.call('HSET', k_tokens(), tok_field(th), id)
end

-- token_invitation finds the invitation of a token hash (the index, then
-- the first layout's keys), or false.
local function token_invitation(th)
  local id = redis.call('HGET', k_tokens(), tok_field(th))
  if id then return id end
  return redis.call('GET', k_tok(th)) or redis.call('GET', k_tokinfo(th))
end

-- forget_tokens removes an invitation's links from the index (at purge).
local function forget_tokens(ik)
  local f = redis.call('HMGET', ik, 't', 'pt')
  for _, h in ipairs({f[1], f[2]}) do
    if h then redis.call('HDEL', k_tokens(), tok_field(h)) end
  end
end

-- release_claim puts an invitation that was being accepted back to
-- pending: its link works again (unless it expired meanwhile). For an
-- invitation to a placeholder, the acceptance may have written the
-- organization's claim with the activation before it failed: a claims.sync
-- job puts the identity's claims back to its memberships.
local function release_claim(id)
  upgrade(id)
  local ik = k_inv(id)
  redis.call('ZREM', k_claims(), id)
  if redis.call('HGET', ik, 's') ~= 'accepting' then return false end
  redis.call('HSET', ik, 's', 'pending', 'u', NOW)
  redis.call('HDEL', ik, 'cu')
  local f = redis.call('HMGET', ik, 'kc', 'ki')
  if f[1] == '1' and f[2] then enqueue({k = 'claims.sync', r = id, i = f[2]}) end
  return true
end

-- activate makes a registration's pending organization active.
local function activate(org)
  local ok = k_org(org)
  if redis.call('HGET', ok, 'state') == 'active' then return end
  redis.call('HSET', ok, 'state', 'active', 'updated_at', NOW)
  local o = redis.call('HMGET', ok, 'slug', 'name')
  record(org, 'organization.activated', {organization_id = org, slug = o[1], name = o[2], state = 'active'})
end

-- put_member writes a membership, new or with a new role, and records
-- which. claims (may be nil) is the digest of the claims an acceptance
-- wrote to Kratos already: its member.sync job carries it (outbox.Job).
local function put_member(org, identity, role, email, joined, claims)
  local prev = redis.call('HGET', k_org_members(org), identity)
  local data = {organization_id = org, identity_id = identity, email = email, role = role}
  if prev then
    data.previous_role = cjson.decode(prev).role
    record(org, 'membership.role_changed', data)
  else
    record(org, 'membership.created', data)
  end
  redis.call('HSET', k_org_members(org), identity,
    cjson.encode({role = role, email = email, joined_at = joined, updated_at = NOW}))
  redis.call('ZADD', k_org_member_ids(org), 0, identity)
  if role == 'owner' then
    redis.call('SADD', k_org_owners(org), identity)
  else
    redis.call('SREM', k_org_owners(org), identity)
  end
  enqueue({k = 'member.sync', r = org, i = identity, c = claims})
end
`

// Prelude chooses what NewScript puts before a script's body.
type Prelude int

const (
	// Standalone scripts get their arguments only: A, the decoded table.
	// Their keys all come in KEYS.
	Standalone Prelude = iota
	// OnShard scripts run on an organization's shard (KEYS[1] is a key of
	// it, so Redis Cluster routes them there). Their arguments embed Env;
	// the prelude adds P (the shard prefix), NOW, RETENTION, the k_* key
	// functions and the shared steps above.
	OnShard
)

// argsPrelude is the calling convention of every script: ARGV[1] is one
// JSON object of named arguments; nothing else is in ARGV.
const argsPrelude = "local A = cjson.decode(ARGV[1])\n"

// shardPrelude is built once, from the key templates.
var shardPrelude = argsPrelude +
	"local P, NOW, RETENTION = A.p, tonumber(A.now), tonumber(A.retention)\n" +
	luaKeyFunctions() + luaLegacyFields() + recordSteps + shardSteps + seatSteps

func (p Prelude) source() string {
	if p == OnShard {
		return shardPrelude
	}
	return argsPrelude
}

// Env is the part of an OnShard script's arguments the prelude reads.
// Embed it in the script's argument struct and pass that by pointer; its
// JSON names (p, now, retention, rec, actor) are reserved.
type Env struct {
	P         string    `json:"p"`
	Now       int64     `json:"now"`
	Retention int64     `json:"retention"`
	Rec       recordEnv `json:"rec"` // the keyspace's RecordOptions (record.go)
	// Actor is who the change is by; nil: Eval sets the context's
	// (ActorOf).
	Actor *Actor `json:"actor,omitempty"`
}

// Env builds the prelude's arguments for a script on shard s.
func (k Keyspace) Env(shard int, now time.Time, retention time.Duration) Env {
	return Env{P: k.Shard(shard), Now: now.UnixMilli(), Retention: retention.Milliseconds(), Rec: k.Record.env()}
}

// Script is a Lua script built by NewScript: a name, a prelude and a body.
type Script struct {
	name    string
	prelude Prelude
	body    string
	lua     *redis.Script
}

var (
	registryMu sync.Mutex
	registry   = map[string]*Script{}
)

// NewScript is the one way kratos-orgs builds a Lua script: it prepends
// the prelude to body and records the script under name (unique; by
// convention "package.what") in Scripts.
func NewScript(name string, prelude Prelude, body string) *Script {
	s := &Script{name: name, prelude: prelude, body: body, lua: redis.NewScript(prelude.source() + body)}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup || name == "" {
		panic("redisx: script name " + strconv.Quote(name) + " is empty or taken")
	}
	registry[name] = s
	return s
}

// Scripts lists every script built so far (every package's scripts once
// it is imported), ordered by name: a test can load or run them all, on
// every deployment kind.
func Scripts() []*Script {
	registryMu.Lock()
	defer registryMu.Unlock()
	out := make([]*Script, 0, len(registry))
	for _, s := range registry {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// Hash is the script's SHA1 digest, as EVALSHA and MONITOR name it.
func (s *Script) Hash() string { return s.lua.Hash() }

// Name is the script's registered name.
func (s *Script) Name() string { return s.name }

// Body is the script's own source, without the prelude.
func (s *Script) Body() string { return s.body }

// Prelude is the prelude the script was built with.
func (s *Script) Prelude() Prelude { return s.prelude }

// Load loads the script into Redis (compiling it there).
func (s *Script) Load(ctx context.Context, c redis.Scripter) error {
	return s.lua.Load(ctx, c).Err()
}

// Eval runs the script with args (a struct or map, JSON-encoded as
// ARGV[1]; nil is an empty table) and returns the raw reply.
func (s *Script) Eval(ctx context.Context, c redis.Scripter, keys []string, args any) *redis.Cmd {
	arg, err := s.args(ctx, args)
	if err != nil {
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(err)
		return cmd
	}
	return s.lua.Run(ctx, c, keys, arg)
}

// args encodes a script's arguments (ARGV[1]), with the context's actor
// when they embed Env.
func (s *Script) args(ctx context.Context, args any) ([]byte, error) {
	if args == nil {
		return []byte("{}"), nil
	}
	if b, ok := args.(actorBinder); ok {
		b.bindActor(ActorOf(ctx))
	}
	arg, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("redisx: arguments of script %s: %w", s.name, err)
	}
	return arg, nil
}

// Reply is a script's answer: an outcome word followed by values.
type Reply struct {
	Outcome string
	Values  []any
}

// Run executes the script and splits its reply.
func (s *Script) Run(ctx context.Context, c redis.Scripter, keys []string, args any) (Reply, error) {
	res, err := s.Eval(ctx, c, keys, args).Slice()
	if err != nil {
		return Reply{}, err
	}
	return splitReply(res)
}

func splitReply(res []any) (Reply, error) {
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
