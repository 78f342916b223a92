package orgs

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// Store keeps organizations and memberships in Redis. Each method is one
// script on one shard, plus an idempotent write to the global slug index
// where a slug is involved.
type Store struct {
	rdb       redis.UniversalClient
	ks        redisx.Keyspace
	retention time.Duration
	now       func() time.Time

	// exists caches organizations known to exist, so that inviting a person
	// new to Kratos does not cost a Redis round trip before the identity is
	// created. A stale entry is harmless: the invitation script checks again
	// and the caller undoes the identity.
	mu     sync.Mutex
	exists map[string]time.Time

	wait redisx.Wait // for organization and membership changes

	crashAt func(step string) error // crash tests only (crash.go)
}

// NewStore returns a store; retention is how long ended invitations of a
// deleted organization are kept; now is the clock (nil: time.Now).
func NewStore(rdb redis.UniversalClient, ks redisx.Keyspace, retention time.Duration, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{rdb: rdb, ks: ks, retention: retention, now: now, exists: map[string]time.Time{}}
}

// SetWait makes organization creation and membership changes wait for
// w.Replicas replicas (redis.wait_replicas; README "Redis failover"). Call
// it before use.
func (s *Store) SetWait(w redisx.Wait) { s.wait = w }

const existsCacheTTL = 30 * time.Second

func storeErr(err error) error { return redisx.StoreError(err, "organization store") }

// claimSlugScript claims the first free slug of a short list of candidates
// (slugCandidates): never a probing loop whose length a caller controls.
// KEYS: slugs, orgs. Arguments: claimSlugArgs.
var claimSlugScript = redisx.NewScript("orgs.claim_slug", redisx.Standalone, `
for _, slug in ipairs(A.candidates) do
  if redis.call('HSETNX', KEYS[1], slug, A.id) == 1 then
    redis.call('ZADD', KEYS[2], 0, A.id)
    return {'ok', slug}
  end
  if A.explicit then return {'taken'} end
end
return {'exhausted'}
`)

// claimSlugArgs are claimSlugScript's arguments.
type claimSlugArgs struct {
	ID         string   `json:"id"`
	Explicit   bool     `json:"explicit"` // only the first candidate: "taken" if it is
	Candidates []string `json:"candidates"`
}

func (s *Store) claimSlug(ctx context.Context, a claimSlugArgs) ([]any, error) {
	return claimSlugScript.Eval(ctx, s.rdb, []string{s.ks.Slugs(), s.ks.Orgs()}, &a).Slice()
}

// numberedSlugTries is how many derived slugs are tried in order (acme,
// acme-2 … acme-5) before random suffixes: a handful keeps the common case
// readable, and no name, however popular, makes a claim probe further.
const numberedSlugTries = 5

// slugCandidates lists the slugs a new organization may get: the base,
// a few numbered ones, then two with a random suffix (36^5 each, so the
// second is a formality).
func slugCandidates(base string) []string {
	out := []string{base}
	for n := 2; n <= numberedSlugTries; n++ {
		out = append(out, fmt.Sprintf("%s-%d", base, n))
	}
	for range 2 {
		out = append(out, base+"-"+randomSuffix())
	}
	return out
}

const suffixAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

func randomSuffix() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = suffixAlphabet[int(b[i])%len(suffixAlphabet)]
	}
	return string(b[:])
}

// releaseSlugScript gives a slug back if the organization holds it, and
// drops the organization from the listing when unlist is set.
// KEYS: slugs, orgs. Arguments: slug, id, unlist.
var releaseSlugScript = redisx.NewScript("orgs.release_slug", redisx.Standalone, `
if redis.call('HGET', KEYS[1], A.slug) == A.id then redis.call('HDEL', KEYS[1], A.slug) end
if A.unlist then redis.call('ZREM', KEYS[2], A.id) end
return 1
`)

