package outbox

import (
	"testing"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
)

// TestCluster runs the outbox's core tests again on a real Redis Cluster
// (sharedEnv hands them the cluster client there): enqueue, retry, dead
// letters, takeover of a dead consumer's jobs, two workers, promotion of
// delayed jobs only when due, and checks that every script of the package
// ran on the cluster.
func TestCluster(t *testing.T) {
	testenv.RunOnCluster(t, map[string]string{
		"ackScript":     ackScript.Hash(),
		"delayScript":   delayScript.Hash(),
		"deadScript":    deadScript.Hash(),
		"promoteScript": promoteScript.Hash(),
	},
		testenv.ClusterCase{Name: "Enqueue", Test: TestEnqueuedJobHandledOnceAndRemoved},
		testenv.ClusterCase{Name: "Retry", Test: TestRetryWaitsForBackoff},
		testenv.ClusterCase{Name: "RetryAfter", Test: TestRetryAfter},
		testenv.ClusterCase{Name: "PermanentDeadLetters", Test: TestPermanentDeadLetters},
		testenv.ClusterCase{Name: "MaxAttemptsDeadLetters", Test: TestMaxAttemptsDeadLetters},
		testenv.ClusterCase{Name: "ReclaimFromDeadConsumer", Test: TestReclaimFromDeadConsumer},
		testenv.ClusterCase{Name: "ReclaimFromAbandonedWorker", Test: TestReclaimFromAbandonedWorker},
		testenv.ClusterCase{Name: "TwoWorkersShareJobsExactlyOnce", Test: TestTwoWorkersShareJobsExactlyOnce},
		testenv.ClusterCase{Name: "RunProcessesJobs", Test: TestRunProcessesJobs},
		testenv.ClusterCase{Name: "PromotionRunsOnlyWhenDue", Test: TestPromotionRunsOnlyWhenDue},
		testenv.ClusterCase{Name: "BatchHandler", Test: TestBatchHandlerKeepsEachJobsOutcome},
	)
}
