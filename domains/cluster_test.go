package domains

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
)

func init() {
	backends["cluster"] = func(t *testing.T) redis.UniversalClient { return testenv.SharedCluster(t).Open(t) }
}

// TestCluster runs the store contract tests on a real Redis Cluster and
// checks every script of the package ran there, on one slot.
func TestCluster(t *testing.T) {
	testenv.RunOnCluster(t, map[string]string{
		"refScript":     refScript.Hash(),
		"claimScript":   claimScript.Hash(),
		"updateScript":  updateScript.Hash(),
		"releaseScript": releaseScript.Hash(),
	},
		testenv.ClusterCase{Name: "ClaimIsExclusive", Test: TestStoreClaimIsExclusive},
		testenv.ClusterCase{Name: "ConcurrentClaims", Test: TestStoreConcurrentClaims},
		testenv.ClusterCase{Name: "UpdateAndBadInput", Test: TestStoreUpdateAndBadInput},
		testenv.ClusterCase{Name: "DeletedOrganizationReleases", Test: TestStoreDeletedOrganizationReleases},
		testenv.ClusterCase{Name: "AutoJoin", Test: TestAutoJoin},
	)
}