func (s *Store) releaseSlug(ctx context.Context, slug, id string, unlist bool) error {
	return releaseSlugScript.Eval(ctx, s.rdb, []string{s.ks.Slugs(), s.ks.Orgs()},
		map[string]any{"slug": slug, "id": id, "unlist": unlist}).Err()
}

// createScript writes an organization and its first owner, if any.
// KEYS: org. Arguments: createArgs.
var createScript = redisx.NewScript("orgs.create", redisx.OnShard, `
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists'} end
redis.call('HSET', KEYS[1], 'id', A.id, 'slug', A.slug, 'name', A.name, 'metadata', A.metadata,
  'state', A.state, 'locale', A.locale, 'created_at', NOW, 'updated_at', NOW)
if A.max_members ~= '' then redis.call('HSET', KEYS[1], 'max_members', A.max_members) end
record(A.id, 'organization.created', {organization_id = A.id, slug = A.slug, name = A.name, state = A.state})
if A.owner_id ~= '' then put_member(A.id, A.owner_id, 'owner', A.owner_email, NOW) end
return {'ok', flat(KEYS[1])}
`)

// createArgs are createScript's arguments.
type createArgs struct {
	redisx.Env
	ID         string `json:"id"`
	Slug       string `json:"slug"`
	Name       string `json:"name"`
	Metadata   string `json:"metadata"` // JSON
	State      string `json:"state"`
	OwnerID    string `json:"owner_id"` // or empty
	OwnerEmail string `json:"owner_email"`
	Locale     string `json:"locale"`
	MaxMembers string `json:"max_members"` // or empty: unlimited
}

// Create stores a new organization, claiming a unique slug: the given one
// (explicit) or one derived from base with -2, -3... appended as needed.
func (s *Store) Create(ctx context.Context, o Organization, explicitSlug bool, owner *Member) (Organization, error) {
	now := s.now()
	shard := redisx.RandomShard()
	o.ID = redisx.NewID("org", shard, now)
	claim := claimSlugArgs{ID: o.ID, Explicit: explicitSlug, Candidates: []string{o.Slug}}
	if !explicitSlug {
		claim.Candidates = slugCandidates(o.Slug)
	}
	res, err := s.claimSlug(ctx, claim)
	if err != nil {
		return o, storeErr(err)
	}
	switch res[0] {
	case "taken":
		return o, apperr.Conflictf("slug_taken", "the slug %q is taken", o.Slug).WithDetails("slug", o.Slug)
	case "exhausted":
		return o, apperr.Conflictf("slug_taken", "no free slug derived from %q", o.Slug)
	}
	o.Slug = res[1].(string)
	if err := s.crash(CrashCreateSlugClaimed); err != nil {
		return o, err
	}
	meta, _ := json.Marshal(o.Metadata)
	var ownerID, ownerEmail string
	if owner != nil {
		ownerID, ownerEmail = owner.IdentityID, owner.Email
	}
	rep, err := createScript.RunWaiting(ctx, s.rdb, s.wait, []string{s.ks.Org(o.ID)}, &createArgs{
		Env: s.ks.Env(shard, now, s.retention), ID: o.ID, Slug: o.Slug, Name: o.Name, Metadata: string(meta),
		State: o.State, OwnerID: ownerID, OwnerEmail: ownerEmail, Locale: o.Locale, MaxMembers: limitArg(o.Seats.Limit),
	})
	var unconfirmed *redisx.NotReplicatedError
	if err != nil && !errors.As(err, &unconfirmed) {
		// Give the slug back; the organization was not written.
		_ = s.releaseSlug(context.WithoutCancel(ctx), o.Slug, o.ID, true)
	}
	if err != nil {
		// Unconfirmed by the replicas: written, slug and all, but answered
		// 503 (README "Redis failover").
		return o, storeErr(err)
	}
	s.remember(o.ID)
	return s.withSeats(ctx, redisx.Hash(rep.Values[0]))
}

// limitArg is a seat limit as a script argument: empty for none.
func limitArg(n *int64) string {
	if n == nil || *n <= 0 {
		return ""
	}
	return strconv.FormatInt(*n, 10)
}

