package invites

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/httpx"
)

// AdminHandlers serve the invitation part of the admin API.
type AdminHandlers struct {
	svc     *Service
	preview *Previewer
}

// NewAdminHandlers returns the handlers.
func NewAdminHandlers(svc *Service, preview *Previewer) *AdminHandlers {
	return &AdminHandlers{svc: svc, preview: preview}
}

// Register adds the routes to an admin router group (already authenticated).
func (h *AdminHandlers) Register(r gin.IRouter) {
	r.POST("/organizations/:org/invitations", httpx.H(h.invite))
	r.GET("/organizations/:org/invitations", httpx.H(h.list))
	r.GET("/invitations/:id", httpx.H(h.get))
	r.DELETE("/invitations/:id", httpx.H(h.revoke))
	r.POST("/invitations/:id/resend", httpx.H(h.resend))
	r.POST("/invitations/:id/remind", httpx.H(h.remind))
}

func (h *AdminHandlers) invite(c *gin.Context) error {
	var req InviteRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	dry, err := dryRun(c)
	if err != nil {
		return err
	}
	if dry {
		d, err := h.preview.Invite(c.Request.Context(), c.Param("org"), req)
		if err != nil {
			return err
		}
		c.JSON(http.StatusOK, d)
		return nil
	}
	inv, created, err := h.svc.Invite(c.Request.Context(), c.Param("org"), req)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK // the pending invitation, with a new token
	}
	c.JSON(status, inv)
	return nil
}

// dryRun reads the dry_run query parameter (true, false, 1, 0; absent is
// false).
func dryRun(c *gin.Context) (bool, error) {
	v, ok := c.GetQuery("dry_run")
	if !ok {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, apperr.Invalidf("invalid_dry_run", "dry_run must be true or false").WithDetails("field", "dry_run")
	}
	return b, nil
}

func (h *AdminHandlers) list(c *gin.Context) error {
	cursor, limit, err := httpx.Page(c)
	if err != nil {
		return err
	}
	page, err := h.svc.List(c.Request.Context(), c.Param("org"), Filter{
		Status: c.Query("status"), Email: c.Query("email"), Delivery: c.Query("delivery"), Cursor: cursor, Limit: limit,
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, page)
	return nil
}

func (h *AdminHandlers) get(c *gin.Context) error {
	inv, err := h.svc.Get(c.Request.Context(), c.Param("id"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, inv)
	return nil
}

func (h *AdminHandlers) revoke(c *gin.Context) error {
	inv, err := h.svc.Revoke(c.Request.Context(), c.Param("id"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, inv)
	return nil
}

func (h *AdminHandlers) resend(c *gin.Context) error {
	var req struct {
		SendEmail *bool `json:"send_email,omitempty"`
	}
	if err := httpx.DecodeOptionalJSON(c, &req); err != nil {
		return err
	}
	send := req.SendEmail == nil || *req.SendEmail
	if dry, err := dryRun(c); err != nil || dry {
		return h.dryRotation(c, err, false, send)
	}
	inv, err := h.svc.Resend(c.Request.Context(), c.Param("id"), send)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, inv)
	return nil
}

func (h *AdminHandlers) remind(c *gin.Context) error {
	var none struct{} // no fields: a body with any is refused
	if err := httpx.DecodeOptionalJSON(c, &none); err != nil {
		return err
	}
	if dry, err := dryRun(c); err != nil || dry {
		return h.dryRotation(c, err, true, true)
	}
	inv, err := h.svc.Remind(c.Request.Context(), c.Param("id"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, inv)
	return nil
}

// dryRotation answers resend?dry_run=true and remind?dry_run=true (or the
// dry_run parameter's error).
func (h *AdminHandlers) dryRotation(c *gin.Context, err error, remind, send bool) error {
	if err != nil {
		return err
	}
	d, err := h.preview.Rotation(c.Request.Context(), c.Param("id"), remind, send)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, d)
	return nil
}
