package invites

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/redisx"
	"github.com/kratos-orgs/kratos-orgs/tokens"
)

func TestInviteNewPersonCreatesInactiveIdentity(t *testing.T) {
	h := newHarness(t)
	inv, created, err := h.invite("  New@Example.com ", sendEmail(false))
	if err != nil || !created {
		t.Fatalf("invite: %v created=%v", err, created)
	}
	if inv.Email != "new@example.com" || inv.Role != "admin" || inv.Status != Pending || inv.OrganizationID != h.org.ID {
		t.Fatalf("invitation %+v", inv)
	}
	if !inv.ExpiresAt.Equal(h.clock.Now().Add(7 * 24 * time.Hour)) {
		t.Fatalf("expires %v, want default TTL of 7 days", inv.ExpiresAt)
	}
	who, _ := h.ids.FindByEmail(h.ctx, "new@example.com")
	if who == nil || who.State != "inactive" || !who.CreatedByUs || inv.IdentityID != who.ID || inv.ExistingIdentity {
		t.Fatalf("identity %+v for invitation %+v", who, inv)
	}
	if inv.Delivery.Status != DeliverySkipped {
		t.Fatalf("delivery = %q, want skipped when the caller delivers the link", inv.Delivery.Status)
	}
	token, ok := strings.CutPrefix(inv.AcceptURL, testAcceptURL)
	shard, hash, valid := tokens.Parse(token)
	if !ok || !valid || shard != redisx.ShardOf(h.org.ID) || !h.tokenAlive(hash, shard) {
		t.Fatalf("accept URL %q does not carry a live token", inv.AcceptURL)
	}
	// Only the hash is stored: the token string appears in no key or value.
	for _, k := range h.keys() {
		if strings.Contains(k, token) {
			t.Fatalf("key %q contains the raw token", k)
		}
		if typ := h.rdb.Type(h.ctx, k).Val(); typ == "hash" {
			for f, v := range h.rdb.HGetAll(h.ctx, k).Val() {
				if strings.Contains(v, token) {
					t.Fatalf("%s.%s holds the raw token", k, f)
				}
			}
		}
	}
	// The link dies with the invitation.
	h.clock.Add(7*24*time.Hour - time.Second)
	if !h.tokenAlive(hash, shard) {
		t.Fatal("the link died before the invitation expired")
	}
	h.clock.Add(time.Second)
	if h.tokenAlive(hash, shard) {
		t.Fatal("the link outlived the invitation")
	}
}

// An account kratos-orgs has not seen yet: the create Kratos refuses (409)
// leads to the look-up, and the invitation points at the account.
func TestInviteExistingPersonKeepsIdentity(t *testing.T) {
	h := newHarness(t)
	ada := h.ids.Add("ada@example.com", "Ada")
	inv := h.mustInvite("ADA@example.com")
	if inv.IdentityID != ada.ID || !inv.ExistingIdentity || h.ids.Count() != 1 {
		t.Fatalf("invitation %+v; %d identities", inv, h.ids.Count())
	}
	if h.ids.Calls["CreateInvited"] != 1 || h.ids.Calls["FindByEmail"] != 1 {
		t.Fatalf("Kratos calls %v, want one refused create and one look-up", h.ids.Calls)
	}
	if inv.AcceptURL != "" {
		t.Fatal("the accept URL must only be returned when the caller delivers it")
	}
}

func TestReinviteRotatesToken(t *testing.T) {
	h := newHarness(t)
	first := h.mustInvite("new@example.com", sendEmail(false))
	_, oldHash, _ := tokens.Parse(strings.TrimPrefix(first.AcceptURL, testAcceptURL))
	h.clock.Add(time.Hour)
	second, created, err := h.invite("NEW@EXAMPLE.COM", sendEmail(false), func(r *InviteRequest) { r.Role = "member" })
	if err != nil || created {
		t.Fatalf("re-invite: created=%v err=%v", created, err)
	}
	if second.ID != first.ID {
		t.Fatalf("re-invite made a second invitation %s (first %s)", second.ID, first.ID)
	}
	shard, newHash, _ := tokens.Parse(strings.TrimPrefix(second.AcceptURL, testAcceptURL))
	if h.tokenAlive(oldHash, shard) || !h.tokenAlive(newHash, shard) {
		t.Fatal("after a re-invite the old token must be dead and the new one alive")
	}
	if !second.ExpiresAt.After(first.ExpiresAt) || second.Role != "member" {
		t.Fatalf("expiry %v (was %v), role %q", second.ExpiresAt, first.ExpiresAt, second.Role)
	}
	if h.ids.Count() != 1 {
		t.Fatalf("%d identities, want 1", h.ids.Count())
	}
	page, _ := h.svc.List(h.ctx, h.org.ID, Filter{Limit: 10})
	if page.Total != 1 {
		t.Fatalf("pending total %d, want 1", page.Total)
	}
}

