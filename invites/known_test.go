package invites

import (
	"maps"
	"testing"
)

// kratosCalls runs f and returns the Kratos calls it made.
func (h *harness) kratosCalls(f func()) map[string]int {
	h.t.Helper()
	before := maps.Clone(h.ids.Calls)
	f()
	diff := map[string]int{}
	for k, v := range h.ids.Calls {
		if d := v - before[k]; d != 0 {
			diff[k] = d
		}
	}
	return diff
}

// A new address costs Kratos one call: the create.
func TestNewAddressIsOneKratosCall(t *testing.T) {
	h := newHarness(t)
	var inv Invitation
	calls := h.kratosCalls(func() { inv = h.mustInvite("new@example.com") })
	if !maps.Equal(calls, map[string]int{"CreateInvited": 1}) {
		t.Fatalf("Kratos calls %v, want one create", calls)
	}
	if inv.IdentityID == "" || inv.ExistingIdentity || !inv.identityCreated {
		t.Fatalf("invitation %+v", inv)
	}
}

// An address kratos-orgs has seen (an earlier invitation, pending or
// accepted) is read by id: no create, no look-up by identifier.
func TestKnownAddressSkipsTheLookUp(t *testing.T) {
	h := newHarness(t)
	ada := h.ids.Add("ada@example.com", "Ada")
	first := h.mustInvite("ada@example.com")
	h.drain()
	other := h.newOrg("Other")
	var second Invitation
	calls := h.kratosCalls(func() {
		var err error
		if second, _, err = h.svc.Invite(h.ctx, other.ID, InviteRequest{Email: "ada@example.com"}); err != nil {
			t.Fatal(err)
		}
	})
	if !maps.Equal(calls, map[string]int{"Get": 1}) {
		t.Fatalf("Kratos calls %v, want one read by id", calls)
	}
	if first.IdentityID != ada.ID || second.IdentityID != ada.ID || !second.ExistingIdentity {
		t.Fatalf("invitations point at %q and %q, the account is %q", first.IdentityID, second.IdentityID, ada.ID)
	}
	// A placeholder is known the same way.
	h.mustInvite("new@example.com")
	h.drain()
	calls = h.kratosCalls(func() {
		if _, _, err := h.svc.Invite(h.ctx, other.ID, InviteRequest{Email: "new@example.com"}); err != nil {
			t.Fatal(err)
		}
	})
	if !maps.Equal(calls, map[string]int{"Get": 1}) || h.ids.Count() != 2 {
		t.Fatalf("Kratos calls %v, %d identities: want one read and the one placeholder", calls, h.ids.Count())
	}
}

// Knowledge that went stale (the identity was deleted in Kratos meanwhile)
// falls back to creating first; an address that changed hands falls back to
// the conflict and the look-up.
func TestStaleKnownIdentityFallsBack(t *testing.T) {
	h := newHarness(t)
	ada := h.ids.Add("ada@example.com", "Ada")
	h.mustInvite("ada@example.com")
	h.drain()
	if err := h.ids.Delete(h.ctx, ada.ID); err != nil {
		t.Fatal(err)
	}
	other := h.newOrg("Other")
	inv, _, err := h.svc.Invite(h.ctx, other.ID, InviteRequest{Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if inv.IdentityID == ada.ID || inv.IdentityID == "" || !inv.identityCreated {
		t.Fatalf("the invitation points at %q (the deleted identity was %q)", inv.IdentityID, ada.ID)
	}
	// The hint now names a deleted identity; a new account holds the address.
	placeholder := inv.IdentityID
	_ = h.ids.Delete(h.ctx, placeholder)
	bob := h.ids.Add("ada@example.com", "Ada again")
	third := h.newOrg("Third")
	calls := h.kratosCalls(func() {
		if inv, _, err = h.svc.Invite(h.ctx, third.ID, InviteRequest{Email: "ada@example.com"}); err != nil {
			t.Fatal(err)
		}
	})
	if inv.IdentityID != bob.ID || !inv.ExistingIdentity {
		t.Fatalf("the invitation points at %q, the account is %q", inv.IdentityID, bob.ID)
	}
	if !maps.Equal(calls, map[string]int{"Get": 1, "CreateInvited": 1, "FindByEmail": 1}) {
		t.Fatalf("Kratos calls %v", calls)
	}
}

// A placeholder deleted because nothing references it any more is
// forgotten with it.
func TestReleasedPlaceholderIsForgotten(t *testing.T) {
	h := newHarness(t)
	inv := h.mustInvite("new@example.com")
	h.drain()
	if got := h.rdb.Get(h.ctx, h.ks.AddressIdentity("new@example.com")).Val(); got != inv.IdentityID {
		t.Fatalf("known identity %q, want %q", got, inv.IdentityID)
	}
	if _, err := h.svc.Revoke(h.ctx, inv.ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if h.ids.Count() != 0 {
		t.Fatal("the placeholder outlived its invitation")
	}
	if n := h.rdb.Exists(h.ctx, h.ks.AddressIdentity("new@example.com")).Val(); n != 0 {
		t.Fatal("the deleted placeholder is still remembered")
	}
}
