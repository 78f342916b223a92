package events

import (
	"testing"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
)

// TestCluster runs the dispatcher's tests on a real Redis Cluster: every
// script touches one slot (a shard's).
func TestCluster(t *testing.T) {
	testenv.RunOnCluster(t, map[string]string{
		"leaseScript":   leaseScript.Hash(),
		"unleaseScript": unleaseScript.Hash(),
		"stepScript":    stepScript.Hash(),
		"logScript":     logScript.Hash(),
		"recordScript":  recordScript.Hash(),
	},
		testenv.ClusterCase{Name: "DownEndpoint", Test: TestDownEndpointGetsEverythingInOrder},
		testenv.ClusterCase{Name: "TwoDispatchers", Test: TestTwoDispatchersNeverDouble},
		testenv.ClusterCase{Name: "Redeliver", Test: TestRedeliver},
		testenv.ClusterCase{Name: "GiveUp", Test: TestGiveUpPastRetryFor},
	)
}
