package invites

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/httpx"
	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/templates"
)

// PagesConfig locates the pages.
type PagesConfig struct {
	AcceptPath      string // e.g. /invitations/accept/
	ActivatePath    string // e.g. /register/activate/ (empty: registration off)
	RegisterPath    string
	PublicBaseURL   string
	KratosPublicURL string
}

// Pages serve the invitation links and the registration form.
type Pages struct {
	acc    *Acceptor
	reg    *Registrar
	render httpx.PageRenderer
	csrf   *httpx.CSRF
	cfg    PagesConfig
}

// NewPages wires the pages; reg may be nil (registration disabled).
func NewPages(acc *Acceptor, reg *Registrar, render httpx.PageRenderer, csrf *httpx.CSRF, cfg PagesConfig) *Pages {
	cfg.PublicBaseURL = strings.TrimRight(cfg.PublicBaseURL, "/")
	cfg.KratosPublicURL = strings.TrimRight(cfg.KratosPublicURL, "/")
	return &Pages{acc: acc, reg: reg, render: render, csrf: csrf, cfg: cfg}
}

// Register adds the routes to the public router.
//
// A link path takes everything under it ("*token"): an empty token, extra
// segments or a truncated token get the same "not valid" page as a forged
// one, never the API's JSON 404.
func (p *Pages) Register(r gin.IRouter) {
	p.linkRoutes(r, p.cfg.AcceptPath)
	if p.reg != nil {
		p.linkRoutes(r, p.cfg.ActivatePath)
		r.GET(p.cfg.RegisterPath, p.showRegister)
		r.POST(p.cfg.RegisterPath, p.submitRegister)
	}
}

func (p *Pages) linkRoutes(r gin.IRouter, path string) {
	r.GET(path+"*token", p.show)
	r.POST(path+"*token", p.submit)
}

// linkToken is the token of a link path: what follows the configured
// prefix, or "" when that is not a single path segment.
func linkToken(c *gin.Context) string {
	token := strings.TrimPrefix(c.Param("token"), "/")
	if strings.Contains(token, "/") {
		return ""
	}
	return token
}

func (p *Pages) message(c *gin.Context, status int, title string, paragraphs []string, linkURL, linkText string) {
	httpx.RenderPage(c, p.render, status, "message.html", templates.MessagePage{
		Base: httpx.PageBase(c, p.render), Title: title, Paragraphs: paragraphs, LinkURL: linkURL, LinkText: linkText,
	})
}

// t is a message of the catalogue in the visitor's locale.
func (p *Pages) t(c *gin.Context, key string, args ...any) string {
	return httpx.T(c, p.render, key, args...)
}

func (p *Pages) loginURL(returnTo string) string {
	return p.cfg.KratosPublicURL + "/self-service/login/browser?return_to=" + url.QueryEscape(returnTo)
}

// failure explains an error as a page; the text never says whether an
// address has an account.
func (p *Pages) failure(c *gin.Context, err error) {
	status := httpx.PageStatus(err)
	if apperr.CodeOf(err) == "seat_limit" && c.GetHeader("Accept") == "application/json" {
		httpx.WriteError(c, err) // the page's script reads the structured error
		return
	}
	switch apperr.CodeOf(err) {
	case "link_not_found", "invitation_not_found":
		p.simple(c, http.StatusNotFound, "link.not_valid")
	case "link_used":
		p.message(c, http.StatusConflict, p.t(c, "link.used.title"), []string{p.t(c, "link.used.text")},
			p.loginURL(p.cfg.PublicBaseURL+"/welcome"), p.t(c, "action.sign_in"))
	case "csrf_invalid":
		p.simple(c, http.StatusForbidden, "link.csrf")
	case "body_too_large":
		p.simple(c, http.StatusRequestEntityTooLarge, "link.too_large")
	case "organization_deleted":
		p.simple(c, http.StatusGone, "link.org_deleted")
	case "invitation_grant_lapsed":
		p.message(c, http.StatusForbidden, p.t(c, "link.grant_lapsed.title"),
			[]string{p.t(c, "link.grant_lapsed.text", apperr.DetailString(err, "role")), p.t(c, "link.grant_lapsed.text2")}, "", "")
	case "seat_limit":
		p.message(c, http.StatusConflict, p.t(c, "link.seat_limit.title"),
			[]string{p.t(c, "link.seat_limit.text", p.members(c, detailInt(err, "limit"))), p.t(c, "link.seat_limit.text2")}, "", "")
	case "rate_limited":
		httpx.SetRetryAfter(c, err)
		p.message(c, http.StatusTooManyRequests, p.t(c, "rate_limited.title"), []string{p.t(c, "rate_limited.text", p.messageOf(c, err))}, "", "")
	case "existing_account":
		p.message(c, http.StatusForbidden, p.t(c, "link.existing_account.title"), []string{err.(*apperr.Error).Message}, "", "")
	default:
		if status >= 500 {
			httpx.Logger(c).Error("acceptance failed", "err", err)
			p.message(c, status, p.t(c, "internal.title"), []string{p.t(c, "link.internal.text")}, c.Request.URL.Path, p.t(c, "action.try_again"))
			return
		}
		p.message(c, status, p.t(c, "link.failed.title"), []string{p.messageOf(c, err)}, "", "")
	}
}

