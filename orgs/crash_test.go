package orgs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/reconcile"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

type nobody struct{}

func (nobody) ListPage(context.Context, string, int) ([]identity.Listed, string, error) {
	return nil, "", nil
}
func (nobody) RepairInvitation(context.Context, string, bool) (string, error) { return "", nil }
func (nobody) RepairAddress(context.Context, string, bool) (int, error)       { return 0, nil }
func (nobody) ReleasePlaceholder(context.Context, string, string) (bool, error) {
	return false, nil
}

var errCrash = errors.New("crash injected")

// TestSlugCrashesThenReconcile crashes organization create and rename
// between the slug index write and the record write, then reconciles: the
// slugs and listing entries left behind are released (the names can be
// used again) and the organization that exists keeps its own slug.
func TestSlugCrashesThenReconcile(t *testing.T) {
	rdb := testenv.SharedRedis(t).Client(t)
	ks := redisx.Keyspace{Prefix: testenv.UniquePrefix(t)}
	ctx := t.Context()
	store := orgs.NewStore(rdb, ks, time.Hour, nil)
	acme, err := store.Create(ctx, orgs.Organization{Name: "Acme", Slug: "acme", State: orgs.StateActive}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	crashAt := func(step string, op func() error) {
		t.Helper()
		orgs.SetCrashHook(store, func(s string) error {
			if s == step {
				return errCrash
			}
			return nil
		})
		defer orgs.SetCrashHook(store, nil)
		if err := op(); !errors.Is(err, errCrash) {
			t.Fatalf("%s: no crash: %v", step, err)
		}
	}
	const trials = 3
	for range trials {
		crashAt(orgs.CrashCreateSlugClaimed, func() error {
			_, err := store.Create(ctx, orgs.Organization{Name: "Crashy", Slug: "crashy", State: orgs.StateActive}, false, nil)
			return err
		})
	}
	renamed := "acme-renamed"
	crashAt(orgs.CrashUpdateSlugClaimed, func() error {
		_, err := store.Update(ctx, acme.ID, orgs.Update{Slug: &renamed})
		return err
	})
	time.Sleep(5 * time.Millisecond) // grace 0: everything above is in the past

	rec := reconcile.New(reconcile.Options{
		Redis: rdb, Keyspace: ks, Identities: nobody{}, Addresses: nobody{}, Members: orgs.NewIdentityIndex(rdb, ks, nil),
		Orgs: store, Releaser: nobody{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Batch: 2,
	})
	rep, err := rec.Pass(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Counts[reconcile.FixSlugStale] != trials+1 || rep.Counts[reconcile.FixListingStale] != trials {
		t.Fatalf("fixed %v, want %d stale slugs and %d stale listings", rep.Counts, trials+1, trials)
	}
	slugs, _ := rdb.HGetAll(ctx, ks.Slugs()).Result()
	listed, _ := rdb.ZRange(ctx, ks.Orgs(), 0, -1).Result()
	if len(slugs) != 1 || slugs["acme"] != acme.ID || !slices.Equal(listed, []string{acme.ID}) {
		t.Fatalf("after reconciling: slugs %v, listing %v", slugs, listed)
	}
	if o, err := store.Create(ctx, orgs.Organization{Name: "Crashy", Slug: "crashy", State: orgs.StateActive}, false, nil); err != nil || o.Slug != "crashy" {
		t.Fatalf("the released slug is not free again: %q %v", o.Slug, err)
	}
	if o, err := store.Update(ctx, acme.ID, orgs.Update{Slug: &renamed}); err != nil || o.Slug != renamed {
		t.Fatalf("the rename does not go through after reconciling: %v", err)
	}
	if again, err := rec.Pass(ctx, true); err != nil || again.Total() != 0 {
		t.Fatalf("a second run: %v %v", again.Counts, err)
	}
	t.Logf("crash trials: %d creates, 1 rename; fixes %v", trials, rep.Counts)
}
