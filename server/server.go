// Package server wires kratos-orgs together: it builds every part from the
// configuration, registers all routes in one place (routes.go) and runs the
// two listeners, the outbox worker and the expiry sweeper until shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/domains"
	"github.com/kratos-orgs/kratos-orgs/events"
	"github.com/kratos-orgs/kratos-orgs/hooks"
	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/kratosui"
	"github.com/kratos-orgs/kratos-orgs/mail"
	"github.com/kratos-orgs/kratos-orgs/metrics"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/outbox"
	"github.com/kratos-orgs/kratos-orgs/ratelimit"
	"github.com/kratos-orgs/kratos-orgs/reconcile"
	"github.com/kratos-orgs/kratos-orgs/redisx"
	"github.com/kratos-orgs/kratos-orgs/templates"
	"github.com/kratos-orgs/kratos-orgs/tokens"
)

// Identities is everything kratos-orgs needs from Kratos.
type Identities interface {
	invites.Identities
	invites.Accounts
	Ready(ctx context.Context) error
	// Schema returns the identity schema, to check forms before writing.
	Schema(ctx context.Context) (map[string]any, error)
	orgs.IdentityPatcher
	kratosui.Kratos
}

// Options are the dependencies; nil ones are built from Config.
type Options struct {
	Config     config.Config
	Logger     *slog.Logger
	Redis      redis.UniversalClient // nil: open from Config.Redis
	Identities Identities            // nil: the Kratos admin API from Config.Kratos
	Sender     mail.Sender           // nil: from Config.Mail
	MailLog    io.Writer             // where the log sender prints (default stderr)
	// Now is the one clock every part reads (stores, worker, webhooks,
	// quotas, reconciler, session cache); nil: time.Now. Tests pass a
	// fake to move time.
	Now func() time.Time
}

// Server is a wired kratos-orgs.
type Server struct {
	cfg        config.Config
	log        *slog.Logger
	now        func() time.Time
	rdb        redis.UniversalClient
	closeRedis func() error
	ks         redisx.Keyspace
	ids        Identities
	sessions   *identity.SessionCache // the org admins' API's whoami cache

	Orgs      *orgs.Service
	Invites   *invites.Service
	Acceptor  *invites.Acceptor
	Registrar *invites.Registrar
	Addresses *invites.AddressIndex
	Previewer *invites.Previewer // dry runs of invitations
	// Deliveries keeps the provider's delivery reports and the
	// suppression list; its Observer hears every outcome recorded.
	Deliveries *invites.Deliveries
	resendHook *mail.WebhookVerifier // nil: mail.resend.webhook_secrets is empty
	Members    *orgs.IdentityIndex
	Claims     *orgs.Claims
	Hooks      *hooks.Handlers
	Domains    *domains.Service
	Metrics    *metrics.Metrics
	Worker     *outbox.Worker
	Templates  *templates.Renderer
	Limiter    *ratelimit.Limiter
	quotas     *quotas
	// domainQuotas guard package domains' routes (domains.go).
	domainQuotas *domainQuotas
	// Events delivers the lifecycle events as signed webhooks; nil when no
	// endpoint is configured.
	Events *events.Dispatcher
	// Recorder records changes Go code makes without a script (audit
	// trail and events).
	Recorder *events.Recorder
	// Reconciler repairs what crashes left behind; nil when the identity
	// adapter cannot list identities.
	Reconciler *reconcile.Reconciler

	public, admin *gin.Engine
	draining      atomic.Bool

	mu        sync.Mutex
	addrs     map[string]string
	listening chan struct{}
}

