// Package redisx owns kratos-orgs' use of Redis: building the client for any
// deployment (single, Sentinel, Cluster, embedded), the key layout below, the
// identifiers that carry their key's hash slot, and the one constructor of
// Lua scripts (NewScript) with its prelude.
//
// # Scripts
//
// Every script is built by NewScript, has a name, and is listed by Scripts.
// Its arguments are one JSON object in ARGV[1], decoded by the prelude into
// the table A; Go encodes a small struct per script. Keys come from Go,
// written once: a shard's key names are templates (layout.go) that build
// both Keyspace's methods and the prelude's k_* Lua functions. A script
// gets the keys its caller knows in KEYS and calls k_* for the records it
// finds at run time (ids read from an index); no script body spells a key
// name.
//
// # Key layout
//
// An invitation's record is one small hash (a listpack in Redis), and
// its other entries are members of its organization's and shard's sets:
// no key per invitation but the record, so a pending invitation costs
// under 1 KiB (see invites' BenchmarkOrgSlotInvitations). Data written by
// the first layout (a key per token, one per address, the ids and pending
// sets, long field names) is upgraded by the scripts when they first touch
// it (see fields.go).
//
// Everything one atomic step touches shares a hash tag, so every Lua script
// runs on one slot and the same code works on Redis Cluster. Organizations
// are spread over Shards tags; an organization's invitations, tokens and
// outbox entries live in its tag, and every organization or invitation id
// names its shard (see NewID), as does every invitation token.
//
//	key                               type   holds                                   owner / TTL
//	P{g}:slugs                        HASH   slug → org id                           org delete
//	P{g}:orgs                         ZSET   org ids (lexical = creation order)      org delete
//	P{g}:domains                      HASH   e-mail domain → its claim (JSON: org,    release; an organization's
//	                                         policy, role, verified, token hash)     deletion: the first look-up
//	                                         (package domains)                       after it (org ids never return)
//	P{g}:reconcile                    HASH   the reconciler's cursors, pass times    the reconciler (one field)
//	P{g}:reconcile:lease              STRING the token of the replica reconciling    TTL 30s, renewed while held
//
//	P{s}:org:<org>                    HASH   organization fields                     org delete (a pending
//	                                                                                 registration's: its expiry)
//	P{s}:org:<org>:members            HASH   identity id → member JSON               member removal, org delete
//	P{s}:org:<org>:member_ids         ZSET   identity ids (lexical)                  member removal, org delete
//	P{s}:org:<org>:owners             SET    identity ids with role owner            member removal, org delete
//	P{s}:org:<org>:domains            SET    domains the organization claimed or     release, a refused claim,
//	                                         is claiming (a superset: P{g}:domains   org delete
//	                                         says which are its own)
//	P{s}:org:<org>:inv:st:<status>    ZSET   invitation ids by stored status         status change, purge, org delete
//	P{s}:org:<org>:inv:email          HASH   address → its pending invitation id     invitation end, org delete
//	P{s}:org:<org>:inv:ended          HASH   address → its ended invitation ids      purge, org delete
//	                                         (space-separated)
//	P{s}:org:<org>:bulk:<sha256(key)> STRING a bulk invitation request under an     TTL invites.BulkIdempotencyTTL (24h);
//	                                         Idempotency-Key: body digest, state     BulkRunningTTL (10 min) while it runs
//	                                         (running/done) and the answer JSON
//	P{s}:inv:<inv>                    HASH   invitation fields (short names, empty   purge: ended_at + invitations.retention
//	                                         ones absent: see fields.go)             (0: the next sweep)
//	P{s}:tokens                       HASH   first 32 hex digits of sha256(token) →  rotation (the link before the one
//	                                         invitation id: a link's invitation      replaced), purge
//	                                         (newest link and the one it replaced;
//	                                         live while the record's t is its hash
//	                                         and the invitation is pending)
//	P{s}:due                          ZSET   pending invitation id → expiry (ms)     invitation end
//	P{s}:purge                        ZSET   ended invitation id → purge time (ms)   the sweeper
//	P{s}:remind                       ZSET   pending invitation id → its next        invitation end; the reminder
//	                                         automatic reminder (ms)                 sweep (no offset left)
//	P{s}:claims                       ZSET   invitation being accepted → deadline    finalize, release, the sweeper
//	P{s}:outbox                       STREAM jobs (mail, index repair, cleanup)      XDEL on acknowledgement
//	P{s}:outbox:delayed               ZSET   job JSON → due time (ms)                moved back to the stream when due
//	P{s}:outbox:dead                  STREAM jobs that ran out of attempts           capped at ~10,000 entries
//	P{s}:stats                        HASH   invitation events → count               fixed fields: bounded
//	P{s}:org:<org>:audit              STREAM the organization's changes: type, actor, trimmed to audit.max_entries
//	                                         client address, time, data (record.go)  (~) and audit.max_age; TTL
//	                                                                                 audit.max_age from org delete
//	P{s}:events                       STREAM changes to deliver as webhooks          trimmed to events.max_entries (~)
//	                                         (only with events.endpoints)            and by age by the dispatcher
//	P{s}:events:ep:<endpoint>         HASH   an endpoint's cursor, attempts, next    TTL 7 days, renewed by the
//	                                         try, last error (package events)        dispatcher
//	P{s}:events:ep:<endpoint>:lease   STRING the replica delivering to it             TTL events.lease (30s), renewed
//	P{s}:events:log                   STREAM recent delivery attempts                capped at ~1,000 entries
//	P{s}:moved:<identity>             STRING a placeholder is being replaced by a     TTL (11 min): the takeover's lease
//	                                         Kratos sign-up: an invitation written
//	                                         here for it is written detached
//
//	P{a:<sha256(email)>}:pending      ZSET   org id → expiry (ms) of its pending     invitation.sync jobs; expired
//	                                         invitation                              entries dropped on every write
//	P{a:<sha256(email)>}:pending:stamps HASH org id → last applied observation    TTL StampsTTL (a day)
//	P{a:<sha256(email)>}:pending:register STRING sign-up cooldown of an address   TTL: the cooldown (a minute)
//	P{a:<sha256(email)>}:refs         HASH   invitation id → "<org id> <ms>": every  dropped when the invitation is seen
//	                                         invitation that may be pending,         final, or never written within its
//	                                         registered before it is written         deadline (20 min)
//	P{a:<sha256(email)>}:claim        STRING "delete|…" or "takeover|…": one process TTL: the lease (a minute)
//	                                         deletes or replaces the placeholder
//	P{a:<sha256(email)>}:identity     STRING "<identity id> a|p" last seen for the    TTL KnownIdentityTTL (30 days);
//	                                         address, account or placeholder (used   deleted before the placeholder it
//	                                         without a Kratos call, invites/known.go) names
//	P{a:<sha256(email)>}:suppressed   HASH   why mail to the address stops: reason   an operator (DELETE
//	                                         (bounced|complained), at (ms), the      /admin/suppressions/{email})
//	                                         provider's email id, the address
//	P{m:<sha256(email id)>}:mail      STRING "<invitation id> <token version>": the  TTL MailIndexTTL (30 days)
//	                                         invitation a provider's email id (Resend)
//	                                         was sent for (invites/delivery.go)
//	P{mb}:pin:<sha256(mail key)>      STRING the send a mail is bound to: the key   TTL a day (the provider's
//	                                         of the batch it went out in, or "1"    idempotency window)
//	                                         for a send of its own (invites/
//	                                         mail_batch_store.go)
//	P{mb}:batch:<sha256(batch key)>   STRING a batch's mails: their keys and the    deleted when answered; TTL a day
//	                                         sealed request, to re-send as it was
//	P{mb}:batch:<…>:sent              STRING the batch's answer: id or error per    TTL a day
//	                                         mail
//	P{w:<sha256(webhook id)>}:seen    STRING a provider webhook (svix-id) applied     TTL WebhookSeenTTL (a day)
//	                                         or being applied: a replay changes nothing
//	P{g}:suppressed                   ZSET   suppressed addresses (score 0, lexical)  an operator; entries without
//	                                         for listing                             a record are dropped when listed
//	P{i:<identity>}:orgs              HASH   org id → role                           member.sync jobs
//	P{i:<identity>}:orgs:stamps       HASH   org id → last applied observation       TTL a day
//	P{f:<sha256(flow id)>}:hook:<hook> HASH  a webhook call: body digest, answer    TTL hooks.replay_window (2h)
//	                                         (hooks.RedisReplayStore); for
//	                                         registration.post also "org", the
//	                                         organization the sign-up created
//	                                         (orgs.Store, SignupOrganization)
//
// The {a:…} and {i:…} keys are indexes across organizations. pending and
// orgs are written by outbox jobs after the atomic step, idempotently, so
// they converge even when a process dies in between. refs is different: an
// invitation's reference is written before the invitation, so refs is
// always a superset of the address' pending invitations, and deciding "no
// invitation references this placeholder" and claiming its deletion is one
// script on the {a:…} slot (see invites/placeholders.go). A reference is
// removed only once its invitation is seen final (final states never
// change), or never written within its deadline. The reconciler (package
// reconcile) rebuilds pending, orgs and the slug index from the records
// when a job was lost, and deletes the placeholder identities a crash left
// behind. Every key above has an
// owner that deletes it or a TTL; invites' TestBoundedStateOverCycles
// checks that a thousand invitation and sign-up lifecycles leave the key
// count and memory where they started.
//
//	P{rl:<limit>:<sha256(key)>}       STRING GCRA theoretical arrival time (ms)   TTL: until the bucket is full again
//
// Rate-limit buckets (package ratelimit) each have their own tag: one key,
// one slot, one round trip per check. The key inside (a client address, an
// identity, an organization, an address) is hashed, so no personal data is
// in key names and no brace in it can change the hash tag.
package redisx

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// Shards is the number of hash tags organizations are spread over. It is
// part of the data format: changing it would orphan existing keys.
const Shards = 16

