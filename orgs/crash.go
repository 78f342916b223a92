package orgs

// Crash points of the organization store. A test sets Store.crashAt (see
// export_test.go) to stop an operation between its writes to the slug
// index ({g} slot) and to the organization ({s} slot), as a process dying
// there would. The reconciler (package reconcile) repairs what is left.
const (
	// CrashCreateSlugClaimed: the slug and listing entry are written, the
	// organization is not.
	CrashCreateSlugClaimed = "org.create.slug_claimed"
	// CrashUpdateSlugClaimed: a rename claimed its new slug; the record
	// still has the old one.
	CrashUpdateSlugClaimed = "org.update.slug_claimed"
)

func (s *Store) crash(step string) error {
	if s.crashAt == nil {
		return nil
	}
	return s.crashAt(step)
}