func TestInviteMemberConflicts(t *testing.T) {
	h := newHarness(t)
	m := h.ids.Add("member@example.com", "Mem")
	if _, _, err := h.orgs.AddMember(h.ctx, h.org.ID, orgs.Member{IdentityID: m.ID, Role: "member"}); err != nil {
		t.Fatal(err)
	}
	before := h.keys()
	_, _, err := h.invite("member@example.com")
	mustCode(t, err, "already_member")
	if apperr.KindOf(err) != apperr.Conflict {
		t.Fatal("already_member must be a conflict (409)")
	}
	if after := h.keys(); len(after) != len(before) {
		t.Fatalf("a refused invitation wrote keys: %d → %d", len(before), len(after))
	}
}

func TestInviteRejectsBadInputWithoutSideEffects(t *testing.T) {
	h := newHarness(t)
	over := Duration(31 * 24 * time.Hour)
	short := Duration(time.Second)
	cases := []struct {
		name string
		req  InviteRequest
		code string
	}{
		{"malformed email", InviteRequest{Email: "not-an-email"}, "invalid_email"},
		{"display name", InviteRequest{Email: "Ada <ada@example.com>"}, "invalid_email"},
		{"too long", InviteRequest{Email: strings.Repeat("a", 250) + "@example.com"}, "invalid_email"},
		{"unknown role", InviteRequest{Email: "a@example.com", Role: "emperor"}, "invalid_role"},
		{"ttl over max", InviteRequest{Email: "a@example.com", TTL: &over}, "invalid_ttl"},
		{"ttl too short", InviteRequest{Email: "a@example.com", TTL: &short}, "invalid_ttl"},
		{"foreign redirect", InviteRequest{Email: "a@example.com", RedirectTo: "https://evil.example.net/x"}, "invalid_redirect"},
		{"relative redirect", InviteRequest{Email: "a@example.com", RedirectTo: "//evil.example.net"}, "invalid_redirect"},
		{"inviter id not a uuid", InviteRequest{Email: "a@example.com", Inviter: &Inviter{ID: "bob"}}, "invalid_inviter"},
		{"context too large", InviteRequest{Email: "a@example.com", Context: map[string]any{"x": strings.Repeat("y", MaxContextSize)}}, "invalid_context"},
	}
	before := len(h.keys())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := h.svc.Invite(h.ctx, h.org.ID, c.req)
			mustCode(t, err, c.code)
			if apperr.KindOf(err) != apperr.Invalid {
				t.Fatalf("kind %v, want Invalid (400)", apperr.KindOf(err))
			}
		})
	}
	if len(h.keys()) != before || h.ids.Count() != 0 || len(h.ids.Calls) != 0 {
		t.Fatalf("bad input had side effects: keys %d→%d, identities %d, kratos calls %v", before, len(h.keys()), h.ids.Count(), h.ids.Calls)
	}
}

func TestInviteUnknownOrganization(t *testing.T) {
	h := newHarness(t)
	for _, ref := range []string{"no-such-org", "org_" + strings.Repeat("0", 26)} {
		_, _, err := h.svc.Invite(h.ctx, ref, InviteRequest{Email: "a@example.com"})
		mustCode(t, err, "organization_not_found")
	}
	if h.ids.Count() != 0 {
		t.Fatal("an invitation to an unknown organization created an identity")
	}
}

func TestInviteBySlug(t *testing.T) {
	h := newHarness(t)
	inv, _, err := h.svc.Invite(h.ctx, h.org.Slug, InviteRequest{Email: "a@example.com"})
	if err != nil || inv.OrganizationID != h.org.ID || inv.Role != "member" {
		t.Fatalf("invite by slug: %+v %v (default role must be member)", inv, err)
	}
}

