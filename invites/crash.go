package invites

// Crash points of the invitation and registration backends. A test sets
// Service.crashAt (see export_test.go) to stop an operation between two of
// its writes, as a process dying there would: the operation returns at
// once and runs none of its undo steps. The reconciler (package reconcile)
// must then leave nothing orphaned behind.
const (
	// CrashInviteIdentity: after Kratos created the placeholder, before
	// the invitation is written to Redis.
	CrashInviteIdentity = "invite.identity_created"
	// CrashInviteWritten: after the invitation was written, before its
	// invitation.sync job updated the per-address index.
	CrashInviteWritten = "invite.written"
	// CrashRegisterIdentity: after Kratos created the registering
	// person's placeholder, before the pending organization is written.
	CrashRegisterIdentity = "register.identity_created"
	// CrashRegisterOrg: after the pending organization (with the person
	// as owner) was written, before its activation invitation.
	CrashRegisterOrg = "register.org_created"
	// CrashRegisterWritten: after the activation invitation was written,
	// before its invitation.sync job ran.
	CrashRegisterWritten = "register.written"
)

// crash runs the crash hook of a step; nil outside crash tests.
func (s *Service) crash(step string) error {
	if s.crashAt == nil {
		return nil
	}
	return s.crashAt(step)
}
