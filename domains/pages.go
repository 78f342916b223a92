package domains

import (
	"context"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/httpx"
	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/templates"
)

// JoinPath is where the welcome page's join buttons post.
const JoinPath = "/domains/join"

// Sessions finds the Kratos session of a browser's cookie header.
type Sessions interface {
	Whoami(ctx context.Context, cookie, sessionToken string) (*identity.Session, error)
}

// Pages are the public side of suggest domains: the suggestions the
// welcome page shows and the one-click join they post to.
type Pages struct {
	svc      *Service
	sessions Sessions
	render   httpx.PageRenderer
	csrf     *httpx.CSRF
	limit    func(ctx context.Context, identityID string) error
	base     string // the public base URL
}

// PagesOptions are the pages' dependencies.
type PagesOptions struct {
	Service  *Service
	Sessions Sessions
	Render   httpx.PageRenderer
	CSRF     *httpx.CSRF
	// Limit is the join quota per signed-in identity (nil: none).
	Limit         func(ctx context.Context, identityID string) error
	PublicBaseURL string
}

// NewPages returns the pages.
func NewPages(o PagesOptions) *Pages {
	p := &Pages{svc: o.Service, sessions: o.Sessions, render: o.Render, csrf: o.CSRF, limit: o.Limit,
		base: strings.TrimRight(o.PublicBaseURL, "/")}
	if p.limit == nil {
		p.limit = func(context.Context, string) error { return nil }
	}
	return p
}

// Register adds the join route to the public pages' group (their CSP
// headers and quotas).
func (p *Pages) Register(r gin.IRouter) {
	r.POST(JoinPath, p.join)
}

// csrfBinding ties a join form's token to the domain it joins through.
func csrfBinding(domain string) string { return "domain-join:" + domain }

// SuggestionsFor lists the welcome page's offers for a session: the
// addresses Kratos' whoami shows verified; joining asks Kratos again.
func (p *Pages) SuggestionsFor(c *gin.Context, s *identity.Session) ([]templates.WelcomeSuggestion, error) {
	var verified []string
	for addr, ok := range s.Addresses {
		if ok {
			verified = append(verified, addr)
		}
	}
	list, err := p.svc.Suggestions(c.Request.Context(), s.Identity.ID, verified)
	if err != nil {
		return nil, err
	}
	var out []templates.WelcomeSuggestion
	for _, sg := range list {
		out = append(out, templates.WelcomeSuggestion{
			Name: sg.Organization.Name, Domain: sg.Domain, Role: sg.Role,
			Action: JoinPath, CSRF: p.csrf.Token(c, csrfBinding(sg.Domain)),
		})
	}
	return out, nil
}

// join is the one click: CSRF-checked, signed in, and the verified address
// checked again through Kratos' admin API by the service.
func (p *Pages) join(c *gin.Context) {
	domain := c.PostForm("domain")
	if err := p.csrf.Check(c, csrfBinding(domain)); err != nil {
		p.failure(c, err)
		return
	}
	s, err := p.sessions.Whoami(c.Request.Context(), c.GetHeader("Cookie"), "")
	if err != nil {
		p.failure(c, err)
		return
	}
	if s == nil {
		c.Redirect(http.StatusSeeOther, p.base+"/welcome")
		return
	}
	if err := p.limit(c.Request.Context(), s.Identity.ID); err != nil {
		p.failure(c, err)
		return
	}
	if _, err := p.svc.Join(c.Request.Context(), s.Identity.ID, domain); err != nil {
		p.failure(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, p.base+"/welcome")
}

func (p *Pages) failure(c *gin.Context, err error) {
	status := httpx.PageStatus(err)
	t := func(key string, args ...any) string { return httpx.T(c, p.render, key, args...) }
	page := templates.MessagePage{Base: httpx.PageBase(c, p.render), LinkURL: p.base + "/welcome", LinkText: t("action.continue")}
	switch {
	case apperr.CodeOf(err) == "csrf_invalid":
		page.Title, page.Paragraphs = t("link.csrf.title"), []string{t("link.csrf.text")}
	case status >= 500:
		httpx.Logger(c).Error("domain join failed", "err", err)
		page.Title, page.Paragraphs = t("internal.title"), []string{t("internal.text")}
	default:
		if apperr.CodeOf(err) == "rate_limited" {
			httpx.SetRetryAfter(c, err)
		}
		page.Title, page.Paragraphs = t("domains.join_failed.title"), []string{t("domains.join_failed.text")}
	}
	httpx.RecordErrorCode(c, apperr.CodeOf(err))
	httpx.RenderPage(c, p.render, status, "message.html", page)
}
