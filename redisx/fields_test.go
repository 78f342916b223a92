package redisx

import (
	"strings"
	"testing"
)

// A first-layout record read outside a script gets today's names; empty
// fields and the id (the key's) are dropped; today's records pass as is.
func TestUpgradeInvitationFields(t *testing.T) {
	t.Parallel()
	old := map[string]string{"id": "inv_x", "status": "pending", "email": "a@b.c", "token_hash": "ab",
		"context": "", "delivery_attempts": "2", "future_field": "kept"}
	got := UpgradeInvitationFields(old)
	want := map[string]string{"s": "pending", "e": "a@b.c", "t": "ab", "dn": "2", "future_field": "kept"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	today := map[string]string{"s": "pending", "x": "1"}
	if got := UpgradeInvitationFields(today); len(got) != 2 || got["x"] != "1" {
		t.Errorf("today's record changed: %v", got)
	}
}

// The prelude's LEGACY table names every first-layout field, and no two
// old names share a new one.
func TestLegacyFieldsInPrelude(t *testing.T) {
	t.Parallel()
	lua := luaLegacyFields()
	seen := map[string]string{}
	for long, short := range LegacyInvitationFields {
		if !strings.Contains(lua, " "+long+" = '"+short+"',") && !strings.Contains(lua, "{"+long+" = '"+short+"',") {
			t.Errorf("%s missing from %s", long, lua)
		}
		if prev, dup := seen[short]; dup && short != "" {
			t.Errorf("%s and %s both become %q", prev, long, short)
		}
		seen[short] = long
	}
}
