package invites

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/textcheck"
)

// Accounts is what acceptance needs from Kratos.
type Accounts interface {
	Activate(ctx context.Context, id string, a identity.Activation) (*identity.Identity, error)
	RecoveryLink(ctx context.Context, id, returnTo string, expiresIn time.Duration) (string, error)
	Whoami(ctx context.Context, cookie, sessionToken string) (*identity.Session, error)
	// LogoutURL is Kratos' browser logout URL for a cookie's session,
	// returning to returnTo; "" when there is no session.
	LogoutURL(ctx context.Context, cookie, returnTo string) (string, error)
}

// TraitChecker validates traits against the identity schema.
type TraitChecker interface {
	Validate(ctx context.Context, traits map[string]any) error
}

// AcceptConfig is the acceptance policy.
type AcceptConfig struct {
	LoginMode              string // kratos_settings or password
	Fields                 []config.Field
	PasswordMinLength      int
	ClaimTimeout           time.Duration
	SuccessURL             string // invitations' default landing page
	RegistrationSuccessURL string
	KratosPublicURL        string
}

// ClaimsMirror is what a new person's acceptance needs of the claims
// mirror (orgs.Claims) to write the organizations claims with the
// activation instead of after it.
type ClaimsMirror interface {
	// Joining is what the identity's claims become once it joins org.
	Joining(ctx context.Context, identityID string, org orgs.Claim) ([]orgs.Claim, error)
	// Index puts a membership in the identity index at once.
	Index(ctx context.Context, org, identityID string) error
}

// Acceptor turns a link into a membership and a Kratos session.
type Acceptor struct {
	svc      *Service
	accounts Accounts
	traits   TraitChecker
	cfg      AcceptConfig
	claims   ClaimsMirror // nil: the mirror writes claims after the membership
}

// NewAcceptor wires acceptance.
func NewAcceptor(svc *Service, accounts Accounts, traits TraitChecker, cfg AcceptConfig) *Acceptor {
	return &Acceptor{svc: svc, accounts: accounts, traits: traits, cfg: cfg}
}

// Config returns the acceptance policy.
func (a *Acceptor) Config() AcceptConfig { return a.cfg }

// SetClaims lets a new person's activation write their claims
// (AcceptNew); without it the claims mirror writes them once the
// membership exists, at the cost of a Kratos read and a PATCH more.
func (a *Acceptor) SetClaims(c ClaimsMirror) { a.claims = c }

// Form is what a person new to Kratos submits.
type Form struct {
	Values    map[string]string // by trait path
	Password  string
	Password2 string
	// placeholder is the invitation's placeholder as the page read it
	// (NewPerson) moments before: activating it then needs no second read.
	placeholder *identity.Identity
}

// FieldErrors map a form field (trait path, "password") to a message.
type FieldErrors map[string]string

func (e FieldErrors) Error() string { return "the form has errors" }

// Handoff says how the browser continues once the acceptance is written.
type Handoff struct {
	// RedirectTo is where to send the browser (a Kratos recovery link, or
	// Kratos' login with return_to).
	RedirectTo string
	// Login is set in password mode: the page logs in with the password it
	// still holds and then goes to ReturnTo.
	Login    bool
	Username string
	ReturnTo string
	// AlreadyMember is set when the person was a member before.
	AlreadyMember bool
	Organization  map[string]string
}

// successURL is where an accepted invitation lands: its own validated
// redirect_to, else the configured page.
func (a *Acceptor) successURL(inv Invitation) string {
	if inv.RedirectTo != "" {
		return inv.RedirectTo
	}
	if inv.kind == "registration" && a.cfg.RegistrationSuccessURL != "" {
		return a.cfg.RegistrationSuccessURL
	}
	return a.cfg.SuccessURL
}

// NewPerson reports whether the invitation is for an identity kratos-orgs
// created and that still waits for its person. When the person signed up
// through Kratos meanwhile, that placeholder is gone: they accept like
// anyone with an account, logged in. A placeholder that is gone or no
// longer has the invited address (deleted or changed in Kratos directly,
// or named by a stale hint, see known.go) is detached from the invitation
// here, before anything is accepted: the invitation then goes to whoever
// holds the address, never to that identity.
func (a *Acceptor) NewPerson(ctx context.Context, inv Invitation) (bool, error) {
	who, err := a.placeholder(ctx, inv)
	return who != nil && who.State == "inactive", err
}

