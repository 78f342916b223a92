package hooks

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// ReplayStore keeps the replay records of webhook calls (see replay.go).
// A record is named by the hook and Kratos' flow id.
type ReplayStore interface {
	// Begin claims the record of a call whose body has this digest, or
	// reports what the record holds: ReplayNew (the caller does the work),
	// ReplayDone (answered already: status, body), ReplayConflict (another
	// body under this flow: the answer it got, if any) or ReplayRunning.
	Begin(ctx context.Context, hook, flowID, digest string, ttl time.Duration) (Replay, error)
	// Finish stores the answer a call got, for its repeats.
	Finish(ctx context.Context, hook, flowID, status, body string) error
	// Forget drops a record, so that a repeat does the work again.
	Forget(ctx context.Context, hook, flowID string) error
}

// Replay is what a call's record says.
type Replay struct {
	State        string // ReplayNew, ReplayDone, ReplayConflict or ReplayRunning
	Status, Body string // the recorded answer ("" when none yet)
}

// The states of a replay record.
const (
	ReplayNew      = "new"
	ReplayDone     = "done"
	ReplayConflict = "conflict"
	ReplayRunning  = "running"
)

// RedisReplayStore keeps replay records in Redis, one hash per call under
// redisx.Keyspace.HookCall. It lives here rather than in orgs.Store: the
// records are about webhook deliveries, not organizations, and only the
// hooks read them. The sign-up's organization claim shares the
// registration record's hash (its "org" field) but is the organization
// store's (orgs.Store.ClaimSignupOrganization).
type RedisReplayStore struct {
	rdb redis.UniversalClient
	ks  redisx.Keyspace
}

// NewRedisReplayStore returns the Redis replay store.
func NewRedisReplayStore(rdb redis.UniversalClient, ks redisx.Keyspace) *RedisReplayStore {
	return &RedisReplayStore{rdb: rdb, ks: ks}
}

// recordScript claims the record of a hook call, or reports what it holds.
// KEYS: the record. Arguments: digest (of the body), ttl (ms).
var recordScript = redisx.NewScript("hooks.record", redisx.Standalone, `
local d = redis.call('HGET', KEYS[1], 'd')
if not d then
  redis.call('HSET', KEYS[1], 'd', A.digest)
  redis.call('PEXPIRE', KEYS[1], A.ttl)
  return {'new'}
end
local r = redis.call('HMGET', KEYS[1], 's', 'b')
if d ~= A.digest then return {'conflict', r[1] or '', r[2] or ''} end
if not r[1] then return {'running'} end
return {'done', r[1], r[2]}
`)

// Begin implements ReplayStore.
func (s *RedisReplayStore) Begin(ctx context.Context, hook, flowID, digest string, ttl time.Duration) (Replay, error) {
	res, err := recordScript.Eval(ctx, s.rdb, []string{s.ks.HookCall(hook, flowID)},
		map[string]any{"digest": digest, "ttl": ttl.Milliseconds()}).StringSlice()
	if err != nil {
		return Replay{}, err
	}
	r := Replay{State: res[0]}
	if len(res) == 3 {
		r.Status, r.Body = res[1], res[2]
	}
	return r, nil
}

// Finish implements ReplayStore.
func (s *RedisReplayStore) Finish(ctx context.Context, hook, flowID, status, body string) error {
	return s.rdb.HSet(ctx, s.ks.HookCall(hook, flowID), "s", status, "b", body).Err()
}

// Forget implements ReplayStore.
func (s *RedisReplayStore) Forget(ctx context.Context, hook, flowID string) error {
	return s.rdb.Del(ctx, s.ks.HookCall(hook, flowID)).Err()
}
