package events

import "github.com/kratos-orgs/kratos-orgs/redisx"

// The dispatcher's scripts; every one runs on one shard's slot (its keys
// come from Keyspace: EventLease, EventEndpoint, EventLog).

// leaseScript takes or renews the lease of an (endpoint, shard), and
// renews the endpoint's state TTL while it is held.
// KEYS: lease, state. Arguments: leaseArgs.
var leaseScript = redisx.NewScript("events.lease", redisx.Standalone, `
local cur = redis.call('GET', KEYS[1])
if cur == A.token then
  redis.call('PEXPIRE', KEYS[1], A.ttl)
elseif cur then
  return 0
else
  redis.call('SET', KEYS[1], A.token, 'PX', A.ttl)
end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], A.state_ttl) end
return 1
`)

type leaseArgs struct {
	Token    string `json:"token"`
	TTL      int64  `json:"ttl"`       // ms
	StateTTL int64  `json:"state_ttl"` // ms
}

// unleaseScript gives a lease back if it is still ours.
// KEYS: lease. Arguments: leaseArgs.
var unleaseScript = redisx.NewScript("events.unlease", redisx.Standalone, `
if redis.call('GET', KEYS[1]) == A.token then redis.call('DEL', KEYS[1]) end
return 1
`)

// stepScript records what happened to the head event of an (endpoint,
// shard), only while the lease is ours: the cursor moves past it (done:
// delivered, filtered out or given up) or the next try is scheduled; and
// the attempt goes to the delivery log.
// KEYS: lease, state, log. Arguments: stepArgs.
var stepScript = redisx.NewScript("events.step", redisx.Standalone, `
if A.token ~= '' and redis.call('GET', KEYS[1]) ~= A.token then return 'lost' end
if A.done then
  redis.call('HSET', KEYS[2], 'cursor', A.id, 'attempts', 0, 'next', 0, 'error', '')
else
  redis.call('HSET', KEYS[2], 'attempts', A.attempts, 'next', A.next, 'error', A.error)
end
redis.call('PEXPIRE', KEYS[2], A.state_ttl)
if A.log then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', 1000, '*', 'endpoint', A.endpoint, 'webhook_id', A.webhook_id,
    'type', A.type, 'org', A.org, 'outcome', A.outcome, 'status', A.status, 'attempt', A.attempts, 'error', A.error,
    'ms', A.ms, 'at', A.now)
end
return 'ok'
`)

type stepArgs struct {
	Token     string `json:"token"` // empty: no lease (a redelivery from the CLI)
	Done      bool   `json:"done"`
	ID        string `json:"id"` // the stream entry
	Attempts  int    `json:"attempts"`
	Next      int64  `json:"next"` // ms
	Error     string `json:"error"`
	StateTTL  int64  `json:"state_ttl"`
	Log       bool   `json:"log"`
	Endpoint  string `json:"endpoint"`
	WebhookID string `json:"webhook_id"`
	Type      string `json:"type"`
	Org       string `json:"org"`
	Outcome   string `json:"outcome"`
	Status    int    `json:"status"`
	Ms        int64  `json:"ms"`
	Now       int64  `json:"now"`
}

// logScript appends a redelivery to the log without touching the cursor.
// KEYS: log. Arguments: stepArgs.
var logScript = redisx.NewScript("events.log", redisx.Standalone, `
redis.call('XADD', KEYS[1], 'MAXLEN', '~', 1000, '*', 'endpoint', A.endpoint, 'webhook_id', A.webhook_id,
  'type', A.type, 'org', A.org, 'outcome', A.outcome, 'status', A.status, 'attempt', A.attempts, 'error', A.error,
  'ms', A.ms, 'at', A.now)
return 'ok'
`)

// recordScript records a change made by Go code without a script of its
// own (Recorder.Record): the prelude's record step alone.
// KEYS: the organization's audit stream. Arguments: recordArgs.
var recordScript = redisx.NewScript("events.record", redisx.OnShard, `
record(A.org, A.type, A.data)
return 'ok'
`)

type recordArgs struct {
	redisx.Env
	Org  string         `json:"org"`
	Type string         `json:"type"`
	Data map[string]any `json:"data"`
}
