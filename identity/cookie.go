package identity

import (
	"net/http"
	"strings"
)

// DefaultSessionCookie is the name of Kratos' session cookie unless
// Kratos' session.cookie.name says otherwise.
const DefaultSessionCookie = "ory_kratos_session"

// SessionCookie reduces a browser's Cookie header to Kratos' session
// cookie ("name=value"), or "" when it carries none. Everything else a
// browser sends along (the application's own cookies, analytics, CSRF
// nonces) is none of Kratos' business and is not forwarded.
func SessionCookie(header, name string) string {
	if header == "" {
		return ""
	}
	if name == "" {
		name = DefaultSessionCookie
	}
	cookies, err := http.ParseCookie(header)
	if err != nil {
		// A malformed header still may carry the session cookie: look for
		// it alone.
		for _, part := range strings.Split(header, ";") {
			if n, v, ok := strings.Cut(strings.TrimSpace(part), "="); ok && n == name && v != "" {
				return name + "=" + v
			}
		}
		return ""
	}
	for _, c := range cookies {
		if c.Name == name && c.Value != "" {
			return c.Name + "=" + c.Value
		}
	}
	return ""
}
