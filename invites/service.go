package invites

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/redisx"
	"github.com/kratos-orgs/kratos-orgs/templates"
	"github.com/kratos-orgs/kratos-orgs/tokens"
)

// Identities is what the backend needs from Kratos.
type Identities interface {
	FindByEmail(ctx context.Context, email string) (*identity.Identity, error)
	Get(ctx context.Context, id string) (*identity.Identity, error)
	CreateInvited(ctx context.Context, email string, marker map[string]any) (*identity.Identity, error)
	Delete(ctx context.Context, id string) error
	// Untouched: the identity never had a credential or a session.
	Untouched(ctx context.Context, id string) (bool, error)
}

// Organizations is what the backend needs to know about organizations.
type Organizations interface {
	Exists(ctx context.Context, id string) (bool, error)
	ResolveID(ctx context.Context, idOrSlug string) (string, error)
	// DeleteIfPending removes an organization whose registration was
	// never activated.
	DeleteIfPending(ctx context.Context, id string) error
	// Member reads a membership (member_not_found when there is none).
	Member(ctx context.Context, org, identityID string) (orgs.Member, error)
}

// Config is the backend's policy.
type Config struct {
	TTL                  time.Duration
	MaxTTL               time.Duration
	RemindInterval       time.Duration
	AcceptURL            string // public base URL + accept path; the token is appended
	ActivateURL          string // public base URL + registration.activate_path (activation mails); "" = AcceptURL
	AllowedRedirectHosts []string
	Roles                orgs.Roles
	EmailTrait           string // dotted path of the email trait
}

// Service is the invitation backend.
type Service struct {
	store  *Store
	orgs   Organizations
	ids    Identities
	sealer *tokens.Sealer
	cfg    Config
	log    *slog.Logger
	wake   func()
	now    func() time.Time

	emailTrait   string
	suppressions suppressionChecker      // nil: no suppression list
	crashAt      func(step string) error // crash tests only (crash.go)
}

// ServiceOptions are the backend's dependencies and policy.
type ServiceOptions struct {
	Store      *Store
	Orgs       Organizations
	Identities Identities
	Sealer     *tokens.Sealer
	Config     Config
	Log        *slog.Logger
	// Wake is called after each write that queued a job, so a local
	// worker picks it up at once (nil: nothing).
	Wake func()
	Now  func() time.Time // the clock (nil: time.Now)
	// Suppressions refuses to mail addresses that bounced or complained
	// (409 address_suppressed); nil: no suppression list.
	Suppressions suppressionChecker
}

// NewService wires the backend.
func NewService(o ServiceOptions) *Service {
	if o.Wake == nil {
		o.Wake = func() {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	trait := o.Config.EmailTrait
	if trait == "" {
		trait = "email"
	}
	return &Service{store: o.Store, orgs: o.Orgs, ids: o.Identities, sealer: o.Sealer, cfg: o.Config, log: o.Log,
		wake: o.Wake, now: o.Now, emailTrait: trait, suppressions: o.Suppressions}
}

// Store exposes the store (jobs, tests).
func (s *Service) Store() *Store { return s.store }

// Duration is a JSON duration: a string like "72h" or a number of seconds.
type Duration time.Duration

// UnmarshalJSON accepts "72h30m" or 3600.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var secs float64
	if err := json.Unmarshal(b, &secs); err == nil {
		*d = Duration(time.Duration(secs * float64(time.Second)))
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`a duration is a string like "72h" or a number of seconds`)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf(`%q is not a duration like "72h"`, s)
	}
	*d = Duration(v)
	return nil
}

// InviteRequest is the body of POST /admin/organizations/{org}/invitations.
type InviteRequest struct {
	Email      string         `json:"email"`
	Role       string         `json:"role"`
	Inviter    *Inviter       `json:"inviter,omitempty"`
	Context    map[string]any `json:"context,omitempty"`
	TTL        *Duration      `json:"ttl,omitempty"`
	RedirectTo string         `json:"redirect_to,omitempty"`
	SendEmail  *bool          `json:"send_email,omitempty"`
	// Locale is the mail's locale, a BCP 47 tag (stored canonical).
	Locale string `json:"locale,omitempty"`

	// UniformKratosWork makes Invite ask the same of Kratos whether or not
	// the address has an account (the org admins' API), so the time an
	// answer takes does not tell either.
	UniformKratosWork bool `json:"-"`
}

