package invites

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// BenchmarkScale measures what the invitation paths that could grow with
// the data cost at 1,000 pending invitations and at -invites.scale of
// them (default 100,000; the figure is 1,000,000), in two shapes:
// all in one organization, and 100 per organization (10,000
// organizations at a million). It prints a table with both sizes and
// their ratio:
//
//	go test -run=NONE -bench=Scale ./invites/ -invites.scale=1000000
//
// A private redis-server is filled through the store's own create script
// (pipelined, the outbox dropped as a worker would drain it), so the data
// is the real layout. Operations, each timed by the benchmark loop:
//
//   - list: the first page (50) of an organization's pending invitations;
//   - list-middle: a page from a cursor half-way through;
//   - address: an address' invitations (the list filtered by address);
//   - invite: a new invitation (the address look-up of create included);
//   - sweep: one sweeper step of 200 due invitations (refilled, untimed,
//     before each step).
var benchScale = flag.Int("invites.scale", 100_000, "pending invitations of BenchmarkScale's large size")

const (
	scaleSmall    = 1_000
	scalePerOrg   = 100 // invitations per organization in the spread shape
	scaleSweep    = 200 // the sweeper's batch (server.go)
	scalePageSize = 50
)

var scaleT0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

type scaleEnv struct {
	rdb   redis.UniversalClient
	ks    redisx.Keyspace
	store *Store
	orgs  []string // organization ids; orgs[0] is listed and swept
	n     int      // pending invitations
	seq   int      // addresses used so far
	now   time.Time
	mem   float64 // used_memory per pending invitation
}

func BenchmarkScale(b *testing.B) {
	large := *benchScale
	if v, err := strconv.Atoi(os.Getenv("INVITES_SCALE")); err == nil && v > 0 {
		large = v
	}
	r := testenv.StartRedis(b)
	rdb := r.Client(b)
	type row struct {
		shape, op string
		ns        [2]float64
		mem       [2]float64
	}
	var rows []*row
	for _, shape := range []string{"one-org", "spread"} {
		byOp := map[string]*row{}
		for i, n := range []int{scaleSmall, large} {
			env := fillScale(b, rdb, shape, n)
			for _, op := range scaleOps {
				if byOp[op.name] == nil {
					byOp[op.name] = &row{shape: shape, op: op.name}
					rows = append(rows, byOp[op.name])
				}
				rw := byOp[op.name]
				rw.mem[i] = env.mem
				b.Run(fmt.Sprintf("%s/%d/%s", shape, n, op.name), func(b *testing.B) {
					op.run(b, env)
					rw.ns[i] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				})
			}
		}
	}
	fmt.Printf("\n%-8s %-12s %14s %14s %7s\n", "shape", "operation", fmt.Sprintf("at %d", scaleSmall), fmt.Sprintf("at %d", large), "ratio")
	for _, rw := range rows {
		fmt.Printf("%-8s %-12s %11.1f µs %11.1f µs %6.2f×\n", rw.shape, rw.op, rw.ns[0]/1e3, rw.ns[1]/1e3, rw.ns[1]/rw.ns[0])
	}
	for _, rw := range rows {
		if rw.op == scaleOps[0].name {
			fmt.Printf("%-8s used_memory per pending invitation: %.0f B at %d, %.0f B at %d\n",
				rw.shape, rw.mem[0], scaleSmall, rw.mem[1], large)
		}
	}
}

var scaleOps = []struct {
	name string
	run  func(b *testing.B, env *scaleEnv)
}{
	{"list", func(b *testing.B, env *scaleEnv) {
		for range b.N {
			page, err := env.store.List(context.Background(), env.orgs[0], Filter{Status: "pending", Limit: scalePageSize})
			if err != nil || len(page.Items) != scalePageSize {
				b.Fatalf("list: %d items, %v", len(page.Items), err)
			}
		}
	}},
	{"list-middle", func(b *testing.B, env *scaleEnv) {
		ks := env.ks.OrgInvitationsByStatus(env.orgs[0], "pending")
		n := env.rdb.ZCard(context.Background(), ks).Val()
		mid := env.rdb.ZRange(context.Background(), ks, n/2, n/2).Val()[0]
		b.ResetTimer()
		for range b.N {
			page, err := env.store.List(context.Background(), env.orgs[0], Filter{Status: "pending", Cursor: mid, Limit: scalePageSize})
			if err != nil || len(page.Items) == 0 {
				b.Fatalf("list from the middle: %d items, %v", len(page.Items), err)
			}
		}
	}},
	{"address", func(b *testing.B, env *scaleEnv) {
		for i := range b.N {
			// orgs[0]'s addresses: every len(orgs)-th (pipeCreate deals them out).
			k := (i * 7919) % (env.n / len(env.orgs)) * len(env.orgs)
			page, err := env.store.List(context.Background(), env.orgs[0], Filter{Status: "all", Email: scaleEmail(k), Limit: scalePageSize})
			if err != nil || len(page.Items) != 1 {
				b.Fatalf("address %s: %d items, %v", scaleEmail(k), len(page.Items), err)
			}
		}
	}},
	{"invite", func(b *testing.B, env *scaleEnv) {
		for range b.N {
			env.seq++
			if _, _, err := env.store.Create(context.Background(), scaleInvitation(env.orgs[0], env.seq, 7*24*time.Hour)); err != nil {
				b.Fatal(err)
			}
		}
	}},
	{"sweep", func(b *testing.B, env *scaleEnv) {
		ctx := context.Background()
		shard := redisx.ShardOf(env.orgs[0])
		for range b.N {
			b.StopTimer()
			env.pipeCreate(b, env.orgs[:1], scaleSweep, time.Millisecond)
			b.StartTimer()
			expired, _, err := env.store.sweepStep(ctx, shard, scaleSweep, env.now.Add(time.Second))
			if err != nil || expired != scaleSweep {
				b.Fatalf("sweep step: %d expired, %v", expired, err)
			}
		}
		b.StopTimer()
		env.rdb.Del(ctx, env.ks.Outbox(shard))
	}},
}

