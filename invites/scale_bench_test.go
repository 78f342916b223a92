package invites

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
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
// Two private redis-servers (no persistence) are filled through the store's own create
// script (pipelined, the outbox dropped as a worker would drain it), so
// the data is the real layout: one with 1,000 invitations, one with the
// large number. Each iteration runs the operation once on each, one after
// the other, so load from elsewhere on the machine hits both alike; the
// table shows the median of each. Operations:
//
//   - list: the first page (50) of an organization's pending invitations;
//   - list-middle: a page from a cursor half-way through;
//   - address: an address' invitations (the list filtered by address);
//   - invite: a new invitation (the address look-up of create included);
//   - sweep: one sweeper step of 200 due invitations (written, untimed,
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
	n     int      // pending invitations written by the fill
	seq   int      // addresses used so far
	now   time.Time
	mid   string  // the cursor half-way through orgs[0]'s pending invitations
	mem   float64 // used_memory per pending invitation
}

// next is a fresh address number.
func (env *scaleEnv) next() int {
	env.seq++
	return env.seq - 1
}

func BenchmarkScale(b *testing.B) {
	large := *benchScale
	if v, err := strconv.Atoi(os.Getenv("INVITES_SCALE")); err == nil && v > 0 {
		large = v
	}
	var servers [2]redis.UniversalClient
	for i := range servers {
		servers[i] = scaleServer(b)
	}
	sizes := [2]int{scaleSmall, large}
	var table []string
	for _, shape := range []string{"one-org", "spread"} {
		var envs [2]*scaleEnv
		for i := range envs {
			envs[i] = fillScale(b, servers[i], shape, sizes[i])
		}
		table = append(table, fmt.Sprintf("%-8s %-12s %7.0f B %13.0f B %6.2f×", shape, "memory",
			envs[0].mem, envs[1].mem, envs[1].mem/envs[0].mem))
		for _, op := range scaleOps {
			var med [2]float64
			b.Run(shape+"/"+op.name, func(b *testing.B) {
				med = runScaleOp(b, op, envs)
				b.ReportMetric(med[0], fmt.Sprintf("µs@%d", sizes[0]))
				b.ReportMetric(med[1], fmt.Sprintf("µs@%d", sizes[1]))
				b.ReportMetric(med[1]/med[0], "ratio")
			})
			table = append(table, fmt.Sprintf("%-8s %-12s %6.0f µs %12.0f µs %6.2f×", shape, op.name, med[0], med[1], med[1]/med[0]))
		}
	}
	fmt.Printf("\nmedians; memory is used_memory per pending invitation\n%-8s %-12s %9s %15s %7s\n%s\n",
		"shape", "operation", fmt.Sprintf("at %d", sizes[0]), fmt.Sprintf("at %d", sizes[1]), "ratio", strings.Join(table, "\n"))
}

// runScaleOp runs op b.N times on each environment, alternating, and
// returns the median duration on each, in µs.
func runScaleOp(b *testing.B, op scaleOp, envs [2]*scaleEnv) [2]float64 {
	var samples [2][]time.Duration
	b.ResetTimer()
	for i := range b.N {
		for j, env := range envs {
			if op.prepare != nil {
				b.StopTimer()
				op.prepare(b, env)
				b.StartTimer()
			}
			start := time.Now()
			if err := op.step(env, i); err != nil {
				b.Fatalf("%s on %d invitations: %v", op.name, env.n, err)
			}
			samples[j] = append(samples[j], time.Since(start))
		}
	}
	b.StopTimer()
	var med [2]float64
	for j := range samples {
		slices.Sort(samples[j])
		med[j] = float64(samples[j][len(samples[j])/2].Nanoseconds()) / 1e3
		envs[j].rdb.Del(context.Background(), envs[j].ks.Outbox(redisx.ShardOf(envs[j].orgs[0])))
	}
	return med
}

type scaleOp struct {
	name    string
	prepare func(b *testing.B, env *scaleEnv) // untimed, before each step; may be nil
	step    func(env *scaleEnv, i int) error
}

var scaleOps = []scaleOp{
	{name: "list", step: func(env *scaleEnv, _ int) error {
		page, err := env.store.List(context.Background(), env.orgs[0], Filter{Status: "pending", Limit: scalePageSize})
		if err == nil && len(page.Items) != scalePageSize {
			err = fmt.Errorf("%d items", len(page.Items))
		}
		return err
	}},
	{name: "list-middle", step: func(env *scaleEnv, _ int) error {
		page, err := env.store.List(context.Background(), env.orgs[0], Filter{Status: "pending", Cursor: env.mid, Limit: scalePageSize})
		if err == nil && len(page.Items) == 0 {
			err = errors.New("no items")
		}
		return err
	}},
	{name: "address", step: func(env *scaleEnv, i int) error {
		// orgs[0]'s addresses: every len(orgs)-th (pipeCreate deals them out).
		k := (i * 7919) % (env.n / len(env.orgs)) * len(env.orgs)
		page, err := env.store.List(context.Background(), env.orgs[0], Filter{Status: "all", Email: scaleEmail(k), Limit: scalePageSize})
		if err == nil && len(page.Items) != 1 {
			err = fmt.Errorf("%s: %d items", scaleEmail(k), len(page.Items))
		}
		return err
	}},
	{name: "invite", step: func(env *scaleEnv, _ int) error {
		_, _, err := env.store.Create(context.Background(), scaleInvitation(env.orgs[0], env.next(), 7*24*time.Hour))
		return err
	}},
	{name: "sweep", prepare: func(b *testing.B, env *scaleEnv) {
		env.pipeCreate(b, env.orgs[:1], scaleSweep, time.Millisecond)
	}, step: func(env *scaleEnv, _ int) error {
		expired, _, err := env.store.sweepStep(context.Background(), redisx.ShardOf(env.orgs[0]), scaleSweep, env.now.Add(time.Second))
		if err == nil && expired != scaleSweep {
			err = fmt.Errorf("%d expired", expired)
		}
		return err
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
	pending := env.ks.OrgInvitationsByStatus(env.orgs[0], "pending")
	env.mid = rdb.ZRange(ctx, pending, rdb.ZCard(ctx, pending).Val()/2, -1).Val()[0]
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
	const batch = 500
	for done := 0; done < n; done += batch {
		pipe := env.rdb.Pipeline()
		var cmds []*redis.Cmd
		for i := done; i < min(done+batch, n); i++ {
			keys, args := env.store.createCall(scaleInvitation(orgIDs[i%len(orgIDs)], env.next(), ttl), env.now)
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

// scaleServer starts a redis-server that keeps nothing on disk, and a
// client that never retries (a retried pipeline would run its scripts
// twice) and waits long enough for a batch on a loaded machine.
func scaleServer(b *testing.B) redis.UniversalClient {
	b.Helper()
	r, err := testenv.NewRedis(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(r.Stop)
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1, ReadTimeout: time.Minute, WriteTimeout: time.Minute})
	b.Cleanup(func() { _ = c.Close() })
	return c
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
