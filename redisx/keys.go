// Package redisx owns kratos-orgs' use of Redis: building the client for any
// deployment (single, Sentinel, Cluster, embedded), the key layout below, and
// the identifiers that carry their key's hash slot.
//
// # Key layout
//
// Everything one atomic step touches shares a hash tag, so every Lua script
// runs on one slot and the same code works on Redis Cluster. Organizations
// are spread over Shards tags; an organization's invitations, tokens and
// outbox entries live in its tag, and every organization or invitation id
// names its shard (see NewID), as does every invitation token.
//
//	P{g}:slugs                        HASH   slug → org id
//	P{g}:orgs                         ZSET   org ids (lexical = creation order)
//
//	P{s}:org:<org>                    HASH   organization fields
//	P{s}:org:<org>:members            HASH   identity id → member JSON
//	P{s}:org:<org>:member_ids         ZSET   identity ids (lexical)
//	P{s}:org:<org>:owners             SET    identity ids with role owner
//	P{s}:org:<org>:inv:ids            ZSET   invitation ids (lexical = creation order)
//	P{s}:org:<org>:inv:st:<status>    ZSET   invitation ids by stored status
//	P{s}:org:<org>:inv:pending        ZSET   pending invitation id → expiry (ms)
//	P{s}:org:<org>:inv:email          HASH   address → its pending invitation id
//	P{s}:org:<org>:inv:addr:<email>   SET    every invitation id for an address
//	P{s}:inv:<inv>                    HASH   invitation fields
//	P{s}:tok:<sha256(token)>          STRING invitation id; expires with the invitation
//	P{s}:due                          ZSET   pending invitation id → expiry (ms), for the sweeper
//	P{s}:purge                        ZSET   ended invitation id → purge time (ms)
//	P{s}:outbox                       STREAM jobs (mail, index repair, cleanup)
//	P{s}:outbox:delayed               ZSET   job JSON → due time (ms), retries with backoff
//	P{s}:outbox:dead                  STREAM jobs that ran out of attempts
//	P{s}:stats                        HASH   invitation events (created, rotated, accepted, ...) → count
//	P{s}:moved:<identity>             STRING a placeholder is being replaced by a Kratos sign-up: an
//	                                         invitation written for it here is written detached (TTL)
//
//	P{a:<sha256(email)>}:pending      ZSET   org id → expiry (ms) of its pending invitation
//	P{a:<sha256(email)>}:refs         HASH   invitation id → "<org id> <ms>": every invitation for the
//	                                         address that may be pending, registered before it is written
//	P{a:<sha256(email)>}:claim        STRING "delete|…" or "takeover|…": one process is deleting or
//	                                         replacing the address' placeholder identity (TTL: the lease)
//	P{i:<identity>}:orgs              HASH   org id → role
//
// The {a:…} and {i:…} keys are indexes across organizations. pending and
// orgs are written by outbox jobs after the atomic step, idempotently, so
// they converge even when a process dies in between. refs is different: an
// invitation's reference is written before the invitation, so refs is
// always a superset of the address' pending invitations, and deciding "no
// invitation references this placeholder" and claiming its deletion is one
// script on the {a:…} slot (see invites/placeholders.go). A reference is
// removed only once its invitation is seen final (final states never
// change), or never written within its deadline.
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

// Org is an organization's hash.
func (k Keyspace) Org(org string) string { return k.Shard(ShardOf(org)) + "org:" + org }

// Invitation is an invitation's hash.
func (k Keyspace) Invitation(inv string) string {
	return k.Shard(ShardOf(inv)) + "inv:" + inv
}

// Token is the key of a token hash in a shard.
func (k Keyspace) Token(shard int, tokenHash string) string {
	return k.Shard(shard) + "tok:" + tokenHash
}

// Outbox is the job stream of shard s.
func (k Keyspace) Outbox(s int) string { return k.Shard(s) + "outbox" }

// OutboxDelayed holds jobs waiting for a retry in shard s.
func (k Keyspace) OutboxDelayed(s int) string { return k.Shard(s) + "outbox:delayed" }

// OutboxDead holds jobs that ran out of attempts in shard s.
func (k Keyspace) OutboxDead(s int) string { return k.Shard(s) + "outbox:dead" }

// Stats counts invitation events in shard s (metrics).
func (k Keyspace) Stats(s int) string { return k.Shard(s) + "stats" }

// Due holds the expiry of every pending invitation of shard s.
func (k Keyspace) Due(s int) string { return k.Shard(s) + "due" }

// AddressPending maps org id → expiry of the pending invitation for an
// address. The address is hashed: key names carry no personal data, and
// braces in an address cannot change the hash tag.
func (k Keyspace) AddressPending(email string) string {
	return k.address(email) + "pending"
}

// AddressRefs maps invitation id → "<org id> <registered ms>" for every
// invitation of an address that may be pending (same slot as AddressPending).
func (k Keyspace) AddressRefs(email string) string { return k.address(email) + "refs" }

// AddressClaim is held while an address' placeholder identity is being
// deleted or replaced (same slot as AddressPending).
func (k Keyspace) AddressClaim(email string) string { return k.address(email) + "claim" }

func (k Keyspace) address(email string) string {
	sum := sha256.Sum256([]byte(email))
	return k.Prefix + "{a:" + hex.EncodeToString(sum[:16]) + "}:"
}

// Moved marks, in shard s, a placeholder identity that a Kratos sign-up is
// replacing: invitations written for it in that shard are written detached.
func (k Keyspace) Moved(s int, identityID string) string { return k.Shard(s) + "moved:" + identityID }

// IdentityOrgs maps org id → role for one Kratos identity.
func (k Keyspace) IdentityOrgs(identityID string) string {
	return k.Prefix + "{i:" + identityID + "}:orgs"
}
