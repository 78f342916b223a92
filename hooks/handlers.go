package hooks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/outbox"
	"github.com/kratos-orgs/kratos-orgs/redisx"
	"github.com/kratos-orgs/kratos-orgs/templates"
)

// Body is what the jsonnet templates in config/kratos send; every hook
// uses the fields it needs.
type Body struct {
	FlowID              string         `json:"flow_id"`
	IdentityID          string         `json:"identity_id"`
	Traits              map[string]any `json:"traits"`
	VerifiableAddresses []Address      `json:"verifiable_addresses"`
	InviteToken         *string        `json:"invite_token"`
	OrganizationName    *string        `json:"organization_name"`
}

// Address is a Kratos verifiable address.
type Address struct {
	Value    string `json:"value"`
	Via      string `json:"via"`
	Verified bool   `json:"verified"`
	Status   string `json:"status"`
}

// Identities is what the hooks need from Kratos.
type Identities interface {
	FindByEmail(ctx context.Context, email string) (*identity.Identity, error)
	Delete(ctx context.Context, id string) error
}

// Config is the hooks' policy.
type Config struct {
	Secret                  string
	Mode                    string // open, invite_only or domains
	AllowedDomains          []string
	EmailTrait              string
	AcceptOnVerifiedAddress bool
	MaxBody                 int64
}

// Handlers serve the webhooks.
type Handlers struct {
	cfg      Config
	invites  *invites.Service
	index    *invites.AddressIndex
	orgs     *orgs.Store
	ids      Identities
	outbox   *outbox.Worker
	render   *templates.Renderer
	rdb      redis.UniversalClient
	ks       redisx.Keyspace
	log      *slog.Logger
	secret   [32]byte
	nilIdent string
}

// New wires the webhooks.
func New(cfg Config, inv *invites.Service, idx *invites.AddressIndex, o *orgs.Store, ids Identities, w *outbox.Worker,
	render *templates.Renderer, rdb redis.UniversalClient, ks redisx.Keyspace, log *slog.Logger) *Handlers {
	if cfg.MaxBody == 0 || cfg.MaxBody > 256<<10 {
		cfg.MaxBody = 256 << 10
	}
	return &Handlers{cfg: cfg, invites: inv, index: idx, orgs: o, ids: ids, outbox: w, render: render, rdb: rdb, ks: ks, log: log,
		secret: sha256.Sum256([]byte(cfg.Secret)), nilIdent: "00000000-0000-0000-0000-000000000000"}
}

// Register adds the routes (the admin listener's /hooks).
func (h *Handlers) Register(r gin.IRouter) {
	g := r.Group("/hooks", h.auth)
	g.POST("/registration/pre", h.registrationPre)
	g.POST("/registration/post", h.registrationPost)
	g.POST("/verification/after", h.verificationAfter)
	g.POST("/login/after", h.refreshClaims)
	g.POST("/settings/after", h.refreshClaims)
}

// auth accepts Kratos' api_key (the X-Kratos-Orgs-Secret header) or
// basic auth whose password is the secret, compared in constant time.
func (h *Handlers) auth(c *gin.Context) {
	got := c.GetHeader("X-Kratos-Orgs-Secret")
	if got == "" {
		_, got, _ = c.Request.BasicAuth()
	}
	sum := sha256.Sum256([]byte(got))
	if h.cfg.Secret == "" || got == "" || subtle.ConstantTimeCompare(sum[:], h.secret[:]) != 1 {
		refuse(c, http.StatusUnauthorized, "#/", MsgBadRequest, "unauthorized", h.render.HookMessage("bad_request", templates.HookData{Reason: "the webhook is not authenticated"}))
		return
	}
	c.Next()
}

