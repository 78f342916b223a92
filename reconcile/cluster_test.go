package reconcile_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/reconcile"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// redisClient returns a client of the package's shared redis-server, or,
// under TestCluster, of the shared Redis Cluster.
func redisClient(t *testing.T) redis.UniversalClient {
	t.Helper()
	if testenv.OnCluster(t) {
		return testenv.SharedCluster(t).Open(t)
	}
	return testenv.SharedRedis(t).Client(t)
}

// TestCluster runs the reconciler's machinery again on a real Redis
// Cluster, and checks that every script of the package ran there.
func TestCluster(t *testing.T) {
	testenv.RunOnCluster(t, reconcile.ScriptHashes,
		testenv.ClusterCase{Name: "StepIsBoundedAndResumes", Test: TestStepIsBoundedAndResumes},
		testenv.ClusterCase{Name: "Lease", Test: TestLease},
		testenv.ClusterCase{Name: "RunOneReplicaAtATime", Test: TestRunOneReplicaAtATime},
		testenv.ClusterCase{Name: "StaleSlugIsDropped", Test: TestStaleSlugIsDropped},
	)
}

// TestStaleSlugIsDropped: a slug whose organization is gone, for longer
// than the grace period, leaves the slug index.
func TestStaleSlugIsDropped(t *testing.T) {
	rdb := redisClient(t)
	ks := redisx.Keyspace{Prefix: testenv.UniquePrefix(t)}
	ctx := t.Context()
	gone := redisx.NewID("org", 3, time.Now().Add(-2*time.Hour))
	rdb.HSet(ctx, ks.Slugs(), "ghost", gone)
	rep, err := newReconciler(rdb, ks, &noIdentities{}, nil, 10).Pass(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Counts[reconcile.FixSlugStale] != 1 {
		t.Fatalf("report %v, want one stale slug", rep.Counts)
	}
	if n, _ := rdb.HLen(ctx, ks.Slugs()).Result(); n != 0 {
		t.Fatalf("%d slugs left, want 0", n)
	}
}
