package orgs

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// addMemberScript adds a membership unless it exists, within the
// organization's seat limit.
// KEYS: org. Arguments: memberArgs.
var addMemberScript = redisx.NewScript("orgs.add_member", redisx.OnShard, `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'org_not_found'} end
local cur = redis.call('HGET', k_org_members(A.org), A.identity)
if cur then return {'exists', cur} end
local full, limit, used = seats_full(A.org, 1)
if full then return {'seat_limit', limit, used} end
put_member(A.org, A.identity, A.role, A.email, NOW)
return {'ok', redis.call('HGET', k_org_members(A.org), A.identity)}
`)

// setRoleScript changes a member's role, or removes the member (role
// empty); it never removes the last owner.
// KEYS: org. Arguments: memberArgs.
var setRoleScript = redisx.NewScript("orgs.set_role", redisx.OnShard, `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'org_not_found'} end
local org, identity = A.org, A.identity
local cur = redis.call('HGET', k_org_members(org), identity)
if not cur then return {'member_not_found'} end
local m = cjson.decode(cur)
local role = A.role
if m.role == 'owner' and role ~= 'owner' and redis.call('SCARD', k_org_owners(org)) <= 1 then
  return {'last_owner'}
end
if role == '' then
  redis.call('HDEL', k_org_members(org), identity)
  redis.call('ZREM', k_org_member_ids(org), identity)
  redis.call('SREM', k_org_owners(org), identity)
  enqueue({k = 'member.sync', r = org, i = identity})
  record(org, 'membership.deleted', {organization_id = org, identity_id = identity, email = m.email, role = m.role})
  return {'removed', cur}
end
if m.role == role then return {'unchanged', cur} end
put_member(org, identity, role, m.email, m.joined_at)
return {'ok', redis.call('HGET', k_org_members(org), identity)}
`)

// memberArgs name a membership.
type memberArgs struct {
	redisx.Env
	Org      string `json:"org"`
	Identity string `json:"identity"`
	Role     string `json:"role"` // setRoleScript: empty removes the member
	Email    string `json:"email"`
}

// listMembersScript pages through an organization's members.
// KEYS: org. Arguments: listMembersArgs.
var listMembersScript = redisx.NewScript("orgs.list_members", redisx.OnShard, `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'org_not_found'} end
local ids = redis.call('ZRANGE', k_org_member_ids(A.org), A.start, '+', 'BYLEX', 'LIMIT', 0, A.limit)
local out = {'ok', redis.call('ZCARD', k_org_member_ids(A.org))}
if #ids > 0 then
  local vals = redis.call('HMGET', k_org_members(A.org), unpack(ids))
  for i, id in ipairs(ids) do
    table.insert(out, id)
    table.insert(out, vals[i] or '')
  end
end
return out
`)

// listMembersArgs are listMembersScript's arguments.
type listMembersArgs struct {
	redisx.Env
	Org   string `json:"org"`
	Start string `json:"start"` // lexical start: "-" or "(<id>"
	Limit int    `json:"limit"` // one more than the page
}

// AddMember makes an identity a member. Adding an existing member returns
// the existing membership and added=false.
func (s *Store) AddMember(ctx context.Context, org string, m Member) (Member, bool, error) {
	rep, err := addMemberScript.RunWaiting(ctx, s.rdb, s.wait, []string{s.ks.Org(org)}, &memberArgs{
		Env: s.env(org), Org: org, Identity: m.IdentityID, Role: m.Role, Email: m.Email,
	})
	if err != nil {
		return m, false, storeErr(err)
	}
	switch rep.Outcome {
	case "org_not_found":
		return m, false, errOrgNotFound(org)
	case "seat_limit":
		limit, used := redisx.Int(rep.Values[0]), redisx.Int(rep.Values[1])
		return m, false, apperr.Conflictf("seat_limit", "the organization has no free seat: %d of %d used by members and pending invitations", used, limit).
			WithDetails("limit", limit, "used", used)
	}
	out, err := parseMember(org, m.IdentityID, redisx.Str(rep.Values[0]))
	return out, rep.Outcome == "ok", err
}

