package redisx

import (
	"strings"
)

// shardKey is one family of keys inside a shard: its name after the shard
// prefix "P{s}:", with <param> placeholders ("org:<org>:inv:st:<status>").
// The same template builds the key in Go (Keyspace's methods) and in Lua
// (the k_* functions luaKeyFunctions renders into the prelude), so the
// layout is written here once and nowhere else.
type shardKey struct {
	lua    string   // the prelude's function name
	parts  []string // literal text: parts[0] param[0] parts[1] … param[n-1] parts[n]
	params []string // parameter names, in order
}

// newShardKey parses a template. Literals may not hold a quote or a
// backslash: they are pasted into Lua source.
func newShardKey(lua, template string) *shardKey {
	k := &shardKey{lua: lua}
	rest := template
	for {
		open := strings.IndexByte(rest, '<')
		if open < 0 {
			k.parts = append(k.parts, rest)
			break
		}
		end := strings.IndexByte(rest[open:], '>')
		if end < 0 {
			panic("redisx: unterminated parameter in key template " + template)
		}
		k.parts = append(k.parts, rest[:open])
		k.params = append(k.params, rest[open+1:open+end])
		rest = rest[open+end+1:]
	}
	if strings.ContainsAny(template, `'"\`) {
		panic("redisx: quote or backslash in key template " + template)
	}
	return k
}

// The keys of a shard (see the table in keys.go). Scripts on the shard's
// slot reach them through the generated k_* functions; Go through
// Keyspace's methods.
var (
	keyOrg          = newShardKey("k_org", "org:<org>")
	keyOrgMembers   = newShardKey("k_org_members", "org:<org>:members")
	keyOrgMemberIDs = newShardKey("k_org_member_ids", "org:<org>:member_ids")
	keyOrgOwners    = newShardKey("k_org_owners", "org:<org>:owners")
	keyOrgInvStatus = newShardKey("k_org_inv_status", "org:<org>:inv:st:<status>")
	keyOrgInvEmail  = newShardKey("k_org_inv_email", "org:<org>:inv:email")
	keyOrgInvEnded  = newShardKey("k_org_inv_ended", "org:<org>:inv:ended")
	keyInvitation   = newShardKey("k_inv", "inv:<inv>")
	keyTokens       = newShardKey("k_tokens", "tokens")
	keyDue          = newShardKey("k_due", "due")
	keyPurge        = newShardKey("k_purge", "purge")
	keyRemind       = newShardKey("k_remind", "remind")
	keyClaims       = newShardKey("k_claims", "claims")
	keyOutbox       = newShardKey("k_outbox", "outbox")
	keyOutboxDelay  = newShardKey("k_outbox_delayed", "outbox:delayed")
	keyOutboxDead   = newShardKey("k_outbox_dead", "outbox:dead")
	keyStats        = newShardKey("k_stats", "stats")
	keyMoved        = newShardKey("k_moved", "moved:<identity>")
	// keyOrgBulk is read and written by Go alone (SET NX, GET): not in
	// shardLayout, so the prelude does not grow for it.
	keyOrgBulk    = newShardKey("k_org_bulk", "org:<org>:bulk:<key>")
	keyOrgDomains = newShardKey("k_org_domains", "org:<org>:domains")
	keyOrgAudit   = newShardKey("k_org_audit", "org:<org>:audit")
	keyEvents     = newShardKey("k_events", "events")
	// The dispatcher's keys (package events); its scripts get them in KEYS.
	keyEventEndpoint = newShardKey("k_event_ep", "events:ep:<endpoint>")
	keyEventLease    = newShardKey("k_event_lease", "events:ep:<endpoint>:lease")
	keyEventLog      = newShardKey("k_event_log", "events:log")

	// The first layout's invitation keys: read and emptied by the prelude's
	// upgrade step, never written (see fields.go).
	keyOrgInvIDs  = newShardKey("k_org_inv_ids", "org:<org>:inv:ids")
	keyOrgInvPend = newShardKey("k_org_inv_pending", "org:<org>:inv:pending")
	keyOrgInvAddr = newShardKey("k_org_inv_addr", "org:<org>:inv:addr:<email>")
	keyToken      = newShardKey("k_tok", "tok:<hash>")
	keyTokenInfo  = newShardKey("k_tokinfo", "tokinfo:<hash>")
)

// shardLayout lists every shard key family, for the prelude. Listing them
// (rather than registering in newShardKey) makes the prelude depend on
// them, so Go initializes them first.
var shardLayout = []*shardKey{
	keyOrg, keyOrgMembers, keyOrgMemberIDs, keyOrgOwners, keyOrgInvStatus, keyOrgInvEmail, keyOrgInvEnded,
	keyInvitation, keyTokens, keyDue, keyPurge, keyRemind, keyClaims, keyOutbox, keyOutboxDelay, keyOutboxDead, keyStats,
	keyMoved, keyOrgDomains, keyOrgAudit, keyEvents, keyEventEndpoint, keyEventLease, keyEventLog, keyOrgInvIDs, keyOrgInvPend, keyOrgInvAddr, keyToken, keyTokenInfo,
}

// build is the Go side: the key of this family in shard prefix p.
func (t *shardKey) build(p string, args ...string) string {
	if len(args) != len(t.params) {
		panic("redisx: key " + t.lua + " takes " + strings.Join(t.params, ", "))
	}
	n := len(p)
	for _, s := range t.parts {
		n += len(s)
	}
	for _, s := range args {
		n += len(s)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(p)
	for i, s := range t.parts {
		b.WriteString(s)
		if i < len(args) {
			b.WriteString(args[i])
		}
	}
	return b.String()
}

// luaFunction is the Lua side: a local function of the prelude, relative to the
// script's shard prefix P.
func (t *shardKey) luaFunction() string {
	var b strings.Builder
	b.WriteString("local function " + t.lua + "(" + strings.Join(t.params, ", ") + ") return P")
	for i, s := range t.parts {
		if s != "" {
			b.WriteString(" .. '" + s + "'")
		}
		if i < len(t.params) {
			b.WriteString(" .. " + t.params[i])
		}
	}
	b.WriteString(" end\n")
	return b.String()
}

// luaKeyFunctions renders every shard key family as a prelude function.
func luaKeyFunctions() string {
	var b strings.Builder
	for _, k := range shardLayout {
		b.WriteString(k.luaFunction())
	}
	return b.String()
}
