package invites

import (
	"testing"

	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// actor makes a member of the harness' organization with a role.
func (h *harness) actor(email, role string) Actor {
	h.t.Helper()
	who := h.ids.Add(email, "Member "+role)
	if _, _, err := h.orgs.AddMember(h.ctx, h.org.ID, orgs.Member{IdentityID: who.ID, Email: email, Role: role}); err != nil {
		h.t.Fatal(err)
	}
	return Actor{IdentityID: who.ID, Name: "Member " + role, Role: role}
}

// Re-inviting a pending address applies the same ceiling as a new
// invitation: the pending invitation's role changes only within the
// caller's own (issue 9 §4). Roles: owner > admin > billing > member.
func TestInviteAsKeepsRolesWithinTheCeiling(t *testing.T) {
	for _, tc := range []struct {
		name          string
		pending       string // role of the pending invitation, issued by an owner; "" = none
		caller        string
		role          string
		wantCode      string
		wantRoleAfter string
	}{
		{"admin invites a member", "", "admin", "member", "", "member"},
		{"admin invites an admin", "", "admin", "admin", "", "admin"},
		{"admin cannot invite an owner", "", "admin", "owner", "role_ceiling", ""},
		{"billing cannot invite an admin", "", "billing", "admin", "role_ceiling", ""},
		{"admin cannot re-issue an owner invitation as member", "owner", "admin", "member", "role_ceiling", "owner"},
		{"admin cannot re-issue an owner invitation as owner", "owner", "admin", "owner", "role_ceiling", "owner"},
		{"admin re-issues an admin invitation as member", "admin", "admin", "member", "", "member"},
		{"admin re-issues a member invitation as admin", "member", "admin", "admin", "", "admin"},
		{"owner re-issues an owner invitation as admin", "owner", "owner", "admin", "", "admin"},
		{"billing cannot re-issue an admin invitation", "admin", "billing", "billing", "role_ceiling", "admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			var before Invitation
			if tc.pending != "" {
				owner := h.actor("owner@example.com", "owner")
				var err error
				before, _, err = h.svc.InviteAs(h.ctx, h.org.ID, owner, InviteRequest{Email: "target@example.com", Role: tc.pending})
				if err != nil {
					t.Fatal(err)
				}
			}
			caller := h.actor("caller@example.com", tc.caller)
			inv, _, err := h.svc.InviteAs(h.ctx, h.org.ID, caller, InviteRequest{Email: "target@example.com", Role: tc.role})
			if tc.wantCode == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantCode != "" {
				mustCode(t, err, tc.wantCode)
			}
			if tc.wantCode == "" && (inv.Inviter == nil || inv.Inviter.ID != caller.IdentityID) {
				t.Fatalf("inviter %+v, want the caller", inv.Inviter)
			}
			page, err := h.svc.List(h.ctx, h.org.ID, Filter{Email: "target@example.com", Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantRoleAfter == "" {
				if page.Total != 0 {
					t.Fatalf("%d pending invitations, want none", page.Total)
				}
				return
			}
			if page.Total != 1 || page.Items[0].Role != tc.wantRoleAfter {
				t.Fatalf("pending: %+v, want one with role %s", page.Items, tc.wantRoleAfter)
			}
			if tc.wantCode != "" && (page.Items[0].ExpiresAt != before.ExpiresAt || page.Items[0].Inviter.ID != before.Inviter.ID) {
				t.Fatalf("a refused re-issue changed the invitation: %+v -> %+v", before, page.Items[0])
			}
		})
	}
}

// An invitation a member sent stands while they may still grant its role.
// Demoted or removed, their pending invitations are refused at acceptance
// with a clear error, stay pending (and listed, for owners), and work
// again once an owner re-issues them (issue 9 §4; decision in README).
func TestLapsedGrantIsRefusedAtAcceptanceAndStaysPending(t *testing.T) {
	for _, lapse := range []string{"demoted", "removed"} {
		t.Run(lapse, func(t *testing.T) {
			h := newHarness(t)
			acc := newAcceptor(h, "kratos_settings")
			admin := h.actor("admin@example.com", "admin")
			owner := h.actor("owner@example.com", "owner")
			f := false
			inv, _, err := h.svc.InviteAs(h.ctx, h.org.ID, admin, InviteRequest{Email: "new@example.com", Role: "admin", SendEmail: &f})
			if err != nil {
				t.Fatal(err)
			}
			token := tokenOf(t, inv)
			if lapse == "demoted" {
				_, err = h.orgs.SetRole(h.ctx, h.org.ID, admin.IdentityID, "member")
			} else {
				_, err = h.orgs.RemoveMember(h.ctx, h.org.ID, admin.IdentityID)
			}
			if err != nil {
				t.Fatal(err)
			}
			form := Form{Values: map[string]string{"name.first": "New"}}
			_, err = acceptNew(h, acc, token, form)
			mustCode(t, err, "invitation_grant_lapsed")
			// Through Kratos' own sign-up with the token: refused the same way.
			_, err = h.svc.AcceptToken(h.ctx, token, h.ids.Add("new.signup@example.com", "New").ID, "new@example.com")
			mustCode(t, err, "invitation_grant_lapsed")
			// And a verified address does not accept it either.
			accepted, err := h.svc.AcceptVerifiedAddress(h.ctx, "new@example.com", inv.IdentityID)
			if err != nil || len(accepted) != 0 {
				t.Fatalf("verified address accepted %v (%v)", accepted, err)
			}
			h.drain()
			got, _ := h.svc.Get(h.ctx, inv.ID)
			if got.Status != Pending {
				t.Fatalf("status %s after refusals, want pending", got.Status)
			}
			page, _ := h.svc.List(h.ctx, h.org.ID, Filter{Limit: 10})
			if page.Total != 1 {
				t.Fatalf("%d pending invitations listed, want 1", page.Total)
			}
			if who, _ := h.ids.Get(h.ctx, inv.IdentityID); who == nil || who.State != "inactive" {
				t.Fatalf("the placeholder changed: %+v", who)
			}

			// An owner re-issues it: the new link is accepted.
			inv, _, err = h.svc.InviteAs(h.ctx, h.org.ID, owner, InviteRequest{Email: "new@example.com", Role: "admin", SendEmail: &f})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := acceptNew(h, acc, tokenOf(t, inv), form); err != nil {
				t.Fatalf("after the owner re-issued it: %v", err)
			}
			m, err := h.orgs.Member(h.ctx, h.org.ID, inv.IdentityID)
			if err != nil || m.Role != "admin" {
				t.Fatalf("membership %+v %v", m, err)
			}
		})
	}
}

// The operator's invitations carry no grant: demoting whoever is named as
// inviter changes nothing. And an inviter.id that is not a Kratos
// identity is 422 unknown_inviter, with nothing written (issue 9 §7).
func TestOperatorInvitationsAndUnknownInviter(t *testing.T) {
	h := newHarness(t)
	acc := newAcceptor(h, "kratos_settings")
	admin := h.actor("admin@example.com", "admin")
	f := false
	inv := h.mustInvite("new@example.com", func(r *InviteRequest) { r.Inviter = &Inviter{ID: admin.IdentityID}; r.SendEmail = &f })
	if _, err := h.orgs.SetRole(h.ctx, h.org.ID, admin.IdentityID, "member"); err != nil {
		t.Fatal(err)
	}
	if _, err := acceptNew(h, acc, tokenOf(t, inv), Form{Values: map[string]string{"name.first": "New"}}); err != nil {
		t.Fatalf("operator's invitation: %v", err)
	}

	_, _, err := h.invite("ghost@example.com", func(r *InviteRequest) { r.Inviter = &Inviter{ID: "7f1b8f0e-0000-4000-8000-000000000000"} })
	mustCode(t, err, "unknown_inviter")
	if found, _ := h.ids.FindByEmail(h.ctx, "ghost@example.com"); found != nil {
		t.Fatal("an identity was created for a refused invitation")
	}
	page, _ := h.svc.List(h.ctx, h.org.ID, Filter{Email: "ghost@example.com", Status: "all", Limit: 10})
	if page.Total != 0 {
		t.Fatalf("%d invitations written", page.Total)
	}
}