// SetRole changes a member's role; an organization never loses its last owner.
func (s *Store) SetRole(ctx context.Context, org, identity, role string) (Member, error) {
	return s.changeMember(ctx, org, identity, role)
}

// RemoveMember ends a membership; the last owner cannot leave.
func (s *Store) RemoveMember(ctx context.Context, org, identity string) (Member, error) {
	return s.changeMember(ctx, org, identity, "")
}

func (s *Store) changeMember(ctx context.Context, org, identity, role string) (Member, error) {
	if _, ok := redisx.ParseID("org", org); !ok {
		return Member{}, errOrgNotFound(org)
	}
	rep, err := setRoleScript.RunWaiting(ctx, s.rdb, s.wait, []string{s.ks.Org(org)},
		&memberArgs{Env: s.env(org), Org: org, Identity: identity, Role: role})
	if err != nil {
		return Member{}, storeErr(err)
	}
	switch rep.Outcome {
	case "org_not_found":
		return Member{}, errOrgNotFound(org)
	case "member_not_found":
		return Member{}, errMemberNotFound(org, identity)
	case "last_owner":
		return Member{}, apperr.Conflictf("last_owner", "an organization must keep at least one owner").
			WithDetails("identity_id", identity)
	}
	return parseMember(org, identity, redisx.Str(rep.Values[0]))
}

func errMemberNotFound(org, identity string) error {
	return apperr.NotFoundf("member_not_found", "identity %q is not a member of %q", identity, org).
		WithDetails("identity_id", identity)
}

// Member reads one membership.
func (s *Store) Member(ctx context.Context, org, identity string) (Member, error) {
	if _, ok := redisx.ParseID("org", org); !ok {
		return Member{}, errOrgNotFound(org)
	}
	raw, err := s.rdb.HGet(ctx, s.ks.OrgMembers(org), identity).Result()
	if err == redis.Nil {
		return Member{}, errMemberNotFound(org, identity)
	}
	if err != nil {
		return Member{}, storeErr(err)
	}
	return parseMember(org, identity, raw)
}

// Members pages through an organization's members, ordered by identity id.
func (s *Store) Members(ctx context.Context, org, cursor string, limit int) (Page[Member], error) {
	var page Page[Member]
	if _, ok := redisx.ParseID("org", org); !ok {
		return page, errOrgNotFound(org)
	}
	start := "-"
	if cursor != "" {
		start = "(" + cursor
	}
	rep, err := listMembersScript.Run(ctx, s.rdb, []string{s.ks.Org(org)},
		&listMembersArgs{Env: s.env(org), Org: org, Start: start, Limit: limit + 1})
	if err != nil {
		return page, storeErr(err)
	}
	if rep.Outcome == "org_not_found" {
		return page, errOrgNotFound(org)
	}
	page.Total = redisx.Int(rep.Values[0])
	rest := rep.Values[1:]
	page.Items = make([]Member, 0, len(rest)/2)
	for i := 0; i+1 < len(rest); i += 2 {
		if len(page.Items) == limit {
			page.NextCursor = page.Items[limit-1].IdentityID
			break
		}
		m, err := parseMember(org, redisx.Str(rest[i]), redisx.Str(rest[i+1]))
		if err != nil {
			return page, err
		}
		page.Items = append(page.Items, m)
	}
	return page, nil
}

type memberRecord struct {
	Role      string `json:"role"`
	Email     string `json:"email"`
	JoinedAt  int64  `json:"joined_at"`
	UpdatedAt int64  `json:"updated_at"`
}

func parseMember(org, identity, raw string) (Member, error) {
	var r memberRecord
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return Member{}, fmt.Errorf("orgs: member %s of %s: %w", identity, org, err)
	}
	return Member{
		OrganizationID: org, IdentityID: identity, Email: r.Email, Role: r.Role,
		JoinedAt: redisx.MsTime(fmt.Sprint(r.JoinedAt)), UpdatedAt: redisx.MsTime(fmt.Sprint(r.UpdatedAt)),
	}, nil
}
