package invites

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

// The org admins' API does the same Kratos work for an address with an
// account as for one without: the same calls, in the same number.
func TestUniformKratosWorkForKnownAndUnknownAddresses(t *testing.T) {
	h := newHarness(t)
	h.ids.Add("known@example.com", "Known Person")
	calls := map[string]map[string]int{}
	for _, email := range []string{"known@example.com", "unknown@example.com"} {
		before := maps.Clone(h.ids.Calls)
		if _, _, err := h.invite(email, func(r *InviteRequest) { r.UniformKratosWork = true }); err != nil {
			t.Fatal(err)
		}
		diff := map[string]int{}
		for k, v := range h.ids.Calls {
			if d := v - before[k]; d != 0 {
				diff[k] = d
			}
		}
		calls[email] = diff
	}
	if !maps.Equal(calls["known@example.com"], calls["unknown@example.com"]) {
		t.Fatalf("Kratos calls differ: known %v, unknown %v", calls["known@example.com"], calls["unknown@example.com"])
	}
	t.Logf("Kratos calls per invitation: %v", calls["known@example.com"])
	// The admin API is not asked to pay for this: once kratos-orgs has seen
	// the address' identity (the invitation's sync job), it reads it by id.
	h.drain()
	before := h.ids.Calls["CreateInvited"]
	h.mustInvite("known@example.com")
	if h.ids.Calls["CreateInvited"] != before {
		t.Fatal("the admin API path asked Kratos to create an identity for a known address")
	}
	// The known address still got its own identity, no copy.
	if n := h.ids.Count(); n != 2 {
		t.Fatalf("%d identities, want 2 (the known one and the placeholder)", n)
	}
}

func TestOrgAdminViewHidesIdentity(t *testing.T) {
	h := newHarness(t)
	h.ids.Add("known@example.com", "Known Person")
	inv := h.mustInvite("known@example.com")
	if inv.IdentityID == "" || !inv.ExistingIdentity {
		t.Fatalf("admin view %+v", inv)
	}
	b, _ := json.Marshal(ForOrgAdmin(inv))
	for _, leak := range []string{"identity_id", "existing_identity", inv.IdentityID} {
		if strings.Contains(string(b), leak) {
			t.Fatalf("org admins' view carries %q: %s", leak, b)
		}
	}
}

func TestOrgAdminContextIsText(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		ctx   map[string]any
		field string
	}{
		{map[string]any{"team": "Platform", "n": 3.0, "tags": []any{"a", "b"}}, ""},
		{map[string]any{"team": "see http://evil.example"}, "context.team"},
		{map[string]any{"deep": map[string]any{"x": []any{"ok", "www.evil.example"}}}, "context.deep.x[1]"},
		{map[string]any{"rlo": "\u202eabc"}, "context.rlo"},
	} {
		err := checkContextText(tt.ctx)
		if tt.field == "" {
			if err != nil {
				t.Errorf("%v: %v", tt.ctx, err)
			}
			continue
		}
		wantInvalid(t, err, "invalid_name", tt.field)
	}
}
