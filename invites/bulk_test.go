package invites

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/ratelimit"
)

func resultsOf(r BulkResponse) []string {
	out := make([]string, len(r.Results))
	for i, x := range r.Results {
		out[i] = x.Result
	}
	return out
}

// Every row gets its result in request order; rows past the quota are
// rate_limited and cost nothing; rows past the seat limit leave no
// placeholder behind.
func TestBulkInviteRowsQuotaAndSeats(t *testing.T) {
	h := newHarness(t)
	h.setLimit(4)
	account := h.ids.Add("account@example.com", "Account")
	member := h.ids.Add("member@example.com", "Member")
	if _, _, err := h.orgs.AddMember(h.ctx, h.org.ID, orgs.Member{IdentityID: member.ID, Email: member.Email, Role: "member"}); err != nil {
		t.Fatal(err)
	}
	allowed := 6 // rows 0-2 and 6-8; rows 3-5 are refused before the quota
	quota := func(context.Context) error {
		if allowed == 0 {
			return ratelimit.Refusal(ratelimit.Limit{Name: "test"}, 0)
		}
		allowed--
		return nil
	}
	rows := []BulkRow{
		{Email: "new1@example.com", FirstName: "Ann"}, {Email: "account@example.com"}, {Email: "member@example.com"},
		{Email: "nope"}, {Email: "NEW1@example.com"}, {Email: "x@example.com", Role: "king"},
		{Email: "new2@example.com"}, {Email: "new3@example.com"}, {Email: "new4@example.com"},
		{Email: "new5@example.com"}, {Email: "new6@example.com"},
	}
	resp, err := h.svc.BulkInvite(h.ctx, h.org.ID, rows, BulkOptions{Quota: quota})
	if err != nil {
		t.Fatal(err)
	}
	want := "[created created already_member invalid_email duplicate_in_request invalid_role created seat_limit seat_limit rate_limited rate_limited]"
	if got := fmt.Sprint(resultsOf(resp)); got != want {
		t.Fatalf("results\n%s\nwant\n%s", got, want)
	}
	if resp.Summary["created"] != 3 || resp.Summary["rate_limited"] != 2 {
		t.Fatalf("summary %v", resp.Summary)
	}
	inv, err := h.svc.Get(h.ctx, resp.Results[1].InvitationID)
	if err != nil || inv.IdentityID != account.ID || !inv.ExistingIdentity {
		t.Fatalf("the account's invitation: %+v %v", inv, err)
	}
	if inv, _ := h.svc.Get(h.ctx, resp.Results[0].InvitationID); inv.Context["first_name"] != "Ann" {
		t.Fatalf("first_name: %v", inv.Context)
	}
	// account, member and the two placeholders written; none for the rows
	// past the seat limit or the quota.
	if n := h.ids.Count(); n != 4 {
		t.Fatalf("%d identities, want 4", n)
	}
	if s := h.seats(); s.Pending != 3 || s.Members != 1 {
		t.Fatalf("seats %+v", s)
	}
}

// Two bulk requests at once against a limit of 10: exactly 10 rows are
// created (the seat is checked in the script that writes each row).
func TestBulkInviteConcurrentNoOvershoot(t *testing.T) {
	h := newHarness(t)
	h.setLimit(10)
	var wg sync.WaitGroup
	resps := make([]BulkResponse, 2)
	for k := range resps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rows := make([]BulkRow, 15)
			for i := range rows {
				no := false
				rows[i] = BulkRow{Email: fmt.Sprintf("r%d.%02d@example.com", k, i), SendEmail: &no}
			}
			var err error
			if resps[k], err = h.svc.BulkInvite(h.ctx, h.org.ID, rows, BulkOptions{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	created := resps[0].Summary["created"] + resps[1].Summary["created"]
	refused := resps[0].Summary["seat_limit"] + resps[1].Summary["seat_limit"]
	if created != 10 || refused != 20 {
		t.Fatalf("%d created, %d seat_limit; want 10 and 20", created, refused)
	}
	if n := h.ids.Count(); n != 10 {
		t.Fatalf("%d identities, want 10 (placeholders of refused rows removed)", n)
	}
}

// Under an Idempotency-Key a repeat answers the first result and sends
// nothing; the same key with another body is refused.
func TestBulkIdempotent(t *testing.T) {
	h := newHarness(t)
	rows := []BulkRow{{Email: "a@example.com"}, {Email: "b@example.com"}}
	runs := 0
	run := func(ctx context.Context) (BulkResponse, error) {
		runs++
		return h.svc.BulkInvite(ctx, h.org.ID, rows, BulkOptions{})
	}
	idem := Idempotent{Key: "k", Scope: "admin", Digest: "d1"}
	first, replayed, err := h.svc.RunBulk(h.ctx, h.org.Slug, idem, run)
	if err != nil || replayed {
		t.Fatal(err, replayed)
	}
	h.drain()
	mails := len(h.resend.Emails())
	again, replayed, err := h.svc.RunBulk(h.ctx, h.org.ID, idem, run)
	if err != nil || !replayed || runs != 1 || fmt.Sprint(again) != fmt.Sprint(first) {
		t.Fatalf("repeat: %v %v runs=%d\n%v\n%v", err, replayed, runs, again, first)
	}
	h.drain()
	if n := len(h.resend.Emails()); n != mails || mails != 2 {
		t.Fatalf("%d mails after the repeat, %d before; want 2", n, mails)
	}
	_, _, err = h.svc.RunBulk(h.ctx, h.org.ID, Idempotent{Key: "k", Scope: "admin", Digest: "d2"}, run)
	mustCode(t, err, "idempotency_key_reused")
	// Another caller's key of the same name is another request.
	if _, replayed, err := h.svc.RunBulk(h.ctx, h.org.ID, Idempotent{Key: "k", Scope: "api:x", Digest: "d2"}, run); err != nil || replayed || runs != 2 {
		t.Fatalf("another scope: %v %v %d", err, replayed, runs)
	}
	// A request that failed as a whole frees its key.
	_, _, err = h.svc.RunBulk(h.ctx, h.org.ID, Idempotent{Key: "k2", Scope: "admin", Digest: "d"}, func(context.Context) (BulkResponse, error) {
		return BulkResponse{}, apperr.Unavailablef(nil, "kratos_unavailable", "down")
	})
	mustCode(t, err, "kratos_unavailable")
	if _, replayed, err := h.svc.RunBulk(h.ctx, h.org.ID, Idempotent{Key: "k2", Scope: "admin", Digest: "d"}, run); err != nil || replayed {
		t.Fatalf("retry after a failure: %v %v", err, replayed)
	}
}

// A request longer than one pipeline (bulkPipeline rows) keeps its rows'
// order across the pipelines: seats run out at the same row as in one.
func TestBulkInviteSpansPipelines(t *testing.T) {
	h := newHarness(t)
	const rows, limit = 2*bulkPipeline + 50, 2*bulkPipeline + 30
	h.setLimit(limit)
	in := make([]BulkRow, rows)
	no := false
	for i := range in {
		in[i] = BulkRow{Email: fmt.Sprintf("p%03d@example.com", i), SendEmail: &no}
	}
	resp, err := h.svc.BulkInvite(h.ctx, h.org.ID, in, BulkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range resp.Results {
		want := BulkCreated
		if i >= limit {
			want = BulkSeatLimit
		}
		if r.Row != i || r.Result != want {
			t.Fatalf("row %d: %+v, want %s", i, r, want)
		}
	}
	if s := h.seats(); s.Pending != limit {
		t.Fatalf("seats %+v, want %d pending", s, limit)
	}
}
