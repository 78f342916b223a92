// Package kratosui is the small self-service UI kratos-orgs serves for
// Kratos (login, registration, settings, recovery, verification, errors)
// plus a welcome page. With it the invitation flows end in a real Kratos
// session without deploying a separate UI; a deployment that has its own UI
// points Kratos' ui_url settings there instead.
//
// Pages render the flow Kratos returns (its nodes become form fields); the
// forms post straight to Kratos, which owns CSRF and validation.
package kratosui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/httpx"
	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/templates"
)

// Kratos is what the pages need from Kratos' public API; every call goes
// through the identity adapter.
type Kratos interface {
	Whoami(ctx context.Context, cookie, sessionToken string) (*identity.Session, error)
	Flow(ctx context.Context, cookie, kind, id string, out any) (status int, err error)
	FlowError(ctx context.Context, cookie, id string, out any) (status int, err error)
	LogoutURL(ctx context.Context, cookie, returnTo string) (string, error)
	BrowserFlowURL(kind, returnTo string) string
}

// Memberships lists an identity's organizations by name and role.
type Memberships interface {
	OrganizationsOf(ctx context.Context, identityID string) ([]templates.WelcomeOrg, error)
}

// Suggestions lists the organizations a signed-in person may join with
// one click (package domains); the welcome page shows them.
type Suggestions interface {
	SuggestionsFor(c *gin.Context, s *identity.Session) ([]templates.WelcomeSuggestion, error)
}

// UI serves the pages.
type UI struct {
	kratos  Kratos
	base    string // kratos-orgs' public base URL
	render  httpx.PageRenderer
	members Memberships
	suggest Suggestions // may be nil
}

// WithSuggestions makes the welcome page offer organizations to join.
func (u *UI) WithSuggestions(s Suggestions) *UI {
	u.suggest = s
	return u
}

// New returns the UI.
func New(publicBaseURL string, render httpx.PageRenderer, k Kratos, m Memberships) *UI {
	return &UI{kratos: k, base: strings.TrimRight(publicBaseURL, "/"), render: render, members: m}
}

// flows are the Kratos flows the UI shows; each one's title is the
// message flow.<kind>.
var flows = map[string]bool{"login": true, "registration": true, "settings": true, "recovery": true, "verification": true}

// t is a message of the catalogue in the visitor's locale. Kratos' own
// texts (labels, its messages) come as Kratos sends them.
func (u *UI) t(c *gin.Context, key string, args ...any) string {
	return httpx.T(c, u.render, key, args...)
}

// Register adds the routes to the public router.
func (u *UI) Register(r gin.IRouter) {
	r.GET("/kratos/error", u.errorPage)
	r.GET("/kratos/:flow", u.flow)
	r.GET("/welcome", u.welcome)
	r.GET("/", func(c *gin.Context) { c.Redirect(http.StatusSeeOther, "/welcome") })
}

type flowJSON struct {
	ID       string `json:"id"`
	ReturnTo string `json:"return_to"`
	UI       struct {
		Action   string     `json:"action"`
		Method   string     `json:"method"`
		Nodes    []nodeJSON `json:"nodes"`
		Messages []msgJSON  `json:"messages"`
	} `json:"ui"`
}

type nodeJSON struct {
	Type       string `json:"type"`
	Group      string `json:"group"`
	Attributes struct {
		Name         string          `json:"name"`
		Type         string          `json:"type"`
		Value        json.RawMessage `json:"value"`
		Required     bool            `json:"required"`
		Disabled     bool            `json:"disabled"`
		Autocomplete string          `json:"autocomplete"`
		Text         *msgJSON        `json:"text"`
		Href         string          `json:"href"`
		Title        *msgJSON        `json:"title"`
	} `json:"attributes"`
	Messages []msgJSON `json:"messages"`
	Meta     struct {
		Label *msgJSON `json:"label"`
	} `json:"meta"`
}

type msgJSON struct {
	ID   int    `json:"id"`
	Text string `json:"text"`
	Type string `json:"type"`
}

func (u *UI) unavailable(c *gin.Context, err error) {
	httpx.Logger(c).Error("kratos public API failed", "err", err)
	httpx.RenderPage(c, u.render, http.StatusServiceUnavailable, "message.html", templates.MessagePage{
		Base: httpx.PageBase(c, u.render), Title: u.t(c, "flow.unavailable.title"),
		Paragraphs: []string{u.t(c, "flow.unavailable.text")},
	})
}

func (u *UI) flow(c *gin.Context) {
	kind := c.Param("flow")
	if !flows[kind] {
		httpx.NotFound(c)
		return
	}
	id := c.Query("flow")
	restart := u.kratos.BrowserFlowURL(kind, c.Query("return_to"))
	if id == "" {
		c.Redirect(http.StatusSeeOther, restart)
		return
	}
	var f flowJSON
	status, err := u.kratos.Flow(c.Request.Context(), c.GetHeader("Cookie"), kind, id, &f)
	switch {
	case err != nil || status >= 500:
		u.unavailable(c, fmt.Errorf("get %s flow: status %d: %v", kind, status, err))
		return
	case status != http.StatusOK:
		// Expired, unknown, or not this browser's flow: start a new one.
		c.Redirect(http.StatusSeeOther, restart)
		return
	}
	httpx.RenderPage(c, u.render, http.StatusOK, "kratos_flow.html", u.page(c, kind, u.t(c, "flow."+kind), f))
}

