package invites

import (
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// redis.wait_replicas against a real master and replica: with the replica
// in sync, invitations are created, accepted and revoked as usual and the
// replica has each change when it is answered; with the replica stopped,
// each of these writes (and an organization's creation) answers 503
// redis_unavailable "unconfirmed" within the timeout, and the change is on
// the master, as the README says.
func TestWritesWaitForReplicas(t *testing.T) {
	master, replica := testenv.StartReplicated(t)
	h := newHarnessOn(t, master.Client(t))
	w := redisx.Wait{Replicas: 1, Timeout: 200 * time.Millisecond}
	h.svc.Store().SetWait(w)
	h.orgs.SetWait(w)
	onReplica := replica.Client(t)
	replicated := func(id string) Status {
		t.Helper()
		// The record's field for the status in today's layout.
		st, _ := onReplica.HGet(h.ctx, h.ks.Invitation(id), redisx.LegacyInvitationFields["status"]).Result()
		return Status(st)
	}

	a := h.mustInvite("a@example.com", sendEmail(false))
	if st := replicated(a.ID); st != Pending {
		t.Fatalf("the replica has %q for the invitation just answered, want pending", st)
	}
	claimed, err := h.svc.Store().Claim(h.ctx, tokenOf(t, a), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Store().Finalize(h.ctx, claimed.ID, claimed.IdentityID, claimed.Email, ""); err != nil {
		t.Fatalf("accept with the replica: %v", err)
	}
	if st := replicated(a.ID); st != Accepted {
		t.Fatalf("the replica has %q for the acceptance just answered, want accepted", st)
	}
	b := h.mustInvite("b@example.com", sendEmail(false))
	claimedB, err := h.svc.Store().Claim(h.ctx, tokenOf(t, b), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c := h.mustInvite("c@example.com", sendEmail(false))

	replica.Kill()
	unconfirmed := func(what string, err error) {
		t.Helper()
		e, ok := apperr.As(err)
		if !ok || e.Kind != apperr.Unavailable || e.Code != "redis_unavailable" || e.Details["write"] != "unconfirmed" {
			t.Errorf("%s without the replica: %v, want 503 redis_unavailable, write unconfirmed", what, err)
		}
	}
	start := time.Now()
	_, _, err = h.invite("d@example.com")
	t.Logf("an invitation without the replica answered after %s (timeout %s)", time.Since(start).Round(time.Millisecond), w.Timeout)
	unconfirmed("invite", err)
	page, err := h.svc.List(h.ctx, h.org.ID, Filter{Status: "pending", Email: "d@example.com", Limit: 10})
	if err != nil || len(page.Items) != 1 {
		t.Errorf("the unconfirmed invitation is not pending on the master: %+v %v", page.Items, err)
	}
	_, err = h.svc.Store().Finalize(h.ctx, claimedB.ID, claimedB.IdentityID, claimedB.Email, "")
	unconfirmed("accept", err)
	if got, err := h.svc.Get(h.ctx, b.ID); err != nil || got.Status != Accepted {
		t.Errorf("the unconfirmed acceptance on the master: %q %v, want accepted", got.Status, err)
	}
	_, err = h.svc.Revoke(h.ctx, c.ID)
	unconfirmed("revoke", err)
	_, err = h.orgs.Create(h.ctx, orgs.Organization{Name: "Unconfirmed", Slug: "unconfirmed", State: orgs.StateActive}, true, nil)
	unconfirmed("organization", err)
	if taken, err := h.orgs.SlugTaken(h.ctx, "unconfirmed"); err != nil || !taken {
		t.Errorf("the unconfirmed organization gave its slug back: taken %v %v", taken, err)
	}
}