// decode reads a hook body strictly; its failure is answered in Kratos'
// format (a 4xx, so Kratos shows a message and does not retry).
func (h *Handlers) decode(c *gin.Context) (Body, string, bool) {
	var b Body
	bad := func(status int, reason string) (Body, string, bool) {
		refuse(c, status, "#/", MsgBadRequest, "bad_request", h.render.HookMessage("bad_request", templates.HookData{Reason: reason}))
		return b, "", false
	}
	if mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type")); err != nil || mt != "application/json" {
		return bad(http.StatusUnsupportedMediaType, "the webhook body must be JSON")
	}
	raw, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, h.cfg.MaxBody))
	if err != nil {
		return bad(http.StatusRequestEntityTooLarge, "the webhook body is too large")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil || dec.More() {
		return bad(http.StatusBadRequest, "the webhook body does not match the jsonnet template kratos-orgs expects")
	}
	// The address, when the traits carry a valid one ("" otherwise).
	addr, _ := identity.Trait(b.Traits, h.cfg.EmailTrait).(string)
	email, _ := invites.NormalizeEmail(addr)
	return b, email, true
}

// needEmail refuses a sign-up whose traits have no usable address.
func (h *Handlers) needEmail(c *gin.Context, email string) bool {
	if email == "" {
		refuse(c, http.StatusBadRequest, "#/", MsgBadRequest, "bad_request",
			h.render.HookMessage("bad_request", templates.HookData{Reason: "the email trait is missing or not an address"}))
		return false
	}
	return true
}

// unavailableStatus answers when Redis or Kratos is down: a 4xx even
// then, because Kratos retries a 5xx and then shows a generic error.
const unavailableStatus = http.StatusBadRequest

func (h *Handlers) unavailable(c *gin.Context, err error) {
	h.log.Error("webhook failed", "route", c.FullPath(), "err", err)
	refuse(c, unavailableStatus, "#/", MsgUnavailable, "unavailable", h.render.HookMessage("unavailable", templates.HookData{}))
}

// registrationPre decides whether a sign-up may happen, before Kratos
// stores the identity (response.parse: true). It costs one Redis round
// trip: the token when there is one, else the address' pending index.
func (h *Handlers) registrationPre(c *gin.Context) {
	b, email, ok := h.decode(c)
	if !ok || !h.needEmail(c, email) {
		return
	}
	ctx := c.Request.Context()
	if b.InviteToken != nil && *b.InviteToken != "" {
		h.preWithToken(c, b, email, *b.InviteToken)
		return
	}
	pending, err := h.index.PendingOrganizations(ctx, email)
	if err != nil {
		h.unavailable(c, err)
		return
	}
	if len(pending) == 0 {
		switch h.cfg.Mode {
		case "invite_only":
			data := templates.HookData{Email: email}
			refuseAll(c, http.StatusForbidden,
				instanceMessages{InstancePtr: h.emailPtr(), Messages: []message{msg(MsgNotInvited, "not_invited", h.render.HookMessage("not_invited", data))}},
				instanceMessages{InstancePtr: "#/", Messages: []message{msg(MsgInviteOnly, "invite_only", h.render.HookMessage("invite_only", data))}})
			return
		case "domains":
			domain := email[strings.LastIndexByte(email, '@')+1:]
			if !slices.Contains(h.cfg.AllowedDomains, domain) {
				refuse(c, http.StatusForbidden, h.emailPtr(), MsgDomainNotAllowed, "domain_not_allowed",
					h.render.HookMessage("domain_not_allowed", templates.HookData{Email: email, Domains: strings.Join(h.cfg.AllowedDomains, ", ")}))
				return
			}
		}
		noChange(c)
		return
	}
	// Invited: an inactive placeholder kratos-orgs created for the address
	// would make Kratos refuse the sign-up as a duplicate.
	if err := h.removePlaceholder(ctx, email); err != nil {
		h.unavailable(c, err)
		return
	}
	noChange(c)
}

