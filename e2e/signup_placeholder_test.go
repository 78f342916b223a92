package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// A person invited to two organizations (one placeholder identity, two
// pending invitations) signs up through Kratos directly, with or without an
// invitation token, in both registration modes. The sign-up succeeds; the
// placeholder makes way for the person's own identity, but no pending
// invitation is lost or left pointing at the deleted placeholder: each is
// accepted (the token's at sign-up; the others by the signed-in person, or
// at verification with hooks.accept_on_verified_address).
func TestSignUpKeepsPendingInvitations(t *testing.T) {
	for _, mode := range []string{"invite_only", "open"} {
		t.Run(mode, func(t *testing.T) {
			st := startStack(t, "kratos_settings", func(c *config.Config) { c.Register.Mode = mode })
			for _, withToken := range []bool{false, true} {
				name := "without token"
				if withToken {
					name = "with token"
				}
				t.Run(name, func(t *testing.T) { signUpWhileInvited(t, st, mode, withToken) })
			}
		})
	}
}

func signUpWhileInvited(t *testing.T, st *stack, mode string, withToken bool) {
	ctx := context.Background()
	email := fmt.Sprintf("signup-%s-%v@example.com", strings.ReplaceAll(mode, "_", "-"), withToken)
	one, two := st.org("Signup One "+mode+fmt.Sprint(withToken)), st.org("Signup Two "+mode+fmt.Sprint(withToken))
	invite := func(o orgs.Organization) invites.Invitation {
		inv, _, err := st.srv.Invites.Invite(ctx, o.ID, invites.InviteRequest{Email: email, Role: "member", SendEmail: ptr(false)})
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
	a, b := invite(one), invite(two)
	placeholder := a.IdentityID
	if b.IdentityID != placeholder || placeholder == "" {
		t.Fatalf("one placeholder for both invitations: %q %q", a.IdentityID, b.IdentityID)
	}
	var transient map[string]any
	if withToken {
		transient = map[string]any{"invite_token": a.AcceptURL[strings.LastIndexByte(a.AcceptURL, '/')+1:]}
	}
	status, out := st.signUp(email, transient)
	if status != http.StatusOK {
		t.Fatalf("sign-up while invited: %d %v", status, out)
	}
	person := out["identity"].(map[string]any)["id"].(string)
	if ids := st.identitiesOf(email); len(ids) != 1 || ids[0] != person || person == placeholder {
		t.Fatalf("identities for the address %v; the person is %s, the placeholder was %s", ids, person, placeholder)
	}
	// Nothing pending points at the placeholder that made way.
	for _, o := range []orgs.Organization{one, two} {
		page, err := st.srv.Invites.List(ctx, o.ID, invites.Filter{Status: "all", Email: email, Limit: 10})
		if err != nil || len(page.Items) != 1 {
			t.Fatalf("invitations of %s: %+v %v", o.Name, page, err)
		}
		inv := page.Items[0]
		if inv.Status == invites.Pending && inv.IdentityID != "" && inv.IdentityID != person {
			t.Fatalf("pending invitation %s points at %s, which is gone", inv.ID, inv.IdentityID)
		}
	}
	if withToken {
		// The token's invitation at sign-up; the link proved the address,
		// so the other one is accepted as verified (accept_on_verified_address).
		st.proveMember(one, person, "member")
		eventuallyTrue(t, "the second invitation is accepted", func() bool {
			_, err := st.srv.Orgs.Store().Member(ctx, two.ID, person)
			return err == nil
		})
		return
	}
	// Without a token the invitations wait for the person: the link asks
	// them to sign in (it never offers the new-person form of a deleted
	// identity), and verifying the address accepts both.
	token := a.AcceptURL[strings.LastIndexByte(a.AcceptURL, '/')+1:]
	if code, body := st.getPage(st.base + st.cfg.Invitations.AcceptPath + token); code != http.StatusSeeOther || strings.Contains(body, `<form id="accept"`) {
		t.Fatalf("the link of a moved invitation without a session: %d", code)
	}
	st.verifyAddress(email)
	for _, o := range []orgs.Organization{one, two} {
		eventuallyTrue(t, "the invitation of "+o.Name+" is accepted at verification", func() bool {
			_, err := st.srv.Orgs.Store().Member(ctx, o.ID, person)
			return err == nil
		})
	}
}

// verifyAddress runs Kratos' verification flow with the mailed code.
func (st *stack) verifyAddress(email string) {
	st.t.Helper()
	_, action := st.kratosFlow("verification", "")
	if code, body := st.submit(action, map[string]any{"method": "code", "email": email}, ""); code != 200 {
		st.t.Fatalf("verification step 1: %d %v", code, body)
	}
	code := st.courierCode(email)
	if status, body := st.submit(action, map[string]any{"method": "code", "code": code}, ""); status != 200 {
		st.t.Fatalf("verification step 2: %d %v", status, body)
	}
}

// Invitations created while the person signs up through Kratos: the
// sign-up succeeds, and no invitation ends up pointing at an identity that
// does not exist.
func TestInvitingDuringSignUp(t *testing.T) {
	st := startStack(t, "kratos_settings")
	ctx := context.Background()
	first, late := st.org("Early Bird"), st.org("Late Comer")
	const trials = 10
	failures := 0
	for i := 0; i < trials; i++ {
		email := fmt.Sprintf("during-%02d@example.com", i)
		if _, _, err := st.srv.Invites.Invite(ctx, first.ID, invites.InviteRequest{Email: email, SendEmail: ptr(false)}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var status int
		var out map[string]any
		var inv invites.Invitation
		var invErr error
		wg.Add(2)
		go func() { defer wg.Done(); status, out = st.signUp(email, nil) }()
		go func() {
			defer wg.Done()
			inv, _, invErr = st.srv.Invites.Invite(ctx, late.ID, invites.InviteRequest{Email: email, SendEmail: ptr(false)})
		}()
		wg.Wait()
		if status != http.StatusOK {
			failures++
			t.Errorf("%s: the sign-up failed with %d: %v", email, status, out)
			continue
		}
		if invErr != nil {
			t.Errorf("%s: inviting during the sign-up: %v", email, invErr)
			continue
		}
		ids := st.identitiesOf(email)
		if len(ids) != 1 {
			t.Errorf("%s: %d identities", email, len(ids))
			continue
		}
		got, _ := st.srv.Invites.Get(ctx, inv.ID)
		if got.Status == invites.Pending && got.IdentityID != "" && got.IdentityID != ids[0] {
			t.Errorf("%s: the invitation points at %s, Kratos has %s", email, got.IdentityID, ids[0])
		}
	}
	t.Logf("%d sign-ups raced with an invitation, %d failed", trials, failures)
}
