package httpx

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// CSRF protects the pages' forms. A form's token is an HMAC of a random
// nonce held in a SameSite=Strict cookie and of what the form acts on (an
// invitation), so a token is useless without the browser's cookie and
// useless for any other invitation.
type CSRF struct {
	key    []byte
	secure bool
	origin string // the public origin, e.g. https://orgs.example.com
}

// CSRFCookie is the cookie holding the nonce.
const CSRFCookie = "kratos_orgs_csrf"

// CSRFField is the form field carrying the token.
const CSRFField = "csrf_token"

// NewCSRF derives its key from a secret; publicBaseURL decides the cookie's
// Secure flag and the accepted Origin.
func NewCSRF(secret, publicBaseURL string) *CSRF {
	key := sha256.Sum256([]byte("kratos-orgs csrf\x00" + secret))
	u, _ := url.Parse(publicBaseURL)
	origin := ""
	if u != nil {
		origin = u.Scheme + "://" + u.Host
	}
	return &CSRF{key: key[:], secure: u != nil && u.Scheme == "https", origin: origin}
}

func (x *CSRF) mac(nonce, binding string) string {
	m := hmac.New(sha256.New, x.key)
	m.Write([]byte(nonce))
	m.Write([]byte{0})
	m.Write([]byte(binding))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Token returns the token for a form acting on binding, setting the nonce
// cookie when the browser has none.
func (x *CSRF) Token(c *gin.Context, binding string) string {
	nonce, err := c.Cookie(CSRFCookie)
	if err != nil || len(nonce) < 16 || len(nonce) > 64 {
		var b [24]byte
		_, _ = rand.Read(b[:])
		nonce = base64.RawURLEncoding.EncodeToString(b[:])
		http.SetCookie(c.Writer, &http.Cookie{
			Name: CSRFCookie, Value: nonce, Path: "/", HttpOnly: true,
			Secure: x.secure, SameSite: http.SameSiteStrictMode,
		})
	}
	return x.mac(nonce, binding)
}

// Check verifies a submitted form's token and, when the browser sent one,
// its Origin.
func (x *CSRF) Check(c *gin.Context, binding string) error {
	if err := c.Request.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge(mbe.Limit)
		}
		return apperr.Invalidf("invalid_form", "the form could not be read")
	}
	bad := apperr.New(apperr.Forbidden, "csrf_invalid", "the form expired or did not come from this site; reload the page and try again")
	if o := c.GetHeader("Origin"); o != "" && o != "null" && !strings.EqualFold(o, x.origin) {
		return bad
	}
	nonce, err := c.Cookie(CSRFCookie)
	if err != nil || nonce == "" {
		return bad
	}
	got := c.PostForm(CSRFField)
	if got == "" || !hmac.Equal([]byte(got), []byte(x.mac(nonce, binding))) {
		return bad
	}
	return nil
}