// seatCounts queues the reads of an organization's seat counts.
func (s *Store) seatCounts(ctx context.Context, pipe redis.Pipeliner, id string) (members, pending *redis.IntCmd) {
	return pipe.HLen(ctx, s.ks.OrgMembers(id)), pipe.ZCard(ctx, s.ks.OrgInvitationsByStatus(id, "pending"))
}

// withSeats parses an organization's stored fields and reads its seat
// counts (one more round trip: for writes, which return the fields).
func (s *Store) withSeats(ctx context.Context, h map[string]string) (Organization, error) {
	o, err := parseOrg(h)
	if err != nil {
		return o, err
	}
	pipe := s.rdb.Pipeline()
	members, pending := s.seatCounts(ctx, pipe, o.ID)
	if _, err := pipe.Exec(ctx); err != nil {
		return o, storeErr(err)
	}
	o.Seats.Members, o.Seats.Pending = members.Val(), pending.Val()
	return o, nil
}

// env is the prelude's part of the arguments of a script on org's shard.
func (s *Store) env(org string) redisx.Env {
	return s.ks.Env(redisx.ShardOf(org), s.now(), s.retention)
}

func (s *Store) remember(id string) {
	s.mu.Lock()
	s.exists[id] = s.now().Add(existsCacheTTL)
	if len(s.exists) > 100000 {
		clear(s.exists) // crude bound; the cache is only an optimization
	}
	s.mu.Unlock()
}

func (s *Store) forget(id string) {
	s.mu.Lock()
	delete(s.exists, id)
	s.mu.Unlock()
}

// Exists reports whether an organization exists, answering from a short
// cache when it can (see Store.exists).
func (s *Store) Exists(ctx context.Context, id string) (bool, error) {
	s.mu.Lock()
	until, ok := s.exists[id]
	s.mu.Unlock()
	if ok && s.now().Before(until) {
		return true, nil
	}
	if _, valid := redisx.ParseID("org", id); !valid {
		return false, nil
	}
	n, err := s.rdb.Exists(ctx, s.ks.Org(id)).Result()
	if err != nil {
		return false, storeErr(err)
	}
	if n == 1 {
		s.remember(id)
	}
	return n == 1, nil
}

// Get reads an organization by id.
func (s *Store) Get(ctx context.Context, id string) (Organization, error) {
	if _, ok := redisx.ParseID("org", id); !ok {
		return Organization{}, errOrgNotFound(id)
	}
	pipe := s.rdb.Pipeline()
	hCmd := pipe.HGetAll(ctx, s.ks.Org(id))
	members, pending := s.seatCounts(ctx, pipe, id)
	if _, err := pipe.Exec(ctx); err != nil {
		return Organization{}, storeErr(err)
	}
	if len(hCmd.Val()) == 0 {
		return Organization{}, errOrgNotFound(id)
	}
	o, err := parseOrg(hCmd.Val())
	o.Seats.Members, o.Seats.Pending = members.Val(), pending.Val()
	return o, err
}

// SlugTaken reports whether a slug belongs to an organization.
func (s *Store) SlugTaken(ctx context.Context, slug string) (bool, error) {
	n, err := s.rdb.HExists(ctx, s.ks.Slugs(), slug).Result()
	return n, storeErr(err)
}

// Resolve finds an organization by id or slug.
func (s *Store) Resolve(ctx context.Context, idOrSlug string) (Organization, error) {
	if _, ok := redisx.ParseID("org", idOrSlug); ok {
		return s.Get(ctx, idOrSlug)
	}
	if !ValidSlug(idOrSlug) {
		return Organization{}, errOrgNotFound(idOrSlug)
	}
	id, err := s.rdb.HGet(ctx, s.ks.Slugs(), idOrSlug).Result()
	if errors.Is(err, redis.Nil) {
		return Organization{}, errOrgNotFound(idOrSlug)
	}
	if err != nil {
		return Organization{}, storeErr(err)
	}
	return s.Get(ctx, id)
}

