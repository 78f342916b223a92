package invites

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/httpx"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/templates"
)

// OrgPagePath is where an organization's admin page lives: OrgPagePath +
// the organization's id or slug. Like /welcome, it is not configurable.
const OrgPagePath = "/orgs/"

// orgPageSize is how many members, and how many invitations, one page shows.
const orgPageSize = 100

// invitationActions are the buttons of a pending invitation's row.
var invitationActions = []string{"resend", "remind", "revoke"}

// OrgPagesOptions wire the org admins' page.
type OrgPagesOptions struct {
	Invites *Service
	Orgs    *orgs.Service
	Render  httpx.PageRenderer
	CSRF    *httpx.CSRF
	// Session resolves the browser's Kratos session, as the /api does.
	Session httpx.CallerLookup
	// Quotas count a CSV upload's rows as the /api counts a bulk
	// request's (nil: no per-row quota).
	Quotas          RowQuotas
	PublicBaseURL   string
	KratosPublicURL string
}

// OrgPages serve the page where an organization's owners and admins see
// its members and pending invitations and act on them. Every action calls
// the same rules as the org admins' API (orgAdmin, orgs.Service.*As); the
// page only translates forms and errors.
type OrgPages struct {
	admin orgAdmin
	o     OrgPagesOptions
}

// NewOrgPages returns the pages.
func NewOrgPages(o OrgPagesOptions) *OrgPages {
	o.PublicBaseURL = strings.TrimRight(o.PublicBaseURL, "/")
	o.KratosPublicURL = strings.TrimRight(o.KratosPublicURL, "/")
	return &OrgPages{admin: orgAdmin{svc: o.Invites, orgs: o.Orgs}, o: o}
}

// Register adds the routes; quota runs once the caller is known.
func (p *OrgPages) Register(r gin.IRouter, quota gin.HandlerFunc) {
	base := OrgPagePath + ":org"
	r.GET(base, p.session, quota, p.show)
	r.POST(base+"/invitations", p.session, quota, p.invite)
	r.POST(base+"/invitations/upload", p.session, quota, p.upload)
	r.POST(base+"/invitations/:id/:action", p.session, quota, p.invitationAction)
	r.POST(base+"/members/:identity/:action", p.session, quota, p.memberAction)
}

// session resolves the browser's Kratos session (only Kratos' cookie goes
// to Kratos); without one, the browser is sent to Kratos' login and comes
// back to the page.
func (p *OrgPages) session(c *gin.Context) {
	who, err := p.o.Session(c.Request.Context(), c.GetHeader("Cookie"), "")
	if err != nil {
		p.message(c, httpx.PageStatus(err), p.t(c, "internal.title"), p.t(c, "internal.text"))
		httpx.Logger(c).Error("session lookup failed", "err", err)
		c.Abort()
		return
	}
	if who == nil {
		back := p.o.PublicBaseURL + p.pagePath(c)
		if c.Request.Method == http.MethodGet {
			back = p.o.PublicBaseURL + c.Request.URL.RequestURI()
		}
		c.Redirect(http.StatusSeeOther, p.o.KratosPublicURL+"/self-service/login/browser?return_to="+url.QueryEscape(back))
		c.Abort()
		return
	}
	httpx.SetCaller(c, who)
}

func (p *OrgPages) pagePath(c *gin.Context) string {
	return OrgPagePath + url.PathEscape(c.Param("org"))
}

// binding ties a form's CSRF token to the person and the organization.
func (p *OrgPages) binding(c *gin.Context) string {
	return "orgpage\x00" + httpx.CallerOf(c).IdentityID + "\x00" + c.Param("org")
}

func (p *OrgPages) t(c *gin.Context, key string, args ...any) string {
	return httpx.T(c, p.o.Render, key, args...)
}

func (p *OrgPages) message(c *gin.Context, status int, title, text string) {
	httpx.RenderPage(c, p.o.Render, status, "message.html", templates.MessagePage{
		Base: httpx.PageBase(c, p.o.Render), Title: title, Paragraphs: []string{text},
		LinkURL: "/welcome", LinkText: p.t(c, "action.continue"),
	})
}

// pageState is what an action carries back to the page it re-renders.
type pageState struct {
	Notice, Error           string
	InviteEmail, InviteRole string
	Upload                  string // the key of an upload whose results to show
}

var notices = []string{"invited", "resent", "reminded", "revoked", "role_changed", "removed"}

func (p *OrgPages) show(c *gin.Context) {
	var st pageState
	if n := c.Query("notice"); slices.Contains(notices, n) {
		st.Notice = p.t(c, "orgadmin.notice."+n)
	}
	if k := c.Query("upload"); uploadKeyPattern.MatchString(k) {
		st.Upload = k
	}
	p.page(c, http.StatusOK, st)
}

