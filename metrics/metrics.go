// Package metrics exposes kratos-orgs' Prometheus metrics on the admin
// listener: HTTP requests, invitation events, the outbox, mail, Kratos and
// Redis. Each part reports through a small observer interface declared by
// the package that observes, so none of them depends on Prometheus.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// Metrics holds the registry and the instruments.
type Metrics struct {
	reg *prometheus.Registry

	requests   *prometheus.HistogramVec
	jobs       *prometheus.HistogramVec
	mail       *prometheus.CounterVec
	kratos     *prometheus.HistogramVec
	redisErrs  *prometheus.CounterVec
	scrapeErrs prometheus.Counter
	limited    *prometheus.CounterVec
	reconciled *prometheus.CounterVec
	webhooks   *prometheus.HistogramVec

	// The request histogram's children by label values: looking one up in
	// the vector hashes four strings and formats the status on every
	// request; this map is read under a shared lock without allocating.
	reqMu  sync.RWMutex
	reqObs map[requestLabels]prometheus.Observer
}

type requestLabels struct {
	listener, route, method string
	status                  int
}

// maxCachedRequestLabels bounds the cache; beyond it (a client sending
// made-up methods) lookups go to the vector as before.
const maxCachedRequestLabels = 4096

// New registers every metric; rdb and ks feed the collectors that read
// Redis at scrape time (invitation events, outbox depth).
func New(rdb redis.UniversalClient, ks redisx.Keyspace) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), reqObs: map[requestLabels]prometheus.Observer{}}
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "kratos_orgs_http_request_duration_seconds", Help: "HTTP requests by listener, route pattern, method and status.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"listener", "route", "method", "status"})
	m.jobs = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "kratos_orgs_outbox_job_duration_seconds", Help: "Outbox jobs by kind and outcome (done, retry, dead).",
		Buckets: prometheus.DefBuckets,
	}, []string{"kind", "outcome"})
	m.mail = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kratos_orgs_mail_results_total", Help: "Mail send attempts by result (sent, retry, failed) and class (ok, rate_limited, quota, client_error, server_error, network).",
	}, []string{"result", "class"})
	m.kratos = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "kratos_orgs_kratos_request_duration_seconds", Help: "Calls to Kratos by operation and outcome (ok, client_error, server_error, network).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"operation", "outcome"})
	m.redisErrs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kratos_orgs_redis_errors_total", Help: "Redis commands that failed (not counting missing keys), by command.",
	}, []string{"command"})
	m.scrapeErrs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kratos_orgs_metrics_scrape_errors_total", Help: "Scrapes whose Redis-backed metrics could not be read.",
	})
	m.limited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kratos_orgs_rate_limited_total", Help: "Requests and mails refused by a quota, by limit (the key under limits.*, or api_resend_per_invitation).",
	}, []string{"limit"})
	m.reg.MustRegister(m.requests, m.jobs, m.mail, m.kratos, m.redisErrs, m.scrapeErrs, m.limited,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&redisCollector{rdb: rdb, ks: ks, errs: m.scrapeErrs})
	rdb.AddHook(redisHook{m.redisErrs})
	m.registerReconciler()
	m.registerEvents()
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Request implements httpx.RequestObserver.
func (m *Metrics) Request(listener, route, method string, status int, d time.Duration) {
	key := requestLabels{listener, route, method, status}
	m.reqMu.RLock()
	obs, ok := m.reqObs[key]
	m.reqMu.RUnlock()
	if !ok {
		obs = m.requests.WithLabelValues(listener, route, method, strconv.Itoa(status))
		m.reqMu.Lock()
		if len(m.reqObs) < maxCachedRequestLabels {
			m.reqObs[key] = obs
		}
		m.reqMu.Unlock()
	}
	obs.Observe(d.Seconds())
}

// JobDone implements outbox.Observer.
func (m *Metrics) JobDone(kind, outcome string, d time.Duration) {
	m.jobs.WithLabelValues(kind, outcome).Observe(d.Seconds())
}

// MailResult implements invites.MailObserver.
func (m *Metrics) MailResult(result, class string) { m.mail.WithLabelValues(result, class).Inc() }

