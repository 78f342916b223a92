package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/httpx"
	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/ratelimit"
)

// orgPage guards the org admins' page (invites.OrgPages) with the quotas
// of the /api it mirrors, answered as pages: a view counts against the
// client's page views (limits.link_views_per_client); every action against
// the signed-in identity's quota (limits.api_invites_per_identity); the
// actions that mail someone (invite, resend, remind) also against the
// organization's, once the caller is known to be its admin, and a resend
// has the reminder's cooldown per invitation, as on /api. A CSV upload
// counts here once, as every action; its rows count in the handler, each
// against both quotas, as the rows of an /api bulk request
// (quotas.APIRows).
func (q *quotas) orgPage(auth apiAuthorizer) gin.HandlerFunc {
	const (
		view       = invites.OrgPagePath + ":org"
		invite     = view + "/invitations"
		invitation = view + "/invitations/:id/:action"
	)
	return func(c *gin.Context) {
		ctx, route := c.Request.Context(), c.FullPath()
		check := func(lim ratelimit.Limit, key string) bool {
			if err := q.l.Check(ctx, lim, key); err != nil {
				q.page(c, err)
				return false
			}
			return true
		}
		if c.Request.Method != http.MethodPost {
			check(q.linkViews, clientKey(c))
			return
		}
		if !check(q.apiPerIdentity, httpx.CallerOf(c).IdentityID) {
			return
		}
		mails := route == invite || (route == invitation && (c.Param("action") == "resend" || c.Param("action") == "remind"))
		if !mails {
			return
		}
		org, ok := auth.adminOf(c)
		if !ok || (route == invitation && auth.invitationOrg(c, c.Param("id")) != org) {
			return // the handler refuses the caller, or answers not found
		}
		if route == invitation && c.Param("action") == "resend" && !check(q.apiResend, c.Param("id")) {
			return
		}
		check(q.apiPerOrg, org)
	}
}
