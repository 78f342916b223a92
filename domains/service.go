package domains

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// Organizations is what the service needs of the organization store
// (orgs.Store): finding one, and memberships within its seat limit.
type Organizations interface {
	Resolve(ctx context.Context, idOrSlug string) (orgs.Organization, error)
	Get(ctx context.Context, id string) (orgs.Organization, error)
	Member(ctx context.Context, org, identityID string) (orgs.Member, error)
	AddMember(ctx context.Context, org string, m orgs.Member) (orgs.Member, bool, error)
}

// Identities re-reads a person from Kratos' admin API: a webhook body or a
// session is a claim, the identity Kratos stores is the fact.
type Identities interface {
	Get(ctx context.Context, id string) (*identity.Identity, error)
}

// TXTResolver looks up DNS TXT records (net.Resolver; see NewResolver).
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// Options are the service's dependencies.
type Options struct {
	Store      *Store
	Orgs       Organizations
	Identities Identities
	Resolver   TXTResolver
	Roles      orgs.Roles
	// Wake tells the outbox worker a membership was written (its claims
	// sync job); may be nil.
	Wake func()
	// Events records domain.verified in the organization's audit trail
	// and event stream; may be nil.
	Events Recorder
	// Access authorizes org admins on /api (orgs.Service); needed by the
	// *As methods only.
	Access Access
	// VerifyQuota is spent per domain by every DNS check, whoever asks
	// (domains.verify_per_domain); ClaimQuota per organization by every
	// claim on /api (domains.claims_per_organization). nil: unlimited.
	VerifyQuota, ClaimQuota Quota
	// UnverifiedTTL is how long a claim nobody verified holds its domain
	// from other organizations (0: for ever); older, another claim takes
	// it over.
	UnverifiedTTL time.Duration
	Log           *slog.Logger
	Now           func() time.Time
}

// Recorder records a change made outside a script (events.Recorder).
type Recorder interface {
	Record(ctx context.Context, org, typ string, data map[string]any) error
}

// Service holds the rules of domain claims and joins.
type Service struct {
	store    *Store
	orgs     Organizations
	ids      Identities
	resolver TXTResolver
	roles    orgs.Roles
	wake     func()
	events   Recorder
	access   Access

	verifyQuota, claimQuota Quota
	unverifiedTTL           time.Duration

	log *slog.Logger
	now func() time.Time
}

