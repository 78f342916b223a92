package server

import (
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/reconcile"
)

// newReconciler wires the reconciler, or returns nil when the identity
// adapter cannot list identities (test fakes).
func (s *Server) newReconciler(orgStore *orgs.Store) *reconcile.Reconciler {
	lister, ok := s.ids.(reconcile.IdentityLister)
	if !ok {
		return nil
	}
	return reconcile.New(reconcile.Options{
		Redis: s.rdb, Keyspace: s.ks, Identities: lister, Addresses: s.Addresses, Members: s.Members, Orgs: orgStore,
		// The atomic claim: deleting cannot race with a new invitation.
		Releaser: s.Invites,
		// Existing accounts become known: inviting them costs Kratos nothing.
		Accounts: s.Invites,
		Observer: s.Metrics, Log: s.log.With("component", "reconciler"),
		Grace: s.cfg.Reconcile.Grace, Batch: s.cfg.Reconcile.Batch, Now: s.now,
	})
}