// ResolveID is Resolve when only the id is needed: an id costs nothing.
func (s *Store) ResolveID(ctx context.Context, idOrSlug string) (string, error) {
	if _, ok := redisx.ParseID("org", idOrSlug); ok {
		return idOrSlug, nil
	}
	o, err := s.Resolve(ctx, idOrSlug)
	return o.ID, err
}

func errOrgNotFound(ref string) error {
	return apperr.NotFoundf("organization_not_found", "no organization %q", ref).WithDetails("organization", ref)
}

// List pages through all organizations in creation order.
func (s *Store) List(ctx context.Context, cursor string, limit int) (Page[Organization], error) {
	var page Page[Organization]
	if err := CheckCursor(cursor, IsID("org")); err != nil {
		return page, err
	}
	start := "-"
	if cursor != "" {
		start = "(" + cursor
	}
	pipe := s.rdb.Pipeline()
	idsCmd := pipe.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.ks.Orgs(), Start: start, Stop: "+", ByLex: true, Count: int64(limit + 1)})
	totalCmd := pipe.ZCard(ctx, s.ks.Orgs())
	if _, err := pipe.Exec(ctx); err != nil {
		return page, storeErr(err)
	}
	ids := idsCmd.Val()
	page.Total = totalCmd.Val()
	if len(ids) > limit {
		ids = ids[:limit]
		page.NextCursor = ids[len(ids)-1]
	}
	pipe = s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	counts := make([][2]*redis.IntCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, s.ks.Org(id))
		counts[i][0], counts[i][1] = s.seatCounts(ctx, pipe, id)
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return page, storeErr(err)
		}
	}
	page.Items = make([]Organization, 0, len(ids))
	for i, c := range cmds {
		if len(c.Val()) == 0 {
			continue // being created or deleted right now
		}
		o, err := parseOrg(c.Val())
		if err != nil {
			return page, err
		}
		o.Seats.Members, o.Seats.Pending = counts[i][0].Val(), counts[i][1].Val()
		page.Items = append(page.Items, o)
	}
	return page, nil
}

// updateScript changes an organization's fields; empty ones are left alone.
// KEYS: org. Arguments: updateArgs.
var updateScript = redisx.NewScript("orgs.update", redisx.OnShard, `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
local old = redis.call('HGET', KEYS[1], 'slug')
local was = redis.call('HGET', KEYS[1], 'state')
if A.name ~= '' then redis.call('HSET', KEYS[1], 'name', A.name) end
if A.metadata ~= '' then redis.call('HSET', KEYS[1], 'metadata', A.metadata) end
if A.slug ~= '' then redis.call('HSET', KEYS[1], 'slug', A.slug) end
if A.state ~= '' then redis.call('HSET', KEYS[1], 'state', A.state) end
if A.locale ~= nil then redis.call('HSET', KEYS[1], 'locale', A.locale) end
if A.max_members == 'none' then
  redis.call('HDEL', KEYS[1], 'max_members')
elseif A.max_members ~= '' then
  redis.call('HSET', KEYS[1], 'max_members', A.max_members)
end
if A.reminders == 'none' then
  redis.call('HDEL', KEYS[1], 'reminders')
elseif A.reminders ~= '' then
  redis.call('HSET', KEYS[1], 'reminders', A.reminders)
end
redis.call('HSET', KEYS[1], 'updated_at', NOW)
local o = redis.call('HMGET', KEYS[1], 'id', 'slug', 'name', 'state')
local data = {organization_id = o[1], slug = o[2], name = o[3], state = o[4]}
record(o[1], 'organization.updated', data)
if was == 'pending' and o[4] == 'active' then record(o[1], 'organization.activated', data) end
return {'ok', old, flat(KEYS[1])}
`)

