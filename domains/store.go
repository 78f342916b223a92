package domains

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// The two keys, and why the order of writes makes a crash harmless:
//
//   - P{g}:domains (global tag) maps a domain to its claim. It is the
//     truth about ownership: claiming is one script that sets the field
//     unless another organization holds it, so two organizations racing
//     for a domain cannot both win, on any deployment.
//   - P{s}:org:<org>:domains (the organization's shard) lists the domains
//     it claimed, so its list costs no scan, and is deleted with the
//     organization.
//
// A claim adds the domain to the organization's set first (a script that
// refuses a deleted organization), then takes the global field; a release
// drops the global field first, then the set entry. So the set is always a
// superset of what the organization owns, and a reader trusts only entries
// the global hash confirms: a crash between the two steps leaves an extra
// set entry that no listing shows and the next claim or release of the
// domain, or the organization's deletion, removes.
//
// A claim nobody verified within the configured time may be overwritten
// by another organization's claim, decided inside the claim script (so a
// verification that lands first always wins); the old organization's set
// entry then points at a field it no longer owns, which a listing skips.
//
// The global field of a deleted organization stays until a reader sees it:
// every look-up checks the organization exists and, when it does not,
// drops the field (compare-and-delete on the organization id). Organization
// ids are never reused, so "does not exist" never becomes true again.

// refScript adds a domain to an organization's set unless the organization
// is gone. KEYS: org, org domains.
var refScript = redisx.NewScript("domains.ref", redisx.Standalone, `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'org_not_found'} end
redis.call('SADD', KEYS[2], A.domain)
return {'ok'}
`)

// claimScript takes a domain for an organization unless another one holds
// it (replace: the id of a deleted organization whose claim may go;
// stale: a unix-ms time, when set, before which a claim still unverified
// may go). KEYS: the global domains hash.
var claimScript = redisx.NewScript("domains.claim", redisx.Standalone, `
local cur = redis.call('HGET', KEYS[1], A.domain)
if cur then
  local c = cjson.decode(cur)
  if c.o == A.org then return {'exists', cur} end
  local stale = A.stale ~= '' and (c.va == nil or c.va == '') and tonumber(c.c) < tonumber(A.stale)
  if not stale and (A.replace == '' or c.o ~= A.replace) then return {'taken', c.o} end
end
redis.call('HSET', KEYS[1], A.domain, A.rec)
return {'ok', A.rec}
`)

// updateScript changes fields of an organization's claim; th, when set,
// must still be the claim's token hash (a DNS check of an old token
// cannot verify a domain claimed again meanwhile). KEYS: the global hash.
var updateScript = redisx.NewScript("domains.update", redisx.Standalone, `
local cur = redis.call('HGET', KEYS[1], A.domain)
if not cur then return {'not_found'} end
local c = cjson.decode(cur)
if c.o ~= A.org then return {'not_found'} end
if A.th ~= '' and c.th ~= A.th then return {'token_changed'} end
for k, v in pairs(A.set) do c[k] = v end
local out = cjson.encode(c)
redis.call('HSET', KEYS[1], A.domain, out)
return {'ok', out}
`)

// releaseScript drops a domain's claim if org holds it. KEYS: the global hash.
var releaseScript = redisx.NewScript("domains.release", redisx.Standalone, `
local cur = redis.call('HGET', KEYS[1], A.domain)
if not cur then return {'not_found'} end
if cjson.decode(cur).o ~= A.org then return {'not_found'} end
redis.call('HDEL', KEYS[1], A.domain)
return {'ok'}
`)

// record is a claim as stored: short names, times as unix-ms strings.
type record struct {
	Org        string `json:"o"`
	Policy     string `json:"p"`
	Role       string `json:"r"`
	VerifiedAt string `json:"va"` // "" while unverified
	VerifiedBy string `json:"vb"`
	TokenHash  string `json:"th"`
	Created    string `json:"c"`
	Updated    string `json:"u"`
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func staleArg(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return ms(t)
}

func (r record) domain(name string) Domain {
	d := Domain{
		Domain: name, OrganizationID: r.Org, Policy: r.Policy, Role: r.Role, VerifiedBy: r.VerifiedBy,
		CreatedAt: redisx.MsTime(r.Created), UpdatedAt: redisx.MsTime(r.Updated),
		DNSRecord: DNSRecord{Name: RecordPrefix + name, Type: "TXT"}, tokenHash: r.TokenHash,
	}
	if at := redisx.MsTime(r.VerifiedAt); !at.IsZero() {
		d.Verified, d.VerifiedAt = true, &at
	}
	return d
}

func parseRecord(name, raw string) (Domain, error) {
	var r record
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return Domain{}, fmt.Errorf("domains: claim of %s: %w", name, err)
	}
	return r.domain(name), nil
}

// Store keeps the claims in Redis.
type Store struct {
	rdb redis.UniversalClient
	ks  redisx.Keyspace
}

// NewStore returns a store.
func NewStore(rdb redis.UniversalClient, ks redisx.Keyspace) *Store {
	return &Store{rdb: rdb, ks: ks}
}

func storeErr(err error) error { return redisx.StoreError(err, "domain store") }

// TakenError names the organization holding a domain.
type TakenError struct{ Org string }

func (e *TakenError) Error() string { return "domains: held by " + e.Org }

