package reconcile_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/outbox"
	"github.com/kratos-orgs/kratos-orgs/reconcile"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// The end-to-end crash tests (real Kratos, the real invitation backend)
// are in invites/crash_test.go; these cover the reconciler's own
// machinery against a real Redis.

type noIdentities struct {
	calls, inFlight, maxInFlight atomic.Int64
	delay                        time.Duration
}

func (n *noIdentities) ListPage(ctx context.Context, _ string, _ int) ([]identity.Listed, string, error) {
	n.calls.Add(1)
	cur := n.inFlight.Add(1)
	defer n.inFlight.Add(-1)
	for {
		old := n.maxInFlight.Load()
		if cur <= old || n.maxInFlight.CompareAndSwap(old, cur) {
			break
		}
	}
	select {
	case <-time.After(n.delay):
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
	return nil, "", nil
}

type noop struct{}

func (noop) RepairInvitation(context.Context, string, bool) (string, error) { return "", nil }
func (noop) RepairAddress(context.Context, string, bool) (int, error)       { return 0, nil }
func (noop) Handle(context.Context, outbox.Job) error                       { return nil }
func (noop) DeleteIfPending(context.Context, string) error                  { return nil }
func (noop) ReleasePlaceholder(context.Context, string, string) (bool, error) {
	return false, errors.New("no placeholder exists in these tests")
}

type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) ReconcilerFixed(kind string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[kind] += n
}

func newReconciler(rdb redis.UniversalClient, ks redisx.Keyspace, ids reconcile.IdentityLister, obs reconcile.Observer, batch int) *reconcile.Reconciler {
	return reconcile.New(reconcile.Options{
		Redis: rdb, Keyspace: ks, Identities: ids, Addresses: noop{}, Members: noop{}, Orgs: noop{}, Releaser: noop{},
		Observer: obs, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Grace: time.Hour, Batch: batch,
	})
}

// TestStepIsBoundedAndResumes: one Step handles at most a batch of each
// phase and leaves its cursor in Redis, so the next Step, by another
// replica, continues there; a full pass fixes everything once.
func TestStepIsBoundedAndResumes(t *testing.T) {
	rdb := redisClient(t)
	ks := redisx.Keyspace{Prefix: testenv.UniquePrefix(t)}
	ctx := t.Context()
	const ghosts, batch = 9, 2
	for i := range ghosts {
		// Listed, never written, two hours ago: a crashed create.
		id := redisx.NewID("org", i%redisx.Shards, time.Now().Add(-2*time.Hour))
		rdb.ZAdd(ctx, ks.Orgs(), redis.Z{Member: id})
	}
	// A creation under way right now is not a leftover.
	young := redisx.NewID("org", 1, time.Now())
	rdb.ZAdd(ctx, ks.Orgs(), redis.Z{Member: young})

	obs := &counter{n: map[string]int{}}
	steps := 0
	for fixed := 0; fixed < ghosts; steps++ {
		if steps > ghosts {
			t.Fatalf("%d steps did not fix %d leftovers", steps, ghosts)
		}
		// A new reconciler each time: the cursor lives in Redis.
		rep, err := newReconciler(rdb, ks, &noIdentities{}, obs, batch).Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n := rep.Counts[reconcile.FixListingStale]; n > batch {
			t.Fatalf("one step fixed %d listings, more than a batch of %d", n, batch)
		}
		fixed += rep.Counts[reconcile.FixListingStale]
	}
	if left, _ := rdb.ZRange(ctx, ks.Orgs(), 0, -1).Result(); len(left) != 1 || left[0] != young {
		t.Fatalf("listing after the steps: %v, want only the young organization", left)
	}
	if obs.n[reconcile.FixListingStale] != ghosts {
		t.Fatalf("metrics counted %v", obs.n)
	}
	t.Logf("%d leftovers fixed in %d steps of batch %d", ghosts, steps, batch)
}

