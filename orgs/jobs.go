package orgs

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/outbox"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// IdentityIndex keeps, per Kratos identity, its organizations and roles
// (redisx key IdentityOrgs), from member.sync jobs that every membership
// change enqueues in the same atomic step.
type IdentityIndex struct {
	rdb redis.UniversalClient
	ks  redisx.Keyspace
	now func() time.Time
	// StampsTTL bounds the stamps hash (see invites.StampsTTL); the
	// default is a day.
	StampsTTL time.Duration
	// OnChange, when set, is called after an identity's memberships changed
	// (the Kratos claims mirror hooks in here).
	OnChange func(ctx context.Context, identityID string) error
}

// NewIdentityIndex returns the member.sync job handler; now is the clock
// (nil: time.Now).
func NewIdentityIndex(rdb redis.UniversalClient, ks redisx.Keyspace, now func() time.Time) *IdentityIndex {
	if now == nil {
		now = time.Now
	}
	return &IdentityIndex{rdb: rdb, ks: ks, now: now, StampsTTL: 24 * time.Hour}
}

// Register installs the handler on a worker.
func (x *IdentityIndex) Register(w *outbox.Worker) { w.Handle("member.sync", x.Handle, nil) }

// identityIndexScript applies one observation of a membership unless a
// later one was applied already.
// KEYS: orgs hash, stamps hash (same {i:identity} tag). ARGV: org, role
// (empty = not a member), stamp (ms), stamps TTL (ms).
var identityIndexScript = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if tonumber(ARGV[3]) < cur then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
`)

// Handle reads the membership as it is now and mirrors it.
func (x *IdentityIndex) Handle(ctx context.Context, job outbox.Job) error {
	observed := x.now()
	raw, err := x.rdb.HGet(ctx, x.ks.Org(job.Ref)+":members", job.Subject).Result()
	role := ""
	switch {
	case errors.Is(err, redis.Nil):
	case err != nil:
		return err
	default:
		m, err := parseMember(job.Ref, job.Subject, raw)
		if err != nil {
			return outbox.Permanent(err)
		}
		role = m.Role
	}
	key := x.ks.IdentityOrgs(job.Subject)
	if err := identityIndexScript.Run(ctx, x.rdb, []string{key, key + ":stamps"}, job.Ref, role, observed.UnixMilli(), x.StampsTTL.Milliseconds()).Err(); err != nil {
		return err
	}
	if x.OnChange != nil {
		return x.OnChange(ctx, job.Subject)
	}
	return nil
}

// Organizations returns an identity's organization ids and roles.
func (x *IdentityIndex) Organizations(ctx context.Context, identityID string) (map[string]string, error) {
	m, err := x.rdb.HGetAll(ctx, x.ks.IdentityOrgs(identityID)).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	return m, nil
}