// Claim records org's claim (d's policy, role, token hash, creation time).
// replace names a deleted organization whose claim may be overwritten; a
// claim still unverified that was made before staleBefore (unless zero)
// may be overwritten too. It returns the stored claim and whether this
// call created it; another organization's claim is a *TakenError.
func (s *Store) Claim(ctx context.Context, org string, d Domain, replace string, staleBefore time.Time) (Domain, bool, error) {
	rep, err := refScript.Run(ctx, s.rdb, []string{s.ks.Org(org), s.ks.OrgDomains(org)}, map[string]string{"domain": d.Domain})
	if err != nil {
		return Domain{}, false, storeErr(err)
	}
	if rep.Outcome == "org_not_found" {
		return Domain{}, false, apperr.NotFoundf("organization_not_found", "organization %s not found", org)
	}
	rec, _ := json.Marshal(record{Org: org, Policy: d.Policy, Role: d.Role, TokenHash: d.tokenHash,
		Created: ms(d.CreatedAt), Updated: ms(d.CreatedAt)})
	rep, err = claimScript.Run(ctx, s.rdb, []string{s.ks.Domains()}, map[string]string{
		"domain": d.Domain, "org": org, "rec": string(rec), "replace": replace, "stale": staleArg(staleBefore),
	})
	if err != nil {
		return Domain{}, false, storeErr(err)
	}
	switch rep.Outcome {
	case "taken":
		// Ours only in the set: drop it (a failure leaves an entry that no
		// listing shows; see above).
		_ = s.rdb.SRem(context.WithoutCancel(ctx), s.ks.OrgDomains(org), d.Domain).Err()
		return Domain{}, false, &TakenError{Org: redisx.Str(rep.Values[0])}
	case "exists", "ok":
		out, err := parseRecord(d.Domain, redisx.Str(rep.Values[0]))
		return out, rep.Outcome == "ok", err
	}
	return Domain{}, false, fmt.Errorf("domains: claim: unexpected %q", rep.Outcome)
}

// Get returns a domain's claim, whoever holds it; found false when none.
func (s *Store) Get(ctx context.Context, domain string) (Domain, bool, error) {
	raw, err := s.rdb.HGet(ctx, s.ks.Domains(), domain).Result()
	if errors.Is(err, redis.Nil) {
		return Domain{}, false, nil
	}
	if err != nil {
		return Domain{}, false, storeErr(err)
	}
	d, err := parseRecord(domain, raw)
	return d, err == nil, err
}

// List returns the domains org holds, ordered by name. Set entries the
// global hash does not confirm (a claim refused or interrupted) are left
// out.
func (s *Store) List(ctx context.Context, org string) ([]Domain, error) {
	names, err := s.rdb.SMembers(ctx, s.ks.OrgDomains(org)).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	if len(names) == 0 {
		return []Domain{}, nil
	}
	sort.Strings(names)
	vals, err := s.rdb.HMGet(ctx, s.ks.Domains(), names...).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	out := []Domain{}
	for i, v := range vals {
		raw, ok := v.(string)
		if !ok {
			continue
		}
		d, err := parseRecord(names[i], raw)
		if err != nil {
			return nil, err
		}
		if d.OrganizationID == org {
			out = append(out, d)
		}
	}
	return out, nil
}

// Change is what Update sets; nil fields stay.
type Change struct {
	Policy, Role *string
	// Verified sets (true) or clears the verification, by VerifiedBy.
	Verified   *bool
	VerifiedBy string
	// TokenHash, when set, must still be the claim's token hash.
	TokenHash string
	At        time.Time
}

// Update changes org's claim on domain.
func (s *Store) Update(ctx context.Context, org, domain string, c Change) (Domain, error) {
	set := map[string]string{"u": ms(c.At)}
	if c.Policy != nil {
		set["p"] = *c.Policy
	}
	if c.Role != nil {
		set["r"] = *c.Role
	}
	if c.Verified != nil {
		set["va"], set["vb"] = "", ""
		if *c.Verified {
			set["va"], set["vb"] = ms(c.At), c.VerifiedBy
		}
	}
	rep, err := updateScript.Run(ctx, s.rdb, []string{s.ks.Domains()}, map[string]any{
		"domain": domain, "org": org, "th": c.TokenHash, "set": set,
	})
	if err != nil {
		return Domain{}, storeErr(err)
	}
	switch rep.Outcome {
	case "not_found", "token_changed":
		return Domain{}, errNotClaimed(domain)
	}
	return parseRecord(domain, redisx.Str(rep.Values[0]))
}

func errNotClaimed(domain string) error {
	return apperr.NotFoundf("domain_not_found", "the organization has not claimed %s", domain).WithDetails("domain", domain)
}

// Release drops org's claim on domain (NotFound when org does not hold
// it), then its set entry.
func (s *Store) Release(ctx context.Context, org, domain string) error {
	rep, err := releaseScript.Run(ctx, s.rdb, []string{s.ks.Domains()}, map[string]string{"domain": domain, "org": org})
	if err != nil {
		return storeErr(err)
	}
	if err := s.rdb.SRem(context.WithoutCancel(ctx), s.ks.OrgDomains(org), domain).Err(); err != nil {
		return storeErr(err)
	}
	if rep.Outcome == "not_found" {
		return errNotClaimed(domain)
	}
	return nil
}

// DropStale removes the claim of a deleted organization (compare-and-delete
// on its id); the organization's set went with it.
func (s *Store) DropStale(ctx context.Context, org, domain string) error {
	_, err := releaseScript.Run(ctx, s.rdb, []string{s.ks.Domains()}, map[string]string{"domain": domain, "org": org})
	return storeErr(err)
}
