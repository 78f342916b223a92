package server

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/domains"
	"github.com/kratos-orgs/kratos-orgs/httpx"
	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/kratosui"
	"github.com/kratos-orgs/kratos-orgs/openapi"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/redisx"
	"github.com/kratos-orgs/kratos-orgs/templates"
)

func init() { gin.SetMode(gin.ReleaseMode) }

// routes registers every route of both listeners. The admin listener is
// never exposed publicly (the chart's ingress only routes the public one).
func (s *Server) routes() (public, admin *gin.Engine) {
	maxBody := s.cfg.Serve.MaxBodyBytes

	public = newEngine(s.cfg.Serve.Public.TrustedProxies, s.log)
	public.Use(httpx.Common("public", s.log, maxBody, s.Metrics))
	s.health(public)
	kratos := origin(s.cfg.Kratos.PublicURL)
	pages := public.Group("", httpx.PageHeaders([]string{kratos}, []string{kratos}),
		s.quotas.pages(s.cfg.Invitations.AcceptPath, s.cfg.Register.ActivatePath, s.cfg.Register.Path), actor("public"))
	csrf := httpx.NewCSRF(s.cfg.Secrets.Cipher[0], s.cfg.Serve.Public.BaseURL)
	invites.NewPages(s.Acceptor, s.Registrar, s.Templates, csrf, invites.PagesConfig{
		AcceptPath: s.cfg.Invitations.AcceptPath, ActivatePath: s.cfg.Register.ActivatePath, RegisterPath: s.cfg.Register.Path,
		PublicBaseURL: s.cfg.Serve.Public.BaseURL, KratosPublicURL: s.cfg.Kratos.PublicURL,
	}).Register(pages)
	domainPages := domains.NewPages(domains.PagesOptions{
		Service: s.Domains, Sessions: s.ids, Render: s.Templates, Limit: s.domainQuotas.joinPerIdentity,
		CSRF: csrf, PublicBaseURL: s.cfg.Serve.Public.BaseURL,
	})
	domainPages.Register(pages.Group("", s.domainQuotas.join()))
	kratosui.New(s.cfg.Serve.Public.BaseURL, s.Templates, s.ids, memberships{s}).WithSuggestions(domainPages).Register(pages)
	// The org admins' page: the /api's session resolution and rules, as forms.
	invites.NewOrgPages(invites.OrgPagesOptions{Invites: s.Invites, Orgs: s.Orgs, Render: s.Templates, CSRF: csrf, Session: s.caller,
		Quotas: s.quotas, PublicBaseURL: s.cfg.Serve.Public.BaseURL, KratosPublicURL: s.cfg.Kratos.PublicURL,
	}).Register(pages, s.quotas.orgPage(serverAuth{s}))

	// The API org admins call from their own product, with their session.
	sessionAPI := public.Group("/api", httpx.SessionAuth(s.caller, s.apiOrigins()), s.quotas.api(serverAuth{s}), actor("identity"))
	orgs.NewAPIHandlers(s.Orgs, s.Members).Register(sessionAPI)
	orgs.NewAuditHandlers(s.Orgs).RegisterAPI(sessionAPI)
	invites.NewAPIHandlers(s.Invites, s.Orgs, s.Previewer).Register(sessionAPI)
	bulk := invites.NewBulkHandlers(invites.BulkHandlersOptions{
		Service: s.Invites, Previewer: s.Previewer, Orgs: s.Orgs, Quotas: s.quotas,
	})
	bulk.RegisterAPI(sessionAPI)
	domains.NewAPIHandlers(s.Domains).Register(sessionAPI.Group("", s.domainQuotas.api()))
	if s.resendHook != nil {
		// Public: Resend must reach it, and the admin listener never is
		// exposed. The signature authenticates it; the quota comes first.
		hooks := public.Group("", s.quotas.resendHooks())
		invites.NewDeliveryHook(s.resendHook, s.Deliveries).Register(hooks)
	}

	admin = newEngine(s.cfg.Serve.Admin.TrustedProxies, s.log)
	admin.Use(httpx.Common("admin", s.log, maxBody, s.Metrics))
	admin.GET("/metrics", gin.WrapH(s.Metrics.Handler()))
	s.health(admin)
	admin.GET("/openapi.yaml", openapi.Serve)
	adminAPI := admin.Group("/admin", httpx.AdminAuth(s.cfg.Admin.APIKeys), s.quotas.admin(), actor("admin"))
	orgs.NewAdminHandlers(s.Orgs).Register(adminAPI)
	orgs.NewAuditHandlers(s.Orgs).RegisterAdmin(adminAPI)
	invites.NewAdminHandlers(s.Invites, s.Previewer).Register(adminAPI)
	bulk.RegisterAdmin(adminAPI)
	invites.NewSuppressionHandlers(s.Deliveries).Register(adminAPI)
	domains.NewAdminHandlers(s.Domains).Register(adminAPI)
	s.Hooks.Register(admin.Group("", actor("webhook")))
	return public, admin
}