// Keyspace builds key names under a prefix.
type Keyspace struct {
	Prefix string
	// Record configures the audit and event streams the scripts append to
	// (record.go); the zero value has audits on, events off.
	Record RecordOptions
}

// Shard is the key prefix of shard s, hash tag included: "P{7}:".
func (k Keyspace) Shard(s int) string {
	return k.Prefix + "{" + strconv.Itoa(s) + "}:"
}

// Global is the key prefix of the global tag: "P{g}:".
func (k Keyspace) Global() string { return k.Prefix + "{g}:" }

// Slugs is the slug → org id hash.
func (k Keyspace) Slugs() string { return k.Global() + "slugs" }

// Orgs is the ordered set of all organization ids.
func (k Keyspace) Orgs() string { return k.Global() + "orgs" }

// Domains maps a claimed e-mail domain to its claim (package domains): one
// hash in the global tag, so "a domain belongs to at most one
// organization" is one atomic check.
func (k Keyspace) Domains() string { return k.Global() + "domains" }

// OrgDomains holds the domains an organization claimed or is claiming, in
// its shard: deleted with the organization.
func (k Keyspace) OrgDomains(org string) string {
	return keyOrgDomains.build(k.Shard(ShardOf(org)), org)
}

// Reconcile holds the reconciler's cursors, so successive bounded runs,
// on any replica, continue where the last one stopped.
func (k Keyspace) Reconcile() string { return k.Global() + "reconcile" }

