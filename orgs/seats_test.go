package orgs

import (
	"encoding/json"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// max_members is set at creation, changed, removed; a direct membership
// counts against it like an acceptance.
func TestStoreSeatLimit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s, _, _ := newTestStore(t, backend)
		ctx := t.Context()
		two := int64(2)
		o, err := s.Create(ctx, Organization{Name: "Seats", Slug: "seats", Seats: Seats{Limit: &two}}, true,
			&Member{IdentityID: "11111111-1111-1111-1111-111111111111", Email: "o@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		if o.Seats.Limit == nil || *o.Seats.Limit != 2 || o.Seats.Members != 1 || o.Seats.Pending != 0 {
			t.Fatalf("created seats = %+v", o.Seats)
		}
		add := func(id string) error {
			_, _, err := s.AddMember(ctx, o.ID, Member{IdentityID: id, Role: "member"})
			return err
		}
		if err := add("22222222-2222-2222-2222-222222222222"); err != nil {
			t.Fatal(err)
		}
		err = add("33333333-3333-3333-3333-333333333333")
		mustCode(t, err, "seat_limit")
		if e, _ := apperr.As(err); e.Details["limit"] != int64(2) || e.Details["used"] != int64(2) {
			t.Fatalf("details = %v", e.Details)
		}
		if err := add("22222222-2222-2222-2222-222222222222"); err != nil {
			t.Fatalf("re-adding a member takes no seat: %v", err)
		}
		none := int64(0)
		o, err = s.Update(ctx, o.ID, Update{MaxMembers: &none})
		if err != nil || o.Seats.Limit != nil || o.Seats.Members != 2 {
			t.Fatalf("limit removed: %+v %v", o.Seats, err)
		}
		if err := add("33333333-3333-3333-3333-333333333333"); err != nil {
			t.Fatal(err)
		}
		name := "Renamed"
		if o, err = s.Update(ctx, o.ID, Update{Name: &name}); err != nil || o.Seats.Limit != nil || o.Seats.Members != 3 {
			t.Fatalf("an update without max_members keeps it: %+v %v", o.Seats, err)
		}
	})
}

// In a PATCH body, null removes the limit and absence leaves it alone.
func TestUpdateRequestMaxMembers(t *testing.T) {
	for body, want := range map[string]string{
		`{}`:                   "unchanged",
		`{"max_members":null}`: "0",
		`{"max_members":5}`:    "5",
		`{"max_members":0}`:    "invalid_max_members",
		`{"max_members":"5"}`:  "decode",
	} {
		var r UpdateRequest
		got := ""
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			got = "decode"
		} else if v, err := seatLimitUpdate(r.MaxMembers); err != nil {
			got = apperr.CodeOf(err)
		} else if v == nil {
			got = "unchanged"
		} else {
			got = json.Number(jsonInt(*v)).String()
		}
		if got != want {
			t.Errorf("%s: %s, want %s", body, got, want)
		}
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }
