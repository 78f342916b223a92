package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/httpx"
	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/ratelimit"
	"github.com/kratos-orgs/kratos-orgs/templates"
)

// This file says which quota guards which route (README "Security"). The
// checks are middleware keyed on the matched route pattern, so handlers
// stay as they are and the whole policy reads in one place.

// quotas holds the limits of the configuration, by name.
type quotas struct {
	l      *ratelimit.Limiter
	render httpx.PageRenderer

	registerPerClient, registerPerEmail  ratelimit.Limit
	linkViews, linkSubmits               ratelimit.Limit
	apiPerIdentity, apiPerOrg, apiResend ratelimit.Limit
	adminPerKey                          ratelimit.Limit
	mailGlobal, mailPerOrg               ratelimit.Limit
	resendHooksPerClient                 ratelimit.Limit
}

func limitOf(name string, r config.Rate) ratelimit.Limit {
	return ratelimit.Limit{Name: name, Requests: r.Requests, Period: r.Period, Burst: r.Burst}
}

func newQuotas(l *ratelimit.Limiter, render httpx.PageRenderer, c config.Limits, remindInterval time.Duration) *quotas {
	return &quotas{
		l: l, render: render,
		registerPerClient: limitOf("register_per_client", c.RegisterPerClient),
		registerPerEmail:  limitOf("register_per_email", c.RegisterPerEmail),
		linkViews:         limitOf("link_views_per_client", c.LinkViewsPerClient),
		linkSubmits:       limitOf("link_submits_per_client", c.LinkSubmitsPerClient),
		apiPerIdentity:    limitOf("api_invites_per_identity", c.APIInvitesPerIdentity),
		apiPerOrg:         limitOf("api_invites_per_organization", c.APIInvitesPerOrganization),
		// Resend on /api mails the invitee like a reminder does, so it gets
		// the reminder's cooldown per invitation.
		apiResend:            ratelimit.Limit{Name: "api_resend_per_invitation", Requests: 1, Period: remindInterval},
		adminPerKey:          limitOf("admin_per_key", c.AdminPerKey),
		mailGlobal:           limitOf("mail_global", c.MailGlobal),
		mailPerOrg:           limitOf("mail_per_organization", c.MailPerOrganization),
		resendHooksPerClient: limitOf("resend_webhooks_per_client", c.ResendWebhooksPerClient),
	}
}

// clientKey is the bucket of the request's client address: the socket's
// peer, or what a trusted proxy says (gin's SetTrustedProxies). An IPv6
// client is bucketed by its /64, the block one subscriber usually gets.
func clientKey(c *gin.Context) string {
	a, err := netip.ParseAddr(c.ClientIP())
	if err != nil {
		return "unknown"
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// pages guards the public pages: sign-up POSTs and invitation/activation
// links, per client address. It answers a readable 429 page.
func (q *quotas) pages(acceptPath, activatePath, registerPath string) gin.HandlerFunc {
	links := map[string]bool{acceptPath + "*token": true, activatePath + "*token": true}
	return func(c *gin.Context) {
		route, post := c.FullPath(), c.Request.Method == http.MethodPost
		var lim ratelimit.Limit
		switch {
		case route == registerPath && post:
			lim = q.registerPerClient
		case links[route] && post:
			lim = q.linkSubmits
		case links[route] && c.Request.Method == http.MethodGet:
			lim = q.linkViews
		default:
			return
		}
		if err := q.l.Check(c.Request.Context(), lim, clientKey(c)); err != nil {
			q.page(c, err)
		}
	}
}

// page explains a refusal (or a failing limit store) as an HTML page.
func (q *quotas) page(c *gin.Context, err error) {
	defer c.Abort()
	httpx.SetRetryAfter(c, err)
	httpx.RecordErrorCode(c, apperr.CodeOf(err))
	status := httpx.PageStatus(err)
	page := templates.MessagePage{Base: httpx.PageBase(c, q.render)}
	t := func(key string, args ...any) string { return httpx.T(c, q.render, key, args...) }
	if e, ok := apperr.As(err); ok && e.Code == "rate_limited" {
		page.Title = t("rate_limited.title")
		n, unit := ratelimit.HumanParts(e.RetryAfter)
		wait := t("wait." + unit)
		if n != 1 {
			wait = t("wait."+unit+"s", n)
		}
		page.Paragraphs = []string{t("rate_limited.network"), t("rate_limited.retry", wait)}
	} else {
		httpx.Logger(c).Error("rate limit check failed", "err", err)
		page.Title = t("internal.title")
		page.Paragraphs = []string{t("internal.text")}
	}
	httpx.RenderPage(c, q.render, status, "message.html", page)
}

// apiAuthorizer checks that the caller is an admin of an organization and
// finds an invitation's organization (for the /api quotas).
type apiAuthorizer interface {
	adminOf(c *gin.Context) (orgID string, ok bool)
	invitationOrg(c *gin.Context, id string) string
}

// api guards the org admins' invitation routes: per signed-in identity,
// then, once the caller is known to be an admin of the organization (so
// nobody can spend another organization's quota), per organization and,
// for resend, per invitation. Remind has its own per-invitation cooldown in
// the invitation (invitations.remind_interval, 429 remind_too_soon), so it
// only counts here against the identity's and the organization's quotas.
func (q *quotas) api(auth apiAuthorizer) gin.HandlerFunc {
	const (
		invite = "/api/organizations/:org/invitations"
		resend = "/api/organizations/:org/invitations/:id/resend"
		remind = "/api/organizations/:org/invitations/:id/remind"
	)
	return func(c *gin.Context) {
		route := c.FullPath()
		if c.Request.Method != http.MethodPost || (route != invite && route != resend && route != remind) {
			return
		}
		ctx := c.Request.Context()
		if err := q.l.Check(ctx, q.apiPerIdentity, httpx.CallerOf(c).IdentityID); err != nil {
			httpx.WriteError(c, err)
			return
		}
		org, ok := auth.adminOf(c)
		if !ok {
			return // the handler refuses the caller
		}
		if route != invite && auth.invitationOrg(c, c.Param("id")) != org {
			return // the handler answers not found
		}
		// A dry run sends no mail: it does not spend the resend's cooldown.
		if route == resend && !dryRunRequest(c) {
			if err := q.l.Check(ctx, q.apiResend, c.Param("id")); err != nil {
				httpx.WriteError(c, err)
				return
			}
		}
		if err := q.l.Check(ctx, q.apiPerOrg, org); err != nil {
			httpx.WriteError(c, err)
		}
	}
}

// resendHooks limits Resend's webhooks per client address, before their
// signature is checked: a flood of forged ones costs an HMAC each, not
// Redis writes, but still costs.
func (q *quotas) resendHooks() gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := q.l.Check(c.Request.Context(), q.resendHooksPerClient, clientKey(c)); err != nil {
			httpx.WriteError(c, err)
		}
	}
}

