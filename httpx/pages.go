package httpx

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/templates"
)

// PageRenderer renders a named page template and the page's texts in the
// visitor's locale.
type PageRenderer interface {
	Page(w io.Writer, name string, data any) error
	// Negotiate picks the locale of an Accept-Language header.
	Negotiate(acceptLanguage string) string
	// T formats a message of the catalogue in a locale.
	T(locale, key string, args ...any) string
}

const (
	nonceKey  = "kratos-orgs.csp-nonce"
	localeKey = "kratos-orgs.locale"
)

// Lang is the request's page locale, negotiated once from Accept-Language.
func Lang(c *gin.Context, r PageRenderer) string {
	if l := c.GetString(localeKey); l != "" {
		return l
	}
	l := r.Negotiate(c.GetHeader("Accept-Language"))
	c.Set(localeKey, l)
	return l
}

// PageBase is what every page's data carries: the CSP nonce and the locale.
func PageBase(c *gin.Context, r PageRenderer) templates.Base {
	return templates.Base{Nonce: Nonce(c), Lang: Lang(c, r)}
}

// T is a message of the catalogue in the request's locale.
func T(c *gin.Context, r PageRenderer, key string, args ...any) string {
	return r.T(Lang(c, r), key, args...)
}

// PageHeaders sets the headers every HTML page gets: a strict CSP with a
// per-request nonce for the page's own style and script, no framing, no
// referrer (links carry tokens), no caching. formActions and connect list
// the extra origins forms may post to and scripts may call (Kratos).
func PageHeaders(formActions, connect []string) gin.HandlerFunc {
	return func(c *gin.Context) {
		var b [16]byte
		_, _ = rand.Read(b[:])
		nonce := base64.RawStdEncoding.EncodeToString(b[:])
		c.Set(nonceKey, nonce)
		h := c.Writer.Header()
		h.Set("Content-Security-Policy", strings.Join([]string{
			"default-src 'none'",
			"style-src 'nonce-" + nonce + "'",
			"script-src 'nonce-" + nonce + "'",
			"img-src 'self' data:",
			"connect-src 'self' " + strings.Join(connect, " "),
			"form-action 'self' " + strings.Join(formActions, " "),
			"frame-ancestors 'none'",
			"base-uri 'none'",
		}, "; "))
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		c.Next()
	}
}

// Nonce is the request's CSP nonce.
func Nonce(c *gin.Context) string { return c.GetString(nonceKey) }

// RenderPage renders a page, buffered so a template error becomes a clean 500.
func RenderPage(c *gin.Context, r PageRenderer, status int, name string, data any) {
	var buf bytes.Buffer
	if err := r.Page(&buf, name, data); err != nil {
		Logger(c).Error("page template failed", "page", name, "err", err)
		c.String(http.StatusInternalServerError, "internal error")
		return
	}
	// The language follows Accept-Language: caches must tell them apart.
	c.Header("Content-Language", Lang(c, r))
	c.Writer.Header().Add("Vary", "Accept-Language")
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// PageStatus maps an error to the status of the page that explains it.
func PageStatus(err error) int {
	if _, ok := apperr.As(err); !ok {
		return http.StatusInternalServerError
	}
	return Status(apperr.KindOf(err))
}