// RateLimited implements ratelimit.Observer.
func (m *Metrics) RateLimited(limit string) { m.limited.WithLabelValues(limit).Inc() }

// KratosCall implements identity.Observer.
func (m *Metrics) KratosCall(operation, outcome string, d time.Duration) {
	m.kratos.WithLabelValues(operation, outcome).Observe(d.Seconds())
}

// redisHook counts failed Redis commands.
type redisHook struct{ errs *prometheus.CounterVec }

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil && !errors.Is(err, redis.Nil) {
			h.errs.WithLabelValues(strings.ToLower(cmd.Name())).Inc()
		}
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			if e := c.Err(); e != nil && !errors.Is(e, redis.Nil) {
				h.errs.WithLabelValues(strings.ToLower(c.Name())).Inc()
			}
		}
		return err
	}
}

// redisCollector reads, at scrape time, what lives in Redis: invitation
// events (counted by the scripts themselves, so they include expiries no
// sweeper has seen yet, and agree on every replica: aggregate with max, not
// sum) and the outbox's depth and oldest entry.
type redisCollector struct {
	rdb  redis.UniversalClient
	ks   redisx.Keyspace
	errs prometheus.Counter
}

var (
	eventsDesc = prometheus.NewDesc("kratos_orgs_invitation_events_total",
		"Invitation events across the deployment (created, rotated, accepted, revoked, expired); the same on every replica.", []string{"event"}, nil)
	outboxDesc = prometheus.NewDesc("kratos_orgs_outbox_jobs",
		"Jobs in the outbox by state: ready (in the streams, including those being run), delayed (waiting for a retry), dead.", []string{"state"}, nil)
	oldestDesc = prometheus.NewDesc("kratos_orgs_outbox_oldest_job_age_seconds",
		"Age of the oldest job waiting in the streams (0 when none).", nil, nil)
)

func (c *redisCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- eventsDesc
	ch <- outboxDesc
	ch <- oldestDesc
}

func (c *redisCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	pipe := c.rdb.Pipeline()
	type shardCmds struct {
		stats       *redis.MapStringStringCmd
		ready, dead *redis.IntCmd
		delayed     *redis.IntCmd
		first       *redis.XMessageSliceCmd
	}
	cmds := make([]shardCmds, redisx.Shards)
	for s := range cmds {
		cmds[s] = shardCmds{
			stats:   pipe.HGetAll(ctx, c.ks.Stats(s)),
			ready:   pipe.XLen(ctx, c.ks.Outbox(s)),
			dead:    pipe.XLen(ctx, c.ks.OutboxDead(s)),
			delayed: pipe.ZCard(ctx, c.ks.OutboxDelayed(s)),
			first:   pipe.XRangeN(ctx, c.ks.Outbox(s), "-", "+", 1),
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		c.errs.Inc()
		return
	}
	events := map[string]float64{"created": 0, "rotated": 0, "accepted": 0, "revoked": 0, "expired": 0}
	var ready, dead, delayed float64
	var oldest time.Time
	for _, sc := range cmds {
		for k, v := range sc.stats.Val() {
			n, _ := strconv.ParseFloat(v, 64)
			events[k] += n
		}
		ready += float64(sc.ready.Val())
		dead += float64(sc.dead.Val())
		delayed += float64(sc.delayed.Val())
		for _, msg := range sc.first.Val() {
			if ms, err := strconv.ParseInt(strings.SplitN(msg.ID, "-", 2)[0], 10, 64); err == nil {
				if t := time.UnixMilli(ms); oldest.IsZero() || t.Before(oldest) {
					oldest = t
				}
			}
		}
	}
	for event, n := range events {
		ch <- prometheus.MustNewConstMetric(eventsDesc, prometheus.CounterValue, n, event)
	}
	ch <- prometheus.MustNewConstMetric(outboxDesc, prometheus.GaugeValue, ready, "ready")
	ch <- prometheus.MustNewConstMetric(outboxDesc, prometheus.GaugeValue, delayed, "delayed")
	ch <- prometheus.MustNewConstMetric(outboxDesc, prometheus.GaugeValue, dead, "dead")
	age := 0.0
	if !oldest.IsZero() {
		age = time.Since(oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
}
