package invites

import (
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/httpx"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// The org admins' page's actions: each is a POST form with a CSRF token
// that, on success, redirects back to the page with a notice (so a reload
// does not repeat it) and, on failure, shows the page again with the
// reason and the status of the error.

// checked verifies the form's CSRF token; false means the refusal was written.
func (p *OrgPages) checked(c *gin.Context) bool {
	if err := p.o.CSRF.Check(c, p.binding(c)); err != nil {
		if apperr.CodeOf(err) == "body_too_large" {
			p.message(c, http.StatusRequestEntityTooLarge, p.t(c, "link.too_large.title"), p.t(c, "link.too_large.text"))
			return false
		}
		p.refuse(c, orgs.Organization{}, orgs.Member{}, err)
		return false
	}
	return true
}

// done redirects back to the page with a notice.
func (p *OrgPages) done(c *gin.Context, notice string) {
	c.Redirect(http.StatusSeeOther, p.pagePath(c)+"?notice="+notice)
}

// failed shows why an action did not happen: the page again with the
// reason, or the refusal page when the caller may not see it at all.
func (p *OrgPages) failed(c *gin.Context, err error, st pageState) {
	switch code := apperr.CodeOf(err); {
	case code == "organization_not_found" || code == "role_too_low":
		// Refused by authorization: page() explains it, with the role.
	case httpx.PageStatus(err) >= 500:
		httpx.Logger(c).Error("org admin action failed", "err", err)
		st.Error = p.t(c, "internal.text")
	default:
		httpx.SetRetryAfter(c, err)
		st.Error = p.t(c, "orgadmin.failed", sentence(err))
	}
	p.page(c, httpx.PageStatus(err), st)
}

func (p *OrgPages) invite(c *gin.Context) {
	if !p.checked(c) {
		return
	}
	ctx, who := c.Request.Context(), httpx.CallerOf(c)
	st := pageState{InviteEmail: c.PostForm("email"), InviteRole: c.PostForm("role")}
	o, me, err := p.admin.authorize(ctx, c.Param("org"), who.IdentityID)
	if err == nil {
		_, _, err = p.admin.invite(ctx, o, me, who.IdentityID, who.Name, InviteRequest{Email: st.InviteEmail, Role: st.InviteRole})
	}
	if err != nil {
		p.failed(c, err, st)
		return
	}
	p.done(c, "invited")
}

func (p *OrgPages) invitationAction(c *gin.Context) {
	action := c.Param("action")
	if !slices.Contains(invitationActions, action) {
		httpx.NotFound(c)
		return
	}
	if !p.checked(c) {
		return
	}
	ctx, id := c.Request.Context(), c.Param("id")
	_, err := p.admin.own(ctx, c.Param("org"), httpx.CallerOf(c).IdentityID, id)
	if err == nil {
		switch action {
		case "resend":
			_, err = p.admin.svc.Resend(ctx, id, true)
		case "remind":
			_, err = p.admin.svc.Remind(ctx, id)
		default:
			_, err = p.admin.svc.Revoke(ctx, id)
		}
	}
	if err != nil {
		p.failed(c, err, pageState{})
		return
	}
	p.done(c, map[string]string{"resend": "resent", "remind": "reminded", "revoke": "revoked"}[action])
}

func (p *OrgPages) memberAction(c *gin.Context) {
	action := c.Param("action")
	if action != "role" && action != "remove" {
		httpx.NotFound(c)
		return
	}
	if !p.checked(c) {
		return
	}
	ctx, org, caller, them := c.Request.Context(), c.Param("org"), httpx.CallerOf(c).IdentityID, c.Param("identity")
	var err error
	if action == "role" {
		_, err = p.admin.orgs.SetRoleAs(ctx, org, caller, them, c.PostForm("role"))
	} else {
		err = p.admin.orgs.RemoveMemberAs(ctx, org, caller, them)
	}
	if err != nil {
		p.failed(c, err, pageState{})
		return
	}
	p.done(c, map[string]string{"role": "role_changed", "remove": "removed"}[action])
}
