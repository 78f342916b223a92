package orgs

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/httpx"
)

// Authorize checks that the caller is a member of the organization with at
// least minRole. A non-member gets 404, as if the organization did not
// exist: membership of others is not disclosed.
func (s *Service) Authorize(ctx context.Context, orgRef, identityID, minRole string) (Organization, Member, error) {
	o, err := s.store.Resolve(ctx, orgRef)
	if err != nil {
		return o, Member{}, err
	}
	m, err := s.store.Member(ctx, o.ID, identityID)
	if apperr.CodeOf(err) == "member_not_found" {
		return o, m, errOrgNotFound(orgRef)
	}
	if err != nil {
		return o, m, err
	}
	if minRole != "" && !s.roles.AtLeast(m.Role, minRole) {
		return o, m, apperr.New(apperr.Forbidden, "role_too_low", "this needs the %s role or higher", minRole)
	}
	return o, m, nil
}

// CheckCeiling enforces that nobody grants, or acts on, a role above their own.
func (s *Service) CheckCeiling(callerRole, role string) error {
	return s.roles.Ceiling(callerRole, role)
}

// Members pages through an organization's members. Their cursors are
// Kratos identity ids: anything else is 400 invalid_cursor.
func (s *Service) Members(ctx context.Context, org, cursor string, limit int) (Page[Member], error) {
	if err := CheckCursor(cursor, uuidPattern.MatchString); err != nil {
		return Page[Member]{}, err
	}
	return s.store.Members(ctx, org, cursor, limit)
}

// Membership is an organization as one of its members sees it.
type Membership struct {
	Organization
	Role string `json:"role"`
}

// APIHandlers serve the organization part of the session-authenticated
// API that org admins use from their own product.
type APIHandlers struct {
	svc   *Service
	index *IdentityIndex
}

// NewAPIHandlers returns the handlers.
func NewAPIHandlers(svc *Service, index *IdentityIndex) *APIHandlers {
	return &APIHandlers{svc: svc, index: index}
}

// Register adds the routes to a session-authenticated group.
func (h *APIHandlers) Register(r gin.IRouter) {
	r.GET("/organizations", httpx.H(h.mine))
	r.GET("/organizations/:org", httpx.H(h.get))
	r.GET("/organizations/:org/members", httpx.H(h.members))
	r.PATCH("/organizations/:org/members/:identity", httpx.H(h.setRole))
	r.DELETE("/organizations/:org/members/:identity", httpx.H(h.remove))
}

func (h *APIHandlers) mine(c *gin.Context) error {
	who := httpx.CallerOf(c)
	roles, err := h.index.Organizations(c.Request.Context(), who.IdentityID)
	if err != nil {
		return err
	}
	out := make([]Membership, 0, len(roles))
	for id := range roles {
		// The index is a fast hint; the organization's own record decides.
		o, m, err := h.svc.Authorize(c.Request.Context(), id, who.IdentityID, "")
		if err != nil {
			continue
		}
		out = append(out, Membership{Organization: o, Role: m.Role})
	}
	c.JSON(http.StatusOK, gin.H{"items": out, "total": len(out)})
	return nil
}

func (h *APIHandlers) get(c *gin.Context) error {
	o, m, err := h.svc.Authorize(c.Request.Context(), c.Param("org"), httpx.CallerOf(c).IdentityID, "")
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, Membership{Organization: o, Role: m.Role})
	return nil
}

func (h *APIHandlers) members(c *gin.Context) error {
	cursor, limit, err := httpx.Page(c)
	if err != nil {
		return err
	}
	o, _, err := h.svc.Authorize(c.Request.Context(), c.Param("org"), httpx.CallerOf(c).IdentityID, "")
	if err != nil {
		return err
	}
	page, err := h.svc.Members(c.Request.Context(), o.ID, cursor, limit)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, page)
	return nil
}

func (h *APIHandlers) setRole(c *gin.Context) error {
	var req struct {
		Role string `json:"role"`
	}
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	m, err := h.svc.SetRoleAs(c.Request.Context(), c.Param("org"), httpx.CallerOf(c).IdentityID, c.Param("identity"), req.Role)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, m)
	return nil
}

func (h *APIHandlers) remove(c *gin.Context) error {
	if err := h.svc.RemoveMemberAs(c.Request.Context(), c.Param("org"), httpx.CallerOf(c).IdentityID, c.Param("identity")); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}