// ReconcileLease is held by the one replica running the reconciler.
func (k Keyspace) ReconcileLease() string { return k.Global() + "reconcile:lease" }

// Org is an organization's hash.
func (k Keyspace) Org(org string) string { return keyOrg.build(k.Shard(ShardOf(org)), org) }

// OrgMembers maps identity id → member JSON for an organization.
func (k Keyspace) OrgMembers(org string) string {
	return keyOrgMembers.build(k.Shard(ShardOf(org)), org)
}

// OrgMemberIDs orders an organization's member identity ids.
func (k Keyspace) OrgMemberIDs(org string) string {
	return keyOrgMemberIDs.build(k.Shard(ShardOf(org)), org)
}

// OrgOwners holds the identity ids with role owner.
func (k Keyspace) OrgOwners(org string) string {
	return keyOrgOwners.build(k.Shard(ShardOf(org)), org)
}

// OrgInvitations ordered all of an organization's invitation ids (first
// layout; the status sets hold them all now).
func (k Keyspace) OrgInvitations(org string) string {
	return keyOrgInvIDs.build(k.Shard(ShardOf(org)), org)
}

// OrgInvitationsByStatus holds an organization's invitation ids of one
// stored status.
func (k Keyspace) OrgInvitationsByStatus(org, status string) string {
	return keyOrgInvStatus.build(k.Shard(ShardOf(org)), org, status)
}

