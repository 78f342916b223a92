package hooks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/httpx"
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

// Identities is what the hooks need from Kratos. Get re-reads the identity
// a webhook body names: bodies are claims, Kratos' admin API is the fact.
type Identities interface {
	Get(ctx context.Context, id string) (*identity.Identity, error)
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
	// ReplayWindow is how long a hook call is remembered (see replay.go),
	// and how old an identity a registration hook names may be.
	ReplayWindow time.Duration
	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
}

// Invitations is what the hooks need of the invitation backend.
type Invitations interface {
	Lookup(ctx context.Context, token string) (invites.Link, error)
	AcceptToken(ctx context.Context, token, identityID, email string) (invites.Invitation, error)
	AcceptVerifiedAddress(ctx context.Context, email, identityID string) ([]string, error)
	TakeOver(ctx context.Context, email string) error
	EndTakeover(ctx context.Context, email string) error
	// RememberAccount makes the address known: inviting it later costs
	// Kratos nothing (invites/known.go).
	RememberAccount(ctx context.Context, email, identityID string) error
	Seal(token string) string
	Open(sealed string) (string, error)
}

// Organizations creates the organization a sign-up asks for (orgs.Service,
// as the command line and the admin API do).
type Organizations interface {
	Create(ctx context.Context, r orgs.CreateRequest, state string) (orgs.Organization, error)
}

// SignupClaims makes a sign-up's organization once per Kratos flow
// (orgs.Store).
type SignupClaims interface {
	ClaimSignupOrganization(ctx context.Context, flowID string) (outcome, orgID string, err error)
	SetSignupOrganization(ctx context.Context, flowID, orgID string) error
	ReleaseSignupOrganization(ctx context.Context, flowID string) error
}

// Addresses tells the pre-persist hook what is known about an address
// (invites.AddressIndex).
type Addresses interface {
	PendingOrganizations(ctx context.Context, email string) ([]string, error)
	Invited(ctx context.Context, email string) (orgIDs []string, referenced bool, err error)
}

// Domains makes a person a member of the organizations whose verified
// auto_join domains hold an address Kratos shows verified (package
// domains). It is given the identity the hook re-read from Kratos.
type Domains interface {
	JoinVerified(ctx context.Context, who *identity.Identity) error
}

// Outbox queues work that failed for a retry.
type Outbox interface {
	Enqueue(ctx context.Context, shard int, job outbox.Job) error
}

// Messages renders the texts Kratos shows when a hook refuses.
type Messages interface {
	HookMessage(reason string, data templates.HookData) string
}

// Options are the webhooks' dependencies.
type Options struct {
	Config      Config
	Invitations Invitations   // invites.Service
	Addresses   Addresses     // invites.AddressIndex
	Orgs        Organizations // orgs.Service
	Signups     SignupClaims  // orgs.Store
	Identities  Identities
	Outbox      Outbox
	Messages    Messages
	Replays     ReplayStore // the replay records (replay.go): RedisReplayStore
	Domains     Domains     // may be nil: no verified-domain auto-join
	Log         *slog.Logger
}

// Handlers serve the webhooks.
type Handlers struct {
	cfg      Config
	invites  Invitations
	index    Addresses
	orgs     Organizations
	signups  SignupClaims
	ids      Identities
	outbox   Outbox
	render   Messages
	replays  ReplayStore
	domains  Domains
	log      *slog.Logger
	secret   [32]byte
	nilIdent string
}