func scaleEmail(i int) string { return fmt.Sprintf("p%07d@example.com", i) }

func scaleInvitation(org string, i int, ttl time.Duration) NewInvitation {
	email := scaleEmail(i)
	th := sha256.Sum256([]byte(email))
	return NewInvitation{
		OrganizationID: org, Email: email, Role: "member", TTL: ttl, TokenHash: hex.EncodeToString(th[:]),
		Inviter:    &Inviter{ID: "5f1c9a3e-6a43-4b8e-9d0f-2c7e8b1a4d6f", Name: "Ada Lovelace"},
		IdentityID: fmt.Sprintf("7d2f%04x-1b3c-4e5f-8a9b-%012x", i&0xffff, i), IdentityCreated: true,
		SendEmail: true, SealedToken: "sealed-" + hex.EncodeToString(th[:]), Template: "invitation", Kind: "invitation",
	}
}

// fillScale empties the server and writes n pending invitations in the
// shape's organizations, through the create script.
func fillScale(b *testing.B, rdb redis.UniversalClient, shape string, n int) *scaleEnv {
	b.Helper()
	ctx := context.Background()
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	env := &scaleEnv{rdb: rdb, ks: redisx.Keyspace{Prefix: "kratos-orgs:"}, n: n, now: scaleT0}
	clock := func() time.Time { return env.now }
	env.store = NewStore(rdb, env.ks, 24*time.Hour, clock)
	orgStore := orgs.NewStore(rdb, env.ks, 24*time.Hour, clock)
	count := 1
	if shape == "spread" {
		count = max(1, n/scalePerOrg)
	}
	for i := range count {
		o, err := orgStore.Create(ctx, orgs.Organization{Name: fmt.Sprintf("Org %d", i), Slug: fmt.Sprintf("org-%d", i), State: orgs.StateActive}, true,
			&orgs.Member{IdentityID: "5f1c9a3e-6a43-4b8e-9d0f-2c7e8b1a4d6f", Email: "owner@example.com"})
		if err != nil {
			b.Fatal(err)
		}
		env.orgs = append(env.orgs, o.ID)
	}
	sort.Strings(env.orgs)
	before := usedMemory(b, rdb)
	start := time.Now()
	env.pipeCreate(b, env.orgs, n, 7*24*time.Hour)
	env.mem = float64(usedMemory(b, rdb)-before) / float64(n)
	b.Logf("%s: %d pending invitations in %d organizations written in %v; used_memory %.0f B per invitation",
		shape, n, count, time.Since(start).Round(time.Millisecond), env.mem)
	return env
}

// pipeCreate writes n new invitations dealt out over orgIDs, pipelined.
func (env *scaleEnv) pipeCreate(b *testing.B, orgIDs []string, n int, ttl time.Duration) {
	b.Helper()
	ctx := context.Background()
	if err := createScript.Load(ctx, env.rdb); err != nil {
		b.Fatal(err)
	}
	const batch = 1000
	for done := 0; done < n; done += batch {
		pipe := env.rdb.Pipeline()
		var cmds []*redis.Cmd
		for i := done; i < min(done+batch, n); i++ {
			keys, args := env.store.createCall(scaleInvitation(orgIDs[i%len(orgIDs)], env.seq, ttl), env.now)
			env.seq++
			cmds = append(cmds, createScript.Eval(ctx, pipe, keys, args))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
		for _, c := range cmds {
			if res, _ := c.Slice(); len(res) == 0 || res[0] != "created" {
				b.Fatalf("create: %v", res)
			}
		}
		// The outbox worker would acknowledge (XDEL) these jobs.
		for s := range redisx.Shards {
			pipe.Del(ctx, env.ks.Outbox(s))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func usedMemory(b *testing.B, rdb redis.UniversalClient) int64 {
	b.Helper()
	info, err := rdb.InfoMap(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	n, _ := strconv.ParseInt(info["Memory"]["used_memory"], 10, 64)
	return n
}
