package httpx

import (
	"context"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// Caller is the person behind a session-authenticated request.
type Caller struct {
	IdentityID string
	Email      string
	Name       string
}

// CallerLookup resolves a browser's Cookie header or a session token to a
// caller, nil when there is no valid session.
type CallerLookup func(ctx context.Context, cookie, sessionToken string) (*Caller, error)

const callerKey = "kratos-orgs.caller"

// SessionAuth authenticates with the caller's Kratos session: the
// X-Session-Token header (apps, backends) or the browser's cookies. A
// cookie-authenticated request that changes something must come from one of
// allowedOrigins, so another site cannot ride on the cookie.
func SessionAuth(lookup CallerLookup, allowedOrigins []string) gin.HandlerFunc {
	return func(c *gin.Context) {
		token := c.GetHeader("X-Session-Token")
		cookie := ""
		if token == "" {
			cookie = c.GetHeader("Cookie")
			if c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead && !originAllowed(c.GetHeader("Origin"), allowedOrigins) {
				WriteError(c, apperr.New(apperr.Forbidden, "origin_not_allowed", "cookie-authenticated changes must come from an allowed origin"))
				return
			}
		}
		who, err := lookup(c.Request.Context(), cookie, token)
		if err != nil {
			WriteError(c, err)
			return
		}
		if who == nil {
			WriteError(c, apperr.New(apperr.Unauthorized, "no_session", "sign in first: no valid Kratos session"))
			return
		}
		c.Set(callerKey, who)
		c.Next()
	}
}

func originAllowed(origin string, allowed []string) bool {
	if origin == "" {
		return false
	}
	for _, a := range allowed {
		if strings.EqualFold(origin, a) {
			return true
		}
	}
	return false
}

// CallerOf returns the authenticated caller.
func CallerOf(c *gin.Context) *Caller {
	v, _ := c.Get(callerKey)
	who, _ := v.(*Caller)
	return who
}

// SetCaller records the authenticated caller for handlers that resolve the
// session themselves (the pages, which redirect to sign in instead of
// answering 401).
func SetCaller(c *gin.Context, who *Caller) { c.Set(callerKey, who) }