// newPersonRead is NewPerson, also returning the placeholder it read.
func (a *Acceptor) newPersonRead(ctx context.Context, inv Invitation) (*identity.Identity, bool, error) {
	who, err := a.placeholder(ctx, inv)
	return who, who != nil && who.State == "inactive", err
}

// newPersonKnown is NewPerson from what Redis holds, without asking
// Kratos: what the page's GET uses to choose between the new person's form
// and signing in. The invitation names a placeholder, the visitor is not
// signed in as it (only an active identity has a session), and the
// address' hint (known.go) does not say it became an account (an
// acceptance of another invitation for the same address activated it).
// It can only be wrong towards showing the form: to a placeholder deleted
// or changed in Kratos directly, or activated by an acceptance whose
// invitation.sync job has not run yet. The form's submit reads the
// placeholder (newPersonRead) and decides; nothing is written on a GET.
func (a *Acceptor) newPersonKnown(ctx context.Context, inv Invitation, s *identity.Session) (bool, error) {
	if !inv.identityCreated || inv.IdentityID == "" {
		return false, nil
	}
	if s != nil && s.Identity != nil && s.Identity.ID == inv.IdentityID {
		return false, nil
	}
	id, kind, err := a.svc.store.knownOf(ctx, inv.Email)
	if err != nil {
		return false, err
	}
	return id != inv.IdentityID || kind != knownAccount, nil
}

// placeholder reads the invitation's placeholder from Kratos: nil when the
// invitation names none, or names one that is no longer the invited
// address' (then detached).
func (a *Acceptor) placeholder(ctx context.Context, inv Invitation) (*identity.Identity, error) {
	if !inv.identityCreated || inv.IdentityID == "" {
		return nil, nil
	}
	who, err := a.svc.ids.Get(ctx, inv.IdentityID)
	if err != nil {
		return nil, err
	}
	if who == nil || !strings.EqualFold(who.Email, inv.Email) {
		a.svc.detachStale(ctx, inv)
		return nil, nil
	}
	return who, nil
}

// Kind is "invitation" or "registration".
func Kind(inv Invitation) string { return inv.kind }

