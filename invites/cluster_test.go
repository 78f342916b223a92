package invites

import (
	"testing"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
)

// TestCluster runs the invitation store, service, acceptance and
// placeholder tests again on a real Redis Cluster (newHarness hands them
// the cluster client there), and checks that every script of the package
// ran on the cluster.
func TestCluster(t *testing.T) {
	testenv.RunOnCluster(t, map[string]string{
		"createScript":         createScript.Hash(),
		"revokeScript":         revokeScript.Hash(),
		"rotateScript":         rotateScript.Hash(),
		"remindScript":         remindScript.Hash(),
		"deliveryScript":       deliveryScript.Hash(),
		"deliveryEventScript":  deliveryEventScript.Hash(),
		"listScript":           listScript.Hash(),
		"sweepScript":          sweepScript.Hash(),
		"readWithOrgScript":    readWithOrgScript.Hash(),
		"lookupScript":         lookupScript.Hash(),
		"claimScript":          claimScript.Hash(),
		"releaseScript":        releaseScript.Hash(),
		"finalizeScript":       finalizeScript.Hash(),
		"acceptAddressScript":  acceptAddressScript.Hash(),
		"referenceScript":      referenceScript.Hash(),
		"claimDeleteScript":    claimDeleteScript.Hash(),
		"unclaimScript":        unclaimScript.Hash(),
		"detachScript":         detachScript.Hash(),
		"indexScript":          indexScript.Hash(),
		"invitedScript":        invitedScript.Hash(),
		"forgetIdentityScript": forgetIdentityScript.Hash(),
		"commitScript":         commitScript.Hash(),
		"pinScript":            pinScript.Hash(),
	},
		// mail batches: pins and requests on the {mb} slot
		testenv.ClusterCase{Name: "MailBatchRefusedRecipient", Test: TestMailBatchRefusedRecipientFailsAlone},
		testenv.ClusterCase{Name: "MailBatchRetryAfter500", Test: TestMailBatchRetryAfter500SendsOnce},
		// store and service
		testenv.ClusterCase{Name: "InviteNewPerson", Test: TestInviteNewPersonCreatesInactiveIdentity},
		// bulk: references pipelined across address slots, creates on the org's
		testenv.ClusterCase{Name: "BulkRows", Test: TestBulkInviteRowsQuotaAndSeats},
		testenv.ClusterCase{Name: "BulkIdempotent", Test: TestBulkIdempotent},
		testenv.ClusterCase{Name: "InviteExistingPerson", Test: TestInviteExistingPersonKeepsIdentity},
		testenv.ClusterCase{Name: "ReinviteRotatesToken", Test: TestReinviteRotatesToken},
		testenv.ClusterCase{Name: "InviteMemberConflicts", Test: TestInviteMemberConflicts},
		testenv.ClusterCase{Name: "ConcurrentInvitesOfOneAddress", Test: TestConcurrentInvitesOfOneAddressMakeOneInvitation},
		testenv.ClusterCase{Name: "Revoke", Test: TestRevoke},
		testenv.ClusterCase{Name: "ResendExtendsAndRotates", Test: TestResendExtendsAndRotates},
		testenv.ClusterCase{Name: "ExpiryReadsExpiredBeforeAnySweep", Test: TestExpiryReadsExpiredBeforeAnySweep},
		testenv.ClusterCase{Name: "SweepExpiresAndPurges", Test: TestSweepExpiresAndPurges},
		testenv.ClusterCase{Name: "ListFiltersAndPages", Test: TestListFiltersAndPages},
		testenv.ClusterCase{Name: "StoreOnDeletedOrganizationRevokes", Test: TestStoreOnDeletedOrganizationRevokes},
		// acceptance
		testenv.ClusterCase{Name: "KratosFailureAfterClaim", Test: TestKratosFailureAfterClaimReleasesTheLink},
		testenv.ClusterCase{Name: "CrashMidAcceptance", Test: TestCrashMidAcceptanceIsReleasedBySweeper},
		testenv.ClusterCase{Name: "ConcurrentAcceptancesOneWins", Test: TestConcurrentAcceptancesOneWins},
		// placeholders and the address index
		testenv.ClusterCase{Name: "UnindexedInvitationKeepsThePlaceholder", Test: TestUnindexedInvitationKeepsThePlaceholder},
		testenv.ClusterCase{Name: "InviteWhileDeleteIsClaimed", Test: TestInviteWhileDeleteIsClaimedWaitsAndMakesANewPlaceholder},
		testenv.ClusterCase{Name: "ReferenceToAnUnwrittenInvitation", Test: TestReferenceToAnUnwrittenInvitationHoldsUntilItsDeadline},
		testenv.ClusterCase{Name: "OnlyUnusedPlaceholdersAreReleased", Test: TestOnlyUnusedPlaceholdersAreReleased},
		testenv.ClusterCase{Name: "TakeOverKeepsEveryPendingInvitation", Test: TestTakeOverKeepsEveryPendingInvitation},
		testenv.ClusterCase{Name: "TakeOverWaitsForAnAcceptance", Test: TestTakeOverWaitsForAnAcceptanceInProgress},
		testenv.ClusterCase{Name: "VerifiedAddressAcceptsUnindexed", Test: TestVerifiedAddressAcceptsUnindexedInvitations},
		// known identities
		testenv.ClusterCase{Name: "KnownAddressCostsNoKratosCall", Test: TestKnownAddressCostsNoKratosCall},
		testenv.ClusterCase{Name: "ReleasedPlaceholderIsForgotten", Test: TestReleasedPlaceholderIsForgotten},
		testenv.ClusterCase{Name: "StalePlaceholderHintIsDetached", Test: TestStalePlaceholderHintIsDetachedAtAcceptance},
		testenv.ClusterCase{Name: "TakeOverForgetsThePlaceholder", Test: TestTakeOverForgetsThePlaceholder},
		// mail and cleanup jobs
		testenv.ClusterCase{Name: "MailIsSentOnce", Test: TestMailIsSentOnceWithLinkOrgAndInviter},
		testenv.ClusterCase{Name: "RevokeDeletesTheIdentityWeCreated", Test: TestRevokeDeletesTheIdentityWeCreated},
		testenv.ClusterCase{Name: "ExpiredInvitationCleansUpAfterSweep", Test: TestExpiredInvitationCleansUpAfterSweep},
		testenv.ClusterCase{Name: "TokenInfoIsBoundedPerInvitation", Test: TestTokenInfoIsBoundedPerInvitation},
		testenv.ClusterCase{Name: "AddressIndex", Test: testAddressIndex},
		// delivery status and suppression
		testenv.ClusterCase{Name: "DeliveryWebhooks", Test: TestDeliveryWebhooksUpdateTheInvitation},
		testenv.ClusterCase{Name: "ComplaintSuppresses", Test: TestComplaintSuppressesUntilCleared},
		testenv.ClusterCase{Name: "BulkRefusesSuppressed", Test: TestBulkRefusesSuppressedAddresses},
		// seat limits
		testenv.ClusterCase{Name: "SeatLimitRules", Test: TestSeatLimitRules},
		testenv.ClusterCase{Name: "SeatLimitConcurrentInvites", Test: TestSeatLimitConcurrentInvitesNoOvershoot},
		testenv.ClusterCase{Name: "SeatLimitLoweredRefusesAcceptance", Test: TestSeatLimitLoweredRefusesAcceptance},
		testenv.ClusterCase{Name: "SeatLimitLoweredDuringAcceptance", Test: TestSeatLimitLoweredDuringAcceptance},
		testenv.ClusterCase{Name: "SeatLimitVerifiedAddress", Test: TestSeatLimitVerifiedAddressStaysPending},
		// automatic reminders
		testenv.ClusterCase{Name: "AutomaticRemindersSentOnce", Test: TestAutomaticRemindersSentOnce},
		testenv.ClusterCase{Name: "TwoSweepersRacing", Test: TestTwoSweepersRacingSendEachReminderOnce},
		// data of the first layout
		testenv.ClusterCase{Name: "FirstLayoutUpgrade", Test: TestFirstLayoutInvitationIsUpgraded},
		testenv.ClusterCase{Name: "FirstLayoutRotationAndPurge", Test: TestFirstLayoutRotationAndPurge},
	)
}

// testAddressIndex: an invitation reaches its address' index ({a:…} slot)
// through the outbox of its organization's shard, and Invited reads it.
func testAddressIndex(t *testing.T) {
	h := newHarness(t)
	h.mustInvite("indexed@example.com")
	if orgIDs, referenced, err := h.index.Invited(h.ctx, "indexed@example.com"); err != nil || !referenced {
		t.Fatalf("before the index job: Invited = %v, %v, %v; want the reference", orgIDs, referenced, err)
	}
	h.drain()
	orgIDs, _, err := h.index.Invited(h.ctx, "indexed@example.com")
	if err != nil || len(orgIDs) != 1 || orgIDs[0] != h.org.ID {
		t.Fatalf("Invited = %v, %v; want [%s]", orgIDs, err, h.org.ID)
	}
}