func (s *Service) validate(r *InviteRequest) (email string, ttl time.Duration, err error) {
	if email, err = NormalizeEmail(r.Email); err != nil {
		return "", 0, err
	}
	if r.Role == "" {
		r.Role = orgs.DefaultRole
	}
	if err := s.cfg.Roles.Check(r.Role); err != nil {
		return "", 0, err
	}
	ttl = s.cfg.TTL
	if r.TTL != nil {
		ttl = time.Duration(*r.TTL)
		if ttl < time.Minute || ttl > s.cfg.MaxTTL {
			return "", 0, apperr.Invalidf("invalid_ttl", "ttl must be between 1m and %s, got %s", s.cfg.MaxTTL, ttl).
				WithDetails("field", "ttl", "max", s.cfg.MaxTTL.String())
		}
	}
	if r.RedirectTo != "" {
		if err := CheckRedirect(r.RedirectTo, s.cfg.AllowedRedirectHosts); err != nil {
			return "", 0, err
		}
	}
	if err := checkInviter(r.Inviter); err != nil {
		return "", 0, err
	}
	if err := checkContext(r.Context); err != nil {
		return "", 0, err
	}
	if r.Locale, err = templates.ParseLocale("locale", r.Locale); err != nil {
		return "", 0, err
	}
	return email, ttl, nil
}

// Invite invites an address to an organization (django-organizations'
// invite_by_email). A pending invitation for the same organization and
// address is reused: its token is rotated, its expiry extended and its mail
// sent again (created=false).
//
// Order matters for faults: the invitation's reference in the address
// slot comes first (so no placeholder it may point at can be deleted from
// then on, see placeholders.go), then Kratos (when Kratos is down nothing
// but that reference is written), then one atomic script. A placeholder
// created here is released again if that script does not take.
//
// This is the operator's call (admin API): no role ceiling applies, and an
// inviter.id must name an existing Kratos identity (422 unknown_inviter).
func (s *Service) Invite(ctx context.Context, orgRef string, r InviteRequest) (inv Invitation, created bool, err error) {
	email, ttl, err := s.validate(&r)
	if err != nil {
		return inv, false, err
	}
	if err := s.checkInviterExists(ctx, r.Inviter); err != nil {
		return inv, false, err
	}
	return s.invite(ctx, orgRef, r, email, ttl, grant{})
}

// Actor is a member acting through the org admins' API.
type Actor struct {
	IdentityID string
	Name       string
	Role       string // the actor's role in the organization, as authorized
}

// grant is the authority an invitation is issued under: by whom, and the
// roles they may grant (nil: the operator, no ceiling).
type grant struct {
	by     string
	within []string
}

// InviteAs invites on behalf of a member (the org admins' API). The member
// is the inviter; the invitation's role is at most theirs; and a pending
// invitation for the address is re-issued (token rotated, role rewritten)
// only if its current role is within their ceiling too, atomically with
// the rewrite: an admin cannot take over an owner's invitation.
//
// The invitation remembers who granted it: if that member later loses the
// role it needs (demoted, removed), acceptance is refused until an owner
// (or the operator) invites the address again; see CheckGrant.
func (s *Service) InviteAs(ctx context.Context, orgRef string, who Actor, r InviteRequest) (Invitation, bool, error) {
	g, email, ttl, err := s.checkAs(who, &r)
	if err != nil {
		return Invitation{}, false, err
	}
	return s.invite(ctx, orgRef, r, email, ttl, g)
}

// checkAs validates a member's invitation: the role within their ceiling,
// the member as the inviter, then the request's fields.
func (s *Service) checkAs(who Actor, r *InviteRequest) (g grant, email string, ttl time.Duration, err error) {
	if r.Role == "" {
		r.Role = orgs.DefaultRole
	}
	if err := s.cfg.Roles.Check(r.Role); err != nil {
		return g, "", 0, err
	}
	if err := s.cfg.Roles.Ceiling(who.Role, r.Role); err != nil {
		return g, "", 0, err
	}
	r.Inviter = &Inviter{ID: who.IdentityID, Name: who.Name}
	if email, ttl, err = s.validate(r); err != nil {
		return g, "", 0, err
	}
	return grant{by: who.IdentityID, within: s.cfg.Roles.Within(who.Role)}, email, ttl, nil
}

// checkInviterExists refuses an inviter.id that is not a Kratos identity:
// its address would become the mail's Reply-To.
func (s *Service) checkInviterExists(ctx context.Context, in *Inviter) error {
	if in == nil || in.ID == "" {
		return nil
	}
	who, err := s.ids.Get(ctx, in.ID)
	if err != nil {
		return err
	}
	if who == nil {
		return apperr.New(apperr.Unprocessable, "unknown_inviter", "inviter.id %s is not a Kratos identity", in.ID).
			WithDetails("field", "inviter.id")
	}
	return nil
}

