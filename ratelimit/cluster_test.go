package ratelimit_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/ratelimit"
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

// TestCluster runs the limiter's tests again on a real Redis Cluster.
func TestCluster(t *testing.T) {
	testenv.RunOnCluster(t, map[string]string{"gcraScript": ratelimit.GCRAScriptHash},
		testenv.ClusterCase{Name: "BurstThenSustainedRate", Test: TestBurstThenSustainedRate},
		testenv.ClusterCase{Name: "KeysExpireAndCarryTheirOwnHashTag", Test: TestKeysExpireAndCarryTheirOwnHashTag},
		testenv.ClusterCase{Name: "RefundGivesBackOneRequest", Test: TestRefundGivesBackOneRequest},
		testenv.ClusterCase{Name: "ConcurrentReplicasShareTheQuota", Test: TestConcurrentReplicasShareTheQuota},
	)
}