// New builds a server.
func New(ctx context.Context, o Options) (*Server, error) {
	cfg := o.Config
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	s := &Server{cfg: cfg, log: log, now: now, ks: Keyspace(cfg), addrs: map[string]string{}, listening: make(chan struct{})}

	render, err := templates.Load(TemplateOptions(cfg.Templates))
	if err != nil {
		return nil, err
	}
	s.Templates = render
	sealer, err := tokens.NewSealer(cfg.Secrets.Cipher)
	if err != nil {
		return nil, err
	}
	sender := o.Sender
	if sender == nil {
		if sender, err = newSender(cfg.Mail, o.MailLog); err != nil {
			return nil, err
		}
	}
	s.rdb, s.closeRedis = o.Redis, func() error { return nil }
	if s.rdb == nil {
		if s.rdb, s.closeRedis, err = redisx.Open(ctx, cfg.Redis); err != nil {
			return nil, err
		}
	}
	s.Metrics = metrics.New(s.rdb, s.ks)
	s.Recorder = events.NewRecorder(s.rdb, s.ks, now)
	s.Limiter = ratelimit.New(s.rdb, s.ks, ratelimit.Options{Observer: s.Metrics, Logger: log.With("component", "ratelimit"), Now: now})
	s.quotas = newQuotas(s.Limiter, render, cfg.Limits, cfg.Invitations.RemindInterval)
	s.ids = o.Identities
	if s.ids == nil {
		s.ids = s.newIdentities()
	}

	s.sessions = identity.NewSessionCache(s.ids.Whoami, cfg.Kratos.WhoamiCacheTTL, 10000, now)

	s.Worker = s.newWorker()

	orgStore, invStore := s.newStores()
	if err := s.newDeliveries(invStore); err != nil {
		return nil, err
	}
	s.Orgs = orgs.NewService(orgStore, s.ids, orgs.Roles(cfg.Roles), s.Worker.Wake)
	s.Invites = invites.NewService(invites.ServiceOptions{
		Store: invStore, Orgs: orgStore, Identities: s.ids, Sealer: sealer,
		Config: invites.Config{
			TTL: cfg.Invitations.TTL, MaxTTL: cfg.Invitations.MaxTTL, RemindInterval: cfg.Invitations.RemindInterval,
			AcceptURL:            trimSlash(cfg.Serve.Public.BaseURL) + cfg.Invitations.AcceptPath,
			ActivateURL:          trimSlash(cfg.Serve.Public.BaseURL) + cfg.Register.ActivatePath,
			AllowedRedirectHosts: cfg.Invitations.AllowedRedirectHosts, Roles: orgs.Roles(cfg.Roles),
			EmailTrait: cfg.Kratos.EmailTrait,
		},
		Log: log, Wake: s.Worker.Wake, Now: now, Suppressions: s.Deliveries,
	})
	s.newAcceptance(orgStore)
	s.Addresses = invites.NewAddressIndex(invites.AddressIndexOptions{
		Invitations: s.Invites.Store(), Orgs: orgStore, Placeholders: s.Invites, Redis: s.rdb, Keys: s.ks, Now: now,
	})
	mailer := invites.NewMailer(invites.MailerOptions{
		Invitations: s.Invites.Store(), Tokens: s.Invites, Links: s.Invites, Identities: s.ids,
		Sender: sender, Templates: render, FromAddress: cfg.Mail.FromAddress, FromName: cfg.Mail.FromName,
		LoginURL: loginURL(cfg), Observer: s.Metrics, Now: now, Deliveries: s.Deliveries, Batches: invites.NewMailBatches(s.rdb, s.ks, sealer),
		Budget: ratelimit.Budget{Limiter: s.Limiter, Global: s.quotas.mailGlobal, PerOrg: s.quotas.mailPerOrg},
	})
	mailer.Register(s.Worker, s.Addresses)
	s.Previewer = invites.NewPreviewer(s.Invites, orgStore, mailer)
	s.Members = orgs.NewIdentityIndex(s.rdb, s.ks, now)
	s.Members.Register(s.Worker)
	s.Claims = orgs.NewClaims(s.Members, orgStore, s.ids)
	s.Claims.Register(s.Worker)
	s.Acceptor.SetClaims(s.Claims) // a new person's claims go with the activation
	s.Domains = s.newDomains(orgStore)
	s.Hooks = hooks.New(hooks.Options{
		Config: hooks.Config{
			Secret: cfg.Hooks.Secret, Mode: cfg.Register.Mode, AllowedDomains: cfg.Register.AllowedDomains,
			EmailTrait: cfg.Kratos.EmailTrait, AcceptOnVerifiedAddress: cfg.Hooks.AcceptOnVerifiedAddress,
			ReplayWindow: cfg.Hooks.ReplayWindow, Now: now,
		},
		Invitations: s.Invites, Addresses: s.Addresses, Orgs: s.Orgs, Signups: orgStore, Identities: s.ids, Outbox: s.Worker,
		Messages: render, Replays: hooks.NewRedisReplayStore(s.rdb, s.ks), Domains: s.Domains, Log: log.With("component", "hooks"),
	})
	s.Hooks.RegisterJobs(s.Worker)
	s.Reconciler = s.newReconciler(orgStore)

	s.public, s.admin = s.routes()
	return s, s.newEvents(log, now) // last: only endpoints with bad secrets fail it
}