// page renders the organization's page for the caller, or the page that
// says why they may not see it.
func (p *OrgPages) page(c *gin.Context, status int, st pageState) {
	ctx, who := c.Request.Context(), httpx.CallerOf(c)
	o, me, err := p.admin.authorize(ctx, c.Param("org"), who.IdentityID)
	if err != nil {
		p.refuse(c, o, me, err)
		return
	}
	members, err := p.admin.orgs.Members(ctx, o.ID, c.Query("members"), orgPageSize)
	if err != nil {
		p.refuse(c, o, me, err)
		return
	}
	pending, err := p.admin.svc.List(ctx, o.ID, Filter{Status: string(Pending), Cursor: c.Query("invitations"), Limit: orgPageSize})
	if err != nil {
		p.refuse(c, o, me, err)
		return
	}
	roles := p.admin.orgs.Roles()
	if st.InviteRole == "" {
		st.InviteRole = orgs.DefaultRole
	}
	view := templates.OrgAdminPage{
		Base: httpx.PageBase(c, p.o.Render), Organization: o.Name, YourRole: me.Role, Path: p.pagePath(c),
		CSRF: p.o.CSRF.Token(c, p.binding(c)), Notice: st.Notice, Error: st.Error, Roles: roles.Within(me.Role),
		InvitationActions: invitationActions, InviteEmail: st.InviteEmail, InviteRole: st.InviteRole,
		UploadKey: newUploadKey(), MaxRows: MaxBulkRows, CSVColumns: strings.Join(CSVColumns, ", "),
	}
	if st.Upload != "" {
		if view.Upload, err = p.uploadResults(c, o.ID, st.Upload, &view); err != nil {
			p.refuse(c, o, me, err)
			return
		}
	}
	for _, m := range members.Items {
		you := m.IdentityID == who.IdentityID
		view.Members = append(view.Members, templates.OrgMemberView{IdentityID: m.IdentityID, Email: m.Email, Role: m.Role,
			JoinedAt: m.JoinedAt, You: you, CanManage: !you && roles.AtLeast(me.Role, m.Role)})
	}
	for _, inv := range pending.Items {
		view.Invitations = append(view.Invitations, templates.OrgInvitationView{ID: inv.ID, Email: inv.Email, Role: inv.Role,
			Status: string(inv.Status), ExpiresAt: inv.ExpiresAt, RemindedAt: inv.RemindedAt,
			CanManage: roles.AtLeast(me.Role, inv.Role), Delivery: p.delivery(c, inv.Delivery)})
	}
	view.MoreMembers = p.more(c, "members", members.NextCursor)
	view.MoreInvitations = p.more(c, "invitations", pending.NextCursor)
	httpx.RenderPage(c, p.o.Render, status, "orgadmin.html", view)
}

// more links the next page of one of the two lists ("" when there is none).
func (p *OrgPages) more(c *gin.Context, list, cursor string) string {
	if cursor == "" {
		return ""
	}
	return p.pagePath(c) + "?" + url.Values{list: {cursor}}.Encode()
}

// deliveryStates are the delivery states the page has words for; another
// (a provider's new one) is shown as it is.
var deliveryStates = []string{DeliveryQueued, DeliverySent, DeliveryFailed, DeliverySkipped,
	"delivered", "delivery_delayed", "bounced", "complained"}

// delivery is an invitation mail's state for the page (nil: unknown).
func (p *OrgPages) delivery(c *gin.Context, d Delivery) *templates.DeliveryView {
	if d.Status == "" {
		return nil
	}
	label := d.Status
	if slices.Contains(deliveryStates, d.Status) {
		label = p.t(c, "orgadmin.delivery."+d.Status)
	}
	return &templates.DeliveryView{Status: d.Status, Label: label, Reason: d.Reason, At: d.UpdatedAt}
}

// refuse explains why the caller cannot see or act on the organization.
func (p *OrgPages) refuse(c *gin.Context, o orgs.Organization, me orgs.Member, err error) {
	switch apperr.CodeOf(err) {
	case "role_too_low":
		p.message(c, http.StatusForbidden, p.t(c, "orgadmin.forbidden.title", o.Name), p.t(c, "orgadmin.forbidden.text", me.Role))
	case "organization_not_found":
		p.message(c, http.StatusNotFound, p.t(c, "orgadmin.not_found.title"), p.t(c, "orgadmin.not_found.text"))
	case "csrf_invalid":
		p.message(c, http.StatusForbidden, p.t(c, "link.failed.title"), p.t(c, "orgadmin.csrf"))
	default:
		status := httpx.PageStatus(err)
		if status >= 500 {
			httpx.Logger(c).Error("org admin page failed", "err", err)
			p.message(c, status, p.t(c, "internal.title"), p.t(c, "internal.text"))
			return
		}
		httpx.SetRetryAfter(c, err)
		p.message(c, status, p.t(c, "link.failed.title"), p.t(c, "orgadmin.failed", sentence(err)))
	}
}

// sentence is a domain error's message as a sentence (the domain's
// messages are English).
func sentence(err error) string {
	e, ok := apperr.As(err)
	if !ok {
		return ""
	}
	return asSentence(e.Message)
}

// asSentence capitalizes a domain message and ends it with a full stop;
// a message that starts with an address keeps it as it is.
func asSentence(msg string) string {
	if msg == "" {
		return ""
	}
	if first, _, _ := strings.Cut(msg, " "); strings.Contains(first, "@") {
		return msg + "."
	}
	return strings.ToUpper(msg[:1]) + msg[1:] + "."
}