// updateArgs are updateScript's arguments; empty means unchanged.
type updateArgs struct {
	redisx.Env
	Name     string  `json:"name"`
	Metadata string  `json:"metadata"`
	Slug     string  `json:"slug"`
	State    string  `json:"state"`
	Locale   *string `json:"locale,omitempty"` // nil: unchanged; "" removes it
	// MaxMembers is the new seat limit, "none" to remove it, or empty.
	MaxMembers string `json:"max_members"`
	// Reminders is the new reminder plan (JSON), "none" to remove it, or
	// empty.
	Reminders string `json:"reminders"`
}

// Update is a partial update; empty fields are left alone.
type Update struct {
	Name     *string
	Slug     *string
	Metadata map[string]any
	State    *string
	Locale   *string
	// MaxMembers is the new seat limit; 0 removes it (unlimited).
	MaxMembers *int64
	// Reminders is the new reminder plan (Reminders.Plan), "none" to
	// remove it, or empty.
	Reminders string
}

// Update changes an organization. A new slug is claimed before the record
// changes and the old one released after, so the organization is always
// reachable by one of them.
func (s *Store) Update(ctx context.Context, id string, u Update) (Organization, error) {
	if _, ok := redisx.ParseID("org", id); !ok {
		return Organization{}, errOrgNotFound(id)
	}
	var name, meta, slug, state string
	if u.Name != nil {
		name = *u.Name
	}
	if u.Metadata != nil {
		b, _ := json.Marshal(u.Metadata)
		meta = string(b)
	}
	if u.State != nil {
		state = *u.State
	}
	maxMembers := ""
	if u.MaxMembers != nil {
		maxMembers = "none"
		if *u.MaxMembers > 0 {
			maxMembers = strconv.FormatInt(*u.MaxMembers, 10)
		}
	}
	if u.Slug != nil {
		cur, err := s.Get(ctx, id)
		if err != nil {
			return cur, err
		}
		if cur.Slug != *u.Slug {
			res, err := s.claimSlug(ctx, claimSlugArgs{ID: id, Explicit: true, Candidates: []string{*u.Slug}})
			if err != nil {
				return cur, storeErr(err)
			}
			if res[0] == "taken" {
				return cur, apperr.Conflictf("slug_taken", "the slug %q is taken", *u.Slug).WithDetails("slug", *u.Slug)
			}
			slug = *u.Slug
		}
	}
	if slug != "" {
		if err := s.crash(CrashUpdateSlugClaimed); err != nil {
			return Organization{}, err
		}
	}
	rep, err := updateScript.Run(ctx, s.rdb, []string{s.ks.Org(id)},
		&updateArgs{Env: s.env(id), Name: name, Metadata: meta, Slug: slug, State: state, Locale: u.Locale, MaxMembers: maxMembers, Reminders: u.Reminders})
	if err != nil {
		return Organization{}, storeErr(err)
	}
	if rep.Outcome == "not_found" {
		if slug != "" {
			_ = s.releaseSlug(ctx, slug, id, false)
		}
		return Organization{}, errOrgNotFound(id)
	}
	if old := redisx.Str(rep.Values[0]); slug != "" && old != slug {
		_ = s.releaseSlug(ctx, old, id, false)
	}
	return s.withSeats(ctx, redisx.Hash(rep.Values[1]))
}

