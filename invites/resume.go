package invites

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// resumeCookie remembers, in the browser only, which invitation link sent
// the browser to Kratos (to sign in or to verify an address), so that
// Kratos' return_to can be a fixed URL without the token: Kratos keeps
// return_to in its flows, its database and its logs, and the link must not
// end up there.
const resumeCookie = "kratos_orgs_resume"

// resumePath is where Kratos sends the browser back; "resume" is never a
// token (tokens are 44 or more characters of base64url).
func (p *Pages) resumePath() string { return p.cfg.AcceptPath + "resume" }

// isResume reports a GET of the resume path, which the accept path's
// catch-all route receives.
func (p *Pages) isResume(c *gin.Context) bool {
	return c.Request.URL.Path == p.resumePath() && c.FullPath() == p.cfg.AcceptPath+"*token"
}

// returnHere stores the current link's path in the resume cookie and
// returns the URL, without the token, that Kratos should return to.
func (p *Pages) returnHere(c *gin.Context) string {
	http.SetCookie(c.Writer, &http.Cookie{
		Name: resumeCookie, Value: c.Request.URL.Path, Path: p.resumePath(), MaxAge: 3600,
		HttpOnly: true, Secure: strings.HasPrefix(p.cfg.PublicBaseURL, "https://"), SameSite: http.SameSiteLaxMode,
	})
	return p.cfg.PublicBaseURL + p.resumePath()
}

// resume sends a browser back from Kratos to the invitation link it left.
func (p *Pages) resume(c *gin.Context) {
	path, err := c.Cookie(resumeCookie)
	ok := err == nil && !strings.ContainsAny(path, "?#\\") && !strings.Contains(path, "//") &&
		(p.isLinkPath(path, p.cfg.AcceptPath) || (p.reg != nil && p.isLinkPath(path, p.cfg.ActivatePath)))
	if !ok {
		p.simple(c, http.StatusBadRequest, "link.resume")
		return
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: resumeCookie, Path: p.resumePath(), MaxAge: -1, HttpOnly: true})
	c.Redirect(http.StatusSeeOther, p.cfg.PublicBaseURL+path)
}

func (p *Pages) isLinkPath(path, prefix string) bool {
	token, ok := strings.CutPrefix(path, prefix)
	return ok && prefix != "" && token != "" && token != "resume" && !strings.Contains(token, "/")
}