// TestLease: one holder at a time; only the holder renews or releases it;
// a holder that dies loses it when its TTL passes; Hold keeps it alive
// past the TTL while the work runs.
func TestLease(t *testing.T) {
	rdb := redisClient(t)
	ctx := t.Context()
	key := testenv.UniquePrefix(t) + "{g}:reconcile:lease"
	a, err := reconcile.Acquire(ctx, rdb, key, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reconcile.Acquire(ctx, rdb, key, time.Second); !errors.Is(err, reconcile.ErrLeaseHeld) {
		t.Fatalf("second acquire: %v", err)
	}
	// a "dies": its lease runs out and someone else takes it.
	time.Sleep(400 * time.Millisecond)
	b, err := reconcile.Acquire(ctx, rdb, key, 300*time.Millisecond)
	if err != nil {
		t.Fatalf("the lease of a dead holder was not released by its TTL: %v", err)
	}
	if ok, _ := a.Renew(ctx); ok {
		t.Fatal("a former holder renewed a lease it lost")
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, key).Result(); n != 1 {
		t.Fatal("a former holder released the new holder's lease")
	}
	err = b.Hold(ctx, func(ctx context.Context) error {
		time.Sleep(time.Second) // more than three TTLs
		if _, err := reconcile.Acquire(ctx, rdb, key, time.Second); !errors.Is(err, reconcile.ErrLeaseHeld) {
			t.Errorf("the lease lapsed while held: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, key).Result(); n != 0 {
		t.Fatal("Hold did not release the lease")
	}
}

// TestRunOneReplicaAtATime: several replicas run the periodic reconciler
// at once; the lease lets only one step at a time, and rounds still happen.
func TestRunOneReplicaAtATime(t *testing.T) {
	rdb := redisClient(t)
	ks := redisx.Keyspace{Prefix: testenv.UniquePrefix(t)}
	ids := &noIdentities{delay: 30 * time.Millisecond}
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	const replicas = 4
	for range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			newReconciler(rdb, ks, ids, nil, 10).Run(ctx, 10*time.Millisecond)
		}()
	}
	wg.Wait()
	if ids.maxInFlight.Load() != 1 {
		t.Fatalf("%d replicas stepped at the same time", ids.maxInFlight.Load())
	}
	if ids.calls.Load() < 5 {
		t.Fatalf("only %d rounds ran in 1.5s", ids.calls.Load())
	}
	if n, _ := rdb.Exists(t.Context(), ks.ReconcileLease()).Result(); n != 0 {
		t.Fatal("the lease outlived the replicas")
	}
	t.Logf("%d replicas, %d rounds, at most %d at a time", replicas, ids.calls.Load(), ids.maxInFlight.Load())
}

type failingLister struct{ tokens []string }

func (f *failingLister) ListPage(_ context.Context, token string, _ int) ([]identity.Listed, string, error) {
	f.tokens = append(f.tokens, token)
	if token == "stale" {
		return nil, "", errors.New("kratos: 400 invalid page token")
	}
	return nil, "", nil
}

// TestRejectedPageTokenStartsOver: a page token Kratos refuses (after an
// upgrade, say) costs one failed round, not every later one.
func TestRejectedPageTokenStartsOver(t *testing.T) {
	rdb := redisClient(t)
	ks := redisx.Keyspace{Prefix: testenv.UniquePrefix(t)}
	rdb.HSet(t.Context(), ks.Reconcile(), "state", `{"identities_token":"stale"}`)
	ids := &failingLister{}
	rec := newReconciler(rdb, ks, ids, nil, 10)
	if _, err := rec.Step(t.Context()); err == nil {
		t.Fatal("the refused token did not fail the round")
	}
	if _, err := rec.Step(t.Context()); err != nil {
		t.Fatalf("the next round failed too: %v", err)
	}
	if len(ids.tokens) != 2 || ids.tokens[1] != "" {
		t.Fatalf("tokens asked for: %q", ids.tokens)
	}
}

// someIdentities lists fixed identities in one page.
type someIdentities []identity.Listed

func (s someIdentities) ListPage(context.Context, string, int) ([]identity.Listed, string, error) {
	return s, "", nil
}

// learned records the accounts the reconciler remembered.
type learned struct {
	mu sync.Mutex
	m  map[string]string
}

func (l *learned) RememberAccount(_ context.Context, email, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[email] = id
	return nil
}

// TestPassLearnsAccounts: an applied pass makes every active account's
// address known (inviting it then costs Kratos nothing); placeholders and
// inactive identities are not accounts, and a dry run writes nothing.
func TestPassLearnsAccounts(t *testing.T) {
	rdb := redisClient(t)
	ks := redisx.Keyspace{Prefix: testenv.UniquePrefix(t)}
	ids := someIdentities{
		{Identity: identity.Identity{ID: "acc", Email: "ada@example.com", State: "active"}},
		{Identity: identity.Identity{ID: "ph", Email: "new@example.com", State: "inactive", CreatedByUs: true}, CreatedAt: time.Now()},
		{Identity: identity.Identity{ID: "off", Email: "off@example.com", State: "inactive"}},
		{Identity: identity.Identity{ID: "nomail", State: "active"}},
	}
	l := &learned{m: map[string]string{}}
	o := reconcile.Options{
		Redis: rdb, Keyspace: ks, Identities: ids, Addresses: noop{}, Members: noop{}, Orgs: noop{}, Releaser: noop{},
		Accounts: l, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Grace: time.Hour,
	}
	if _, err := reconcile.New(o).Pass(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if len(l.m) != 0 {
		t.Fatalf("a dry run remembered %v", l.m)
	}
	if _, err := reconcile.New(o).Pass(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	if len(l.m) != 1 || l.m["ada@example.com"] != "acc" {
		t.Fatalf("remembered %v, want only the active account", l.m)
	}
}