func (h *Handlers) preWithToken(c *gin.Context, b Body, email, token string) {
	ctx := c.Request.Context()
	ptr := h.emailPtr()
	link, err := h.invites.Lookup(ctx, token)
	switch {
	case apperr.KindOf(err) == apperr.NotFound:
		refuse(c, http.StatusForbidden, "#/", MsgInvitationInvalid, "invitation_invalid", h.render.HookMessage("invitation_invalid", templates.HookData{Email: email}))
		return
	case err != nil:
		h.unavailable(c, err)
		return
	case !link.Live:
		refuse(c, http.StatusGone, "#/", MsgInvitationInvalid, "invitation_invalid", h.render.HookMessage("invitation_invalid", templates.HookData{Email: email}))
		return
	case link.Invitation.Email != email:
		refuse(c, http.StatusForbidden, ptr, MsgInvitationWrongAddress, "invitation_wrong_address", h.render.HookMessage("invitation_wrong_address", templates.HookData{Email: email}))
		return
	}
	if err := h.removePlaceholder(ctx, email); err != nil {
		h.unavailable(c, err)
		return
	}
	// The link proved the mailbox: no verification mail for this address.
	var change identityChange
	found := false
	for _, a := range b.VerifiableAddresses {
		if strings.EqualFold(a.Value, email) {
			a.Verified, a.Status, found = true, "completed", true
		}
		change.Identity.VerifiableAddresses = append(change.Identity.VerifiableAddresses, a)
	}
	if !found {
		change.Identity.VerifiableAddresses = append(change.Identity.VerifiableAddresses, Address{Value: email, Via: "email", Verified: true, Status: "completed"})
	}
	change.Identity.MetadataAdmin = map[string]any{identity.MarkerKey: map[string]any{"pending_invitation": link.Invitation.ID}}
	c.JSON(http.StatusOK, change)
}

// emailPtr points Kratos at the email field of the form.
func (h *Handlers) emailPtr() string {
	return "#/traits/" + strings.ReplaceAll(h.cfg.EmailTrait, ".", "/")
}

// removePlaceholder makes way for the person's own identity: Kratos
// refuses a second identity with the placeholder's address. The pending
// invitations survive, moved off the placeholder (invites TakeOver).
func (h *Handlers) removePlaceholder(ctx context.Context, email string) error {
	return h.invites.TakeOver(ctx, email)
}

// registrationPost runs after Kratos stored the identity (no parse): it
// accepts the invitation the token named and creates the organization the
// sign-up asked for. It always answers 2xx; work that fails is queued.
func (h *Handlers) registrationPost(c *gin.Context) {
	b, email, ok := h.decode(c)
	if !ok || !h.needEmail(c, email) {
		return
	}
	if b.IdentityID == "" || b.IdentityID == h.nilIdent {
		refuse(c, http.StatusBadRequest, "#/", MsgBadRequest, "bad_request", h.render.HookMessage("bad_request", templates.HookData{Reason: "the identity id is missing: is this hook configured as post-persist (no response.parse)?"}))
		return
	}
	// The person's identity is stored: new invitations may use it.
	if err := h.invites.EndTakeover(c.Request.Context(), email); err != nil {
		h.log.Warn("could not end a placeholder takeover; it ends with its lease", "err", err)
	}
	if err := h.afterRegistration(c.Request.Context(), b, email); err != nil {
		job := outbox.Job{Kind: "hook.registration", Ref: b.FlowID, Subject: b.IdentityID, Name: derefString(b.OrganizationName)}
		if b.InviteToken != nil {
			job.Sealed = h.invites.Seal(*b.InviteToken)
		}
		job.Email = email
		if qerr := h.outbox.Enqueue(context.WithoutCancel(c.Request.Context()), redisx.RandomShard(), job); qerr != nil {
			h.log.Error("registration webhook work lost: could neither do it nor queue it", "flow", b.FlowID, "err", errors.Join(err, qerr))
		} else {
			h.log.Warn("registration webhook work queued for retry", "flow", b.FlowID, "err", err)
		}
	}
	c.JSON(http.StatusOK, map[string]any{})
}

