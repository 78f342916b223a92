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
	// (the Kratos claims mirror hooks in here). written is the job's Claims:
	// the digest of the claims an acceptance already wrote to Kratos, ""
	// for none.
	OnChange func(ctx context.Context, identityID, written string) error
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
// KEYS: orgs hash, stamps hash (same {i:identity} tag). Arguments: org,
// role (empty = not a member), stamp (ms), stamps_ttl (ms).
var identityIndexScript = redisx.NewScript("orgs.identity_index", redisx.Standalone, `
local cur = tonumber(redis.call('HGET', KEYS[2], A.org) or '0')
if A.stamp < cur then return 0 end
redis.call('HSET', KEYS[2], A.org, A.stamp)
redis.call('PEXPIRE', KEYS[2], A.stamps_ttl)
if A.role == '' then redis.call('HDEL', KEYS[1], A.org) else redis.call('HSET', KEYS[1], A.org, A.role) end
return 1
`)

// identityIndexArgs are identityIndexScript's arguments.
type identityIndexArgs struct {
	Org       string `json:"org"`
	Role      string `json:"role"`
	Stamp     int64  `json:"stamp"`
	StampsTTL int64  `json:"stamps_ttl"`
}

// Handle reads the membership as it is now and mirrors it, then runs
// OnChange.
func (x *IdentityIndex) Handle(ctx context.Context, job outbox.Job) error {
	if err := x.Apply(ctx, job.Ref, job.Subject); err != nil {
		return err
	}
	if x.OnChange != nil {
		return x.OnChange(ctx, job.Subject, job.Claims)
	}
	return nil
}

// Apply mirrors an identity's membership of an organization as it is now
// into the index; repeating it, or running it before or after the
// member.sync job, changes nothing more (the stamps order observations).
func (x *IdentityIndex) Apply(ctx context.Context, org, identityID string) error {
	observed := x.now()
	raw, err := x.rdb.HGet(ctx, x.ks.OrgMembers(org), identityID).Result()
	role := ""
	switch {
	case errors.Is(err, redis.Nil):
	case err != nil:
		return err
	default:
		m, err := parseMember(org, identityID, raw)
		if err != nil {
			return outbox.Permanent(err)
		}
		role = m.Role
	}
	keys := []string{x.ks.IdentityOrgs(identityID), x.ks.IdentityOrgsStamps(identityID)}
	args := &identityIndexArgs{Org: org, Role: role, Stamp: observed.UnixMilli(), StampsTTL: x.StampsTTL.Milliseconds()}
	return identityIndexScript.Eval(ctx, x.rdb, keys, args).Err()
}

// Organizations returns an identity's organization ids and roles.
func (x *IdentityIndex) Organizations(ctx context.Context, identityID string) (map[string]string, error) {
	m, err := x.rdb.HGetAll(ctx, x.ks.IdentityOrgs(identityID)).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	return m, nil
}