// actor puts who is calling into the request's context, for the audit
// trail every script writes (redisx.Actor): the admin key's fingerprint,
// the session's identity, the webhook's name; and the client address.
func actor(typ string) gin.HandlerFunc {
	return func(c *gin.Context) {
		a := redisx.Actor{Type: typ, Addr: c.ClientIP()}
		switch typ {
		case "admin":
			a.ID = httpx.AdminKeyOf(c)
		case "identity":
			if who := httpx.CallerOf(c); who != nil {
				a.ID = who.IdentityID
			}
		case "webhook":
			a.ID = strings.TrimPrefix(c.FullPath(), "/hooks/")
		}
		c.Request = c.Request.WithContext(redisx.WithActor(c.Request.Context(), a))
		c.Next()
	}
}

func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// caller resolves a Kratos session for the API: only Kratos' session
// cookie is forwarded, and answers are cached for kratos.whoami_cache_ttl.
func (s *Server) caller(ctx context.Context, cookie, token string) (*httpx.Caller, error) {
	sess, err := s.sessions.Whoami(ctx, identity.SessionCookie(cookie, s.cfg.Kratos.SessionCookie), token)
	if err != nil || sess == nil {
		return nil, err
	}
	return &httpx.Caller{IdentityID: sess.Identity.ID, Email: sess.Identity.Email, Name: sess.Identity.Name}, nil
}

// apiOrigins may send cookie-authenticated changes: the public origin and
// the applications invitations redirect to.
func (s *Server) apiOrigins() []string {
	out := []string{origin(s.cfg.Serve.Public.BaseURL)}
	for _, h := range s.cfg.Invitations.AllowedRedirectHosts {
		out = append(out, "https://"+h)
		// A page served over plain HTTP can be rewritten on the way, so
		// it may not ride on the session cookie; except in development.
		if config.IsLoopback(h) {
			out = append(out, "http://"+h)
		}
	}
	return out
}

// memberships lists an identity's organizations for the welcome page.
type memberships struct{ s *Server }

// TemplateOptions are the renderer's options from the configuration.
func TemplateOptions(t config.Templates) templates.Options {
	return templates.Options{Dir: t.Dir, DefaultLocale: t.DefaultLocale}
}

func (m memberships) OrganizationsOf(ctx context.Context, identityID string) ([]templates.WelcomeOrg, error) {
	roles, err := m.s.Members.Organizations(ctx, identityID)
	if err != nil {
		return nil, err
	}
	var out []templates.WelcomeOrg
	for id, role := range roles {
		o, err := m.s.Orgs.Store().Get(ctx, id)
		if err != nil {
			continue // deleted since
		}
		w := templates.WelcomeOrg{Name: o.Name, Role: role}
		if m.s.Orgs.Roles().AtLeast(role, "admin") {
			w.ManageURL = invites.OrgPagePath + cmp.Or(o.Slug, o.ID)
		}
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// newEngine builds a router. The client address (quotas, logs) is the
// socket's peer unless that peer is one of proxies; gin trusts every
// proxy unless told otherwise, so an empty list is set explicitly.
func newEngine(proxies []string, log *slog.Logger) *gin.Engine {
	e := gin.New()
	if err := e.SetTrustedProxies(proxies); err != nil {
		// Validated at start-up; never trust a list that does not parse.
		log.Error("trusted proxies not usable; trusting none", "err", err)
		_ = e.SetTrustedProxies(nil)
	}
	e.HandleMethodNotAllowed = true
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.NoRoute(httpx.NotFound)
	e.NoMethod(httpx.MethodNotAllowed)
	return e
}

// health serves Ory's health endpoints: alive answers while the process
// runs; ready when Redis (every master, on a cluster) and the Kratos admin
// API answer and the server is not shutting down. The body names what does
// not answer.
func (s *Server) health(e *gin.Engine) {
	e.GET("/health/alive", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/health/ready", func(c *gin.Context) {
		if s.draining.Load() {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "errors": gin.H{"server": "shutting down"}})
			return
		}
		ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
		defer cancel()
		problems := gin.H{}
		if err := redisx.Ping(ctx, s.rdb); err != nil {
			problems["redis"] = err.Error()
		}
		if err := s.ids.Ready(ctx); err != nil {
			problems["kratos"] = err.Error()
		}
		if len(problems) > 0 {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "errors": problems})
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "ok"})
	})
}