// ErrGrantLapsed means the member who issued an invitation no longer holds
// a role that may grant it.
func errGrantLapsed(inv Invitation) error {
	return apperr.New(apperr.Forbidden, "invitation_grant_lapsed",
		"the person who sent this invitation no longer has a role that may grant the %s role", inv.Role).
		WithDetails("role", inv.Role)
}

// CheckGrant re-checks, at acceptance, the authority an invitation was
// issued under: an invitation a member sent stands only while that member
// is still in the organization with a role at least the invitation's. A
// lapsed invitation is not consumed: it stays pending and listed, for an
// owner to invite the address again (which re-issues it under the owner)
// or to revoke.
func (s *Service) CheckGrant(ctx context.Context, inv Invitation) error {
	if inv.grantedBy == "" {
		return nil // the operator's, or a registration
	}
	m, err := s.orgs.Member(ctx, inv.OrganizationID, inv.grantedBy)
	if apperr.CodeOf(err) == "member_not_found" {
		return errGrantLapsed(inv)
	}
	if err != nil {
		return err
	}
	if !s.cfg.Roles.AtLeast(m.Role, inv.Role) {
		return errGrantLapsed(inv)
	}
	return nil
}

// checkMailable refuses to mail an address on the suppression list; a
// caller who delivers the link itself (send_email false) may invite it.
// The address' reference step read whether it is suppressed (ref); only
// then is the record read, for the refusal's details.
func (s *Service) checkMailable(ctx context.Context, send *bool, email string, ref addressRef) error {
	if (send != nil && !*send) || !ref.suppressed {
		return nil
	}
	return checkNotSuppressed(ctx, s.suppressions, email)
}

func (s *Service) invite(ctx context.Context, orgRef string, r InviteRequest, email string, ttl time.Duration, g grant) (inv Invitation, created bool, err error) {
	org, err := s.orgs.ResolveID(ctx, orgRef)
	if err != nil {
		return inv, false, err
	}
	id := redisx.NewID("inv", redisx.ShardOf(org), s.now())
	ref, err := s.referenceAddress(ctx, email, org, id)
	if err != nil {
		return inv, false, err
	}
	if err := s.checkMailable(ctx, r.SendEmail, email, ref); err != nil {
		s.forget(ctx, email, id)
		return inv, false, err
	}
	referenced := ref.at
	person, createdNow, err := s.identityFor(ctx, org, email, ref, r.UniformKratosWork)
	if err != nil {
		s.forget(ctx, email, id)
		return inv, false, err
	}
	send := r.SendEmail == nil || *r.SendEmail
	token, hash := tokens.New(redisx.ShardOf(org))
	n := NewInvitation{
		ID: id, WriteBy: referenced.Add(refGrace),
		OrganizationID: org, Email: email, Role: r.Role, TTL: ttl, TokenHash: hash,
		Inviter: r.Inviter, Context: r.Context, RedirectTo: r.RedirectTo,
		ExistingIdentity: true, SendEmail: send, Template: "invitation", Kind: "invitation",
		GrantedBy: g.by, Within: g.within, Locale: r.Locale,
	}
	if person != nil {
		n.IdentityID, n.ExistingIdentity, n.IdentityCreated = person.ID, !person.CreatedByUs, person.CreatedByUs
	}
	if send {
		n.SealedToken = s.sealer.Seal(token, sealContext)
	}
	if err := s.crash(CrashInviteIdentity); err != nil {
		return inv, false, err
	}
	inv, rotated, err := s.store.Create(ctx, n)
	if err != nil {
		if scriptRefused(err) {
			// The script answered: nothing was written. When Redis did not
			// answer, the reference stays until it is known dead.
			s.forget(ctx, email, id)
			if createdNow {
				s.releaseQuietly(ctx, email, person.ID)
			}
		}
		return inv, false, err
	}
	if rotated {
		s.forget(ctx, email, id) // the pending invitation that was rotated has its own
	}
	if err := s.crash(CrashInviteWritten); err != nil {
		return inv, false, err
	}
	s.wake()
	if !send {
		inv.AcceptURL = s.cfg.AcceptURL + token
	}
	return inv, !rotated, nil
}

// scriptRefused tells a write the script refused (nothing was written)
// from one whose outcome is unknown (Redis did not answer).
func scriptRefused(err error) bool {
	k := apperr.KindOf(err)
	return (k != apperr.Unavailable && k != apperr.Internal) || apperr.CodeOf(err) == "invitation_too_slow"
}