func TestKratosDownWritesNothing(t *testing.T) {
	h := newHarness(t)
	before := len(h.keys())
	h.ids.SetDown(true)
	_, _, err := h.invite("new@example.com")
	if apperr.KindOf(err) != apperr.Unavailable || apperr.CodeOf(err) != "kratos_unavailable" {
		t.Fatalf("err = %v, want kratos_unavailable (503)", err)
	}
	if after := len(h.keys()); after != before {
		t.Fatalf("Kratos down, yet Redis keys went %d → %d", before, after)
	}
}

func TestOrganizationDeletedAfterCacheUndoesIdentity(t *testing.T) {
	h := newHarness(t)
	// The store still remembers the organization exists; the script knows better.
	if _, err := h.rdb.Del(h.ctx, h.ks.Org(h.org.ID)).Result(); err != nil {
		t.Fatal(err)
	}
	_, _, err := h.invite("new@example.com")
	mustCode(t, err, "organization_not_found")
	if h.ids.Count() != 0 || len(h.ids.Deleted) != 1 {
		t.Fatalf("the identity created for it must be deleted again: count %d, deleted %v", h.ids.Count(), h.ids.Deleted)
	}
}

func TestRedisDownUndoesIdentity(t *testing.T) {
	h := newHarness(t)
	broken := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond, MaxRetries: -1})
	defer broken.Close()
	h.svc.store.rdb = broken
	_, _, err := h.invite("new@example.com")
	if apperr.KindOf(err) != apperr.Unavailable {
		t.Fatalf("err = %v, want unavailable", err)
	}
	if h.ids.Count() != 0 {
		t.Fatal("the identity created before Redis failed must be deleted")
	}
}

func TestConcurrentInvitesOfOneAddressMakeOneInvitation(t *testing.T) {
	h := newHarness(t)
	const n = 50
	var wg sync.WaitGroup
	ids := make(chan string, n)
	var created, failed sync.Map
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inv, c, err := h.invite(fmt.Sprintf("Race@Example.com%s", strings.Repeat(" ", i%3)))
			if err != nil {
				failed.Store(i, err)
				return
			}
			if c {
				created.Store(inv.ID, true)
			}
			ids <- inv.ID
		}()
	}
	wg.Wait()
	close(ids)
	failed.Range(func(k, v any) bool { t.Errorf("invite %v failed: %v", k, v); return true })
	distinct := map[string]bool{}
	for id := range ids {
		distinct[id] = true
	}
	nCreated := 0
	created.Range(func(any, any) bool { nCreated++; return true })
	if len(distinct) != 1 || nCreated != 1 || h.ids.Count() != 1 {
		t.Fatalf("%d invitations (%d created), %d identities; want exactly one of each", len(distinct), nCreated, h.ids.Count())
	}
}

func TestRevoke(t *testing.T) {
	h := newHarness(t)
	inv := h.mustInvite("new@example.com", sendEmail(false))
	shard, hash, _ := tokens.Parse(strings.TrimPrefix(inv.AcceptURL, testAcceptURL))
	got, err := h.svc.Revoke(h.ctx, inv.ID)
	if err != nil || got.Status != Revoked || got.EndedAt == nil {
		t.Fatalf("revoke: %+v %v", got, err)
	}
	if h.tokenAlive(hash, shard) {
		t.Fatal("the link must die at once")
	}
	_, err = h.svc.Revoke(h.ctx, inv.ID)
	mustCode(t, err, "invitation_revoked")
	_, err = h.svc.Resend(h.ctx, inv.ID, true)
	mustCode(t, err, "invitation_revoked")
	_, err = h.svc.Revoke(h.ctx, "inv_nope")
	mustCode(t, err, "invitation_not_found")
	// A new invitation for the address is a new record, not the revoked one.
	again := h.mustInvite("new@example.com")
	if again.ID == inv.ID || again.Status != Pending {
		t.Fatalf("invite after revoke = %+v", again)
	}
}

