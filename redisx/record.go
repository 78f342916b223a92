package redisx

import (
	"context"
	"time"
)

// # What happened: the audit trail and the event stream
//
// Every script that changes an organization, a membership or an
// invitation calls the prelude's record(org, type, data) in the same
// atomic step as the change. It appends
//
//   - to the organization's audit stream (P{s}:org:<org>:audit): the type,
//     who did it (Actor: an admin API key, a Kratos identity, a Kratos
//     webhook, a public page, the system), from which client address, when
//     and the data (ids, addresses, roles; never a token or a link),
//     trimmed to RecordOptions' length and age;
//   - when event endpoints are configured, to the shard's event stream
//     (P{s}:events, capped), which package events delivers as signed
//     webhooks.
//
// A script adds one line: record(org, 'invitation.bounced', {invitation_id
// = id, email = e}). Go code that changes something without a script
// emits with events.Recorder.Record (one call, one small script).

// Actor is who made a change: what the audit trail says and the scripts
// receive (Env.Actor), taken from the request's context.
type Actor struct {
	// Type is admin (an admin API key), identity (a Kratos session),
	// webhook (a Kratos webhook), public (an invitation or sign-up page),
	// or system (a worker, the sweeper; also when Type is empty).
	Type string `json:"type"`
	// ID names the actor: the admin key's fingerprint ("key:" and the first
	// 12 hex digits of its SHA-256), the identity id, the webhook's name.
	ID string `json:"id,omitempty"`
	// Addr is the client address (the socket's peer, or what a trusted
	// proxy says).
	Addr string `json:"addr,omitempty"`
}

type actorKey struct{}

// WithActor returns ctx carrying a: every script run with it records a as
// the author of its changes.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorOf returns the actor ctx carries; the system when none.
func ActorOf(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok && a.Type != "" {
		return a
	}
	return Actor{Type: "system"}
}

// RecordOptions configure record: the audit streams' retention and the
// event stream. Zero values take the defaults below.
type RecordOptions struct {
	AuditMaxEntries int64         // per organization (default 10,000, trimmed approximately)
	AuditMaxAge     time.Duration // entries older are trimmed (default 90 days)
	Events          bool          // write the event stream (event endpoints are configured)
	EventMaxEntries int64         // per shard (default 100,000, trimmed approximately)
}

// Default retention of the audit and event streams.
const (
	DefaultAuditMaxEntries = 10000
	DefaultAuditMaxAge     = 90 * 24 * time.Hour
	DefaultEventMaxEntries = 100000
)

// recordEnv is RecordOptions as the prelude reads them (Env.Rec).
type recordEnv struct {
	AuditMax  int64 `json:"audit_max"`
	AuditAge  int64 `json:"audit_age"` // ms
	Events    bool  `json:"events"`
	EventsMax int64 `json:"events_max"`
}

func (o RecordOptions) env() recordEnv {
	e := recordEnv{AuditMax: o.AuditMaxEntries, AuditAge: o.AuditMaxAge.Milliseconds(), Events: o.Events, EventsMax: o.EventMaxEntries}
	if e.AuditMax <= 0 {
		e.AuditMax = DefaultAuditMaxEntries
	}
	if e.AuditAge <= 0 {
		e.AuditAge = DefaultAuditMaxAge.Milliseconds()
	}
	if e.EventsMax <= 0 {
		e.EventsMax = DefaultEventMaxEntries
	}
	return e
}

// bindActor lets Script.Eval put the context's actor into the arguments of
// a script whose argument struct embeds Env (passed by pointer).
func (e *Env) bindActor(a Actor) {
	if e.Actor == nil {
		e.Actor = &a
	}
}

type actorBinder interface{ bindActor(Actor) }

// recordSteps is the prelude's record step (see the top of this file). It
// comes before shardSteps, whose steps (end_invitation, put_member) call
// it. The age trim reads Redis' clock, as the stream ids do.
const recordSteps = `
local REC = A.rec or {}
local ACTOR = A.actor or {type = 'system'}

-- record appends a change of organization org to its audit stream and,
-- when endpoints are configured, to the shard's event stream. typ is the
-- event type (invitation.created, membership.deleted...); data a table of
-- ids, addresses and roles, never a token or a link; who overrides the
-- caller's actor (the system expiring an invitation during a list).
local function record(org, typ, data, who)
  who = who or ACTOR
  local d = cjson.encode(data or {})
  local ak = k_org_audit(org)
  redis.call('XADD', ak, 'MAXLEN', '~', REC.audit_max or 10000, '*', 'type', typ, 'at', NOW,
    'actor', who.type or 'system', 'actor_id', who.id or '', 'addr', who.addr or '', 'data', d)
  if (REC.audit_age or 0) > 0 then
    local t = redis.call('TIME')
    local min = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - REC.audit_age
    if min > 0 then redis.call('XTRIM', ak, 'MINID', '~', min) end
  end
  -- A change recorded after its organization was deleted (an acceptance
  -- racing the deletion) must not leave a trail without an owner.
  if redis.call('EXISTS', k_org(org)) == 0 and redis.call('PTTL', ak) == -1 then
    redis.call('PEXPIRE', ak, REC.audit_age or 7776000000)
  end
  if REC.events then
    redis.call('XADD', k_events(), 'MAXLEN', '~', REC.events_max or 100000, '*', 'type', typ, 'org', org,
      'at', NOW, 'actor', who.type or 'system', 'actor_id', who.id or '', 'data', d)
  end
end

-- close_audit gives a deleted organization's audit stream the audit age
-- as its TTL: its trail (the deletion included) stays readable that long.
local function close_audit(org)
  redis.call('PEXPIRE', k_org_audit(org), REC.audit_age or 7776000000)
end
`
