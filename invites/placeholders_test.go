package invites

import (
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/outbox"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// The race of issue 9 §2, made deterministic: an invitation in a second
// organization is written but its index job has not run when the first
// one's revocation is handled. Deciding from the pending index deleted the
// placeholder under the second invitation.
func TestUnindexedInvitationKeepsThePlaceholder(t *testing.T) {
	h := newHarness(t)
	a := h.mustInvite("new@example.com")
	h.drain()
	other := h.newOrg("Other")
	b, _, err := h.svc.Invite(h.ctx, other.ID, InviteRequest{Email: "new@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Revoke(h.ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	// Only the revoked invitation's job runs.
	if err := h.index.Handle(h.ctx, outbox.Job{Kind: "invitation.sync", Ref: a.ID}); err != nil {
		t.Fatal(err)
	}
	if who, _ := h.ids.Get(h.ctx, b.IdentityID); who == nil {
		t.Fatal("the placeholder was deleted while another invitation for it is pending")
	}
	h.drain()
	if _, err := h.svc.Revoke(h.ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if h.ids.Count() != 0 {
		t.Fatal("the placeholder outlived its last invitation")
	}
}

// An invitation created while the placeholder's delete is claimed waits
// for the delete and gets a new placeholder, never the deleted one.
func TestInviteWhileDeleteIsClaimedWaitsAndMakesANewPlaceholder(t *testing.T) {
	h := newHarness(t)
	old, err := h.ids.CreateInvited(h.ctx, "new@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	// A deleter holds the claim and is about to call Kratos.
	if err := h.rdb.Set(h.ctx, h.ks.AddressClaim("new@example.com"), "delete|"+old.ID+"|test", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	done := make(chan Invitation, 1)
	go func() { done <- h.mustInvite("new@example.com") }()
	select {
	case inv := <-done:
		t.Fatalf("invited while the delete was claimed: %+v", inv)
	case <-time.After(200 * time.Millisecond):
	}
	_ = h.ids.Delete(h.ctx, old.ID)
	h.rdb.Del(h.ctx, h.ks.AddressClaim("new@example.com"))
	inv := <-done
	if inv.IdentityID == old.ID || inv.IdentityID == "" || !inv.identityCreated {
		t.Fatalf("the invitation points at %q, the deleted placeholder was %q", inv.IdentityID, old.ID)
	}
	if who, _ := h.ids.Get(h.ctx, inv.IdentityID); who == nil {
		t.Fatal("the new placeholder does not exist")
	}
}

// A process that dies between registering a reference and writing the
// invitation leaves a reference to nothing: it holds the placeholder until
// its deadline, after which the write is refused and the reference dropped.
func TestReferenceToAnUnwrittenInvitationHoldsUntilItsDeadline(t *testing.T) {
	h := newHarness(t)
	person, err := h.ids.CreateInvited(h.ctx, "new@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	id := "inv_crashed" // never written
	if _, _, err := h.svc.reference(h.ctx, "new@example.com", h.org.ID, id); err != nil {
		t.Fatal(err)
	}
	deleted, err := h.svc.ReleasePlaceholder(h.ctx, "new@example.com", person.ID)
	if err != nil || deleted {
		t.Fatalf("deleted %v, %v: a young reference must hold the placeholder", deleted, err)
	}
	h.clock.Add(refDead + time.Second)
	deleted, err = h.svc.ReleasePlaceholder(h.ctx, "new@example.com", person.ID)
	if err != nil || !deleted {
		t.Fatalf("deleted %v, %v: a dead reference must not hold the placeholder", deleted, err)
	}
	if n := h.rdb.HLen(h.ctx, h.ks.AddressRefs("new@example.com")).Val(); n != 0 {
		t.Fatalf("%d references left", n)
	}
}

// An invitation written after its reference's deadline is refused: its
// reference may have been dropped as dead meanwhile.
func TestInvitationIsNotWrittenAfterItsReferenceDeadline(t *testing.T) {
	h := newHarness(t)
	_, _, err := h.svc.store.Create(h.ctx, NewInvitation{
		WriteBy: h.clock.Now().Add(-time.Millisecond), OrganizationID: h.org.ID, Email: "late@example.com",
		Role: "member", TTL: time.Hour, TokenHash: "x", Template: "invitation", Kind: "invitation",
	})
	mustCode(t, err, "invitation_too_slow")
}

// A placeholder is deleted only if it is ours, inactive, for the address,
// and never had a credential or a session.
func TestOnlyUnusedPlaceholdersAreReleased(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(h *harness, id string) string // returns the address to release for
		want   bool
	}{
		{"unused placeholder", func(*harness, string) string { return "p@example.com" }, true},
		{"had a session or credential", func(h *harness, id string) string { h.ids.MarkUsed(id); return "p@example.com" }, false},
		{"active", func(h *harness, id string) string { h.ids.MarkActive(id); return "p@example.com" }, false},
		{"another address", func(*harness, string) string { return "q@example.com" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			p, err := h.ids.CreateInvited(h.ctx, "p@example.com", nil)
			if err != nil {
				t.Fatal(err)
			}
			deleted, err := h.svc.ReleasePlaceholder(h.ctx, tc.mutate(h, p.ID), p.ID)
			if err != nil || deleted != tc.want {
				t.Fatalf("deleted %v (%v), want %v", deleted, err, tc.want)
			}
		})
	}
	h := newHarness(t)
	mine := h.ids.Add("mine@example.com", "Not created by kratos-orgs")
	if deleted, err := h.svc.ReleasePlaceholder(h.ctx, "mine@example.com", mine.ID); err != nil || deleted {
		t.Fatalf("an identity kratos-orgs did not create was deleted (%v)", err)
	}
}

// An abandoned registration's pending organization references its owner's
// placeholder until the organization is deleted.
func TestPendingOrganizationHoldsItsOwnersPlaceholder(t *testing.T) {
	h := newHarness(t)
	reg := newRegistrar(h, RegistrarOptions{})
	if err := reg.Register(h.ctx, RegisterRequest{OrganizationName: "Startup", Email: "founder@example.com"}); err != nil {
		t.Fatal(err)
	}
	h.drain()
	owner, _ := h.ids.FindByEmail(h.ctx, "founder@example.com")
	if owner == nil {
		t.Fatal("no placeholder for the founder")
	}
	// The activation link expires; before its job deletes the organization,
	// a release (the reconciler's) must not take the owner away.
	h.clock.Add(8 * 24 * time.Hour)
	if _, _, err := h.svc.store.Sweep(h.ctx, 100); err != nil {
		t.Fatal(err)
	}
	if deleted, err := h.svc.ReleasePlaceholder(h.ctx, "founder@example.com", owner.ID); err != nil || deleted {
		t.Fatalf("the owner of a pending organization was deleted (%v)", err)
	}
	h.drain()
	if h.ids.Count() != 0 {
		t.Fatal("the placeholder outlived its registration")
	}
}

// A Kratos sign-up for an address with a placeholder: the pending
// invitations are moved off it (for whoever holds the address) before it
// makes way, and an invitation whose write was in flight comes out
// detached too.
func TestTakeOverKeepsEveryPendingInvitation(t *testing.T) {
	h := newHarness(t)
	a := h.mustInvite("new@example.com")
	other := h.newOrg("Other")
	b, _, err := h.svc.Invite(h.ctx, other.ID, InviteRequest{Email: "new@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	// A third invitation has registered its reference and found the
	// placeholder, but is not written yet.
	third := h.newOrg("Third")
	inflight := newInvitationID(third.ID, h.clock.Now())
	if _, _, err := h.svc.reference(h.ctx, "new@example.com", third.ID, inflight); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.TakeOver(h.ctx, "new@example.com"); err != nil {
		t.Fatal(err)
	}
	if h.ids.Count() != 0 {
		t.Fatal("the placeholder did not make way")
	}
	c, _, err := h.svc.store.Create(h.ctx, NewInvitation{
		ID: inflight, OrganizationID: third.ID, Email: "new@example.com", Role: "member", TTL: time.Hour, TokenHash: "t",
		IdentityID: a.IdentityID, IdentityCreated: true, Template: "invitation", Kind: "invitation",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{a.ID, b.ID, c.ID} {
		got, _ := h.svc.Get(h.ctx, id)
		if got.Status != Pending || got.IdentityID != "" || got.identityCreated || !got.ExistingIdentity {
			t.Fatalf("invitation %s after the takeover: %+v", id, got)
		}
	}
	// While the sign-up is being stored, a new invitation does not create
	// a placeholder that would collide with the person's identity.
	d, _, err := h.svc.Invite(h.ctx, h.newOrg("Fourth").ID, InviteRequest{Email: "new@example.com"})
	if err != nil || d.IdentityID != "" || h.ids.Count() != 0 {
		t.Fatalf("invited during the takeover: %+v %v (%d identities)", d, err, h.ids.Count())
	}
	// Signed up: invitations are for the person now.
	if err := h.svc.EndTakeover(h.ctx, "new@example.com"); err != nil {
		t.Fatal(err)
	}
	person := h.ids.Add("new@example.com", "New Person")
	h.drain() // the address index lists every organization
	accepted, err := h.svc.AcceptVerifiedAddress(h.ctx, "new@example.com", person.ID)
	if err != nil || len(accepted) != 4 {
		t.Fatalf("accepted %v (%v), want all four invitations", accepted, err)
	}
}

func newInvitationID(org string, now time.Time) string {
	return redisx.NewID("inv", redisx.ShardOf(org), now)
}

// A sign-up while one of the address' invitations is being accepted on its
// page: the placeholder stays (the acceptance is activating it), nothing is
// detached, and the hook asks the person to try again.
func TestTakeOverWaitsForAnAcceptanceInProgress(t *testing.T) {
	h := newHarness(t)
	a := h.mustInvite("new@example.com", sendEmail(false))
	b, _, err := h.svc.Invite(h.ctx, h.newOrg("Other").ID, InviteRequest{Email: "new@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	h.drain()
	if _, err := h.svc.store.Claim(h.ctx, tokenOf(t, a), time.Minute); err != nil {
		t.Fatal(err)
	}
	mustCode(t, h.svc.TakeOver(h.ctx, "new@example.com"), "invitation_accepting")
	if who, _ := h.ids.Get(h.ctx, a.IdentityID); who == nil {
		t.Fatal("the placeholder being activated was deleted")
	}
	for _, id := range []string{a.ID, b.ID} {
		if got, _ := h.svc.Get(h.ctx, id); got.IdentityID != a.IdentityID || !got.identityCreated {
			t.Fatalf("invitation %s was detached: %+v", id, got)
		}
	}
	if n := h.rdb.Exists(h.ctx, h.ks.AddressClaim("new@example.com"), h.ks.Moved(redisx.ShardOf(a.ID), a.IdentityID)).Val(); n != 0 {
		t.Fatalf("%d claim or marker keys left behind", n)
	}
}

// Verifying an address accepts an invitation written a moment before,
// whose index job has not run yet: its reference names it.
func TestVerifiedAddressAcceptsUnindexedInvitations(t *testing.T) {
	h := newHarness(t)
	a := h.mustInvite("new@example.com")
	person := h.ids.Add("someone@example.com", "Someone")
	accepted, err := h.svc.AcceptVerifiedAddress(h.ctx, "new@example.com", person.ID)
	if err != nil || len(accepted) != 1 || accepted[0] != a.ID {
		t.Fatalf("accepted %v (%v), want %s", accepted, err, a.ID)
	}
}