func TestResendExtendsAndRotates(t *testing.T) {
	h := newHarness(t)
	ttl := Duration(48 * time.Hour)
	inv := h.mustInvite("new@example.com", sendEmail(false), func(r *InviteRequest) { r.TTL = &ttl })
	shard, oldHash, _ := tokens.Parse(strings.TrimPrefix(inv.AcceptURL, testAcceptURL))
	h.clock.Add(24 * time.Hour)
	got, err := h.svc.Resend(h.ctx, inv.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	_, newHash, ok := tokens.Parse(strings.TrimPrefix(got.AcceptURL, testAcceptURL))
	if !ok || h.tokenAlive(oldHash, shard) || !h.tokenAlive(newHash, shard) {
		t.Fatal("resend must kill the old link and return a live new one")
	}
	if want := h.clock.Now().Add(48 * time.Hour); !got.ExpiresAt.Equal(want) {
		t.Fatalf("expiry %v, want now + the invitation's own TTL %v", got.ExpiresAt, want)
	}
}

func TestRemindIsRateLimited(t *testing.T) {
	h := newHarness(t)
	inv := h.mustInvite("new@example.com")
	first, err := h.svc.Remind(h.ctx, inv.ID)
	if err != nil || first.RemindedAt == nil || !first.ExpiresAt.Equal(inv.ExpiresAt) {
		t.Fatalf("remind: %+v %v (a reminder keeps the expiry)", first, err)
	}
	h.clock.Add(20 * time.Minute)
	_, err = h.svc.Remind(h.ctx, inv.ID)
	mustCode(t, err, "remind_too_soon")
	e, _ := apperr.As(err)
	if e.Kind != apperr.RateLimited || e.RetryAfter != 40*time.Minute {
		t.Fatalf("kind %v retry after %v, want 429 in 40m", e.Kind, e.RetryAfter)
	}
	h.clock.Add(40 * time.Minute)
	if _, err := h.svc.Remind(h.ctx, inv.ID); err != nil {
		t.Fatalf("remind after the interval: %v", err)
	}
}

func TestExpiryReadsExpiredBeforeAnySweep(t *testing.T) {
	h := newHarness(t)
	inv := h.mustInvite("new@example.com")
	h.clock.Add(7*24*time.Hour + time.Millisecond)
	got, err := h.svc.Get(h.ctx, inv.ID)
	if err != nil || got.Status != Expired {
		t.Fatalf("after expiry Get = %q %v, want expired", got.Status, err)
	}
	_, err = h.svc.Resend(h.ctx, inv.ID, true)
	mustCode(t, err, "invitation_expired")
	if apperr.KindOf(err) != apperr.Gone {
		t.Fatal("an expired invitation is gone (410)")
	}
	pending, _ := h.svc.List(h.ctx, h.org.ID, Filter{Status: "pending", Limit: 10})
	expired, _ := h.svc.List(h.ctx, h.org.ID, Filter{Status: "expired", Limit: 10})
	if pending.Total != 0 || expired.Total != 1 || expired.Items[0].ID != inv.ID {
		t.Fatalf("pending %d, expired %+v", pending.Total, expired)
	}
	// A new invitation for the address replaces the expired one.
	again := h.mustInvite("new@example.com")
	if again.ID == inv.ID {
		t.Fatal("an expired invitation must not be revived")
	}
}

func TestSweepExpiresAndPurges(t *testing.T) {
	h := newHarness(t)
	a := h.mustInvite("a@example.com")
	h.mustInvite("b@example.com", func(r *InviteRequest) { d := Duration(30 * 24 * time.Hour); r.TTL = &d })
	h.clock.Add(8 * 24 * time.Hour)
	expired, purged, err := h.svc.store.Sweep(h.ctx, 1)
	if err != nil || expired != 1 || purged != 0 {
		t.Fatalf("sweep = %d %d %v", expired, purged, err)
	}
	stored := h.rdb.HGet(h.ctx, h.ks.Invitation(a.ID), "s").Val()
	if stored != "expired" {
		t.Fatalf("stored status %q after sweep", stored)
	}
	// Retention (24h in the harness) later, the record is purged.
	h.clock.Add(25 * time.Hour)
	if _, purged, _ = h.svc.store.Sweep(h.ctx, 100); purged != 1 {
		t.Fatalf("purged %d, want 1", purged)
	}
	_, err = h.svc.Get(h.ctx, a.ID)
	mustCode(t, err, "invitation_not_found")
	all, _ := h.svc.List(h.ctx, h.org.ID, Filter{Status: "all", Limit: 10})
	if all.Total != 1 {
		t.Fatalf("after purge %d invitations listed, want 1", all.Total)
	}
}

func TestListFiltersAndPages(t *testing.T) {
	h := newHarness(t)
	var pending []string
	for i := 0; i < 5; i++ {
		pending = append(pending, h.mustInvite(fmt.Sprintf("p%d@example.com", i)).ID)
		h.clock.Add(time.Millisecond)
	}
	rev := h.mustInvite("gone@example.com")
	if _, err := h.svc.Revoke(h.ctx, rev.ID); err != nil {
		t.Fatal(err)
	}
	h.mustInvite("gone@example.com") // pending again, new record

	var got []string
	cursor := ""
	for {
		p, err := h.svc.List(h.ctx, h.org.Slug, Filter{Cursor: cursor, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if p.Total != 6 {
			t.Fatalf("pending total %d, want 6", p.Total)
		}
		for _, inv := range p.Items {
			got = append(got, inv.ID)
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if len(got) != 6 || fmt.Sprint(got[:5]) != fmt.Sprint(pending) {
		t.Fatalf("pending pages %v, want creation order starting %v", got, pending)
	}
	byEmail, _ := h.svc.List(h.ctx, h.org.ID, Filter{Status: "all", Email: "GONE@example.com", Limit: 10})
	if byEmail.Total != 2 {
		t.Fatalf("all invitations for gone@: %d, want 2", byEmail.Total)
	}
	revoked, _ := h.svc.List(h.ctx, h.org.ID, Filter{Status: "revoked", Email: "gone@example.com", Limit: 10})
	if revoked.Total != 1 || revoked.Items[0].ID != rev.ID {
		t.Fatalf("revoked for gone@: %+v", revoked)
	}
	_, err := h.svc.List(h.ctx, h.org.ID, Filter{Status: "weird", Limit: 10})
	mustCode(t, err, "invalid_status")
	_, err = h.svc.List(h.ctx, "missing", Filter{Limit: 10})
	mustCode(t, err, "organization_not_found")
}

// Creating an invitation is two round trips: its reference in the
// address slot (which keeps its placeholder from being deleted, see
// placeholders.go), then the one script that writes it. Re-inviting adds a
// third, dropping the reference the rotated invitation did not need.
func TestCreatingAnInvitationIsTwoRedisRoundTrips(t *testing.T) {
	h := newHarness(t)
	h.mustInvite("warm-up@example.com") // loads the script into the server's cache
	for i, email := range []string{"new@example.com", "new@example.com"} {
		before := h.trips.n.Load()
		h.mustInvite(email)
		if n, want := h.trips.n.Load()-before, int64(2+i); n != want {
			t.Fatalf("inviting %s took %d Redis round trips, want %d", email, n, want)
		}
	}
	existing := h.ids.Add("old@example.com", "Old")
	before := h.trips.n.Load()
	inv := h.mustInvite(existing.Email)
	if n := h.trips.n.Load() - before; n != 2 || !inv.ExistingIdentity {
		t.Fatalf("inviting an existing person took %d round trips", n)
	}
}

func TestStoreOnDeletedOrganizationRevokes(t *testing.T) {
	h := newHarness(t)
	inv := h.mustInvite("new@example.com", sendEmail(false))
	shard, hash, _ := tokens.Parse(strings.TrimPrefix(inv.AcceptURL, testAcceptURL))
	n, err := h.orgs.Delete(h.ctx, h.org.ID)
	if err != nil || n != 1 {
		t.Fatalf("delete = %d %v", n, err)
	}
	got, err := h.svc.Get(h.ctx, inv.ID)
	if err != nil || got.Status != Revoked || h.tokenAlive(hash, shard) {
		t.Fatalf("after org delete: %+v %v, token alive %v", got, err, h.tokenAlive(hash, shard))
	}
}

func TestUnavailableIsNotMistakenForMissing(t *testing.T) {
	h := newHarness(t)
	broken := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond, MaxRetries: -1})
	defer broken.Close()
	h.svc.store.rdb = broken
	_, err := h.svc.Get(context.Background(), redisx.NewID("inv", 3, time.Now()))
	if apperr.KindOf(err) != apperr.Unavailable {
		t.Fatalf("err = %v", err)
	}
	if errors.Is(err, redis.Nil) {
		t.Fatal("unexpected redis.Nil")
	}
}