// OrgPending mapped an organization's pending invitation ids → expiry
// (first layout; the shard's Due set holds the expiries now).
func (k Keyspace) OrgPending(org string) string {
	return keyOrgInvPend.build(k.Shard(ShardOf(org)), org)
}

// OrgPendingByEmail maps address → the organization's pending invitation id.
func (k Keyspace) OrgPendingByEmail(org string) string {
	return keyOrgInvEmail.build(k.Shard(ShardOf(org)), org)
}

// OrgEndedByAddress maps address → the ids of the organization's ended
// invitations for it, space-separated (its pending one is in
// OrgPendingByEmail).
func (k Keyspace) OrgEndedByAddress(org string) string {
	return keyOrgInvEnded.build(k.Shard(ShardOf(org)), org)
}

// OrgAddressInvitations held every invitation id of an organization for
// one address (first layout).
func (k Keyspace) OrgAddressInvitations(org, email string) string {
	return keyOrgInvAddr.build(k.Shard(ShardOf(org)), org, email)
}

// OrgBulk holds the answer of an organization's bulk invitation request
// under an Idempotency-Key; key is the caller's scope and the header's
// value, hashed (no brace in it can move the hash tag).
func (k Keyspace) OrgBulk(org, key string) string {
	sum := sha256.Sum256([]byte(key))
	return keyOrgBulk.build(k.Shard(ShardOf(org)), org, hex.EncodeToString(sum[:16]))
}

// Invitation is an invitation's hash.
func (k Keyspace) Invitation(inv string) string {
	return keyInvitation.build(k.Shard(ShardOf(inv)), inv)
}

// Tokens is shard s's token index: the first 32 hex digits of a token's
// SHA-256 → its invitation id (TokenField).
func (k Keyspace) Tokens(shard int) string { return keyTokens.build(k.Shard(shard)) }

// TokenField is a token hash's field in the token index: its first 128
// bits, enough to find the one invitation whose record holds the whole
// hash.
func TokenField(tokenHash string) string {
	if len(tokenHash) > 32 {
		return tokenHash[:32]
	}
	return tokenHash
}

// Token was the live link of a token hash in a shard (first layout).
func (k Keyspace) Token(shard int, tokenHash string) string {
	return keyToken.build(k.Shard(shard), tokenHash)
}

// TokenInfo explained a dead link: which invitation a token hash was for
// (first layout).
func (k Keyspace) TokenInfo(shard int, tokenHash string) string {
	return keyTokenInfo.build(k.Shard(shard), tokenHash)
}

// Outbox is the job stream of shard s.
func (k Keyspace) Outbox(s int) string { return keyOutbox.build(k.Shard(s)) }