// members spells a number of members in the page's language.
func (p *Pages) members(c *gin.Context, n int64) string {
	if n == 1 {
		return p.t(c, "seats.one")
	}
	return p.t(c, "seats.many", n)
}

// detailInt reads an integer detail of a domain error (0 if absent).
func detailInt(err error, key string) int64 {
	if e, ok := apperr.As(err); ok {
		n, _ := e.Details[key].(int64)
		return n
	}
	return 0
}

// simple writes the message page of key.title and key.text.
func (p *Pages) simple(c *gin.Context, status int, key string) {
	p.message(c, status, p.t(c, key+".title"), []string{p.t(c, key+".text")}, "", "")
}

// messageOf is an error's message as a sentence. The domain's messages are
// English; only the fallback is translated.
func (p *Pages) messageOf(c *gin.Context, err error) string {
	if e, ok := apperr.As(err); ok {
		return strings.ToUpper(e.Message[:1]) + e.Message[1:] + "."
	}
	return p.t(c, "error.generic")
}

// dead explains a link that no longer works.
func (p *Pages) dead(c *gin.Context, link Link) {
	inv := link.Invitation
	who := p.t(c, "dead.inviter_unknown")
	if inv.Inviter != nil && inv.Inviter.Name != "" {
		who = inv.Inviter.Name
	}
	what := linkKind(inv)
	switch {
	case inv.Status == Accepted:
		p.message(c, http.StatusGone, p.t(c, "dead.accepted."+what),
			[]string{p.t(c, "dead.accepted.text")}, p.loginURL(p.acc.successURL(inv)), p.t(c, "action.sign_in"))
	case inv.Status == Revoked:
		p.message(c, http.StatusGone, p.t(c, "dead.revoked."+what), []string{p.t(c, "dead.revoked.text."+what, who)}, "", "")
	case inv.Status == Expired:
		p.message(c, http.StatusGone, p.t(c, "dead.expired."+what), []string{p.t(c, "dead.expired.text."+what, who)}, "", "")
	case inv.claimed:
		p.message(c, http.StatusConflict, p.t(c, "dead.claimed."+what), []string{p.t(c, "dead.claimed.text")}, "", "")
	default:
		p.message(c, http.StatusGone, p.t(c, "dead.replaced.title"), []string{p.t(c, "dead.replaced."+what)}, "", "")
	}
}

// linkKind names what a link is in the message keys: "invitation", or
// "activation" for a registration's link.
func linkKind(inv Invitation) string {
	if inv.kind == "registration" {
		return "activation"
	}
	return "invitation"
}

// liveLink resolves the link of the request; false means a page saying
// why it does not work was written.
func (p *Pages) liveLink(c *gin.Context) (string, Link, bool) {
	token := linkToken(c)
	if token == "" {
		p.failure(c, errLinkNotFound())
		return "", Link{}, false
	}
	link, err := p.acc.Lookup(c.Request.Context(), token)
	if err != nil {
		p.failure(c, err)
		return "", link, false
	}
	if !link.Live {
		p.dead(c, link)
		return "", link, false
	}
	return token, link, true
}

func (p *Pages) show(c *gin.Context) {
	if p.isResume(c) {
		p.resume(c)
		return
	}
	_, link, ok := p.liveLink(c)
	if !ok {
		return
	}
	newPerson, s, _, ok := p.visitor(c, link, false)
	if !ok {
		return
	}
	if err := p.acc.CheckGrant(c.Request.Context(), link.Invitation); err != nil {
		p.failure(c, err) // said before the form is filled, not after
		return
	}
	if newPerson {
		p.acceptForm(c, link, Form{}, nil)
		return
	}
	p.joinForm(c, link, s, "")
}

