package invites

import (
	"fmt"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
)

// TestSentinel: kratos-orgs on `redis.mode: sentinel` (one master, one
// replica, three sentinels) invites, lists and mails, and goes on doing so
// after SENTINEL FAILOVER promotes the replica. While the switch lasts,
// invitations may fail, as 503 redis_unavailable only; the test prints how
// long kratos-orgs could not write.
func TestSentinel(t *testing.T) {
	t.Parallel()
	s := testenv.StartSentinel(t)
	h := newHarnessOn(t, s.Open(t))
	first := h.mustInvite("before@example.com")
	h.drain()
	if page, err := h.svc.List(h.ctx, h.org.ID, Filter{Limit: 10}); err != nil || len(page.Items) != 1 || page.Items[0].ID != first.ID {
		t.Fatalf("list before the failover = %+v, %v", page.Items, err)
	}
	old := s.Master.Addr
	took, err := s.Failover(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	now, _ := s.MasterAddr()
	if now == old {
		t.Fatalf("the master is still %s", old)
	}
	// Invite until the client has followed the sentinels to the new master.
	var failed int
	var outage time.Duration
	start := time.Now()
	for i := 0; ; i++ {
		_, _, err := h.invite(fmt.Sprintf("after%d@example.com", i))
		if err == nil {
			break
		}
		if apperr.KindOf(err) != apperr.Unavailable {
			t.Fatalf("invitation during the failover: %v, want 503 redis_unavailable", err)
		}
		failed++
		outage = time.Since(start)
		if outage > 20*time.Second {
			t.Fatalf("kratos-orgs did not write for %v after the failover (last error %v)", outage, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("SENTINEL FAILOVER: %s → %s in %v (as the sentinels saw it); kratos-orgs then failed %d invitations over %v",
		old, now, took.Round(time.Millisecond), failed, outage.Round(time.Millisecond))
	h.drain()
	page, err := h.svc.List(h.ctx, h.org.ID, Filter{Limit: 10})
	if err != nil || len(page.Items) != 2 {
		t.Fatalf("list after the failover = %+v, %v; want the invitations before and after", page.Items, err)
	}
	if got := h.resend.Emails(); len(got) != 2 {
		t.Fatalf("%d mails sent, want 2", len(got))
	}
}