func (u *UI) page(c *gin.Context, kind, title string, f flowJSON) templates.FlowPage {
	p := templates.FlowPage{Base: httpx.PageBase(c, u.render), Title: title, Action: f.UI.Action, Method: f.UI.Method}
	recovered := u.t(c, "flow.recovered")
	for _, m := range f.UI.Messages {
		p.Messages = append(p.Messages, message(m, recovered))
	}
	var shared []templates.FlowNode
	groups := map[string][]templates.FlowNode{}
	var order []string
	for i, n := range f.UI.Nodes {
		fn, ok := node(i, n, u.t(c, "action.continue"), recovered)
		if !ok {
			continue
		}
		if n.Group == "default" {
			shared = append(shared, fn)
			continue
		}
		if _, seen := groups[n.Group]; !seen {
			order = append(order, n.Group)
		}
		groups[n.Group] = append(groups[n.Group], fn)
	}
	// One form per method, each with the shared nodes (CSRF token,
	// identifier), as Kratos' reference UI does.
	for _, g := range order {
		p.Forms = append(p.Forms, templates.FlowForm{Nodes: append(append([]templates.FlowNode{}, shared...), groups[g]...)})
	}
	if len(order) == 0 && len(shared) > 0 {
		p.Forms = append(p.Forms, templates.FlowForm{Nodes: shared})
	}
	switch kind {
	case "login":
		p.Links = []templates.FlowLink{{URL: "/kratos/recovery", Text: u.t(c, "flow.forgot_password")}}
	case "settings":
		if f.ReturnTo != "" {
			p.Links = []templates.FlowLink{{URL: f.ReturnTo, Text: u.t(c, "action.continue")}}
		}
	}
	return p
}

// message is a Kratos UI message; recovered replaces Kratos' greeting
// after a recovery.
func message(m msgJSON, recovered string) templates.FlowMessage {
	t := m.Type
	if t != "error" {
		t = "info"
	}
	text := m.Text
	if m.ID == 1060001 {
		// Kratos' "You successfully recovered your account" also greets a
		// person arriving from an invitation: say what matters to them.
		text = recovered
	}
	return templates.FlowMessage{Type: t, Text: text}
}

// node is a Kratos UI node as a form field; cont labels a submit button
// Kratos left without one.
func node(i int, n nodeJSON, cont, recovered string) (templates.FlowNode, bool) {
	a := n.Attributes
	fn := templates.FlowNode{ID: fmt.Sprint(i), Name: a.Name, Value: rawValue(a.Value), Required: a.Required, Disabled: a.Disabled, Autocomplete: a.Autocomplete}
	if n.Meta.Label != nil {
		fn.Label = n.Meta.Label.Text
	}
	for _, m := range n.Messages {
		fn.Messages = append(fn.Messages, message(m, recovered))
	}
	switch n.Type {
	case "input":
		switch a.Type {
		case "hidden":
			fn.Kind = "hidden"
		case "submit", "button":
			if a.Type == "button" {
				return fn, false // needs Kratos' scripts (passkeys); not offered here
			}
			fn.Kind = "submit"
			if fn.Label == "" {
				fn.Label = cont
			}
			fn.Secondary = n.Group == "code" || n.Group == "link"
		default:
			fn.Kind, fn.InputType = "input", a.Type
		}
	case "text":
		if a.Text == nil {
			return fn, false
		}
		fn.Kind, fn.Value = "text", a.Text.Text
	default:
		return fn, false // images and scripts (TOTP, WebAuthn) need more than this UI offers
	}
	return fn, true
}

func rawValue(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

func (u *UI) errorPage(c *gin.Context) {
	var e struct {
		Error struct {
			Message string `json:"message"`
			Reason  string `json:"reason"`
		} `json:"error"`
	}
	text := u.t(c, "flow.error.text")
	if id := c.Query("id"); id != "" {
		if status, err := u.kratos.FlowError(c.Request.Context(), c.GetHeader("Cookie"), id, &e); err == nil && status == http.StatusOK {
			text = strings.TrimSpace(e.Error.Reason + " " + e.Error.Message)
		}
	}
	httpx.RenderPage(c, u.render, http.StatusOK, "message.html", templates.MessagePage{
		Base: httpx.PageBase(c, u.render), Title: u.t(c, "flow.error.title"), Paragraphs: []string{text},
		LinkURL: "/welcome", LinkText: u.t(c, "action.start_again"),
	})
}

func (u *UI) welcome(c *gin.Context) {
	s, err := u.kratos.Whoami(c.Request.Context(), c.GetHeader("Cookie"), "")
	if err != nil {
		u.unavailable(c, err)
		return
	}
	if s == nil {
		c.Redirect(http.StatusSeeOther, u.kratos.BrowserFlowURL("login", u.base+"/welcome"))
		return
	}
	page := templates.WelcomePage{Base: httpx.PageBase(c, u.render), Name: s.Identity.Name, Email: s.Identity.Email}
	if page.Organizations, err = u.members.OrganizationsOf(c.Request.Context(), s.Identity.ID); err != nil {
		u.unavailable(c, err)
		return
	}
	if u.suggest != nil {
		if page.Suggestions, err = u.suggest.SuggestionsFor(c, s); err != nil {
			httpx.Logger(c).Warn("could not list suggested organizations", "err", err)
		}
	}
	// After signing out, the browser lands on this UI's start page.
	if logout, err := u.kratos.LogoutURL(c.Request.Context(), c.GetHeader("Cookie"), u.base+"/"); err == nil {
		page.LogoutURL = logout
	}
	httpx.RenderPage(c, u.render, http.StatusOK, "welcome.html", page)
}
