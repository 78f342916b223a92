package e2e

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
)

// redis returns a client of the Redis the stack runs on: the shared
// redis-server, or the shared Redis Cluster under TestCluster.
func (st *stack) redis() redis.UniversalClient {
	if testenv.OnCluster(st.t) {
		return testenv.SharedCluster(st.t).Open(st.t)
	}
	return testenv.SharedRedis(st.t).Client(st.t)
}

// TestCluster runs a subset of the journeys again with kratos-orgs on a
// real Redis Cluster (redis.mode: cluster; startStack picks it under
// TestCluster): invite → mail → accept → member, register → activate, and
// Kratos' webhooks (sign-up with a token, sign-up creating an
// organization, verification accepting invitations, replayed deliveries;
// these run hooks' scripts on the cluster).
func TestCluster(t *testing.T) {
	testenv.SharedCluster(t)
	for _, c := range []testenv.ClusterCase{
		{Name: "NewPersonPasswordMode", Test: TestNewPersonPasswordMode},
		{Name: "RegistrationAndActivation", Test: TestRegistrationAndActivation},
		{Name: "SignUpWithInviteToken", Test: TestSignUpWithInviteToken},
		{Name: "SignUpCreatesOrganization", Test: TestSignUpCreatesOrganization},
		{Name: "VerificationAcceptsPendingInvitations", Test: TestVerificationAcceptsPendingInvitations},
		{Name: "ReplayedHookBodiesChangeNothing", Test: TestReplayedHookBodiesChangeNothing},
	} {
		t.Run(c.Name, func(t *testing.T) { t.Parallel(); c.Test(t) })
	}
}
