package redisx

import (
	"sort"
	"strings"
)

// An invitation's record (P{s}:inv:<inv>) is a hash with one- or
// two-letter field names, and an empty field is not stored (it reads as
// ""; k as invitation, u and da as c): with about twenty short fields Redis keeps it as one listpack of
// under 450 bytes. Its id is the key's, not a field (scripts and Store.Get
// add it to what they read).
//
//	o  organization id            ii inviter identity id
//	e  address                    in inviter name
//	s  status (pending,           ki Kratos identity id
//	   accepting, accepted,       ke "1": the identity existed before
//	   revoked, expired)          kc "1": kratos-orgs created it
//	k  kind (invitation,          g  granting member's identity id
//	   registration)              cx context (JSON)
//	r  role                       rt redirect_to
//	c  created_at (ms)            d  delivery status
//	u  updated_at (ms)            dn delivery attempts
//	x  expires_at (ms)            de last delivery error
//	l  TTL (ms)                   dm provider's message id
//	t  sha256(token), 32 hex      dr delivery failure reason
//	   digits (128 bits)
//	pt the t it replaced          da delivery updated_at (ms)
//	v  token version              re reminded_at (ms)
//	n  ended_at (ms)              cu claim deadline (ms)
//	ab accepted_by                lc locale (BCP 47)
//	rs reminders sent (manual     rn next automatic reminder
//	   and automatic)                (ms; pending only)
//	rd reminder offsets done (space-separated labels: "a<ms>" after
//	   sending, "b<ms>" before expiry; see invites/reminders.go)
//	                              dt time of the provider event the
//	                                 delivery status reflects (ms;
//	                                 orders webhooks: invites/delivery.go)
//
// The first layout spelled the names out (LegacyInvitationFields). The
// prelude's upgrade step rewrites such a record, with its token keys and
// its address set, into this layout the first time a script touches it;
// readers outside scripts (Store.Get) read both spellings. No migration is
// needed: every pending invitation is touched at the latest by the sweep
// that expires it, every ended one by the purge.

// LegacyInvitationFields maps the first layout's field names to today's;
// "" drops the field (the id, which is the key's).
var LegacyInvitationFields = map[string]string{
	"id": "", "org": "o", "email": "e", "status": "s", "kind": "k", "role": "r",
	"created_at": "c", "updated_at": "u", "expires_at": "x", "ttl_ms": "l",
	"token_hash": "t", "prev_token_hash": "pt", "token_version": "v", "ended_at": "n",
	"accepted_by": "ab", "inviter_id": "ii", "inviter_name": "in", "identity_id": "ki",
	"identity_existing": "ke", "identity_created": "kc", "granted_by": "g", "context": "cx",
	"redirect_to": "rt", "delivery": "d", "delivery_attempts": "dn", "delivery_error": "de",
	"delivery_id": "dm", "delivery_reason": "dr", "delivery_at": "da", "reminded_at": "re",
	"claim_until": "cu",
}

// legacyByShort is LegacyInvitationFields inverted, built once.
var legacyByShort = func() map[string]string {
	m := make(map[string]string, len(LegacyInvitationFields))
	for long, short := range LegacyInvitationFields {
		if short != "" {
			m[short] = long
		}
	}
	return m
}()

// LegacyInvitationField is the first layout's name of today's field short
// ("" when the first layout had none).
func LegacyInvitationField(short string) string { return legacyByShort[short] }

// UpgradeInvitationFields renames a first-layout record's fields in place
// (Go readers of a record the scripts have not upgraded yet); a record
// already in today's layout is returned as is.
func UpgradeInvitationFields(h map[string]string) map[string]string {
	if _, legacy := h["status"]; !legacy {
		return h
	}
	out := make(map[string]string, len(h))
	for name, v := range h {
		if short, known := LegacyInvitationFields[name]; known {
			name = short
		}
		if name != "" && v != "" {
			out[name] = v
		}
	}
	return out
}

// luaLegacyFields renders LegacyInvitationFields as the prelude's LEGACY
// table.
func luaLegacyFields() string {
	names := make([]string, 0, len(LegacyInvitationFields))
	for name := range LegacyInvitationFields {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("local LEGACY = {")
	for _, name := range names {
		b.WriteString(name + " = '" + LegacyInvitationFields[name] + "', ")
	}
	b.WriteString("}\n")
	return b.String()
}