func derefString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// afterRegistration is idempotent: Kratos may deliver a hook twice, and a
// queued retry repeats it.
func (h *Handlers) afterRegistration(ctx context.Context, b Body, email string) error {
	var errs []error
	if b.InviteToken != nil && *b.InviteToken != "" {
		if _, err := h.invites.AcceptToken(ctx, *b.InviteToken, b.IdentityID); err != nil && apperr.KindOf(err) == apperr.Unavailable {
			errs = append(errs, err)
		} else if err != nil {
			h.log.Info("sign-up with an invitation token that no longer works", "flow", b.FlowID, "code", apperr.CodeOf(err))
		}
	}
	if name := strings.TrimSpace(derefString(b.OrganizationName)); name != "" {
		if err := h.createOrganization(ctx, b.FlowID, name, b.IdentityID, email); err != nil {
			errs = append(errs, err)
		}
	}
	if h.cfg.AcceptOnVerifiedAddress && verified(b.VerifiableAddresses, email) {
		if _, err := h.invites.AcceptVerifiedAddress(ctx, h.index, email, b.IdentityID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// createOrganization makes the organization a sign-up asked for, once per
// Kratos flow however often the hook is delivered.
func (h *Handlers) createOrganization(ctx context.Context, flowID, name, identityID, email string) error {
	name, err := orgs.CheckName(name)
	if err != nil {
		h.log.Info("sign-up asked for an organization with an invalid name", "flow", flowID, "err", err)
		return nil
	}
	key := h.ks.Global() + "signup-org:" + flowID
	first, err := h.rdb.SetNX(ctx, key, "creating", 7*24*time.Hour).Result()
	if err != nil {
		return err
	}
	if !first {
		return nil
	}
	o, err := h.orgs.Create(ctx, orgs.Organization{Name: name, Slug: orgs.Slugify(name), State: orgs.StateActive}, false,
		&orgs.Member{IdentityID: identityID, Email: email, Role: "owner"})
	if err != nil {
		h.rdb.Del(context.WithoutCancel(ctx), key) // let the retry create it
		return err
	}
	h.outbox.Wake()
	h.rdb.Set(ctx, key, o.ID, 7*24*time.Hour)
	return nil
}

func verified(addrs []Address, email string) bool {
	for _, a := range addrs {
		if strings.EqualFold(a.Value, email) && a.Verified {
			return true
		}
	}
	return false
}

// verificationAfter turns the pending invitations of every address Kratos
// now shows verified into memberships (accept.on_verified_address).
func (h *Handlers) verificationAfter(c *gin.Context) {
	b, _, ok := h.decode(c)
	if !ok {
		return
	}
	if h.cfg.AcceptOnVerifiedAddress && b.IdentityID != "" {
		for _, a := range b.VerifiableAddresses {
			if !a.Verified {
				continue
			}
			email, err := invites.NormalizeEmail(a.Value)
			if err != nil {
				continue
			}
			if _, err := h.invites.AcceptVerifiedAddress(c.Request.Context(), h.index, email, b.IdentityID); err != nil {
				h.queue(c, outbox.Job{Kind: "hook.verified", Email: email, Subject: b.IdentityID}, err)
			}
		}
	}
	c.JSON(http.StatusOK, map[string]any{})
}

// refreshClaims (login.after, settings.after) queues a refresh of the
// identity's membership claims. An email change does nothing to pending
// invitations: they stay bound to the address they were sent to.
func (h *Handlers) refreshClaims(c *gin.Context) {
	b, _, ok := h.decode(c)
	if !ok {
		return
	}
	if b.IdentityID != "" && b.IdentityID != h.nilIdent {
		if err := h.outbox.Enqueue(c.Request.Context(), redisx.RandomShard(), outbox.Job{Kind: "claims.sync", Subject: b.IdentityID}); err != nil {
			h.log.Warn("could not queue a claims refresh", "identity", b.IdentityID, "err", err)
		}
	}
	c.JSON(http.StatusOK, map[string]any{})
}

func (h *Handlers) queue(c *gin.Context, job outbox.Job, cause error) {
	if err := h.outbox.Enqueue(context.WithoutCancel(c.Request.Context()), redisx.RandomShard(), job); err != nil {
		h.log.Error("webhook work lost: could neither do it nor queue it", "kind", job.Kind, "err", errors.Join(cause, err))
	}
}

// RegisterJobs handles the work hooks queue when it failed inline.
func (h *Handlers) RegisterJobs(w *outbox.Worker) {
	w.Handle("hook.registration", func(ctx context.Context, job outbox.Job) error {
		b := Body{FlowID: job.Ref, IdentityID: job.Subject}
		if job.Name != "" {
			b.OrganizationName = &job.Name
		}
		if job.Sealed != "" {
			token, err := h.invites.Open(job.Sealed)
			if err != nil {
				return outbox.Permanent(err)
			}
			b.InviteToken = &token
		}
		return h.afterRegistration(ctx, b, job.Email)
	}, nil)
	w.Handle("hook.verified", func(ctx context.Context, job outbox.Job) error {
		_, err := h.invites.AcceptVerifiedAddress(ctx, h.index, job.Email, job.Subject)
		return err
	}, nil)
}
