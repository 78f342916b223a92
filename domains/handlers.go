package domains

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/httpx"
)

// AdminHandlers serve the domain part of the admin API.
type AdminHandlers struct {
	svc *Service
}

// NewAdminHandlers returns the handlers.
func NewAdminHandlers(svc *Service) *AdminHandlers { return &AdminHandlers{svc: svc} }

// Register adds the routes to an admin router group (already authenticated).
func (h *AdminHandlers) Register(r gin.IRouter) {
	r.POST("/organizations/:org/domains", httpx.H(h.claim))
	r.GET("/organizations/:org/domains", httpx.H(h.list))
	r.PATCH("/organizations/:org/domains/:domain", httpx.H(h.update))
	r.POST("/organizations/:org/domains/:domain/verify", httpx.H(h.verify))
	r.DELETE("/organizations/:org/domains/:domain", httpx.H(h.release))
}

func (h *AdminHandlers) claim(c *gin.Context) error {
	var req ClaimRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	d, created, err := h.svc.Claim(c.Request.Context(), c.Param("org"), req)
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

func (h *AdminHandlers) list(c *gin.Context) error {
	ds, err := h.svc.List(c.Request.Context(), c.Param("org"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"items": ds})
	return nil
}

func (h *AdminHandlers) update(c *gin.Context) error {
	var req UpdateRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	d, err := h.svc.Update(c.Request.Context(), c.Param("org"), c.Param("domain"), req)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, d)
	return nil
}

func (h *AdminHandlers) verify(c *gin.Context) error {
	d, err := h.svc.Verify(c.Request.Context(), c.Param("org"), c.Param("domain"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, d)
	return nil
}

func (h *AdminHandlers) release(c *gin.Context) error {
	if err := h.svc.Release(c.Request.Context(), c.Param("org"), c.Param("domain")); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}
