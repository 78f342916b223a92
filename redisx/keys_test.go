package redisx

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/tokens"
)

// hashTag is what Redis Cluster hashes: the substring between the first '{'
// and the first '}' after it, when that is not empty; else the whole key.
func hashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
}

func TestHashTag(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]string{
		"p{7}:org:x":  "7",
		"{a}{b}":      "a",
		"nobrace":     "nobrace",
		"p{}:x{y}":    "p{}:x{y}",
		"p{open":      "p{open",
		"p}x{y}":      "y",
		"p{a:x@y}:pp": "a:x@y",
	} {
		if got := hashTag(key); got != want {
			t.Errorf("hashTag(%q) = %q, want %q", key, got, want)
		}
	}
}

// Every key one atomic step touches must hash to the same slot, or Lua
// scripts fail on Redis Cluster with CROSSSLOT.
func TestShardKeysShareHashTag(t *testing.T) {
	t.Parallel()
	for _, prefix := range []string{"", "kratos-orgs:", "tenant-a:orgs:"} {
		k := Keyspace{Prefix: prefix}
		tags := map[string]int{}
		for s := 0; s < Shards; s++ {
			org := NewID("org", s, testNow)
			inv := NewID("inv", s, testNow)
			_, tokHash := tokens.New(s)
			keys := []string{
				k.Shard(s),
				k.Org(org),
				k.OrgMembers(org),
				k.OrgPending(org),
				k.OrgAddressInvitations(org, "a{b}@c.d"),
				k.TokenInfo(s, tokHash),
				k.Tokens(s),
				k.OrgEndedByAddress(org),
				k.OrgPendingByEmail(org),
				k.Claims(s),
				k.Purge(s),
				k.Remind(s),
				k.Invitation(inv),
				k.Token(s, tokHash),
				k.Outbox(s),
				k.OutboxDelayed(s),
				k.OutboxDead(s),
				k.Due(s),
			}
			want := strconv.Itoa(s)
			for _, key := range keys {
				if !strings.HasPrefix(key, prefix) {
					t.Errorf("%q lacks the prefix %q", key, prefix)
				}
				if got := hashTag(key); got != want {
					t.Errorf("prefix %q shard %d: key %q has hash tag %q, want %q", prefix, s, key, got, want)
				}
			}
			tags[hashTag(k.Org(org))] = s
		}
		if len(tags) != Shards {
			t.Errorf("prefix %q: %d distinct shard tags, want %d", prefix, len(tags), Shards)
		}
	}
}

