package invites

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// setLimit sets the organization's max_members (0: unlimited).
func (h *harness) setLimit(n int64) {
	h.t.Helper()
	if _, err := h.orgs.Update(h.ctx, h.org.ID, orgs.Update{MaxMembers: &n}); err != nil {
		h.t.Fatal(err)
	}
}

// addMember makes a new Kratos identity a member directly.
func (h *harness) addMember(email string) string {
	h.t.Helper()
	who := h.ids.Add(email, "Member")
	if _, _, err := h.orgs.AddMember(h.ctx, h.org.ID, orgs.Member{IdentityID: who.ID, Email: email, Role: "member"}); err != nil {
		h.t.Fatal(err)
	}
	return who.ID
}

// seats reads the organization's seats as its JSON shows them.
func (h *harness) seats() orgs.Seats {
	h.t.Helper()
	o, err := h.orgs.Get(h.ctx, h.org.ID)
	if err != nil {
		h.t.Fatal(err)
	}
	return o.Seats
}

// mustSeatLimit checks a seat_limit error and its details.
func mustSeatLimit(t *testing.T, err error, limit, used int64) {
	t.Helper()
	mustCode(t, err, "seat_limit")
	e, _ := apperr.As(err)
	if e.Kind != apperr.Conflict || e.Details["limit"] != limit || e.Details["used"] != used {
		t.Fatalf("seat_limit = %v %v, want 409 with limit %d, used %d", e.Kind, e.Details, limit, used)
	}
}

func TestSeatLimitRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, h *harness)
	}{
		{"invitations up to the limit, then seat_limit", func(t *testing.T, h *harness) {
			h.setLimit(2)
			h.mustInvite("a@example.com")
			h.mustInvite("b@example.com")
			_, _, err := h.invite("c@example.com")
			mustSeatLimit(t, err, 2, 2)
		}},
		{"members count against the limit", func(t *testing.T, h *harness) {
			h.addMember("m@example.com")
			h.setLimit(2)
			h.mustInvite("a@example.com")
			_, _, err := h.invite("b@example.com")
			mustSeatLimit(t, err, 2, 2)
		}},
		{"re-inviting a pending address takes no seat", func(t *testing.T, h *harness) {
			h.setLimit(1)
			h.mustInvite("a@example.com")
			if _, created, err := h.invite("a@example.com"); err != nil || created {
				t.Fatalf("re-invite at the limit: created=%v err=%v, want the pending one rotated", created, err)
			}
		}},
		{"revoking frees a seat", func(t *testing.T, h *harness) {
			h.setLimit(1)
			inv := h.mustInvite("a@example.com")
			if _, err := h.svc.Revoke(h.ctx, inv.ID); err != nil {
				t.Fatal(err)
			}
			h.mustInvite("b@example.com")
		}},
		{"an expired invitation frees its seat before the sweep", func(t *testing.T, h *harness) {
			h.setLimit(1)
			h.mustInvite("a@example.com")
			h.clock.Add(8 * 24 * time.Hour)
			h.mustInvite("b@example.com")
		}},
		{"raising or removing the limit", func(t *testing.T, h *harness) {
			h.setLimit(1)
			h.mustInvite("a@example.com")
			_, _, err := h.invite("b@example.com")
			mustSeatLimit(t, err, 1, 1)
			h.setLimit(2)
			h.mustInvite("b@example.com")
			h.setLimit(0)
			h.mustInvite("c@example.com")
		}},
		{"no limit: the default", func(t *testing.T, h *harness) {
			for i := range 5 {
				h.mustInvite(fmt.Sprintf("u%d@example.com", i))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newHarness(t)) })
	}
}

// The organization shows its seats: the limit and what counts against it.
func TestSeatsShowLimitMembersAndPending(t *testing.T) {
	h := newHarness(t)
	if s := h.seats(); s.Limit != nil || s.Members != 0 || s.Pending != 0 {
		t.Fatalf("new organization's seats = %+v, want unlimited and empty", s)
	}
	h.addMember("m@example.com")
	h.setLimit(5)
	h.mustInvite("a@example.com")
	h.mustInvite("b@example.com")
	s := h.seats()
	if s.Limit == nil || *s.Limit != 5 || s.Members != 1 || s.Pending != 2 {
		t.Fatalf("seats = %+v, want limit 5, 1 member, 2 pending", s)
	}
	page, err := h.orgs.List(h.ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range page.Items {
		if o.ID == h.org.ID && (o.Seats.Pending != 2 || o.Seats.Members != 1 || o.Seats.Limit == nil) {
			t.Fatalf("listed seats = %+v", o.Seats)
		}
	}
}

// 50 concurrent invitations against a limit of 10: exactly 10 are written,
// the others get seat_limit and leave no placeholder identity behind.
func TestSeatLimitConcurrentInvitesNoOvershoot(t *testing.T) {
	h := newHarness(t)
	h.setLimit(10)
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = h.invite(fmt.Sprintf("p%02d@example.com", i), sendEmail(false))
		}()
	}
	wg.Wait()
	ok, refused := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case apperr.CodeOf(err) == "seat_limit":
			refused++
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if ok != 10 || refused != 40 {
		t.Fatalf("%d invited, %d refused; want 10 and 40", ok, refused)
	}
	if s := h.seats(); s.Pending != 10 {
		t.Fatalf("seats = %+v, want 10 pending", s)
	}
	if n := h.ids.Count(); n != 10 {
		t.Fatalf("%d identities in Kratos, want 10 (the refused placeholders are removed)", n)
	}
}

