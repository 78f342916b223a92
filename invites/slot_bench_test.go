package invites

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// An organization's data lives in one hash slot (its shard's tag, see
// redisx/keys.go), so one organization can grow only as far as one Redis
// node holds. These benchmarks fill one organization on a private Redis
// Cluster and report what its slot costs (README, "Redis Cluster"):
//
//	go test -run=NONE -bench=OrgSlot -benchtime=100000x ./invites/
//
// b.N is the number of pending invitations (members). Reported: bytes per
// invitation (MEMORY USAGE over every key of the slot, after minus before,
// divided by N; the outbox drained, as the worker leaves it), the growth
// of the node's used_memory per invitation (allocator overhead included),
// keys per invitation, and the slot's total in MiB. The log splits the
// bytes by key family.

func BenchmarkOrgSlotInvitations(b *testing.B) {
	env := newSlotBench(b)
	store := NewStore(env.rdb, env.ks, 24*time.Hour, time.Now)
	env.fill(b, func(ctx context.Context, i int64) error {
		email := fmt.Sprintf("person%07d@example.com", i)
		th := sha256.Sum256([]byte(email))
		_, _, err := store.Create(ctx, NewInvitation{
			OrganizationID: env.org.ID, Email: email, Role: "member", TTL: 7 * 24 * time.Hour,
			TokenHash: hex.EncodeToString(th[:]), Inviter: &Inviter{ID: "5f1c9a3e-6a43-4b8e-9d0f-2c7e8b1a4d6f", Name: "Ada Lovelace"},
			IdentityID: fmt.Sprintf("7d2f%04x-1b3c-4e5f-8a9b-%012x", i&0xffff, i), IdentityCreated: true,
			SendEmail: true, SealedToken: "sealed-" + hex.EncodeToString(th[:]), Template: "invitation", Kind: "invitation",
		})
		return err
	})
	env.report(b, "invitation")
}

func BenchmarkOrgSlotMembers(b *testing.B) {
	env := newSlotBench(b)
	env.fill(b, func(ctx context.Context, i int64) error {
		_, _, err := env.orgs.AddMember(ctx, env.org.ID, orgs.Member{
			IdentityID: fmt.Sprintf("7d2f%04x-1b3c-4e5f-8a9b-%012x", i&0xffff, i),
			Email:      fmt.Sprintf("person%07d@example.com", i), Role: "member",
		})
		return err
	})
	env.report(b, "member")
}

type slotBench struct {
	cluster *testenv.Cluster
	rdb     redis.UniversalClient
	ks      redisx.Keyspace
	orgs    *orgs.Store
	org     orgs.Organization
	before  slotUsage
}

func newSlotBench(b *testing.B) *slotBench {
	b.Helper()
	c := testenv.StartCluster(b, testenv.ClusterOptions{})
	env := &slotBench{cluster: c, rdb: c.Open(b), ks: redisx.Keyspace{Prefix: "kratos-orgs:"}}
	env.orgs = orgs.NewStore(env.rdb, env.ks, 24*time.Hour, time.Now)
	var err error
	env.org, err = env.orgs.Create(context.Background(), orgs.Organization{Name: "Big", Slug: "big", State: orgs.StateActive}, true,
		&orgs.Member{IdentityID: "5f1c9a3e-6a43-4b8e-9d0f-2c7e8b1a4d6f", Email: "owner@example.com"})
	if err != nil {
		b.Fatal(err)
	}
	env.before = env.usage(b)
	return env
}

// fill runs write b.N times, from several goroutines.
func (env *slotBench) fill(b *testing.B, write func(ctx context.Context, i int64) error) {
	var seq atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := write(context.Background(), seq.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
}

func (env *slotBench) report(b *testing.B, what string) {
	after := env.usage(b)
	n := float64(b.N)
	perItem := float64(after.bytes-env.before.bytes) / n
	b.ReportMetric(perItem, "B/"+what)
	b.ReportMetric(float64(after.nodeMemory-env.before.nodeMemory)/n, "used-B/"+what)
	b.ReportMetric(float64(after.keys-env.before.keys)/n, "keys/"+what)
	b.ReportMetric(float64(after.bytes)/(1<<20), "slot-MiB")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), what+"s/s")
	b.Logf("%d %ss in one organization: slot %d holds %d keys, %.1f MiB (MEMORY USAGE); %.0f bytes per %s; node used_memory %.1f MiB → %.1f MiB",
		b.N, what, after.slot, after.keys, float64(after.bytes)/(1<<20), perItem, what,
		float64(env.before.nodeMemory)/(1<<20), float64(after.nodeMemory)/(1<<20))
	families := make([]string, 0, len(after.families))
	for f := range after.families {
		families = append(families, f)
	}
	sort.Strings(families)
	var split []string
	for _, f := range families {
		if d := after.families[f] - env.before.families[f]; d != 0 {
			split = append(split, fmt.Sprintf("%s %.1f", strings.TrimPrefix(f, env.ks.Prefix), float64(d)/n))
		}
	}
	b.Logf("bytes per %s by key family: %s", what, strings.Join(split, "; "))
}

// keyFamily names a key's family: its ids, hashes and addresses elided.
var keyFamily = regexp.MustCompile(`(inv|org)_[0-9a-z]{26}|[0-9a-f]{32,64}|[^:]*@[^:]*`)

type slotUsage struct {
	slot       int64
	keys       int64
	bytes      int64
	nodeMemory int64
	families   map[string]int64 // bytes by key family
}

// usage sums MEMORY USAGE (exact: SAMPLES 0) over every key of the
// organization's slot, on the master that serves it.
func (env *slotBench) usage(b *testing.B) slotUsage {
	b.Helper()
	ctx := context.Background()
	// The worker acknowledges (XDEL) every job; here nobody runs it.
	env.rdb.Del(ctx, env.ks.Outbox(redisx.ShardOf(env.org.ID)))
	key := env.ks.Org(env.org.ID)
	m, err := env.cluster.MasterFor(key)
	if err != nil {
		b.Fatal(err)
	}
	node := m.Client(b)
	u := slotUsage{families: map[string]int64{}}
	if u.slot, err = node.ClusterKeySlot(ctx, key).Result(); err != nil {
		b.Fatal(err)
	}
	if u.keys, err = node.ClusterCountKeysInSlot(ctx, int(u.slot)).Result(); err != nil {
		b.Fatal(err)
	}
	keys, err := node.ClusterGetKeysInSlot(ctx, int(u.slot), int(u.keys)).Result()
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < len(keys); i += 1000 {
		pipe := node.Pipeline()
		var cmds []*redis.IntCmd
		for _, k := range keys[i:min(i+1000, len(keys))] {
			cmds = append(cmds, pipe.MemoryUsage(ctx, k, 0))
		}
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			b.Fatal(err)
		}
		for j, c := range cmds {
			u.bytes += c.Val()
			u.families[keyFamily.ReplaceAllString(keys[i+j], "<…>")] += c.Val()
		}
	}
	info, err := node.InfoMap(ctx, "memory").Result()
	if err == nil {
		fmt.Sscan(info["Memory"]["used_memory"], &u.nodeMemory)
	}
	return u
}