// identityFor finds the Kratos identity of an address or creates an
// inactive one. createdNow says whether this call created it.
//
// The operator's API spends as few Kratos calls as it can: an identity
// kratos-orgs has seen for the address (ref.known, known.go) is used as
// it is, without a call (acceptance checks a placeholder, and binds an
// account's acceptance to the address, see known.go); otherwise an
// identity is created first, and only a conflict (409: the address has an
// account) leads to the look-up by identifier. A new address costs one
// call, a known one none.
//
// The org admins' API (uniform) keeps the look-up and always attempts the
// create as well (lookUpFirst): creating first there would answer a new
// address after one call and an account after two, and the hint would
// answer an address some other organization invited faster than one nobody
// did. Either difference in time would tell an org admin whether the
// address has an account (issue 10, no enumeration). During a takeover the
// look-up is needed anyway, to recognise the placeholder being replaced.
func (s *Service) identityFor(ctx context.Context, org, email string, ref addressRef, uniform bool) (*identity.Identity, bool, error) {
	if uniform || ref.takeover {
		return s.lookUpFirst(ctx, org, email, ref.takeover, uniform)
	}
	if ref.known == "" {
		return s.createFirst(ctx, org, email)
	}
	if who := knownIdentity(ref.known, email); who != nil {
		return who, false, nil
	}
	// A hint from before hints had kinds: read it by id, as then.
	id, _ := parseKnown(ref.known)
	who, err := s.ids.Get(ctx, id)
	if err != nil {
		return nil, false, err
	}
	if who != nil && strings.EqualFold(who.Email, email) {
		return who, false, nil
	}
	// Stale: deleted in Kratos meanwhile, or its address changed.
	return s.createFirst(ctx, org, email)
}

// createFirst creates an inactive identity for the address; when Kratos
// answers that one exists (409), it looks that one up.
func (s *Service) createFirst(ctx context.Context, org, email string) (*identity.Identity, bool, error) {
	// Creating an identity for an unknown organization would leave it behind.
	if err := s.checkOrganization(ctx, org); err != nil {
		return nil, false, err
	}
	created, err := s.ids.CreateInvited(ctx, email, s.marker(org))
	if errors.Is(err, identity.ErrExists) {
		found, err := s.ids.FindByEmail(ctx, email)
		if err == nil && found == nil {
			err = apperr.Unavailablef(identity.ErrExists, "kratos_unavailable", "the identity service is inconsistent; try again")
		}
		return found, false, err
	}
	return created, err == nil, err
}

// lookUpFirst looks the address up, then creates an identity if it has
// none. During a takeover (a Kratos sign-up replacing the placeholder right
// now) no placeholder is used or created: the invitation is for whoever
// holds the address (nil).
//
// uniform (the org admins' API) does the same work when the address has an
// identity: the organization check, and the create call, which Kratos
// refuses (409) after the same validation and transaction as a create that
// succeeds, so the time an answer takes does not tell either.
func (s *Service) lookUpFirst(ctx context.Context, org, email string, takeover, uniform bool) (*identity.Identity, bool, error) {
	found, err := s.ids.FindByEmail(ctx, email)
	if err != nil {
		return nil, false, err
	}
	if found != nil && !(takeover && found.CreatedByUs && found.State == "inactive") {
		if uniform {
			return s.sameWorkAsCreating(ctx, org, email, found)
		}
		return found, false, nil
	}
	if takeover {
		return nil, false, nil
	}
	return s.createFirst(ctx, org, email)
}

// checkOrganization refuses an organization that does not exist.
func (s *Service) checkOrganization(ctx context.Context, org string) error {
	ok, err := s.orgs.Exists(ctx, org)
	if err != nil {
		return err
	}
	if !ok {
		return apperr.NotFoundf("organization_not_found", "no organization %q", org).WithDetails("organization", org)
	}
	return nil
}

// Get reads an invitation.
func (s *Service) Get(ctx context.Context, id string) (Invitation, error) {
	return s.store.Get(ctx, id)
}

