package orgs

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/httpx"
)

// AdminHandlers serve the organization part of the admin API.
type AdminHandlers struct {
	svc *Service
}

// NewAdminHandlers returns the handlers.
func NewAdminHandlers(svc *Service) *AdminHandlers { return &AdminHandlers{svc: svc} }

// Register adds the routes to an admin router group (already authenticated).
func (h *AdminHandlers) Register(r gin.IRouter) {
	r.POST("/organizations", httpx.H(h.create))
	r.GET("/organizations", httpx.H(h.list))
	r.GET("/organizations/:org", httpx.H(h.get))
	r.PATCH("/organizations/:org", httpx.H(h.update))
	r.DELETE("/organizations/:org", httpx.H(h.delete))
	r.GET("/organizations/:org/members", httpx.H(h.members))
	r.POST("/organizations/:org/members", httpx.H(h.addMember))
	r.GET("/organizations/:org/members/:identity", httpx.H(h.member))
	r.PATCH("/organizations/:org/members/:identity", httpx.H(h.setRole))
	r.DELETE("/organizations/:org/members/:identity", httpx.H(h.removeMember))
}

func (h *AdminHandlers) create(c *gin.Context) error {
	var req CreateRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	o, err := h.svc.Create(c.Request.Context(), req, StateActive)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, o)
	return nil
}

func (h *AdminHandlers) list(c *gin.Context) error {
	cursor, limit, err := httpx.Page(c)
	if err != nil {
		return err
	}
	page, err := h.svc.store.List(c.Request.Context(), cursor, limit)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, page)
	return nil
}

func (h *AdminHandlers) get(c *gin.Context) error {
	o, err := h.svc.store.Resolve(c.Request.Context(), c.Param("org"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, o)
	return nil
}

func (h *AdminHandlers) update(c *gin.Context) error {
	var req UpdateRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	o, err := h.svc.Update(c.Request.Context(), c.Param("org"), req)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, o)
	return nil
}

func (h *AdminHandlers) delete(c *gin.Context) error {
	n, err := h.svc.Delete(c.Request.Context(), c.Param("org"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"deleted": true, "revoked_invitations": n})
	return nil
}

func (h *AdminHandlers) members(c *gin.Context) error {
	cursor, limit, err := httpx.Page(c)
	if err != nil {
		return err
	}
	id, err := h.svc.store.ResolveID(c.Request.Context(), c.Param("org"))
	if err != nil {
		return err
	}
	page, err := h.svc.Members(c.Request.Context(), id, cursor, limit)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, page)
	return nil
}

func (h *AdminHandlers) addMember(c *gin.Context) error {
	var req AddMemberRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	m, added, err := h.svc.AddMember(c.Request.Context(), c.Param("org"), req)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if !added {
		status = http.StatusOK
	}
	c.JSON(status, m)
	return nil
}

func (h *AdminHandlers) member(c *gin.Context) error {
	id, err := h.svc.store.ResolveID(c.Request.Context(), c.Param("org"))
	if err != nil {
		return err
	}
	m, err := h.svc.store.Member(c.Request.Context(), id, c.Param("identity"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, m)
	return nil
}

func (h *AdminHandlers) setRole(c *gin.Context) error {
	var req struct {
		Role string `json:"role"`
	}
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	m, err := h.svc.SetRole(c.Request.Context(), c.Param("org"), c.Param("identity"), req.Role)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, m)
	return nil
}

func (h *AdminHandlers) removeMember(c *gin.Context) error {
	if err := h.svc.RemoveMember(c.Request.Context(), c.Param("org"), c.Param("identity")); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}