// New wires the webhooks.
func New(o Options) *Handlers {
	cfg := o.Config
	if cfg.MaxBody == 0 || cfg.MaxBody > 256<<10 {
		cfg.MaxBody = 256 << 10
	}
	if cfg.ReplayWindow <= 0 {
		cfg.ReplayWindow = defaultReplayWindow
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Handlers{cfg: cfg, invites: o.Invitations, index: o.Addresses, orgs: o.Orgs, signups: o.Signups, ids: o.Identities,
		outbox: o.Outbox, render: o.Messages, replays: o.Replays, domains: o.Domains, log: o.Log,
		secret: sha256.Sum256([]byte(cfg.Secret)), nilIdent: "00000000-0000-0000-0000-000000000000"}
}

// Register adds the routes (the admin listener's /hooks).
func (h *Handlers) Register(r gin.IRouter) {
	g := r.Group("/hooks", h.auth)
	g.POST("/registration/pre", h.registrationPre)
	g.POST("/registration/post", h.registrationPost)
	g.POST("/verification/after", h.verificationAfter)
	g.POST("/login/after", h.refreshClaims(hookLogin))
	g.POST("/settings/after", h.refreshClaims(hookSettings))
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
// format (a 4xx, so Kratos shows a message and does not retry). The body
// is read into a recycled buffer: the pre-persist hook runs on every
// sign-up attempt.
func (h *Handlers) decode(c *gin.Context) (Body, string, bool) {
	buf := httpx.GetBodyBuffer()
	defer httpx.PutBodyBuffer(buf)
	b, email, ok := h.decodeInto(c, buf)
	return b, email, ok
}

// decodeRaw is decode that also returns the raw body (replay records).
func (h *Handlers) decodeRaw(c *gin.Context) (Body, []byte, string, bool) {
	var buf bytes.Buffer
	b, email, ok := h.decodeInto(c, &buf)
	return b, buf.Bytes(), email, ok
}

func (h *Handlers) decodeInto(c *gin.Context, buf *bytes.Buffer) (Body, string, bool) {
	var b Body
	bad := func(status int, reason string) (Body, string, bool) {
		refuse(c, status, "#/", MsgBadRequest, "bad_request", h.render.HookMessage("bad_request", templates.HookData{Reason: reason}))
		return b, "", false
	}
	if !httpx.IsJSON(c.GetHeader("Content-Type")) {
		return bad(http.StatusUnsupportedMediaType, "the webhook body must be JSON")
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, h.cfg.MaxBody)
	if err := httpx.ReadBody(buf, c.Request); err != nil {
		return bad(http.StatusRequestEntityTooLarge, "the webhook body is too large")
	}
	if err := httpx.DecodeStrict(buf.Bytes(), &b); err != nil {
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
	if !ok || !h.needEmail(c, email) || !h.organizationNameAllowed(c, b) {
		return
	}
	ctx := c.Request.Context()
	if b.InviteToken != nil && *b.InviteToken != "" {
		h.preWithToken(c, b, email, *b.InviteToken)
		return
	}
	pending, referenced, err := h.invited(ctx, email)
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
	}
	if len(pending) == 0 && !referenced {
		noChange(c)
		return
	}
	// Invited, or an invitation is being written this moment: an inactive
	// placeholder kratos-orgs created for the address would make Kratos
	// refuse the sign-up as a duplicate.
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

// invited reads what the pre-persist hook decides on, in one round trip.
// invite_only refuses whoever has no pending invitation, so it needs only
// the pending index; the other modes let a sign-up through and must also
// see an invitation being written this moment (its reference), whose
// placeholder would make Kratos refuse the address as a duplicate.
func (h *Handlers) invited(ctx context.Context, email string) (pending []string, referenced bool, err error) {
	if h.cfg.Mode == "invite_only" {
		pending, err = h.index.PendingOrganizations(ctx, email)
		return pending, false, err
	}
	return h.index.Invited(ctx, email)
}

// removePlaceholder makes way for the person's own identity: Kratos
// refuses a second identity with the placeholder's address. The pending
// invitations survive, moved off the placeholder (invites TakeOver).
func (h *Handlers) removePlaceholder(ctx context.Context, email string) error {
	return h.invites.TakeOver(ctx, email)
}

// Names of the recorded hooks (replay records, see replay.go).
const (
	hookRegistration = "registration.post"
	hookVerification = "verification.after"
	hookLogin        = "login.after"
	hookSettings     = "settings.after"
)

// registrationPost runs after Kratos stored the identity (no parse): it
// accepts the invitation the token named and creates the organization the
// sign-up asked for. The body only names the identity; what it claims
// about addresses and traits is ignored (see signup). It always answers
// 2xx; work that fails is queued.
func (h *Handlers) registrationPost(c *gin.Context) {
	b, raw, _, ok := h.decodeRaw(c)
	if !ok {
		return
	}
	if b.IdentityID == "" || b.IdentityID == h.nilIdent {
		refuse(c, http.StatusBadRequest, "#/", MsgBadRequest, "bad_request", h.render.HookMessage("bad_request", templates.HookData{Reason: "the identity id is missing: is this hook configured as post-persist (no response.parse)?"}))
		return
	}
	call, ok := h.begin(c, hookRegistration, b.FlowID, raw)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	su := signup{FlowID: b.FlowID, IdentityID: b.IdentityID, OrganizationName: derefString(b.OrganizationName), At: h.cfg.Now()}
	if b.InviteToken != nil {
		su.InviteToken = *b.InviteToken
	}
	if err := h.afterRegistration(ctx, su); err != nil {
		job := outbox.Job{Kind: "hook.registration", Ref: b.FlowID, Subject: b.IdentityID, Name: su.OrganizationName}
		if su.InviteToken != "" {
			job.Sealed = h.invites.Seal(su.InviteToken)
		}
		if qerr := h.outbox.Enqueue(context.WithoutCancel(ctx), redisx.RandomShard(), job); qerr != nil {
			h.log.Error("registration webhook work lost: could neither do it nor queue it", "flow", b.FlowID, "err", errors.Join(err, qerr))
			h.forget(ctx, call)
		} else {
			h.log.Warn("registration webhook work queued for retry", "flow", b.FlowID, "err", err)
		}
	}
	h.finish(c, call)
}

func derefString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// signup is the work of a registration webhook: what the body asked for,
// and when the hook was called.
type signup struct {
	FlowID, IdentityID, InviteToken, OrganizationName string
	At                                                time.Time
}

// afterRegistration re-reads the identity from Kratos and acts on Kratos'
// own address and verified flags, never the body's: a forged body can name
// an identity, but the invitation token then works only if the identity's
// stored address is the invited one, and only an identity Kratos created
// within the replay window gets an organization. It is idempotent: Kratos
// may deliver a hook twice, and a queued retry repeats it.
func (h *Handlers) afterRegistration(ctx context.Context, su signup) error {
	who, err := h.ids.Get(ctx, su.IdentityID)
	if err != nil {
		return err
	}
	if who == nil || who.State != "active" {
		h.log.Warn("registration webhook names no active Kratos identity: nothing done", "flow", su.FlowID)
		return nil
	}
	if su.At.Sub(who.CreatedAt) > h.cfg.ReplayWindow {
		h.log.Warn("registration webhook names an identity this sign-up did not create: nothing done", "flow", su.FlowID, "identity", who.ID)
		return nil
	}
	email, err := invites.NormalizeEmail(who.Email)
	if err != nil {
		h.log.Warn("registration webhook: the identity's email trait is not an address: nothing done", "flow", su.FlowID, "identity", who.ID)
		return nil
	}
	// The person's identity is stored: new invitations may use it.
	if err := h.invites.EndTakeover(ctx, email); err != nil {
		h.log.Warn("could not end a placeholder takeover; it ends with its lease", "err", err)
	}
	if err := h.invites.RememberAccount(ctx, email, who.ID); err != nil {
		h.log.Warn("could not remember a new account's address; inviting it will ask Kratos", "err", err)
	}
	var errs []error
	if su.InviteToken != "" {
		if _, err := h.invites.AcceptToken(ctx, su.InviteToken, who.ID, email); apperr.KindOf(err) == apperr.Unavailable {
			errs = append(errs, err)
		} else if err != nil {
			h.log.Info("sign-up with an invitation token that does not apply", "flow", su.FlowID, "code", apperr.CodeOf(err))
		}
	}
	if name := strings.TrimSpace(su.OrganizationName); name != "" {
		if err := h.createOrganization(ctx, su.FlowID, name, who.ID, email); err != nil {
			errs = append(errs, err)
		}
	}
	if h.cfg.AcceptOnVerifiedAddress && slices.Contains(who.VerifiedAddresses, email) {
		if _, err := h.invites.AcceptVerifiedAddress(ctx, email, who.ID); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, h.joinDomains(ctx, who))
	return errors.Join(errs...)
}

// createOrganization makes the organization a sign-up asked for, once per
// Kratos flow however often the hook is delivered: the flow's replay
// record holds the organization it created.
func (h *Handlers) createOrganization(ctx context.Context, flowID, name, identityID, email string) error {
	name, err := orgs.CheckName(name)
	if err != nil {
		h.log.Info("sign-up asked for an organization with an invalid name", "flow", flowID, "err", err)
		return nil
	}
	outcome, _, err := h.signups.ClaimSignupOrganization(ctx, flowID)
	switch {
	case err != nil:
		return err
	case outcome == orgs.SignupExpired:
		h.log.Error("sign-up's organization not created: its webhook record expired before the work could be retried (hooks.replay_window)", "flow", flowID)
		return nil
	case outcome != orgs.SignupFirst:
		return nil
	}
	o, err := h.orgs.Create(ctx, orgs.CreateRequest{Name: name, Owner: &orgs.Member{IdentityID: identityID, Email: email, Role: "owner"}},
		orgs.StateActive)
	if err != nil {
		_ = h.signups.ReleaseSignupOrganization(context.WithoutCancel(ctx), flowID) // let the retry create it
		return err
	}
	_ = h.signups.SetSignupOrganization(context.WithoutCancel(ctx), flowID, o.ID)
	return nil
}

// verificationAfter turns the pending invitations of every address Kratos
// shows verified into memberships (accept.on_verified_address). The
// addresses are Kratos' own, read again; the body only names the identity.
func (h *Handlers) verificationAfter(c *gin.Context) {
	b, raw, _, ok := h.decodeRaw(c)
	if !ok {
		return
	}
	if (!h.cfg.AcceptOnVerifiedAddress && h.domains == nil) || b.IdentityID == "" || b.IdentityID == h.nilIdent {
		c.JSON(http.StatusOK, map[string]any{})
		return
	}
	call, ok := h.begin(c, hookVerification, b.FlowID, raw)
	if !ok {
		return
	}
	if err := h.acceptVerified(c.Request.Context(), b.IdentityID); err != nil {
		h.queue(c, outbox.Job{Kind: "hook.verified", Ref: b.FlowID, Subject: b.IdentityID}, err)
	}
	h.finish(c, call)
}

// acceptVerified accepts the pending invitations of every address Kratos
// shows verified for an active identity.
func (h *Handlers) acceptVerified(ctx context.Context, identityID string) error {
	who, err := h.ids.Get(ctx, identityID)
	if err != nil {
		return err
	}
	if who == nil || who.State != "active" {
		h.log.Warn("verification webhook names no active Kratos identity: nothing done")
		return nil
	}
	errs := []error{h.joinDomains(ctx, who)}
	if !h.cfg.AcceptOnVerifiedAddress {
		return errors.Join(errs...)
	}
	for _, addr := range who.VerifiedAddresses {
		email, err := invites.NormalizeEmail(addr)
		if err != nil {
			continue
		}
		if _, err := h.invites.AcceptVerifiedAddress(ctx, email, who.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// refreshClaims (login.after, settings.after) queues a refresh of the
// membership claims of an identity Kratos knows. An email change does
// nothing to pending invitations: they stay bound to the address they
// were sent to.
func (h *Handlers) refreshClaims(hook string) gin.HandlerFunc {
	return func(c *gin.Context) {
		b, raw, _, ok := h.decodeRaw(c)
		if !ok {
			return
		}
		if b.IdentityID == "" || b.IdentityID == h.nilIdent {
			c.JSON(http.StatusOK, map[string]any{})
			return
		}
		call, ok := h.begin(c, hook, b.FlowID, raw)
		if !ok {
			return
		}
		ctx := c.Request.Context()
		who, err := h.ids.Get(ctx, b.IdentityID)
		switch {
		case err != nil:
			// The job asks Kratos again; it cannot grant anything.
			h.log.Warn("could not re-read the identity of a claims refresh; queued anyway", "err", err)
		case who == nil:
			h.log.Warn("claims refresh names no Kratos identity: nothing done", "hook", hook)
			h.finish(c, call)
			return
		default:
			// An address verified, or a domain verified, since the last
			// sign-in: its auto_join organizations.
			if err := h.joinDomains(ctx, who); err != nil {
				h.log.Warn("verified-domain join failed; the next sign-in tries again", "err", err)
			}
		}
		if err := h.outbox.Enqueue(ctx, redisx.RandomShard(), outbox.Job{Kind: "claims.sync", Subject: b.IdentityID}); err != nil {
			h.log.Warn("could not queue a claims refresh", "identity", b.IdentityID, "err", err)
		}
		h.finish(c, call)
	}
}

// joinDomains applies the verified auto_join domains to an identity Kratos
// returned (nil without package domains wired).
func (h *Handlers) joinDomains(ctx context.Context, who *identity.Identity) error {
	if h.domains == nil {
		return nil
	}
	return h.domains.JoinVerified(ctx, who)
}

func (h *Handlers) queue(c *gin.Context, job outbox.Job, cause error) {
	if err := h.outbox.Enqueue(context.WithoutCancel(c.Request.Context()), redisx.RandomShard(), job); err != nil {
		h.log.Error("webhook work lost: could neither do it nor queue it", "kind", job.Kind, "err", errors.Join(cause, err))
	}
}

// RegisterJobs handles the work hooks queue when it failed inline. The
// jobs re-read the identity too: a queued job is no more trusted than the
// body it came from.
func (h *Handlers) RegisterJobs(w *outbox.Worker) {
	w.Handle("hook.registration", func(ctx context.Context, job outbox.Job) error {
		su := signup{FlowID: job.Ref, IdentityID: job.Subject, OrganizationName: job.Name, At: time.UnixMilli(job.Enqueued)}
		if job.Sealed != "" {
			token, err := h.invites.Open(job.Sealed)
			if err != nil {
				return outbox.Permanent(err)
			}
			su.InviteToken = token
		}
		return h.afterRegistration(ctx, su)
	}, nil)
	w.Handle("hook.verified", func(ctx context.Context, job outbox.Job) error {
		return h.acceptVerified(ctx, job.Subject)
	}, nil)
}
