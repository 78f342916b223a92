package hooks

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/templates"
)

// MsgInvalidName is Kratos' message id for an organization name that
// package textcheck refuses.
const MsgInvalidName = 4000111

// organizationNameAllowed refuses, before Kratos stores anything, a
// sign-up whose transient_payload.organization_name would not be accepted
// as an organization name (a link, control or bidi characters, too long):
// the person sees why on Kratos' form instead of getting an account without
// the organization they asked for. False means the refusal was written.
func (h *Handlers) organizationNameAllowed(c *gin.Context, b Body) bool {
	name := derefString(b.OrganizationName)
	if strings.TrimSpace(name) == "" {
		return true
	}
	_, err := orgs.CheckName(name)
	if err == nil {
		return true
	}
	reason := "it is not allowed"
	if e, ok := apperr.As(err); ok {
		reason = strings.TrimPrefix(e.Message, "name: ")
	}
	refuse(c, http.StatusBadRequest, "#/", MsgInvalidName, "invalid_name",
		h.render.HookMessage("invalid_name", templates.HookData{Reason: reason}))
	return false
}
