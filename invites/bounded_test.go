package invites

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// usage is what Redis holds: keys (DBSIZE) and bytes (INFO used_memory).
type usage struct{ Keys, Bytes int64 }

func (h *harness) usage() usage {
	h.t.Helper()
	n, err := h.rdb.DBSize(h.ctx).Result()
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := h.rdb.Info(h.ctx, "memory").Result()
	if err != nil {
		h.t.Fatal(err)
	}
	var bytes int64
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			bytes, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return usage{Keys: n, Bytes: bytes}
}

// Every key kratos-orgs writes has an owner or a TTL: a thousand
// lifecycles of sign-ups and invitations (register, invite, resend twice,
// revoke, an automatic reminder, expire), each recorded in the audit
// trail, with the sweeper and the outbox doing their work, leave Redis
// where it started once the retention has passed. Durations that Redis
// itself counts (TTLs) are shortened for the test, as the clock is
// injected for the rest.
func TestBoundedStateOverCycles(t *testing.T) {
	r := testenv.StartRedis(t) // its own server: DBSIZE and used_memory are this test's alone
	// A deleted organization's audit trail lives audit.max_age, a TTL;
	// a live one's is capped by length.
	h := newHarnessRecording(t, r.Client(t), redisx.RecordOptions{AuditMaxAge: 50 * time.Millisecond, AuditMaxEntries: 50}).withReminders()
	h.index.stampsTTL = 50 * time.Millisecond
	h.index.knownTTL = 50 * time.Millisecond
	h.deliv.mailTTL = 50 * time.Millisecond
	h.mailer.batches.ttl = 50 * time.Millisecond
	members := orgs.NewIdentityIndex(h.rdb, h.ks, nil)
	members.StampsTTL = 50 * time.Millisecond
	members.Register(h.worker)
	reg := newRegistrar(h, RegistrarOptions{})
	reg.cooldown = 50 * time.Millisecond

	cycle := func(i int) {
		if err := reg.Register(h.ctx, RegisterRequest{OrganizationName: "Cycle Co", Email: fmt.Sprintf("founder%d@example.com", i)}); err != nil {
			t.Fatalf("cycle %d: register: %v", i, err)
		}
		kept := h.mustInvite(fmt.Sprintf("guest%d@example.com", i))
		for range 2 {
			if _, err := h.svc.Resend(h.ctx, kept.ID, true); err != nil {
				t.Fatalf("cycle %d: resend: %v", i, err)
			}
		}
		dropped := h.mustInvite(fmt.Sprintf("dropped%d@example.com", i))
		if _, err := h.svc.Revoke(h.ctx, dropped.ID); err != nil {
			t.Fatalf("cycle %d: revoke: %v", i, err)
		}
		h.drain()
		// The automatic reminders that came due (2 days after sending).
		h.clock.Add(48 * time.Hour)
		if _, _, err := h.svc.SendDueReminders(h.ctx, 100); err != nil {
			t.Fatal(err)
		}
		h.drain()
		// Past the links' expiry (and the previous cycle's retention).
		h.clock.Add(h.svc.cfg.TTL + time.Second)
		if _, _, err := h.svc.store.Sweep(h.ctx, 100); err != nil {
			t.Fatal(err)
		}
		h.drain()
	}
	settle := func() usage {
		h.clock.Add(25 * time.Hour) // the harness' retention is 24h
		if _, _, err := h.svc.store.Sweep(h.ctx, 1000); err != nil {
			t.Fatal(err)
		}
		h.drain()
		time.Sleep(200 * time.Millisecond) // the shortened TTLs
		return h.usage()
	}

	// Warm up: streams, consumer groups, counters and scripts exist.
	for i := 0; i < 20; i++ {
		cycle(-1 - i)
	}
	before := settle()
	beforeKeys := map[string]bool{}
	for _, k := range h.keys() {
		beforeKeys[k] = true
	}
	const cycles = 1000
	var peak usage
	start := time.Now()
	for i := 0; i < cycles; i++ {
		cycle(i)
		if i%100 == 99 {
			if u := h.usage(); u.Keys > peak.Keys {
				peak = u
			}
		}
	}
	after := settle()
	t.Logf("%d cycles (register, invite, resend ×2, revoke, remind, expire) in %s: before %d keys %d bytes; during up to %d keys %d bytes; after retention %d keys %d bytes (Δ %+d keys, %+d bytes); %d identities left in the Kratos fake",
		cycles, time.Since(start).Round(time.Millisecond), before.Keys, before.Bytes, peak.Keys, peak.Bytes,
		after.Keys, after.Bytes, after.Keys-before.Keys, after.Bytes-before.Bytes, h.ids.Count())
	// A shard's counters and outbox stream appear the first time the
	// shard is used and stay (two per shard, bounded); nothing else may.
	fixed := regexp.MustCompile(`\{\d+\}:(stats|outbox)$`)
	for _, k := range h.keys() {
		if !beforeKeys[k] && !fixed.MatchString(k) {
			t.Errorf("left behind: %s", k)
		}
	}
	if after.Keys > before.Keys+2*redisx.Shards {
		t.Fatalf("%d keys before, %d after", before.Keys, after.Keys)
	}
	if after.Bytes > before.Bytes+256<<10 {
		t.Fatalf("used_memory grew from %d to %d bytes over %d cycles", before.Bytes, after.Bytes, cycles)
	}
	if peak.Keys <= before.Keys {
		t.Fatalf("the cycles never held state (peak %d keys): the test measures nothing", peak.Keys)
	}
}

// A link keeps explaining itself after one rotation; two rotations back it
// reads as unknown, and an invitation never holds more than two records.
func TestTokenInfoIsBoundedPerInvitation(t *testing.T) {
	h := newHarness(t)
	inv := h.mustInvite("rotating@example.com", sendEmail(false))
	links := []string{tokenOf(t, inv)}
	for range 5 {
		got, err := h.svc.Resend(h.ctx, inv.ID, false)
		if err != nil {
			t.Fatal(err)
		}
		links = append(links, tokenOf(t, got))
	}
	index := h.ks.Tokens(redisx.ShardOf(inv.ID))
	if n := h.rdb.HLen(h.ctx, index).Val(); n != 2 {
		t.Fatalf("%d token index entries after 5 rotations, want 2 (the newest link and the one it replaced)", n)
	}
	for i, tok := range links {
		link, err := h.svc.Lookup(h.ctx, tok)
		switch {
		case i == len(links)-1:
			if err != nil || !link.Live {
				t.Fatalf("newest link: %+v %v", link, err)
			}
		case i == len(links)-2:
			if err != nil || link.Live || link.Invitation.ID != inv.ID {
				t.Fatalf("replaced link should explain itself: %+v %v", link, err)
			}
		default:
			mustCode(t, err, "link_not_found")
		}
	}
	// Purged with the invitation.
	if _, err := h.svc.Revoke(h.ctx, inv.ID); err != nil {
		t.Fatal(err)
	}
	h.clock.Add(25 * time.Hour)
	if _, _, err := h.svc.store.Sweep(h.ctx, 100); err != nil {
		t.Fatal(err)
	}
	if left, _ := testenv.Keys(h.ctx, h.rdb, h.ks.Prefix+"*tok*"); len(left) != 0 {
		t.Fatalf("token records outlived the purged invitation: %v", left)
	}
	if left, _ := testenv.Keys(h.ctx, h.rdb, h.ks.Prefix+"*inv:ended"); len(left) != 0 {
		t.Fatalf("the address' ended invitations outlived the purge: %v", left)
	}
}