// mustStillPending checks that a refused acceptance left the invitation
// pending, its link working, and wrote no membership.
func (h *harness) mustStillPending(acc *Acceptor, token, identityID string) {
	h.t.Helper()
	link, err := acc.Lookup(h.ctx, token)
	if err != nil || !link.Live || link.Invitation.Status != Pending {
		h.t.Fatalf("after the refusal the invitation must be pending with its link working: %+v %v", link, err)
	}
	if _, err := h.orgs.Member(h.ctx, h.org.ID, identityID); apperr.CodeOf(err) != "member_not_found" {
		h.t.Fatalf("a membership was written despite the refusal: %v", err)
	}
}

// The limit lowered below what is used: a new person's acceptance is
// refused before their account is touched, the invitation stays pending,
// and works once a seat is free.
func TestSeatLimitLoweredRefusesAcceptance(t *testing.T) {
	h := newHarness(t)
	acc := newAcceptor(h, "kratos_settings")
	h.setLimit(2)
	inv := h.mustInvite("new@example.com", sendEmail(false))
	token := tokenOf(t, inv)
	member := h.addMember("m@example.com")
	h.setLimit(1)
	form := Form{Values: map[string]string{"name.first": "Grace"}}
	link, err := acc.Lookup(h.ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	mustSeatLimit(t, acc.CheckGrant(h.ctx, link.Invitation), 1, 2) // the page says so before the form
	_, err = acceptNew(h, acc, token, form)
	mustSeatLimit(t, err, 1, 2)
	h.mustStillPending(acc, token, inv.IdentityID)
	if who, _ := h.ids.Get(h.ctx, inv.IdentityID); who == nil || who.State != "inactive" {
		t.Fatalf("the refused person's placeholder was activated: %+v", who)
	}
	if _, err := h.orgs.RemoveMember(h.ctx, h.org.ID, member); err != nil {
		t.Fatal(err)
	}
	if _, err := acceptNew(h, acc, token, form); err != nil {
		t.Fatalf("with a free seat: %v", err)
	}
	if s := h.seats(); s.Members != 1 || s.Pending != 0 {
		t.Fatalf("seats = %+v, want 1 member, 0 pending", s)
	}
}

// The limit lowered between the claim and the finalize step: the finalize
// script refuses atomically and gives the claim back.
func TestSeatLimitLoweredDuringAcceptance(t *testing.T) {
	h := newHarness(t)
	acc := newAcceptor(h, "kratos_settings")
	who := h.ids.AddWith("old@example.com", "Old Hand", true)
	inv := h.mustInvite("old@example.com", sendEmail(false))
	token := tokenOf(t, inv)
	h.addMember("m@example.com")
	claimed, err := h.svc.store.ClaimFor(h.ctx, token, time.Minute, who.ID)
	if err != nil {
		t.Fatal(err)
	}
	h.setLimit(1)
	_, err = h.svc.store.Finalize(h.ctx, claimed.ID, who.ID, claimed.Email, "")
	mustSeatLimit(t, err, 1, 2)
	h.mustStillPending(acc, token, who.ID)
	_, err = h.svc.store.ClaimFor(h.ctx, token, time.Minute, who.ID)
	mustSeatLimit(t, err, 1, 2)
	h.mustStillPending(acc, token, who.ID)
}

// A member accepting another invitation takes no new seat.
func TestSeatLimitMemberAcceptingTakesNoSeat(t *testing.T) {
	h := newHarness(t)
	who := h.ids.AddWith("old@example.com", "Old Hand", true)
	inv := h.mustInvite("old@example.com", sendEmail(false))
	if _, _, err := h.orgs.AddMember(h.ctx, h.org.ID, orgs.Member{IdentityID: who.ID, Email: who.Email, Role: "member"}); err != nil {
		t.Fatal(err)
	}
	h.setLimit(1)
	claimed, err := h.svc.store.ClaimFor(h.ctx, tokenOf(t, inv), time.Minute, who.ID)
	if err != nil {
		t.Fatal(err)
	}
	fin, err := h.svc.store.Finalize(h.ctx, claimed.ID, who.ID, claimed.Email, "")
	if err != nil || !fin.AlreadyMember {
		t.Fatalf("finalize = %+v %v, want accepted by a member", fin, err)
	}
}

// A Kratos-verified address past the limit: the invitation stays pending.
func TestSeatLimitVerifiedAddressStaysPending(t *testing.T) {
	h := newHarness(t)
	who := h.ids.AddWith("old@example.com", "Old Hand", true)
	inv := h.mustInvite("old@example.com", sendEmail(false))
	h.addMember("m@example.com")
	h.setLimit(1)
	id, err := h.svc.store.AcceptForAddress(h.ctx, h.org.ID, who.Email, who.ID, h.svc.cfg.Roles)
	if err != nil || id != "" {
		t.Fatalf("accept for address = %q %v, want nothing accepted", id, err)
	}
	got, err := h.svc.Get(h.ctx, inv.ID)
	if err != nil || got.Status != Pending {
		t.Fatalf("invitation = %+v %v, want pending", got, err)
	}
}