func TestKeyNames(t *testing.T) {
	t.Parallel()
	k := Keyspace{Prefix: "P:"}
	org := NewID("org", 7, testNow)
	inv := NewID("inv", 7, testNow)
	for got, want := range map[string]string{
		k.Shard(7):                            "P:{7}:",
		k.Global():                            "P:{g}:",
		k.Slugs():                             "P:{g}:slugs",
		k.Orgs():                              "P:{g}:orgs",
		k.Org(org):                            "P:{7}:org:" + org,
		k.Invitation(inv):                     "P:{7}:inv:" + inv,
		k.Token(7, "abc"):                     "P:{7}:tok:abc",
		k.Outbox(7):                           "P:{7}:outbox",
		k.OutboxDelayed(7):                    "P:{7}:outbox:delayed",
		k.OutboxDead(7):                       "P:{7}:outbox:dead",
		k.Due(7):                              "P:{7}:due",
		k.IdentityOrgs("id-1"):                "P:{i:id-1}:orgs",
		k.IdentityOrgsStamps("id-1"):          "P:{i:id-1}:orgs:stamps",
		k.OrgMembers(org):                     "P:{7}:org:" + org + ":members",
		k.OrgMemberIDs(org):                   "P:{7}:org:" + org + ":member_ids",
		k.OrgOwners(org):                      "P:{7}:org:" + org + ":owners",
		k.OrgInvitations(org):                 "P:{7}:org:" + org + ":inv:ids",
		k.OrgInvitationsByStatus(org, "x"):    "P:{7}:org:" + org + ":inv:st:x",
		k.OrgPending(org):                     "P:{7}:org:" + org + ":inv:pending",
		k.OrgPendingByEmail(org):              "P:{7}:org:" + org + ":inv:email",
		k.OrgAddressInvitations(org, "a@b.c"): "P:{7}:org:" + org + ":inv:addr:a@b.c",
		k.TokenInfo(7, "abc"):                 "P:{7}:tokinfo:abc",
		k.Tokens(7):                           "P:{7}:tokens",
		k.OrgEndedByAddress(org):              "P:{7}:org:" + org + ":inv:ended",
		k.Purge(7):                            "P:{7}:purge",
		k.Remind(7):                           "P:{7}:remind",
		k.Claims(7):                           "P:{7}:claims",
		k.Stats(7):                            "P:{7}:stats",
		k.Moved(7, "id-1"):                    "P:{7}:moved:id-1",
		k.AddressPendingStamps("x@y.z"):       k.AddressPending("x@y.z") + ":stamps",
		k.AddressSignupCooldown("x@y.z"):      k.AddressPending("x@y.z") + ":register",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	// Global keys share one tag; the cross-organization indexes have their own.
	if hashTag(k.Slugs()) != "g" || hashTag(k.Orgs()) != "g" {
		t.Errorf("global keys %q and %q do not share tag g", k.Slugs(), k.Orgs())
	}
	// Addresses are hashed: no personal data in key names, and braces in
	// an address cannot move the hash tag.
	for _, email := range []string{"x@y.z", "we{ird}@y.z", "}{@y.z"} {
		key := k.AddressPending(email)
		if strings.Contains(key, "@") || !strings.HasPrefix(hashTag(key), "a:") || len(hashTag(key)) != 34 {
			t.Errorf("address key %q", key)
		}
	}
	if k.AddressPending("x@y.z") == k.AddressPending("x@y.zz") {
		t.Error("two addresses share a key")
	}
	if got := hashTag(k.IdentityOrgs("id-1")); got != "i:id-1" {
		t.Errorf("identity tag = %q", got)
	}
	// A malformed id has no shard; its keys land in shard 0 and find nothing.
	if got := k.Org("org_nope"); got != "P:{0}:org:org_nope" {
		t.Errorf("Org of a malformed id = %q", got)
	}
}

func TestEnv(t *testing.T) {
	t.Parallel()
	k := Keyspace{Prefix: "P:"}
	now := time.UnixMilli(1_700_000_000_123)
	got := k.Env(5, now, 90*24*time.Hour)
	want := Env{P: "P:{5}:", Now: 1_700_000_000_123, Retention: 90 * 24 * 3600 * 1000,
		Rec: recordEnv{AuditMax: DefaultAuditMaxEntries, AuditAge: DefaultAuditMaxAge.Milliseconds(), EventsMax: DefaultEventMaxEntries}}
	if got != want {
		t.Errorf("Env = %#v, want %#v", got, want)
	}
}

// A webhook record's hash tag comes from a digest of the flow id: braces
// in a body cannot pick the slot, and each flow has its own.
func TestHookCallKey(t *testing.T) {
	t.Parallel()
	k := Keyspace{Prefix: "kratos-orgs:"}
	a, b := k.HookCall("registration.post", "flow-a"), k.HookCall("registration.post", "x}{evil")
	if tag := hashTag(b); len(tag) != 2+32 || strings.Contains(tag, "evil") {
		t.Fatalf("hash tag of %q = %q", b, tag)
	}
	if hashTag(a) == hashTag(b) || a == k.HookCall("verification.after", "flow-a") || hashTag(a) != hashTag(k.HookCall("verification.after", "flow-a")) {
		t.Fatalf("keys %q, %q: one tag per flow, one key per hook", a, b)
	}
}