// OutboxDelayed holds jobs waiting for a retry in shard s.
func (k Keyspace) OutboxDelayed(s int) string { return keyOutboxDelay.build(k.Shard(s)) }

// OutboxDead holds jobs that ran out of attempts in shard s.
func (k Keyspace) OutboxDead(s int) string { return keyOutboxDead.build(k.Shard(s)) }

// OrgAudit is an organization's audit stream (record.go).
func (k Keyspace) OrgAudit(org string) string {
	return keyOrgAudit.build(k.Shard(ShardOf(org)), org)
}

// Events is shard s's event stream: the changes package events delivers.
func (k Keyspace) Events(s int) string { return keyEvents.build(k.Shard(s)) }

// EventEndpoint is the delivery state of one event endpoint (by name) in
// shard s: its cursor, attempts and next try.
func (k Keyspace) EventEndpoint(s int, endpoint string) string {
	return keyEventEndpoint.build(k.Shard(s), endpoint)
}

// EventLease is held by the one replica delivering shard s's events to
// an endpoint.
func (k Keyspace) EventLease(s int, endpoint string) string {
	return keyEventLease.build(k.Shard(s), endpoint)
}

// EventLog records shard s's recent delivery attempts (kratos-orgs events).
func (k Keyspace) EventLog(s int) string { return keyEventLog.build(k.Shard(s)) }

// Stats counts invitation events in shard s (metrics).
func (k Keyspace) Stats(s int) string { return keyStats.build(k.Shard(s)) }

// Due holds the expiry of every pending invitation of shard s.
func (k Keyspace) Due(s int) string { return keyDue.build(k.Shard(s)) }

// Purge holds the purge time of every ended invitation of shard s.
func (k Keyspace) Purge(s int) string { return keyPurge.build(k.Shard(s)) }

// Remind holds the time of the next automatic reminder of every pending
// invitation of shard s that has one (invitations.reminders).
func (k Keyspace) Remind(s int) string { return keyRemind.build(k.Shard(s)) }

// Claims holds the deadline of every invitation being accepted in shard s.
func (k Keyspace) Claims(s int) string { return keyClaims.build(k.Shard(s)) }

// AddressPending maps org id → expiry of the pending invitation for an
// address. The address is hashed: key names carry no personal data, and
// braces in an address cannot change the hash tag.
func (k Keyspace) AddressPending(email string) string {
	return k.address(email) + "pending"
}

// AddressRefs maps invitation id → "<org id> <registered ms>" for every
// invitation of an address that may be pending (same slot as AddressPending).
func (k Keyspace) AddressRefs(email string) string { return k.address(email) + "refs" }

// AddressSignupCooldown is set while an address may not start another
// sign-up (same slot as AddressPending).
func (k Keyspace) AddressSignupCooldown(email string) string {
	return k.address(email) + "pending:register"
}

// AddressPendingStamps holds, per org id, the last observation applied to
// AddressPending (same slot).
func (k Keyspace) AddressPendingStamps(email string) string {
	return k.address(email) + "pending:stamps"
}

// AddressClaim is held while an address' placeholder identity is being
// deleted or replaced (same slot as AddressPending).
func (k Keyspace) AddressClaim(email string) string { return k.address(email) + "claim" }

// AddressIdentity remembers the Kratos identity last seen for an address
// and its kind, so inviting it again needs no Kratos call (same slot as
// AddressRefs).
func (k Keyspace) AddressIdentity(email string) string { return k.address(email) + "identity" }

func (k Keyspace) address(email string) string {
	sum := sha256.Sum256([]byte(email))
	return k.Prefix + "{a:" + hex.EncodeToString(sum[:16]) + "}:"
}

// AddressSuppression holds why mail to an address is suppressed (a bounce
// or a complaint), until an operator clears it (same slot as AddressPending).
func (k Keyspace) AddressSuppression(email string) string { return k.address(email) + "suppressed" }