// NewService returns the service.
func NewService(o Options) *Service {
	s := &Service{store: o.Store, orgs: o.Orgs, ids: o.Identities, resolver: o.Resolver, roles: o.Roles,
		wake: o.Wake, events: o.Events, access: o.Access, verifyQuota: o.VerifyQuota, claimQuota: o.ClaimQuota, unverifiedTTL: o.UnverifiedTTL, log: o.Log, now: o.Now}
	if s.verifyQuota == nil {
		s.verifyQuota = noQuota
	}
	if s.claimQuota == nil {
		s.claimQuota = noQuota
	}
	if s.wake == nil {
		s.wake = func() {}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// ClaimRequest is the body of POST /admin/organizations/{org}/domains.
type ClaimRequest struct {
	Domain string `json:"domain"`
	Policy string `json:"policy"`
	Role   string `json:"role"`
}

// checkRole refuses unknown roles and owner: a domain grants its role to
// anyone with an address in it, and ownership is given by a person.
func (s *Service) checkRole(role string) error {
	if err := s.roles.Check(role); err != nil {
		return err
	}
	if role == "owner" {
		return apperr.Invalidf("role_too_high", "a domain cannot grant the owner role").WithDetails("field", "role")
	}
	return nil
}

// Claim makes org claim a domain. The answer carries the token of the DNS
// TXT check once; claiming a domain the organization holds already
// returns its claim without a token and created false. Another
// organization's claim is taken over when that organization is gone, or
// when nobody verified it within UnverifiedTTL of its making (a squatter
// cannot hold a domain for ever).
func (s *Service) Claim(ctx context.Context, ref string, r ClaimRequest) (Domain, bool, error) {
	name, err := Normalize(r.Domain)
	if err != nil {
		return Domain{}, false, err
	}
	if r.Policy == "" {
		r.Policy = Suggest
	}
	if r.Role == "" {
		r.Role = orgs.DefaultRole
	}
	if err := CheckPolicy(r.Policy); err != nil {
		return Domain{}, false, err
	}
	if err := s.checkRole(r.Role); err != nil {
		return Domain{}, false, err
	}
	o, err := s.orgs.Resolve(ctx, ref)
	if err != nil {
		return Domain{}, false, err
	}
	token := newToken()
	d := Domain{Domain: name, Policy: r.Policy, Role: r.Role, CreatedAt: s.now(), tokenHash: hashToken(token)}
	var stale time.Time
	if s.unverifiedTTL > 0 {
		stale = d.CreatedAt.Add(-s.unverifiedTTL)
	}
	out, created, err := s.store.Claim(ctx, o.ID, d, "", stale)
	var taken *TakenError
	if errors.As(err, &taken) && s.gone(ctx, taken.Org) {
		out, created, err = s.store.Claim(ctx, o.ID, d, taken.Org, stale)
	}
	if errors.As(err, &taken) {
		return Domain{}, false, apperr.Conflictf("domain_taken", "%s is claimed by another organization", name).WithDetails("domain", name)
	}
	if err == nil && created {
		out.DNSRecord.Value = token
	}
	return out, created, err
}

// gone reports whether an organization is known not to exist (a failure
// to tell counts as existing: nothing is overwritten on a guess).
func (s *Service) gone(ctx context.Context, org string) bool {
	_, err := s.orgs.Get(ctx, org)
	return apperr.KindOf(err) == apperr.NotFound
}

func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "kratos-orgs-verification=" + base64.RawURLEncoding.EncodeToString(b[:])
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// List returns the domains an organization holds.
func (s *Service) List(ctx context.Context, ref string) ([]Domain, error) {
	o, err := s.orgs.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	return s.store.List(ctx, o.ID)
}

// UpdateRequest is the body of PATCH .../domains/{domain}.
type UpdateRequest struct {
	Policy   *string `json:"policy"`
	Role     *string `json:"role"`
	Verified *bool   `json:"verified"`
}

// Update changes a claim's policy or role, or the operator verifies (or
// un-verifies) the domain.
func (s *Service) Update(ctx context.Context, ref, domain string, r UpdateRequest) (Domain, error) {
	if r.Policy == nil && r.Role == nil && r.Verified == nil {
		return Domain{}, apperr.Invalidf("empty_update", "give policy, role or verified")
	}
	if r.Policy != nil {
		if err := CheckPolicy(*r.Policy); err != nil {
			return Domain{}, err
		}
	}
	if r.Role != nil {
		if err := s.checkRole(*r.Role); err != nil {
			return Domain{}, err
		}
	}
	org, name, err := s.target(ctx, ref, domain)
	if err != nil {
		return Domain{}, err
	}
	var was Domain
	if r.Verified != nil && *r.Verified {
		if was, _, err = s.store.Get(ctx, name); err != nil {
			return Domain{}, err
		}
	}
	d, err := s.store.Update(ctx, org, name, Change{Policy: r.Policy, Role: r.Role, Verified: r.Verified,
		VerifiedBy: VerifiedByOperator, At: s.now()})
	if err == nil && d.Verified && !was.Verified && r.Verified != nil {
		s.verified(ctx, d)
	}
	return d, err
}

// verified records the domain.verified event; the change is made, so a
// failure to record it is logged, not returned.
func (s *Service) verified(ctx context.Context, d Domain) {
	if s.events == nil {
		return
	}
	err := s.events.Record(ctx, d.OrganizationID, "domain.verified", map[string]any{
		"organization_id": d.OrganizationID, "domain": d.Domain, "policy": d.Policy, "role": d.Role, "verified_by": d.VerifiedBy,
	})
	if err != nil {
		s.log.Warn("domain.verified not recorded", "domain", d.Domain, "err", err)
	}
}

// target resolves an organization and normalises a domain of a path.
func (s *Service) target(ctx context.Context, ref, domain string) (org, name string, err error) {
	if name, err = Normalize(domain); err != nil {
		return "", "", apperr.NotFoundf("domain_not_found", "the organization has not claimed %q", domain)
	}
	o, err := s.orgs.Resolve(ctx, ref)
	if err != nil {
		return "", "", err
	}
	return o.ID, name, nil
}

// Release gives a domain up.
func (s *Service) Release(ctx context.Context, ref, domain string) error {
	org, name, err := s.target(ctx, ref, domain)
	if err != nil {
		return err
	}
	return s.store.Release(ctx, org, name)
}

// Verify runs the DNS check: a TXT record at _kratos-orgs.<domain> must
// hold the token the claim returned. A domain verified already stays so.
// Each check of a claimed, unverified domain spends its VerifyQuota.
func (s *Service) Verify(ctx context.Context, ref, domain string) (Domain, error) {
	org, name, err := s.target(ctx, ref, domain)
	if err != nil {
		return Domain{}, err
	}
	d, found, err := s.store.Get(ctx, name)
	if err != nil {
		return Domain{}, err
	}
	if !found || d.OrganizationID != org {
		return Domain{}, errNotClaimed(name)
	}
	if d.Verified {
		return d, nil
	}
	if err := s.verifyQuota(ctx, name); err != nil {
		return Domain{}, err
	}
	// Rooted (trailing dot): one query, never the resolver's search list.
	records, err := s.resolver.LookupTXT(ctx, RecordPrefix+name+".")
	if err != nil && !isNotFound(err) {
		return Domain{}, apperr.Unavailablef(err, "dns_unavailable", "the DNS look-up of %s%s failed; try again", RecordPrefix, name)
	}
	for _, txt := range records {
		if hashToken(strings.TrimSpace(txt)) == d.tokenHash {
			yes := true
			d, err := s.store.Update(ctx, org, name, Change{Verified: &yes, VerifiedBy: VerifiedByDNS, TokenHash: d.tokenHash, At: s.now()})
			if err == nil {
				s.verified(ctx, d)
			}
			return d, err
		}
	}
	return Domain{}, apperr.Conflictf("domain_unverified", "no TXT record at %s%s holds the claim's token", RecordPrefix, name).
		WithDetails("domain", name, "record", RecordPrefix+name, "records_found", len(records))
}

// Lookup returns the live claim of an address' domain: verified, held by
// an active organization. A claim whose organization was deleted is
// dropped here.
func (s *Service) Lookup(ctx context.Context, email string) (Domain, orgs.Organization, bool, error) {
	name := OfAddress(email)
	if name == "" {
		return Domain{}, orgs.Organization{}, false, nil
	}
	d, found, err := s.store.Get(ctx, name)
	if err != nil || !found || !d.Verified {
		return Domain{}, orgs.Organization{}, false, err
	}
	o, err := s.orgs.Get(ctx, d.OrganizationID)
	switch {
	case apperr.KindOf(err) == apperr.NotFound:
		if err := s.store.DropStale(ctx, d.OrganizationID, name); err != nil {
			s.log.Warn("could not drop the claim of a deleted organization", "domain", name, "err", err)
		}
		return Domain{}, orgs.Organization{}, false, nil
	case err != nil:
		return Domain{}, orgs.Organization{}, false, err
	case o.State != orgs.StateActive:
		return Domain{}, orgs.Organization{}, false, nil
	}
	return d, o, true, nil
}

// verifiedAddresses are the addresses Kratos shows verified, normalised
// and without repeats.
func verifiedAddresses(who *identity.Identity) []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range who.VerifiedAddresses {
		a = strings.ToLower(strings.TrimSpace(a))
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}