// newWorker is the outbox worker, observed by the metrics.
func (s *Server) newWorker() *outbox.Worker {
	o := s.cfg.Outbox
	w := outbox.NewWorker(s.rdb, s.ks, outbox.Config{
		Concurrency: o.Workers, PollInterval: o.PollInterval, MaxAttempts: o.MaxAttempts,
		BaseBackoff: o.BaseBackoff, MaxBackoff: o.MaxBackoff, ClaimAfter: o.ClaimAfter,
		// A round reads a full mail batch (mail + invitation.sync per invitation): invites.HandleBatch.
		Batch: 2 * mail.MaxBatch, Now: s.now,
	}, s.log.With("component", "outbox"))
	w.SetObserver(s.Metrics)
	return w
}

// newIdentities is the Kratos adapter the configuration names.
func (s *Server) newIdentities() *identity.Kratos {
	k := s.cfg.Kratos
	return identity.New(identity.Config{
		AdminURL: k.AdminURL, PublicURL: k.PublicURL, SchemaID: k.SchemaID,
		EmailTrait: k.EmailTrait, NameTrait: k.NameTrait, Timeout: k.Timeout,
		SessionCookie: k.SessionCookie,
	}, s.Metrics)
}

// newDeliveries builds the delivery tracker (its bounces and complaints
// become events) and, with mail.resend.webhook_secrets, the verifier of
// Resend's webhooks.
func (s *Server) newDeliveries(invStore *invites.Store) error {
	s.Deliveries = invites.NewDeliveries(invites.DeliveriesOptions{Invitations: invStore, Redis: s.rdb, Keys: s.ks, Now: s.now,
		Observer: deliveryEvents{s: s, log: s.log}})
	if secrets := s.cfg.Mail.Resend.WebhookSecrets; len(secrets) > 0 {
		var err error
		if s.resendHook, err = mail.NewWebhookVerifier(secrets, s.now); err != nil {
			return err
		}
	}
	return nil
}

// newStores builds the organization and invitation stores. Their writes
// people are answered about wait for redis.wait_replicas replicas (README
// "Redis failover").
func (s *Server) newStores() (*orgs.Store, *invites.Store) {
	wait := redisx.Wait{Replicas: s.cfg.Redis.WaitReplicas, Timeout: s.cfg.Redis.WaitTimeout}
	orgStore := orgs.NewStore(s.rdb, s.ks, s.cfg.Invitations.Retention, s.now)
	orgStore.SetWait(wait)
	invStore := invites.NewStore(s.rdb, s.ks, s.cfg.Invitations.Retention, s.now)
	invStore.SetWait(wait)
	invStore.SetReminders(orgs.Reminders{
		AfterSent: s.cfg.Invitations.Reminders.AfterSent, BeforeExpiry: s.cfg.Invitations.Reminders.BeforeExpiry,
	})
	return orgStore, invStore
}

// newAcceptance builds what accepting and activating links need: the
// acceptor and, when sign-up is enabled, the registrar.
func (s *Server) newAcceptance(orgStore *orgs.Store) {
	cfg := s.cfg
	success := cfg.Invitations.SuccessURL
	if success == "" {
		success = trimSlash(cfg.Serve.Public.BaseURL) + "/welcome"
	}
	regSuccess := cfg.Register.SuccessURL
	if regSuccess == "" {
		regSuccess = success
	}
	s.Acceptor = invites.NewAcceptor(s.Invites, s.ids, identity.NewSchemaValidator(s.ids.Schema, 5*time.Minute), invites.AcceptConfig{
		LoginMode: cfg.Accept.LoginMode, Fields: cfg.Accept.Fields, PasswordMinLength: cfg.Accept.PasswordMinLength,
		ClaimTimeout: cfg.Accept.ClaimTimeout, SuccessURL: success, RegistrationSuccessURL: regSuccess,
		KratosPublicURL: cfg.Kratos.PublicURL,
	})
	if !cfg.Register.Enabled {
		return
	}
	s.Registrar = invites.NewRegistrar(invites.RegistrarOptions{
		Service: s.Invites, Orgs: orgStore, Outbox: s.Worker, Redis: s.rdb, Keys: s.ks,
		PendingTTL: cfg.Register.PendingTTL,
		CheckAddress: func(ctx context.Context, email string) error {
			return s.Limiter.Check(ctx, s.quotas.registerPerEmail, email)
		},
	})
}

