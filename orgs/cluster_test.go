package orgs

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/outbox"
)

func init() {
	backends["cluster"] = func(t *testing.T) redis.UniversalClient { return testenv.SharedCluster(t).Open(t) }
}

// TestCluster runs the store contract tests again on a real Redis Cluster
// (3 masters, 3 replicas), through the client `redis.mode: cluster` builds,
// and checks that every script of the package ran there.
func TestCluster(t *testing.T) {
	testenv.RunOnCluster(t, map[string]string{
		"claimSlugScript":     claimSlugScript.Hash(),
		"releaseSlugScript":   releaseSlugScript.Hash(),
		"createScript":        createScript.Hash(),
		"updateScript":        updateScript.Hash(),
		"deleteScript":        deleteScript.Hash(),
		"addMemberScript":     addMemberScript.Hash(),
		"setRoleScript":       setRoleScript.Hash(),
		"listMembersScript":   listMembersScript.Hash(),
		"identityIndexScript": identityIndexScript.Hash(),
		"signupScript":        signupScript.Hash(),
	},
		testenv.ClusterCase{Name: "CreateGetAndSlugs", Test: TestStoreCreateGetAndSlugs},
		testenv.ClusterCase{Name: "ConcurrentSlugsAreUnique", Test: TestStoreConcurrentSlugsAreUnique},
		testenv.ClusterCase{Name: "ListPaginates", Test: TestStoreListPaginates},
		testenv.ClusterCase{Name: "Update", Test: TestStoreUpdate},
		testenv.ClusterCase{Name: "MembersAndLastOwner", Test: TestStoreMembersAndLastOwner},
		testenv.ClusterCase{Name: "SeatLimit", Test: TestStoreSeatLimit},
		testenv.ClusterCase{Name: "DeleteRemovesEverything", Test: TestStoreDeleteRemovesEverything},
		testenv.ClusterCase{Name: "IdentityIndex", Test: testIdentityIndex},
		testenv.ClusterCase{Name: "SignupOrganizationClaim", Test: TestStoreSignupOrganizationClaim},
	)
}

// testIdentityIndex: a membership change reaches the identity's index
// ({i:…} slot) through the outbox of the organization's shard.
func testIdentityIndex(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s, rdb, ks := newTestStore(t, backend)
		ctx := context.Background()
		o, err := s.Create(ctx, Organization{Name: "I", Slug: "i", State: StateActive}, true, &Member{IdentityID: "id-owner", Email: "o@x.io"})
		if err != nil {
			t.Fatal(err)
		}
		w := outbox.NewWorker(rdb, ks, outbox.Config{Concurrency: 2, PollInterval: 10 * time.Millisecond,
			MaxAttempts: 3, BaseBackoff: time.Second, MaxBackoff: time.Second, ClaimAfter: time.Hour},
			slog.New(slog.NewTextHandler(io.Discard, nil)))
		x := NewIdentityIndex(rdb, ks, time.Now)
		x.Register(w)
		for i := 0; i < 10; i++ {
			n, err := w.RunOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
		}
		got, err := x.Organizations(ctx, "id-owner")
		if err != nil || got[o.ID] != "owner" {
			t.Fatalf("identity index = %v, %v; want %s: owner", got, err, o.ID)
		}
	})
}