// visitor applies the session rule (CheckVisitor) to whoever opened or
// posted the link. It reports whether the invitation is for a person new
// to Kratos and the visitor's session; false for ok means a page (the
// wrong-session notice, Kratos' login, a failure) was written instead.
//
// read is false for the page's GET, which decides from Redis alone
// (Acceptor.newPersonKnown: no Kratos call but the session's, and that
// only with a cookie), and true for the POST, which reads the placeholder
// from Kratos: placeholder is that read (nil when it names none), which
// the acceptance activates without reading it again.
func (p *Pages) visitor(c *gin.Context, link Link, read bool) (newPerson bool, s *identity.Session, placeholder *identity.Identity, ok bool) {
	ctx := c.Request.Context()
	s, err := p.acc.Whoami(ctx, c.GetHeader("Cookie"), "")
	if err == nil && read {
		placeholder, newPerson, err = p.acc.newPersonRead(ctx, link.Invitation)
	} else if err == nil {
		newPerson, err = p.acc.newPersonKnown(ctx, link.Invitation, s)
	}
	if err != nil {
		p.failure(c, err)
		return false, nil, nil, false
	}
	switch err := CheckVisitor(link.Invitation, newPerson, s); {
	case errors.Is(err, ErrNoSession) && p.endedMeanwhile(c, link):
		return false, nil, nil, false
	case errors.Is(err, ErrNoSession):
		c.Redirect(http.StatusSeeOther, p.loginURL(p.returnHere(c)))
		return false, nil, nil, false
	case err != nil:
		p.wrongSession(c, err, s, link)
		return false, nil, nil, false
	}
	return newPerson, s, placeholder, true
}

// endedMeanwhile looks the link up again before a visitor is sent to sign
// in: a placeholder becomes an active identity when someone else accepts
// the link at the same moment, and the loser of that race must be told the
// link is used, not asked to sign in. It reports whether it wrote that page.
func (p *Pages) endedMeanwhile(c *gin.Context, link Link) bool {
	if !link.Invitation.identityCreated {
		return false
	}
	fresh, err := p.acc.Lookup(c.Request.Context(), linkToken(c))
	if err != nil || fresh.Live {
		return false
	}
	p.dead(c, fresh)
	return true
}

// wrongSession explains why the visitor's session cannot accept. Signed in
// as someone else, the page names both addresses and offers Kratos' logout
// returning to this same link, or to cancel; nothing is accepted, and the
// invitation stays pending.
func (p *Pages) wrongSession(c *gin.Context, err error, s *identity.Session, link Link) {
	if errors.Is(err, ErrUnverified) {
		p.message(c, http.StatusForbidden, p.t(c, "session.unverified.title"), []string{p.t(c, "session.unverified.text")},
			p.cfg.KratosPublicURL+"/self-service/verification/browser?return_to="+url.QueryEscape(p.returnHere(c)), p.t(c, "action.verify"))
		return
	}
	logout, lerr := p.acc.LogoutURL(c.Request.Context(), c.GetHeader("Cookie"), p.returnHere(c))
	if lerr != nil {
		p.failure(c, lerr)
		return
	}
	what := linkKind(link.Invitation)
	httpx.RenderPage(c, p.render, http.StatusForbidden, "message.html", templates.MessagePage{
		Base:  httpx.PageBase(c, p.render),
		Title: p.t(c, "session.other."+what),
		Paragraphs: []string{
			p.t(c, "session.other.text."+what, s.Identity.Email, link.Invitation.Email),
			p.t(c, "session.other.text2."+what),
		},
		LinkURL: logout, LinkText: p.t(c, "action.sign_out_continue"),
		SecondaryURL: p.acc.Config().SuccessURL, SecondaryText: p.t(c, "action.cancel"),
	})
}

func (p *Pages) names(link Link) (org, inviter string) {
	org = link.Organization["name"]
	if link.Invitation.Inviter != nil {
		inviter = link.Invitation.Inviter.Name
	}
	return org, inviter
}

func (p *Pages) acceptForm(c *gin.Context, link Link, f Form, errs FieldErrors) {
	org, inviter := p.names(link)
	cfg := p.acc.Config()
	page := templates.AcceptPage{
		Base: httpx.PageBase(c, p.render), Organization: org, Inviter: inviter, Role: link.Invitation.Role,
		Email: link.Invitation.Email, Action: c.Request.URL.Path, CSRF: p.csrf.Token(c, link.Invitation.ID),
		PasswordMode: cfg.LoginMode == "password", PasswordMin: cfg.PasswordMinLength, KratosPublicURL: p.cfg.KratosPublicURL,
		PasswordError: errs["password"], Error: errs[""],
	}
	for _, field := range cfg.Fields {
		max := field.MaxLength
		if max == 0 {
			max = 200
		}
		page.Fields = append(page.Fields, templates.FieldView{
			Name: field.Trait, Label: field.Label, Value: f.Values[field.Trait], Error: errs[field.Trait],
			Required: field.Required, MaxLength: max, Autocomplete: autocomplete(field.Trait),
		})
	}
	status := http.StatusOK
	if len(errs) > 0 {
		status = http.StatusBadRequest
	}
	httpx.RenderPage(c, p.render, status, "accept.html", page)
}