// deleteScript deletes an organization: its pending invitations are
// revoked, its memberships and indexes deleted.
// KEYS: org. Arguments: org (its id), only_pending.
var deleteScript = redisx.NewScript("orgs.delete", redisx.OnShard, `
local org = A.org
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
if A.only_pending and redis.call('HGET', KEYS[1], 'state') ~= 'pending' then return {'active'} end
local slug = redis.call('HGET', KEYS[1], 'slug')
local pending = redis.call('ZRANGE', k_org_inv_status(org, 'pending'), 0, -1)
local revoked = 0
for _, id in ipairs(pending) do
  if current_status(id) == 'pending' then end_invitation(id, 'revoked'); revoked = revoked + 1 end
end
for _, identity in ipairs(redis.call('ZRANGE', k_org_member_ids(org), 0, -1)) do
  enqueue({k = 'member.sync', r = org, i = identity})
  local m = cjson.decode(redis.call('HGET', k_org_members(org), identity) or '{}')
  record(org, 'membership.deleted', {organization_id = org, identity_id = identity, email = m.email, role = m.role})
end
record(org, 'organization.deleted', {organization_id = org, slug = slug, name = redis.call('HGET', KEYS[1], 'name'),
  invitations_revoked = revoked})
close_audit(org)
-- The first layout's address sets, of invitations not upgraded yet.
for _, id in ipairs(redis.call('ZRANGE', k_org_inv_ids(org), 0, -1)) do
  local f = redis.call('HMGET', k_inv(id), 'email', 'e')
  if f[1] or f[2] then redis.call('DEL', k_org_inv_addr(org, f[1] or f[2])) end
end
redis.call('DEL', KEYS[1], k_org_members(org), k_org_member_ids(org), k_org_owners(org), k_org_inv_ids(org),
  k_org_inv_status(org, 'pending'), k_org_inv_status(org, 'accepted'), k_org_inv_status(org, 'revoked'),
  k_org_inv_status(org, 'expired'), k_org_inv_pending(org), k_org_inv_email(org), k_org_inv_ended(org), k_org_domains(org))
return {'ok', slug, revoked}
`)

// Delete removes an organization: its pending invitations are revoked (their
// links die at once), its memberships removed; ended invitations stay
// readable by id until their retention passes. It returns how many
// invitations were revoked.
func (s *Store) Delete(ctx context.Context, id string) (int, error) {
	return s.delete(ctx, id, false)
}

// DeleteIfPending deletes an organization that was never activated (an
// abandoned registration); an active one is left alone.
func (s *Store) DeleteIfPending(ctx context.Context, id string) error {
	_, err := s.delete(ctx, id, true)
	if apperr.KindOf(err) == apperr.NotFound || errors.Is(err, errActive) {
		return nil
	}
	return err
}

var errActive = errors.New("orgs: organization is active")

func (s *Store) delete(ctx context.Context, id string, onlyPending bool) (int, error) {
	if _, ok := redisx.ParseID("org", id); !ok {
		return 0, errOrgNotFound(id)
	}
	rep, err := deleteScript.Run(ctx, s.rdb, []string{s.ks.Org(id)}, &struct {
		redisx.Env
		Org         string `json:"org"`
		OnlyPending bool   `json:"only_pending"`
	}{s.env(id), id, onlyPending})
	if err != nil {
		return 0, storeErr(err)
	}
	switch rep.Outcome {
	case "not_found":
		return 0, errOrgNotFound(id)
	case "active":
		return 0, errActive
	}
	s.forget(id)
	if err := s.releaseSlug(ctx, redisx.Str(rep.Values[0]), id, true); err != nil {
		return 0, storeErr(err)
	}
	return int(redisx.Int(rep.Values[1])), nil
}

func parseOrg(h map[string]string) (Organization, error) {
	o := Organization{
		ID: h["id"], Slug: h["slug"], Name: h["name"], State: h["state"], Locale: h["locale"],
		CreatedAt: redisx.MsTime(h["created_at"]), UpdatedAt: redisx.MsTime(h["updated_at"]),
	}
	if n, err := strconv.ParseInt(h[redisx.OrgMaxMembers], 10, 64); err == nil {
		o.Seats.Limit = &n
	}
	o.Reminders = parseReminderPlan(h[OrgReminders])
	if m := h["metadata"]; m != "" && m != "null" {
		if err := json.Unmarshal([]byte(m), &o.Metadata); err != nil {
			return o, fmt.Errorf("orgs: organization %s: bad metadata: %w", o.ID, err)
		}
	}
	if o.Metadata == nil {
		o.Metadata = map[string]any{}
	}
	return o, nil
}