// loginURL is Kratos' browser login, where mail sends people who already
// have an account.
func loginURL(cfg config.Config) string {
	return trimSlash(cfg.Kratos.PublicURL) + "/self-service/login/browser"
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

func newSender(cfg config.Mail, w io.Writer) (mail.Sender, error) {
	switch cfg.Sender {
	case "resend":
		return mail.NewResendSender(mail.ResendConfig{
			APIKey: cfg.Resend.APIKey, BaseURL: cfg.Resend.BaseURL, Timeout: cfg.Resend.Timeout, RatePerSecond: cfg.RatePerSec,
		})
	case "log":
		if w == nil {
			w = os.Stderr
		}
		return mail.NewLogSender(w), nil
	}
	return nil, fmt.Errorf("server: unknown mail sender %q", cfg.Sender)
}

// Redis returns the client (CLI, tests).
func (s *Server) Redis() redis.UniversalClient { return s.rdb }

// Keyspace returns the key layout in use.
func (s *Server) Keyspace() redisx.Keyspace { return s.ks }

// PublicHandler and AdminHandler expose the two routers (tests, benchmarks).
func (s *Server) PublicHandler() http.Handler { return s.public }

// AdminHandler is the admin router.
func (s *Server) AdminHandler() http.Handler { return s.admin }

// Listening is closed once Run has bound both listeners.
func (s *Server) Listening() <-chan struct{} { return s.listening }

// Addr returns the bound address of a listener ("public" or "admin") once
// Run has started listening.
func (s *Server) Addr(name string) string {
	<-s.listening
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs[name]
}

// Run serves until ctx ends, then shuts down gracefully: readiness turns
// 503, in-flight requests finish (within serve.shutdown_timeout), the worker
// finishes its jobs in flight.
func (s *Server) Run(ctx context.Context) error {
	type srv struct {
		name string
		hs   *http.Server
		ln   net.Listener
	}
	var servers []srv
	for _, l := range []struct {
		name string
		cfg  config.Listener
		h    http.Handler
	}{{"public", s.cfg.Serve.Public, s.public}, {"admin", s.cfg.Serve.Admin, s.admin}} {
		ln, err := net.Listen("tcp", net.JoinHostPort(l.cfg.Host, strconv.Itoa(l.cfg.Port)))
		if err != nil {
			for _, sv := range servers {
				sv.ln.Close()
			}
			return fmt.Errorf("server: listen %s: %w", l.name, err)
		}
		s.mu.Lock()
		s.addrs[l.name] = ln.Addr().String()
		s.mu.Unlock()
		servers = append(servers, srv{l.name, &http.Server{
			Handler: l.h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
		}, ln})
	}
	close(s.listening)

	errs := make(chan error, len(servers))
	for _, sv := range servers {
		s.log.Info("listening", "listener", sv.name, "addr", sv.ln.Addr().String())
		go func() {
			if err := sv.hs.Serve(sv.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("server: %s: %w", sv.name, err)
			}
		}()
	}
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = s.Worker.Run(workCtx) }()
	go func() { defer wg.Done(); s.sweep(workCtx) }()
	if s.Reconciler != nil && s.cfg.Reconcile.Interval > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); s.Reconciler.Run(workCtx, s.cfg.Reconcile.Interval) }()
	}
	if s.Events != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.Events.Run(workCtx) }()
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	s.log.Info("shutting down")
	s.draining.Store(true)
	shutCtx, cancel := context.WithTimeout(context.Background(), s.cfg.Serve.ShutdownTimeout)
	defer cancel()
	for _, sv := range servers {
		if err := sv.hs.Shutdown(shutCtx); err != nil {
			s.log.Warn("shutdown did not finish in time", "listener", sv.name, "err", err)
		}
	}
	stopWork()
	wg.Wait()
	s.log.Info("stopped")
	return runErr
}

// sweep ends expired invitations regularly; readers already see them as
// expired, the sweep runs their side effects (index, identity cleanup).
// Then it sends the automatic reminders that are due.
func (s *Server) sweep(ctx context.Context) {
	t := time.NewTicker(s.cfg.Outbox.SweepInterval)
	defer t.Stop()
	for {
		expired, purged, err := s.Invites.Store().Sweep(ctx, 200)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("sweep failed", "err", err)
		case expired+purged > 0:
			s.log.Info("swept invitations", "expired", expired, "purged", purged)
			s.Worker.Wake()
		}
		sent, deferred, err := s.Invites.SendDueReminders(ctx, 200)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("reminder sweep failed", "err", err)
		case sent+deferred > 0:
			s.log.Info("automatic reminders", "sent", sent, "deferred", deferred)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Close releases the Redis connection (and stops an embedded Redis).
func (s *Server) Close() error { return s.closeRedis() }