func autocomplete(trait string) string {
	switch trait {
	case "name.first":
		return "given-name"
	case "name.last":
		return "family-name"
	case "name":
		return "name"
	}
	return "off"
}

func (p *Pages) joinForm(c *gin.Context, link Link, s *identity.Session, msg string) {
	org, inviter := p.names(link)
	httpx.RenderPage(c, p.render, http.StatusOK, "join.html", templates.JoinPage{
		Base: httpx.PageBase(c, p.render), Organization: org, Inviter: inviter, Role: link.Invitation.Role,
		Email: s.Identity.Email, Action: c.Request.URL.Path, CSRF: p.csrf.Token(c, link.Invitation.ID), Error: msg,
	})
}

func (p *Pages) submit(c *gin.Context) {
	token, link, ok := p.liveLink(c)
	if !ok {
		return
	}
	if err := p.csrf.Check(c, link.Invitation.ID); err != nil {
		p.failure(c, err)
		return
	}
	// The rule runs again on POST: a form posted from a page opened before
	// another person signed in is refused too.
	newPerson, s, placeholder, ok := p.visitor(c, link, true)
	if !ok {
		return
	}
	if newPerson {
		p.submitNew(c, token, link, s, placeholder)
		return
	}
	h, err := p.acc.Join(c.Request.Context(), token, link, s)
	if err != nil {
		if errors.Is(err, ErrWrongAccount) || errors.Is(err, ErrUnverified) {
			p.wrongSession(c, err, s, link)
			return
		}
		p.failure(c, err)
		return
	}
	org := h.Organization["name"]
	if h.AlreadyMember {
		p.message(c, http.StatusOK, p.t(c, "join.already_member.title", org),
			[]string{p.t(c, "join.already_member.text")}, h.ReturnTo, p.t(c, "action.continue"))
		return
	}
	c.Redirect(http.StatusSeeOther, h.RedirectTo)
}

func (p *Pages) submitNew(c *gin.Context, token string, link Link, s *identity.Session, placeholder *identity.Identity) {
	f := Form{Values: map[string]string{}, Password: c.PostForm("password"), Password2: c.PostForm("password2"), placeholder: placeholder}
	for _, field := range p.acc.Config().Fields {
		f.Values[field.Trait] = c.PostForm(field.Trait)
	}
	h, err := p.acc.AcceptNew(c.Request.Context(), token, link, s, f)
	var fe FieldErrors
	if errors.As(err, &fe) {
		p.acceptForm(c, link, f, fe)
		return
	}
	if errors.Is(err, ErrWrongAccount) {
		p.wrongSession(c, err, s, link)
		return
	}
	if err != nil {
		p.failure(c, err)
		return
	}
	if h.Login && c.GetHeader("Accept") == "application/json" {
		// The page's script signs in with the password it still holds.
		c.JSON(http.StatusOK, gin.H{"username": h.Username, "return_to": h.ReturnTo, "login_url": h.RedirectTo})
		return
	}
	c.Redirect(http.StatusSeeOther, h.RedirectTo)
}

func (p *Pages) registerForm(c *gin.Context, status int, page templates.RegisterPage) {
	page.Base = httpx.PageBase(c, p.render)
	page.Action = p.cfg.RegisterPath
	page.CSRF = p.csrf.Token(c, "register")
	httpx.RenderPage(c, p.render, status, "register.html", page)
}

func (p *Pages) showRegister(c *gin.Context) {
	p.registerForm(c, http.StatusOK, templates.RegisterPage{})
}

func (p *Pages) submitRegister(c *gin.Context) {
	if err := p.csrf.Check(c, "register"); err != nil {
		p.failure(c, err)
		return
	}
	req := RegisterRequest{OrganizationName: c.PostForm("name"), Slug: strings.TrimSpace(c.PostForm("slug")), Email: c.PostForm("email"),
		Locale: httpx.Lang(c, p.render)}
	err := p.reg.Register(c.Request.Context(), req)
	if err != nil {
		e, ok := apperr.As(err)
		if ok && (e.Kind == apperr.Invalid || e.Code == "slug_taken") {
			field := map[string]string{"invalid_name": "name", "invalid_slug": "slug", "slug_taken": "slug", "invalid_email": "email"}[e.Code]
			page := templates.RegisterPage{Name: req.OrganizationName, Slug: req.Slug, Email: req.Email, Errors: map[string]string{}}
			if field == "" {
				page.Error = p.messageOf(c, err)
			} else {
				page.Errors[field] = p.messageOf(c, err)
			}
			p.registerForm(c, httpx.PageStatus(err), page)
			return
		}
		p.failure(c, err)
		return
	}
	p.message(c, http.StatusOK, p.t(c, "register.sent.title"), []string{p.t(c, "register.sent.text", strings.TrimSpace(req.Email))}, "", "")
}
