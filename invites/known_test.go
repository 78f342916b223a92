package invites

import (
	"maps"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/identity"
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
// accepted) costs Kratos nothing: no create, no look-up, no read by id.
func TestKnownAddressCostsNoKratosCall(t *testing.T) {
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
	if len(calls) != 0 {
		t.Fatalf("Kratos calls %v, want none", calls)
	}
	if first.IdentityID != ada.ID || second.IdentityID != ada.ID || !second.ExistingIdentity || second.identityCreated {
		t.Fatalf("invitations point at %q and %q, the account is %q: %+v", first.IdentityID, second.IdentityID, ada.ID, second)
	}
	// A placeholder is known the same way, as a placeholder.
	p := h.mustInvite("new@example.com")
	h.drain()
	var again Invitation
	calls = h.kratosCalls(func() {
		var err error
		if again, _, err = h.svc.Invite(h.ctx, other.ID, InviteRequest{Email: "new@example.com"}); err != nil {
			t.Fatal(err)
		}
	})
	if len(calls) != 0 || h.ids.Count() != 2 {
		t.Fatalf("Kratos calls %v, %d identities: want none and the one placeholder", calls, h.ids.Count())
	}
	if again.IdentityID != p.IdentityID || !again.identityCreated || again.ExistingIdentity {
		t.Fatalf("the second invitation %+v, the placeholder %s", again, p.IdentityID)
	}
}

// A hint written before hints had kinds (a bare id) is read by id, and
// falls back to creating first when it went stale.
func TestUntypedHintIsReadByID(t *testing.T) {
	h := newHarness(t)
	ada := h.ids.Add("ada@example.com", "Ada")
	h.rdb.Set(h.ctx, h.ks.AddressIdentity("ada@example.com"), ada.ID, time.Hour)
	var inv Invitation
	calls := h.kratosCalls(func() { inv = h.mustInvite("ada@example.com") })
	if !maps.Equal(calls, map[string]int{"Get": 1}) || inv.IdentityID != ada.ID || !inv.ExistingIdentity {
		t.Fatalf("Kratos calls %v, invitation %+v", calls, inv)
	}
	_ = h.ids.Delete(h.ctx, ada.ID)
	h.rdb.Set(h.ctx, h.ks.AddressIdentity("ada@example.com"), ada.ID, time.Hour)
	calls = h.kratosCalls(func() { inv = h.mustInvite("ada@example.com", func(r *InviteRequest) { r.Role = "admin" }) })
	if !maps.Equal(calls, map[string]int{"Get": 1, "CreateInvited": 1}) || inv.IdentityID == ada.ID || !inv.identityCreated {
		t.Fatalf("Kratos calls %v, invitation %+v", calls, inv)
	}
}

// A placeholder deleted in Kratos directly leaves a stale hint: the next
// invitation names it without asking Kratos, but acceptance finds it gone
// and detaches the invitation before anything is accepted. The person
// then accepts with the account they make, never as the deleted identity.
func TestStalePlaceholderHintIsDetachedAtAcceptance(t *testing.T) {
	h := newHarness(t)
	acc := newAcceptor(h, "kratos_settings")
	first := h.mustInvite("new@example.com")
	h.drain()
	if err := h.ids.Delete(h.ctx, first.IdentityID); err != nil { // behind kratos-orgs' back
		t.Fatal(err)
	}
	inv, _, err := h.svc.Invite(h.ctx, h.newOrg("Other").ID, InviteRequest{Email: "new@example.com", SendEmail: new(bool)})
	if err != nil {
		t.Fatal(err)
	}
	if inv.IdentityID != first.IdentityID || !inv.identityCreated {
		t.Fatalf("invitation %+v: want it on the hinted placeholder %s", inv, first.IdentityID)
	}
	token := tokenOf(t, inv)
	link, err := acc.Lookup(h.ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if newPerson, err := acc.NewPerson(h.ctx, link.Invitation); err != nil || newPerson {
		t.Fatalf("NewPerson = %v, %v: want an invitation for whoever holds the address", newPerson, err)
	}
	got, _ := h.svc.Get(h.ctx, inv.ID)
	if got.IdentityID != "" || got.identityCreated || !got.ExistingIdentity || got.Status != Pending {
		t.Fatalf("after acceptance found the placeholder gone: %+v", got)
	}
	if n := h.rdb.Exists(h.ctx, h.ks.AddressIdentity("new@example.com")).Val(); n != 0 {
		t.Fatal("the deleted placeholder is still remembered")
	}
	if _, err := acceptNew(h, acc, token, Form{Values: map[string]string{"name.first": "Grace"}}); apperr.CodeOf(err) != "existing_account" {
		t.Fatalf("the new-person form on a detached invitation: %v", err)
	}
	grace := h.ids.Add("new@example.com", "Grace") // signs up through Kratos
	link, _ = acc.Lookup(h.ctx, token)
	if _, err := acc.Join(h.ctx, token, link, sessionOf(grace)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.orgs.Member(h.ctx, inv.OrganizationID, grace.ID); err != nil {
		t.Fatalf("the person's own account is not the member: %v", err)
	}
	if _, err := h.orgs.Member(h.ctx, inv.OrganizationID, first.IdentityID); apperr.CodeOf(err) != "member_not_found" {
		t.Fatalf("the deleted placeholder became a member: %v", err)
	}
}

// An account hint gone stale (the account deleted in Kratos, the address
// taken by a new account) names the old id, but acceptance is bound to the
// address in the visitor's own session: the new holder accepts and
// becomes the member; nobody else can.
func TestStaleAccountHintAcceptsTheAddressHolder(t *testing.T) {
	h := newHarness(t)
	acc := newAcceptor(h, "kratos_settings")
	ada := h.ids.Add("ada@example.com", "Ada")
	h.mustInvite("ada@example.com")
	h.drain()
	_ = h.ids.Delete(h.ctx, ada.ID)
	bob := h.ids.Add("ada@example.com", "Ada's successor")
	var inv Invitation
	calls := h.kratosCalls(func() {
		var err error
		inv, _, err = h.svc.Invite(h.ctx, h.newOrg("Other").ID, InviteRequest{Email: "ada@example.com", SendEmail: new(bool)})
		if err != nil {
			t.Fatal(err)
		}
	})
	if len(calls) != 0 || inv.IdentityID != ada.ID || !inv.ExistingIdentity {
		t.Fatalf("Kratos calls %v, invitation %+v", calls, inv)
	}
	token := tokenOf(t, inv)
	link, _ := acc.Lookup(h.ctx, token)
	if newPerson, err := acc.NewPerson(h.ctx, link.Invitation); err != nil || newPerson {
		t.Fatalf("NewPerson = %v, %v", newPerson, err)
	}
	stranger := h.ids.Add("someone@example.com", "Someone")
	if _, err := acc.Join(h.ctx, token, link, sessionOf(stranger)); err != ErrWrongAccount {
		t.Fatalf("another account accepted: %v", err)
	}
	if _, err := acc.Join(h.ctx, token, link, sessionOf(bob)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.orgs.Member(h.ctx, inv.OrganizationID, bob.ID); err != nil {
		t.Fatalf("the address holder is not the member: %v", err)
	}
	h.drain()
	if got := h.rdb.Get(h.ctx, h.ks.AddressIdentity("ada@example.com")).Val(); got != knownValue(bob.ID, false) {
		t.Fatalf("known identity %q after the acceptance, want the account that accepted", got)
	}
}

// sessionOf is a Kratos session of an identity with its address verified.
func sessionOf(who *identity.Identity) *identity.Session {
	return &identity.Session{ID: "s-" + who.ID, Identity: who, Addresses: map[string]bool{who.Email: true}}
}

// A placeholder deleted because nothing references it any more is
// forgotten with it, before the delete.
func TestReleasedPlaceholderIsForgotten(t *testing.T) {
	h := newHarness(t)
	inv := h.mustInvite("new@example.com")
	h.drain()
	if got := h.rdb.Get(h.ctx, h.ks.AddressIdentity("new@example.com")).Val(); got != knownValue(inv.IdentityID, true) {
		t.Fatalf("known identity %q, want the placeholder %q", got, inv.IdentityID)
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

// A sign-up through Kratos replacing a placeholder drops its hint with it;
// the sign-up's account is remembered (the registration webhook) and the
// next invitation names it without a Kratos call.
func TestTakeOverForgetsThePlaceholder(t *testing.T) {
	h := newHarness(t)
	h.mustInvite("new@example.com")
	h.drain()
	if err := h.svc.TakeOver(h.ctx, "new@example.com"); err != nil {
		t.Fatal(err)
	}
	if n := h.rdb.Exists(h.ctx, h.ks.AddressIdentity("new@example.com")).Val(); n != 0 || h.ids.Count() != 0 {
		t.Fatalf("after the takeover: hint kept %d, %d identities", n, h.ids.Count())
	}
	if err := h.svc.EndTakeover(h.ctx, "new@example.com"); err != nil {
		t.Fatal(err)
	}
	person := h.ids.Add("new@example.com", "New Person")
	if err := h.svc.RememberAccount(h.ctx, "new@example.com", person.ID); err != nil {
		t.Fatal(err)
	}
	var inv Invitation
	calls := h.kratosCalls(func() { inv = h.mustInvite("new@example.com", func(r *InviteRequest) { r.Role = "admin" }) })
	if len(calls) != 0 || inv.IdentityID != person.ID || !inv.ExistingIdentity {
		t.Fatalf("Kratos calls %v, invitation %+v", calls, inv)
	}
}
