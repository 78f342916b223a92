package metrics

import "github.com/prometheus/client_golang/prometheus"

func (m *Metrics) registerReconciler() {
	m.reconciled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kratos_orgs_reconciler_fixes_total",
		Help: "Records the reconciler repaired, by kind (placeholder, address_index_missing, address_index_stale, member_index_missing, member_index_stale, slug_missing, slug_stale, org_listing_stale, pending_org).",
	}, []string{"kind"})
	m.reg.MustRegister(m.reconciled)
}

// ReconcilerFixed implements reconcile.Observer.
func (m *Metrics) ReconcilerFixed(kind string, n int) {
	m.reconciled.WithLabelValues(kind).Add(float64(n))
}