// CheckForm validates a new person's form without side effects.
func (a *Acceptor) CheckForm(ctx context.Context, inv Invitation, f Form) (map[string]any, error) {
	errs := FieldErrors{}
	traits := map[string]any{}
	for _, field := range a.cfg.Fields {
		limit := field.MaxLength
		if limit == 0 {
			limit = 200
		}
		// What a new person types here becomes their name in Kratos, and
		// later an inviter's name in other people's mail: the same rule as
		// every other name (package textcheck).
		v, problem := textcheck.Check(f.Values[field.Trait], limit, field.Required)
		switch {
		case problem == nil && v != "":
			traits[field.Trait] = v
		case problem == nil:
		case problem.Reason == textcheck.Empty:
			errs[field.Trait] = field.Label + " is required."
		case problem.Reason == textcheck.TooLong:
			errs[field.Trait] = field.Label + " is too long."
		case problem.Reason == textcheck.Link:
			errs[field.Trait] = field.Label + " must not contain a web address."
		default:
			errs[field.Trait] = field.Label + " contains characters that are not allowed."
		}
	}
	if a.cfg.LoginMode == "password" {
		if msg := checkPassword(f.Password, f.Password2, inv.Email, a.cfg.PasswordMinLength); msg != "" {
			errs["password"] = msg
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	doc := map[string]any{}
	for path, v := range traits {
		identity.SetTrait(doc, path, v)
	}
	identity.SetTrait(doc, a.svc.emailTrait, inv.Email)
	if err := a.traits.Validate(ctx, doc); err != nil {
		if e, ok := apperr.As(err); ok && e.Code == "invalid_traits" {
			fields, _ := e.Details["fields"].(map[string]any)
			for k, v := range fields {
				errs[k] = strings.ToUpper(v.(string)[:1]) + v.(string)[1:] + "."
			}
			if len(errs) == 0 {
				errs[""] = e.Message
			}
			return nil, errs
		}
		return nil, err
	}
	return traits, nil
}

func checkPassword(p, p2, email string, min int) string {
	switch {
	case utf8.RuneCountInString(p) < min:
		return "Choose a password of at least " + strconv.Itoa(min) + " characters."
	case len(p) > 1024:
		return "That password is too long."
	case p != p2:
		return "The two passwords differ."
	}
	lp, le := strings.ToLower(p), strings.ToLower(email)
	local := le[:strings.IndexByte(le, '@')]
	if strings.Contains(le, lp) || (len(local) >= 3 && strings.Contains(lp, local)) {
		return "The password is too similar to your email address."
	}
	if strings.Count(p, p[:1]) == len(p) {
		return "Choose a less predictable password."
	}
	return ""
}

// AcceptNew completes the acceptance of a person new to Kratos: the token
// is consumed, the identity activated with the form's traits and its
// address verified, the membership written, and the browser handed to
// Kratos for a session. If Kratos fails after the token was consumed, the
// claim is released and the link works again.
//
// link is the token's lookup, which the caller has made already; the claim
// checks again, atomically.
//
// s is the visitor's Kratos session, nil when there is none: a session of
// anyone else refuses the acceptance (CheckVisitor), since handing the
// browser to the invitee would silently replace it.
//
// Kratos calls, in kratos_settings mode: the placeholder's read (the
// form's submit, which is the guard: Kratos' PATCH takes no "test"
// operation), one PATCH that activates it and writes its organizations
// claims (foldClaims), and the recovery link. The order and the commit
// point:
//
//  1. Claim (Redis): of concurrent submits of one token exactly one gets
//     here; the invitation waits in 'accepting'.
//  2. The activation PATCH: state active, traits, address verified, and
//     metadata_public.organizations as it will be once the membership
//     exists. The identity still has no credential, and nobody has a link
//     into it, so nobody can hold a session that shows those claims yet.
//  3. The recovery link (Kratos), not yet handed out.
//  4. Finalize (Redis) is the commit point: the membership is written
//     with the digest of the claims written in 2, and the browser gets the
//     link in 3 only after it.
//
// A failure after 2 (Kratos down for 3, Redis or the seat limit refusing
// 4, the organization deleted) releases the claim; the process dying
// leaves it to the sweeper after accept.claim_timeout. Every release, and
// the organization-gone outcome, queues a claims.sync job in the same
// Redis step (redisx release_claim), which writes the identity's claims
// back to the memberships it has: claims of a membership that was never
// written do not outlive the failure by more than that job. A retry
// activates again (idempotent) and writes the claims again.
//
// In password mode the password is set (a full update) before Finalize:
// the person could sign in before the membership exists, so the claims
// are not folded in and the mirror writes them after the membership, as
// before.
func (a *Acceptor) AcceptNew(ctx context.Context, token string, link Link, s *identity.Session, f Form) (Handoff, error) {
	traits, err := a.checkNew(ctx, link, s, f)
	if err != nil {
		return Handoff{}, err
	}
	inv, err := a.svc.store.Claim(ctx, token, a.cfg.ClaimTimeout)
	if err != nil {
		return Handoff{}, err
	}
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ClaimTimeout)
	defer cancel()
	release := func(cause error) (Handoff, error) {
		if rerr := a.svc.store.Release(kctx, inv.ID); rerr != nil {
			a.svc.log.Warn("could not release an acceptance claim; the sweeper will", "invitation", inv.ID, "err", rerr)
		}
		return Handoff{}, cause
	}
	if !inv.identityCreated || inv.IdentityID == "" {
		// The person signed up through Kratos since the page was shown: the
		// invitation was moved off the placeholder (TakeOver).
		return release(apperr.New(apperr.Forbidden, "existing_account", "you have an account now: sign in to accept this invitation"))
	}
	act := identity.Activation{Email: inv.Email, Traits: traits}
	if f.placeholder != nil && f.placeholder.ID == inv.IdentityID {
		act.Read = f.placeholder
	}
	if a.cfg.LoginMode == "password" {
		act.Password = f.Password
	}
	digest := a.foldClaims(kctx, inv, link, &act)
	if _, err := a.accounts.Activate(kctx, inv.IdentityID, act); err != nil {
		return release(err)
	}
	h, err := a.handoff(kctx, inv)
	if err != nil {
		return release(err)
	}
	fin, err := a.svc.store.Finalize(kctx, inv.ID, inv.IdentityID, inv.Email, digest)
	if err != nil {
		if apperr.CodeOf(err) == "organization_deleted" {
			return Handoff{}, err
		}
		return release(err)
	}
	if digest != "" && !fin.AlreadyMember {
		// Before the browser gets its link: the person's first sign-in
		// refreshes the claims from the index (orgs.Claims.syncAfter).
		if err := a.claims.Index(kctx, inv.OrganizationID, inv.IdentityID); err != nil {
			a.svc.log.Warn("could not index a membership at once; its member.sync job will", "invitation", inv.ID, "err", err)
		}
	}
	a.svc.wake()
	h.AlreadyMember, h.Organization = fin.AlreadyMember, fin.Organization
	return h, nil
}

// checkNew runs AcceptNew's checks that come before the claim: the link is
// live, the visitor may accept it, it is a new person's, the grant holds
// and the form is valid (its traits).
func (a *Acceptor) checkNew(ctx context.Context, link Link, s *identity.Session, f Form) (map[string]any, error) {
	if !link.Live {
		return nil, errLinkUsed()
	}
	if err := CheckVisitor(link.Invitation, true, s); err != nil {
		return nil, err
	}
	if !link.Invitation.identityCreated {
		return nil, apperr.New(apperr.Forbidden, "existing_account", "this invitation is for an existing account: log in to accept it")
	}
	if err := a.svc.CheckGrant(ctx, link.Invitation); err != nil {
		return nil, err
	}
	return a.CheckForm(ctx, link.Invitation, f)
}

// handoff says where the browser goes once the acceptance is written: a
// recovery link (kratos_settings) or the page's own login (password).
func (a *Acceptor) handoff(ctx context.Context, inv Invitation) (Handoff, error) {
	success := a.successURL(inv)
	h := Handoff{ReturnTo: success}
	if a.cfg.LoginMode == "password" {
		h.Login, h.Username = true, inv.Email
		h.RedirectTo = strings.TrimRight(a.cfg.KratosPublicURL, "/") + "/self-service/login/browser?return_to=" + url.QueryEscape(success)
		return h, nil
	}
	link, err := a.accounts.RecoveryLink(ctx, inv.IdentityID, success, 15*time.Minute)
	if err != nil {
		return Handoff{}, err
	}
	h.RedirectTo = link
	return h, nil
}

// foldClaims puts the identity's organizations claims, as they will be
// once it joins the invitation's organization, into the activation PATCH
// (act.MetadataPublic) and returns their digest for Finalize; "" when it
// does not (no mirror, no placeholder read to keep metadata_public's other
// keys from, a password to set, the organization gone, Redis failing):
// then the mirror writes them after the membership, as it always could.
func (a *Acceptor) foldClaims(ctx context.Context, inv Invitation, link Link, act *identity.Activation) string {
	slug := link.Organization["slug"]
	if a.claims == nil || act.Read == nil || act.Password != "" || slug == "" {
		return ""
	}
	claims, err := a.claims.Joining(ctx, inv.IdentityID, orgs.Claim{ID: inv.OrganizationID, Slug: slug, Role: inv.Role})
	if err != nil {
		a.svc.log.Warn("could not compute the claims of an acceptance; the mirror writes them", "invitation", inv.ID, "err", err)
		return ""
	}
	meta := make(map[string]any, len(act.Read.MetadataPublic)+1)
	for k, v := range act.Read.MetadataPublic {
		meta[k] = v
	}
	meta[orgs.ClaimsKey] = claims
	act.MetadataPublic = meta
	return orgs.ClaimsDigest(claims)
}

// ErrWrongAccount means the session belongs to someone the invitation was
// not sent to.
var ErrWrongAccount = apperr.New(apperr.Forbidden, "wrong_account", "this invitation was sent to another address")

// ErrUnverified means the session has the address but has not verified it.
var ErrUnverified = apperr.New(apperr.Forbidden, "address_unverified", "verify your email address first")

// ErrNoSession means the invitation is for an existing account and the
// visitor must sign in first.
var ErrNoSession = apperr.New(apperr.Unauthorized, "no_session", "sign in to accept this invitation")

// CheckVisitor is the session rule of the invitation and activation pages,
// applied on every GET and POST: whenever a Kratos session is present and
// its identity is not the invitation's, nothing is accepted and no session
// is switched (ErrWrongAccount); the invitation stays pending.
//
//   - A person new to Kratos (newPerson) accepts without a session; any
//     session but the invited identity's is another person's.
//   - An invitation to an existing account needs that account's session
//     (ErrNoSession without one), recognised by the invited address,
//     verified (CheckSession).
func CheckVisitor(inv Invitation, newPerson bool, s *identity.Session) error {
	switch {
	case s == nil && newPerson:
		return nil
	case s == nil:
		return ErrNoSession
	case newPerson && (s.Identity == nil || s.Identity.ID != inv.IdentityID):
		return ErrWrongAccount
	case newPerson:
		return nil
	}
	return CheckSession(inv, s)
}

// CheckSession says whether a session may accept an invitation: its
// identity must have the invited address, verified.
func CheckSession(inv Invitation, s *identity.Session) error {
	verified, has := s.Addresses[inv.Email]
	switch {
	case !has:
		return ErrWrongAccount
	case !verified:
		return ErrUnverified
	}
	return nil
}

// Join accepts an invitation for a person who already has a Kratos
// identity and is logged in as the invited address.
func (a *Acceptor) Join(ctx context.Context, token string, link Link, s *identity.Session) (Handoff, error) {
	if !link.Live {
		return Handoff{}, errLinkUsed()
	}
	if err := CheckSession(link.Invitation, s); err != nil {
		return Handoff{}, err
	}
	if err := a.svc.CheckGrant(ctx, link.Invitation); err != nil {
		return Handoff{}, err
	}
	inv, err := a.svc.store.ClaimFor(ctx, token, a.cfg.ClaimTimeout, s.Identity.ID)
	if err != nil {
		return Handoff{}, err
	}
	fin, err := a.svc.store.Finalize(context.WithoutCancel(ctx), inv.ID, s.Identity.ID, inv.Email, "")
	if err != nil {
		if !errors.Is(err, context.Canceled) && apperr.CodeOf(err) != "organization_deleted" {
			_ = a.svc.store.Release(context.WithoutCancel(ctx), inv.ID)
		}
		return Handoff{}, err
	}
	a.svc.wake()
	return Handoff{RedirectTo: a.successURL(inv), ReturnTo: a.successURL(inv), AlreadyMember: fin.AlreadyMember, Organization: fin.Organization}, nil
}

// Whoami exposes the session lookup to the pages.
func (a *Acceptor) Whoami(ctx context.Context, cookie, token string) (*identity.Session, error) {
	return a.accounts.Whoami(ctx, cookie, token)
}

// CheckGrant exposes Service.CheckGrant to the pages, and says as early
// whether the organization has a seat left for a person who is not a
// member yet (Store.CheckSeats).
func (a *Acceptor) CheckGrant(ctx context.Context, inv Invitation) error {
	if err := a.svc.CheckGrant(ctx, inv); err != nil {
		return err
	}
	return a.svc.store.CheckSeats(ctx, inv.OrganizationID)
}

// LogoutURL exposes Kratos' browser logout flow to the pages.
func (a *Acceptor) LogoutURL(ctx context.Context, cookie, returnTo string) (string, error) {
	return a.accounts.LogoutURL(ctx, cookie, returnTo)
}

// Lookup resolves a link for the pages.
func (a *Acceptor) Lookup(ctx context.Context, token string) (Link, error) {
	return a.svc.store.LookupToken(ctx, token)
}
