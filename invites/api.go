package invites

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/httpx"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/textcheck"
)

// APIHandlers serve the invitation part of the session-authenticated API:
// owners and admins invite, list, revoke, resend and remind, within their
// role.
type APIHandlers struct {
	svc     *Service
	orgs    *orgs.Service
	preview *Previewer
}

// NewAPIHandlers returns the handlers.
func NewAPIHandlers(svc *Service, o *orgs.Service, preview *Previewer) *APIHandlers {
	return &APIHandlers{svc: svc, orgs: o, preview: preview}
}

// Register adds the routes to a session-authenticated group.
func (h *APIHandlers) Register(r gin.IRouter) {
	r.POST("/organizations/:org/invitations", httpx.H(h.invite))
	r.GET("/organizations/:org/invitations", httpx.H(h.list))
	r.DELETE("/organizations/:org/invitations/:id", httpx.H(h.revoke))
	r.POST("/organizations/:org/invitations/:id/resend", httpx.H(h.resend))
	r.POST("/organizations/:org/invitations/:id/remind", httpx.H(h.remind))
}

func (h *APIHandlers) admin(c *gin.Context) (orgs.Organization, orgs.Member, error) {
	return orgAdmin{h.svc, h.orgs}.authorize(c.Request.Context(), c.Param("org"), httpx.CallerOf(c).IdentityID)
}

// APIInviteRequest is the body of POST /api/organizations/{org}/invitations;
// the inviter is the caller.
type APIInviteRequest struct {
	Email      string         `json:"email"`
	Role       string         `json:"role"`
	Context    map[string]any `json:"context,omitempty"`
	TTL        *Duration      `json:"ttl,omitempty"`
	RedirectTo string         `json:"redirect_to,omitempty"`
	Locale     string         `json:"locale,omitempty"`
}

func (h *APIHandlers) invite(c *gin.Context) error {
	var req APIInviteRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	o, me, err := h.admin(c)
	if err != nil {
		return err
	}
	if err := checkContextText(req.Context); err != nil {
		return err
	}
	dry, err := dryRun(c)
	if err != nil {
		return err
	}
	who := httpx.CallerOf(c)
	actor := actor(who.IdentityID, who.Name, me)
	ir := InviteRequest{Email: req.Email, Role: req.Role, Context: req.Context, TTL: req.TTL, RedirectTo: req.RedirectTo,
		Locale: req.Locale, UniformKratosWork: true}
	if dry {
		d, err := h.preview.InviteAs(c.Request.Context(), o.ID, actor, ir)
		if err != nil {
			return err
		}
		c.JSON(http.StatusOK, ForOrgAdminDryRun(d))
		return nil
	}
	inv, created, err := h.svc.InviteAs(c.Request.Context(), o.ID, actor, ir)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
	}
	c.JSON(status, ForOrgAdmin(inv))
	return nil
}

func (h *APIHandlers) list(c *gin.Context) error {
	cursor, limit, err := httpx.Page(c)
	if err != nil {
		return err
	}
	o, _, err := h.admin(c)
	if err != nil {
		return err
	}
	page, err := h.svc.List(c.Request.Context(), o.ID, Filter{Status: c.Query("status"), Email: c.Query("email"), Delivery: c.Query("delivery"), Cursor: cursor, Limit: limit})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, forOrgAdmins(page))
	return nil
}

// own loads an invitation of the organization, within the caller's role.
func (h *APIHandlers) own(c *gin.Context) (Invitation, error) {
	return orgAdmin{h.svc, h.orgs}.own(c.Request.Context(), c.Param("org"), httpx.CallerOf(c).IdentityID, c.Param("id"))
}

func (h *APIHandlers) revoke(c *gin.Context) error {
	if _, err := h.own(c); err != nil {
		return err
	}
	inv, err := h.svc.Revoke(c.Request.Context(), c.Param("id"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, ForOrgAdmin(inv))
	return nil
}

func (h *APIHandlers) resend(c *gin.Context) error {
	var none struct{} // no fields: a body with any is refused
	if err := httpx.DecodeOptionalJSON(c, &none); err != nil {
		return err
	}
	if _, err := h.own(c); err != nil {
		return err
	}
	if dry, err := dryRun(c); err != nil || dry {
		return h.dryRotation(c, err, false)
	}
	inv, err := h.svc.Resend(c.Request.Context(), c.Param("id"), true)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, ForOrgAdmin(inv))
	return nil
}

// remind mails a reminder, as the admin API's remind does: a new token,
// the expiry unchanged, at most once per invitations.remind_interval (429
// remind_too_soon). Who may is decided as for resend.
func (h *APIHandlers) remind(c *gin.Context) error {
	var none struct{} // no fields: a body with any is refused
	if err := httpx.DecodeOptionalJSON(c, &none); err != nil {
		return err
	}
	if _, err := h.own(c); err != nil {
		return err
	}
	if dry, err := dryRun(c); err != nil || dry {
		return h.dryRotation(c, err, true)
	}
	inv, err := h.svc.Remind(c.Request.Context(), c.Param("id"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, ForOrgAdmin(inv))
	return nil
}

// dryRotation answers resend?dry_run=true and remind?dry_run=true (or the
// dry_run parameter's error), after own has authorized the caller.
func (h *APIHandlers) dryRotation(c *gin.Context, err error, remind bool) error {
	if err != nil {
		return err
	}
	d, err := h.preview.Rotation(c.Request.Context(), c.Param("id"), remind, true)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, ForOrgAdminDryRun(d))
	return nil
}

// sessionName is the caller's name from their Kratos identity, as the
// inviter's name in the mail: dropped (the mail then says "You have been
// invited") when it would not be accepted as a name, since the org admin
// cannot fix it through this API.
func sessionName(name string) string {
	clean, problem := textcheck.Check(name, MaxNameLen, false)
	if problem != nil {
		return ""
	}
	return clean
}