// List lists an organization's invitations.
func (s *Service) List(ctx context.Context, orgRef string, f Filter) (orgs.Page[Invitation], error) {
	org, err := s.orgs.ResolveID(ctx, orgRef)
	if err != nil {
		return orgs.Page[Invitation]{}, err
	}
	if f.Email != "" {
		if f.Email, err = NormalizeEmail(f.Email); err != nil {
			return orgs.Page[Invitation]{}, err
		}
	}
	switch f.Status {
	case "":
		f.Status = string(Pending)
	case string(Pending), string(Accepted), string(Revoked), string(Expired), "all":
	default:
		return orgs.Page[Invitation]{}, apperr.Invalidf("invalid_status", "status must be pending, accepted, revoked, expired or all").
			WithDetails("field", "status")
	}
	if f.Delivery != "" && !slices.Contains(DeliveryStatuses, f.Delivery) {
		return orgs.Page[Invitation]{}, apperr.Invalidf("invalid_delivery", "delivery must be one of %s", strings.Join(DeliveryStatuses, ", ")).
			WithDetails("field", "delivery")
	}
	return s.store.List(ctx, org, f)
}

// Revoke ends a pending invitation; its link dies at once.
func (s *Service) Revoke(ctx context.Context, id string) (Invitation, error) {
	inv, err := s.store.Revoke(ctx, id)
	if err == nil {
		s.wake()
	}
	return inv, err
}

// Resend rotates the token (the old link dies), extends the expiry by the
// invitation's TTL and mails the new link, or returns it when send is false.
func (s *Service) Resend(ctx context.Context, id string, send bool) (Invitation, error) {
	return s.rotate(ctx, id, Rotation{SendEmail: send}, "invitation")
}

// Remind mails a reminder with a new token, at most once per interval.
func (s *Service) Remind(ctx context.Context, id string) (Invitation, error) {
	return s.rotate(ctx, id, Rotation{Remind: true, RemindInterval: s.cfg.RemindInterval, SendEmail: true}, "reminder")
}

func (s *Service) rotate(ctx context.Context, id string, r Rotation, template string) (Invitation, error) {
	if _, ok := redisx.ParseID("inv", id); !ok {
		return Invitation{}, errNotFound(id)
	}
	if r.SendEmail && s.suppressions != nil {
		cur, err := s.store.Get(ctx, id)
		if err != nil {
			return cur, err
		}
		if err := checkNotSuppressed(ctx, s.suppressions, cur.Email); err != nil {
			return Invitation{}, err
		}
	}
	token, hash := tokens.New(redisx.ShardOf(id))
	r.TokenHash, r.Template = hash, template
	if r.SendEmail {
		r.SealedToken = s.sealer.Seal(token, sealContext)
	}
	inv, err := s.store.Rotate(ctx, id, r)
	if err != nil {
		return inv, err
	}
	s.wake()
	if !r.SendEmail {
		inv.AcceptURL = s.cfg.AcceptURL + token
	}
	return inv, nil
}

// LinkURL is the link of an invitation's token: registrations' activation
// mails link to registration.activate_path, everything else to the accept
// path. Both paths accept both kinds of token.
func (s *Service) LinkURL(inv Invitation, token string) string {
	if inv.kind == "registration" && s.cfg.ActivateURL != "" {
		return s.cfg.ActivateURL + token
	}
	return s.cfg.AcceptURL + token
}

// sealContext separates sealed invitation tokens from anything else sealed
// with the same keys. The mail job also checks the token against the
// invitation's current hash, which binds it to the invitation.
const sealContext = "kratos-orgs/invitation-token"

// sameWorkAsCreating repeats, for an address that has an identity, what
// creating one costs. Its errors are the ones a create would give (Kratos
// down), so they do not tell the two cases apart either.
func (s *Service) sameWorkAsCreating(ctx context.Context, org, email string, found *identity.Identity) (*identity.Identity, bool, error) {
	if err := s.checkOrganization(ctx, org); err != nil {
		return nil, false, err
	}
	created, err := s.ids.CreateInvited(ctx, email, s.marker(org))
	switch {
	case errors.Is(err, identity.ErrExists):
		return found, false, nil
	case err != nil && apperr.KindOf(err) == apperr.Unavailable:
		return nil, false, err
	case err != nil:
		// Kratos refused for another reason (its schema): the identity
		// found is still the one to invite.
		return found, false, nil
	}
	// Kratos accepted a second identity for the address: its identifier
	// is not unique in the schema. Keep the one found, remove the copy.
	if err := s.ids.Delete(context.WithoutCancel(ctx), created.ID); err != nil {
		s.log.Warn("could not delete a second identity Kratos accepted for an address", "identity", created.ID, "err", err)
	}
	return found, false, nil
}

func (s *Service) marker(org string) map[string]any {
	return map[string]any{"created": true, "organization": org, "created_at": s.now().UTC().Format(time.RFC3339)}
}
