package invites

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/redisx"
	"github.com/kratos-orgs/kratos-orgs/tokens"
)

// legacyInvitation writes an invitation as the first layout did (long
// field names, a key per token, a set per address, the ids and pending
// sets) and returns its id and link token.
func (h *harness) legacyInvitation(email, status string) (id, token string) {
	h.t.Helper()
	now := h.clock.Now()
	org, shard := h.org.ID, redisx.ShardOf(h.org.ID)
	id = redisx.NewID("inv", shard, now)
	token, hash := tokens.New(shard)
	exp := now.Add(7 * 24 * time.Hour).UnixMilli()
	ms := strconv.FormatInt(now.UnixMilli(), 10)
	fields := []any{"id", id, "org", org, "email", email, "status", status, "kind", "invitation",
		"created_at", ms, "token_version", 1, "role", "member", "expires_at", exp, "ttl_ms", 7 * 24 * 3600 * 1000,
		"token_hash", hash, "inviter_id", "", "inviter_name", "Ada", "context", "", "redirect_to", "",
		"identity_id", "", "identity_existing", "1", "identity_created", "0", "updated_at", ms,
		"delivery", "sent", "delivery_attempts", 1, "delivery_error", "", "delivery_id", "msg-1",
		"delivery_at", ms, "granted_by", ""}
	p := h.rdb.TxPipeline()
	p.HSet(h.ctx, h.ks.Invitation(id), fields...)
	p.ZAdd(h.ctx, h.ks.OrgInvitations(org), redisZ(0, id))
	p.ZAdd(h.ctx, h.ks.OrgInvitationsByStatus(org, status), redisZ(0, id))
	p.SAdd(h.ctx, h.ks.OrgAddressInvitations(org, email), id)
	p.Set(h.ctx, h.ks.TokenInfo(shard, hash), id, 8*24*time.Hour)
	if status == "pending" {
		p.HSet(h.ctx, h.ks.OrgPendingByEmail(org), email, id)
		p.ZAdd(h.ctx, h.ks.OrgPending(org), redisZ(float64(exp), id))
		p.ZAdd(h.ctx, h.ks.Due(shard), redisZ(float64(exp), id))
		p.Set(h.ctx, h.ks.Token(shard, hash), id, 7*24*time.Hour)
	} else {
		p.HSet(h.ctx, h.ks.Invitation(id), "ended_at", ms)
		p.ZAdd(h.ctx, h.ks.Purge(shard), redisZ(float64(now.Add(24*time.Hour).UnixMilli()), id))
	}
	if _, err := p.Exec(h.ctx); err != nil {
		h.t.Fatal(err)
	}
	return id, token
}

// legacyKeys lists the first layout's keys still in Redis.
func (h *harness) legacyKeys() []string {
	var out []string
	for _, k := range h.keys() {
		for _, part := range []string{":tok:", ":tokinfo:", ":inv:ids", ":inv:pending", ":inv:addr:"} {
			if strings.Contains(k, part) {
				out = append(out, k)
			}
		}
	}
	return out
}

// An invitation the first layout wrote reads, lists and is accepted as
// before; the first script that touches it rewrites it into today's
// layout, leaving none of the old keys.
func TestFirstLayoutInvitationIsUpgraded(t *testing.T) {
	h := newHarness(t)
	id, token := h.legacyInvitation("old@example.com", "pending")
	got, err := h.svc.Get(h.ctx, id)
	if err != nil || got.Email != "old@example.com" || got.Status != Pending || got.Delivery.MessageID != "msg-1" || got.ID != id {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	for _, f := range []Filter{{Status: "pending", Limit: 10}, {Status: "all", Email: "old@example.com", Limit: 10}} {
		page, err := h.svc.store.List(h.ctx, h.org.ID, f)
		if err != nil || len(page.Items) != 1 || page.Items[0].ID != id || page.Total != 1 {
			t.Fatalf("List(%+v) = %+v, %v", f, page, err)
		}
	}
	link, err := h.svc.Lookup(h.ctx, token)
	if err != nil || !link.Live || link.Invitation.ID != id {
		t.Fatalf("Lookup = %+v, %v", link, err)
	}
	if old := h.legacyKeys(); len(old) != 0 {
		t.Fatalf("first-layout keys left after the upgrade: %v", old)
	}
	if h.rdb.HExists(h.ctx, h.ks.Invitation(id), "status").Val() {
		t.Fatal("the record still has the first layout's field names")
	}
	inv, err := h.svc.store.Claim(h.ctx, token, time.Minute)
	if err != nil || inv.ID != id {
		t.Fatalf("Claim = %+v, %v", inv, err)
	}
	done, err := h.svc.store.Finalize(h.ctx, id, "1d5c0e6e-0c1f-4f0e-9b55-0b9d7a1c2e3f", "old@example.com", "")
	if err != nil || done.Invitation.Status != Accepted {
		t.Fatalf("Finalize = %+v, %v", done, err)
	}
}

// A first-layout link that was replaced still explains itself; ended
// first-layout invitations list by address and are purged with all their
// keys.
func TestFirstLayoutRotationAndPurge(t *testing.T) {
	h := newHarness(t)
	id, token := h.legacyInvitation("rot@example.com", "pending")
	ended, _ := h.legacyInvitation("rot@example.com", "revoked")
	rotated, err := h.svc.Resend(h.ctx, id, false)
	if err != nil || rotated.ID != id {
		t.Fatalf("Resend = %+v, %v", rotated, err)
	}
	if link, err := h.svc.Lookup(h.ctx, token); err != nil || link.Live || link.Invitation.ID != id {
		t.Fatalf("replaced first-layout link: %+v, %v", link, err)
	}
	if link, err := h.svc.Lookup(h.ctx, tokenOf(t, rotated)); err != nil || !link.Live {
		t.Fatalf("new link: %+v, %v", link, err)
	}
	page, err := h.svc.store.List(h.ctx, h.org.ID, Filter{Status: "all", Email: "rot@example.com", Limit: 10})
	if err != nil || page.Total != 2 || len(page.Items) != 2 {
		t.Fatalf("by address: %+v, %v", page, err)
	}
	if page, err := h.svc.store.List(h.ctx, h.org.ID, Filter{Status: "all", Limit: 10}); err != nil || page.Total != 2 {
		t.Fatalf("all: %+v, %v", page, err)
	}
	if _, err := h.svc.Revoke(h.ctx, id); err != nil {
		t.Fatal(err)
	}
	h.clock.Add(25 * time.Hour)
	if _, purged, err := h.svc.store.Sweep(h.ctx, 100); err != nil || purged != 2 {
		t.Fatalf("purged %d, %v; want both", purged, err)
	}
	for _, k := range h.keys() {
		if strings.Contains(k, id) || strings.Contains(k, ended) || strings.Contains(k, ":tok") || strings.Contains(k, ":inv:") {
			t.Errorf("left after the purge: %s", k)
		}
	}
}

func redisZ(score float64, member string) redis.Z { return redis.Z{Score: score, Member: member} }
