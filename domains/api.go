package domains

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/httpx"
)

// APIHandlers serve the domain part of the org admins' API (/api,
// session-authenticated): the organization's owners list, claim, run the
// DNS check, change and release its domains (ManageRole).
type APIHandlers struct {
	svc *Service
}

// NewAPIHandlers returns the handlers.
func NewAPIHandlers(svc *Service) *APIHandlers { return &APIHandlers{svc: svc} }

// Register adds the routes to a session-authenticated group.
func (h *APIHandlers) Register(r gin.IRouter) {
	r.GET("/organizations/:org/domains", httpx.H(h.list))
	r.POST("/organizations/:org/domains", httpx.H(h.claim))
	r.PATCH("/organizations/:org/domains/:domain", httpx.H(h.update))
	r.POST("/organizations/:org/domains/:domain/verify", httpx.H(h.verify))
	r.DELETE("/organizations/:org/domains/:domain", httpx.H(h.release))
}

func caller(c *gin.Context) string { return httpx.CallerOf(c).IdentityID }

func (h *APIHandlers) list(c *gin.Context) error {
	ds, err := h.svc.ListAs(c.Request.Context(), c.Param("org"), caller(c))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"items": ds})
	return nil
}

func (h *APIHandlers) claim(c *gin.Context) error {
	var req ClaimRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	d, created, err := h.svc.ClaimAs(c.Request.Context(), c.Param("org"), caller(c), req)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	c.JSON(status, d)
	return nil
}

func (h *APIHandlers) update(c *gin.Context) error {
	var req UpdateRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	d, err := h.svc.UpdateAs(c.Request.Context(), c.Param("org"), caller(c), c.Param("domain"), req)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, d)
	return nil
}

func (h *APIHandlers) verify(c *gin.Context) error {
	var none struct{} // no fields: a body with any is refused
	if err := httpx.DecodeOptionalJSON(c, &none); err != nil {
		return err
	}
	d, err := h.svc.VerifyAs(c.Request.Context(), c.Param("org"), caller(c), c.Param("domain"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, d)
	return nil
}

func (h *APIHandlers) release(c *gin.Context) error {
	if err := h.svc.ReleaseAs(c.Request.Context(), c.Param("org"), caller(c), c.Param("domain")); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}