// admin limits each admin API key (already authenticated), when enabled.
func (q *quotas) admin() gin.HandlerFunc {
	return func(c *gin.Context) {
		if !q.adminPerKey.Enabled() {
			return
		}
		if err := q.l.Check(c.Request.Context(), q.adminPerKey, adminKeyBucket(c)); err != nil {
			httpx.WriteError(c, err)
		}
	}
}

// adminKeyBucket is the quota bucket of the request's admin API key.
func adminKeyBucket(c *gin.Context) string {
	_, key, _ := strings.Cut(c.GetHeader("Authorization"), " ")
	sum := sha256.Sum256([]byte(strings.TrimSpace(key)))
	return hex.EncodeToString(sum[:])
}

// A bulk invitation request counts as one request where the middleware
// counts requests (admin), and each row that would be invited counts again
// against the quotas a single invitation spends: the admin API key's, or
// the org admin's and the organization's. Rows past a quota answer
// rate_limited; the others go on.

// AdminRows is the admin API key's quota, per row (nil when off).
func (q *quotas) AdminRows(c *gin.Context) invites.RowQuota {
	if !q.adminPerKey.Enabled() {
		return nil
	}
	key := adminKeyBucket(c)
	return func(ctx context.Context) error { return q.l.Check(ctx, q.adminPerKey, key) }
}

// APIRows is the org admin's and the organization's invitation quotas,
// per row, as the middleware spends them for a single invitation.
func (q *quotas) APIRows(c *gin.Context, org string) invites.RowQuota {
	who := httpx.CallerOf(c).IdentityID
	return func(ctx context.Context) error {
		if err := q.l.Check(ctx, q.apiPerIdentity, who); err != nil {
			return err
		}
		return q.l.Check(ctx, q.apiPerOrg, org)
	}
}

// serverAuth implements apiAuthorizer with the organization and invitation
// services.
type serverAuth struct{ s *Server }

func (a serverAuth) adminOf(c *gin.Context) (string, bool) {
	o, _, err := a.s.Orgs.Authorize(c.Request.Context(), c.Param("org"), httpx.CallerOf(c).IdentityID, "admin")
	return o.ID, err == nil
}

func (a serverAuth) invitationOrg(c *gin.Context, id string) string {
	inv, err := a.s.Invites.Get(c.Request.Context(), id)
	if err != nil {
		return ""
	}
	return inv.OrganizationID
}

// dryRunRequest reports whether a request asks for a dry run (its
// handler refuses a malformed dry_run).
func dryRunRequest(c *gin.Context) bool {
	dry, err := strconv.ParseBool(c.Query("dry_run"))
	return err == nil && dry
}