// Suppressed lists the suppressed addresses (lexical), for the operator's
// list; each address' record is AddressSuppression.
func (k Keyspace) Suppressed() string { return k.Global() + "suppressed" }

// MailMessage maps a mail provider's email id to the invitation it was
// sent for. The id comes back in webhook bodies: it is hashed, so no brace
// in it can choose the hash tag.
func (k Keyspace) MailMessage(emailID string) string {
	sum := sha256.Sum256([]byte(emailID))
	return k.Prefix + "{m:" + hex.EncodeToString(sum[:16]) + "}:mail"
}

// MailBatches is the hash tag of the mail batch bookkeeping (invites'
// mail_batch_store.go): every mail's pin and every batch's record share
// it, so that pinning a batch's mails and writing its record is one
// script. A batch of up to 100 mails costs one script there, at the pace
// the mail provider allows (a few calls a second): not a hot slot.
func (k Keyspace) MailBatches() string { return k.Prefix + "{mb}:" }

// MailPin names the send a mail (its own idempotency key) is bound to:
// the batch it went out in, or a send of its own.
func (k Keyspace) MailPin(mailKey string) string {
	sum := sha256.Sum256([]byte(mailKey))
	return k.MailBatches() + "pin:" + hex.EncodeToString(sum[:16])
}

// MailBatch holds a batch's request until it is answered; MailBatchSent
// its answer.
func (k Keyspace) MailBatch(batchKey string) string {
	sum := sha256.Sum256([]byte(batchKey))
	return k.MailBatches() + "batch:" + hex.EncodeToString(sum[:16])
}

// MailBatchSent holds a batch's answer: an email id or an error per mail.
func (k Keyspace) MailBatchSent(batchKey string) string { return k.MailBatch(batchKey) + ":sent" }

// WebhookSeen marks a provider webhook message (its svix-id) as applied,
// so a replay of it changes nothing.
func (k Keyspace) WebhookSeen(messageID string) string {
	sum := sha256.Sum256([]byte(messageID))
	return k.Prefix + "{w:" + hex.EncodeToString(sum[:16]) + "}:seen"
}

// Moved marks, in shard s, a placeholder identity that a Kratos sign-up is
// replacing: invitations written for it in that shard are written detached.
func (k Keyspace) Moved(s int, identityID string) string {
	return keyMoved.build(k.Shard(s), identityID)
}

// RateLimit is the GCRA bucket of one limit and one key (a client
// address, an identity, an organization, an e-mail address).
func (k Keyspace) RateLimit(limit, key string) string {
	sum := sha256.Sum256([]byte(key))
	return k.Prefix + "{rl:" + limit + ":" + hex.EncodeToString(sum[:16]) + "}"
}

// IdentityOrgs maps org id → role for one Kratos identity.
func (k Keyspace) IdentityOrgs(identityID string) string {
	return k.Prefix + "{i:" + identityID + "}:orgs"
}

// IdentityOrgsStamps holds, per org id, the last observation applied to
// IdentityOrgs (same slot).
func (k Keyspace) IdentityOrgsStamps(identityID string) string {
	return k.IdentityOrgs(identityID) + ":stamps"
}

// HookCall records one call of a Kratos webhook: its hook name and the
// flow id Kratos sent. The flow id is hashed, like an address: it comes
// from a request body, and braces in it must not choose the hash tag.
func (k Keyspace) HookCall(hook, flowID string) string {
	sum := sha256.Sum256([]byte(flowID))
	return k.Prefix + "{f:" + hex.EncodeToString(sum[:16]) + "}:hook:" + hook
}

// SignupOrganization holds, in its "org" field, the organization a Kratos
// sign-up's flow created (orgs.Store.ClaimSignupOrganization). It is that
// flow's registration.post webhook record: the claim lives and expires with
// the record, so a retry after the record expired creates nothing.
func (k Keyspace) SignupOrganization(flowID string) string {
	return k.HookCall("registration.post", flowID)
}
