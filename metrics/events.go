package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// registerEvents adds the webhook deliveries' histogram (package events).
func (m *Metrics) registerEvents() {
	m.webhooks = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kratos_orgs_webhook_delivery_duration_seconds",
		Help:    "Event webhook deliveries by endpoint and outcome (delivered, failed: will retry, gave_up: past events.retry_for, redelivered).",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"endpoint", "outcome"})
	m.reg.MustRegister(m.webhooks)
}

// WebhookDelivery counts one delivery attempt of an event (events.Observer).
func (m *Metrics) WebhookDelivery(endpoint, outcome string, d time.Duration) {
	m.webhooks.WithLabelValues(endpoint, outcome).Observe(d.Seconds())
}
