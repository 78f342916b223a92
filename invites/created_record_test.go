package invites

import (
	"reflect"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// Create answers a new invitation from its arguments instead of reading
// the record back (createdRecord): what it answers is what Get reads, for
// every kind of field, including the identity fields the script may change
// (a placeholder being replaced by a sign-up is not pointed at).
func TestCreatedRecordIsWhatIsStored(t *testing.T) {
	base := func(email string) NewInvitation {
		return NewInvitation{Email: email, Role: "member", TTL: time.Hour,
			TokenHash: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			Template:  "invitation", Kind: "invitation"}
	}
	for _, tc := range []struct {
		name  string
		n     func(h *harness) NewInvitation
		moved bool
	}{
		{"bare, no mail", func(*harness) NewInvitation { return base("bare@example.com") }, false},
		{"everything", func(*harness) NewInvitation {
			n := base("full@example.com")
			n.Inviter, n.Context = &Inviter{ID: "inviter-1", Name: "Ada"}, map[string]any{"team": "x", "n": 2.0}
			n.RedirectTo, n.SendEmail, n.SealedToken = "https://app.example.com/x", true, "sealed"
			n.IdentityID, n.IdentityCreated, n.GrantedBy, n.Locale = "ph-1", true, "member-1", "de"
			n.Role, n.Within = "admin", []string{"admin", "member"}
			return n
		}, false},
		{"existing account", func(*harness) NewInvitation {
			n := base("known@example.com")
			n.IdentityID, n.ExistingIdentity = "acct-1", true
			return n
		}, false},
		{"registration", func(*harness) NewInvitation {
			n := base("reg@example.com")
			n.Kind, n.Template, n.SendEmail = "registration", "activation", true
			return n
		}, false},
		{"placeholder being replaced", func(*harness) NewInvitation {
			n := base("moved@example.com")
			n.IdentityID, n.IdentityCreated = "ph-moved", true
			return n
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			n := tc.n(h)
			n.OrganizationID = h.org.ID
			if tc.moved {
				h.rdb.Set(h.ctx, h.ks.Moved(redisx.ShardOf(h.org.ID), n.IdentityID), "1", time.Minute)
			}
			got, rotated, err := h.svc.store.Create(h.ctx, n)
			if err != nil || rotated {
				t.Fatalf("Create: rotated %v, err %v", rotated, err)
			}
			stored, err := h.svc.store.Get(h.ctx, got.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, stored) {
				t.Errorf("Create answered\n%+v\nthe record reads\n%+v", got, stored)
			}
			if tc.moved && (stored.IdentityID != "" || !stored.ExistingIdentity) {
				t.Errorf("a placeholder being replaced was pointed at: %+v", stored)
			}
		})
	}
}
