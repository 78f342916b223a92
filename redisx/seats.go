package redisx

// OrgMaxMembers is the organization hash's field holding its seat limit
// (max_members); absent means unlimited.
const OrgMaxMembers = "max_members"

// seatSteps extend the shard prelude with an organization's seats: its
// members plus its pending invitations (those being accepted included),
// counted in O(1) from the sets the other steps keep, so the count has one
// source of truth and a script checks it atomically with its write.
const seatSteps = `
-- seat_limit is an organization's max_members, or false (unlimited).
local function seat_limit(org)
  return tonumber(redis.call('HGET', k_org(org), 'max_members') or '')
end

-- seats_used counts members plus pending invitations.
local function seats_used(org)
  return redis.call('HLEN', k_org_members(org)) + redis.call('ZCARD', k_org_inv_status(org, 'pending'))
end

-- seats_full reports whether org has no room for n more seats, and then
-- its limit and what is used. Before refusing it ends a bounded batch of
-- the shard's overdue invitations, so a link that expired but was not
-- swept yet does not hold a seat.
local function seats_full(org, n)
  local limit = seat_limit(org)
  if not limit then return false end
  if seats_used(org) + n <= limit then return false end
  for _, id in ipairs(redis.call('ZRANGE', k_due(), '-inf', NOW, 'BYSCORE', 'LIMIT', 0, 100)) do
    current_status(id)
  end
  local used = seats_used(org)
  if used + n <= limit then return false end
  return true, limit, used
end

-- members_full reports whether an acceptance would take org's members past
-- its limit (a pending invitation holds its seat already: only the
-- members count, so a limit lowered below what is used refuses
-- acceptances until members leave or the limit is raised), and then its
-- limit and what is used.
local function members_full(org)
  local limit = seat_limit(org)
  if not limit or redis.call('HLEN', k_org_members(org)) < limit then return false end
  return true, limit, seats_used(org)
end
`
