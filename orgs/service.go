package orgs

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/templates"
	"github.com/kratos-orgs/kratos-orgs/textcheck"
)

// Identities is what the organization service needs from Kratos.
type Identities interface {
	Get(ctx context.Context, id string) (*identity.Identity, error)
}

// Service applies the rules around the store.
type Service struct {
	store *Store
	ids   Identities
	roles Roles
	wake  func()
}

// NewService wires the service; wake is called after writes that queued jobs.
func NewService(store *Store, ids Identities, roles Roles, wake func()) *Service {
	if wake == nil {
		wake = func() {}
	}
	return &Service{store: store, ids: ids, roles: roles, wake: wake}
}

// Store exposes the store.
func (s *Service) Store() *Store { return s.store }

// Roles are the configured roles.
func (s *Service) Roles() Roles { return s.roles }

// Limits on organization fields.
const (
	MaxNameLen     = 200
	MaxMetadataLen = 16 << 10
)

// CreateRequest is the body of POST /admin/organizations.
type CreateRequest struct {
	Name     string         `json:"name"`
	Slug     string         `json:"slug,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
	// Locale is the default locale of the organization's mail (BCP 47).
	Locale string `json:"locale,omitempty"`
	// OwnerIdentityID makes an existing Kratos identity the first owner.
	OwnerIdentityID string `json:"owner_identity_id,omitempty"`
	// MaxMembers limits members plus pending invitations; nil: no limit.
	MaxMembers *int64 `json:"max_members,omitempty"`
	// Owner is a first owner the caller has just read from Kratos itself
	// (a sign-up through Kratos): used as is, Kratos is not asked again.
	Owner *Member `json:"-"`
}

// CheckName validates and normalises an organization name: the rule of
// package textcheck (NFC, one line, no control, format or bidi characters,
// no links) and at most MaxNameLen characters. Every way an organization
// name enters goes through here: the admin API, /register and sign-up
// through Kratos.
func CheckName(name string) (string, error) {
	return textcheck.Name("name", name, MaxNameLen, true)
}

func checkMetadata(m map[string]any) error {
	b, _ := json.Marshal(m)
	if len(b) > MaxMetadataLen {
		return apperr.Invalidf("invalid_metadata", "metadata must be at most %d bytes of JSON", MaxMetadataLen).WithDetails("field", "metadata")
	}
	return nil
}

// CheckSlug validates an explicit slug.
func CheckSlug(slug string) error {
	if !ValidSlug(slug) {
		return apperr.Invalidf("invalid_slug", "slug must be lower-case letters and digits separated by single hyphens, at most %d characters", MaxSlugLen).
			WithDetails("field", "slug")
	}
	return nil
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// lookupIdentity checks that an identity exists in Kratos.
func (s *Service) lookupIdentity(ctx context.Context, field, id string) (*identity.Identity, error) {
	if !uuidPattern.MatchString(id) {
		return nil, apperr.Invalidf("invalid_identity", "%s must be a Kratos identity id (a UUID)", field).WithDetails("field", field)
	}
	who, err := s.ids.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if who == nil {
		return nil, apperr.Invalidf("unknown_identity", "no Kratos identity %s", id).WithDetails("field", field)
	}
	return who, nil
}

// Create makes an organization; a missing slug is derived from the name and
// made unique (acme, acme-2, ...).
func (s *Service) Create(ctx context.Context, r CreateRequest, state string) (Organization, error) {
	name, err := CheckName(r.Name)
	if err != nil {
		return Organization{}, err
	}
	explicit := r.Slug != ""
	slug := r.Slug
	if explicit {
		if err := CheckSlug(slug); err != nil {
			return Organization{}, err
		}
	} else {
		slug = Slugify(name)
	}
	if err := checkMetadata(r.Metadata); err != nil {
		return Organization{}, err
	}
	if r.MaxMembers != nil {
		if err := CheckSeatLimit(*r.MaxMembers); err != nil {
			return Organization{}, err
		}
	}
	locale, err := templates.ParseLocale("locale", r.Locale)
	if err != nil {
		return Organization{}, err
	}
	owner := r.Owner
	if owner == nil && r.OwnerIdentityID != "" {
		who, err := s.lookupIdentity(ctx, "owner_identity_id", r.OwnerIdentityID)
		if err != nil {
			return Organization{}, err
		}
		owner = &Member{IdentityID: who.ID, Email: who.Email, Role: "owner"}
	}
	o, err := s.store.Create(ctx, Organization{Name: name, Slug: slug, Metadata: r.Metadata, Locale: locale, State: state,
		Seats: Seats{Limit: r.MaxMembers}}, explicit, owner)
	if err == nil && owner != nil {
		s.wake()
	}
	return o, err
}

// UpdateRequest is the body of PATCH /admin/organizations/{org}.
type UpdateRequest struct {
	Name     *string        `json:"name,omitempty"`
	Slug     *string        `json:"slug,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
	// Locale sets the default locale of the organization's mail; ""
	// removes it (the configured default applies).
	Locale *string `json:"locale,omitempty"`
	// MaxMembers sets the seat limit; null removes it; absent leaves it.
	MaxMembers NullableInt `json:"max_members"`
	// Reminders sets the organization's own automatic reminder offsets;
	// null removes them (the configured ones apply); absent leaves them.
	Reminders NullableReminders `json:"reminders"`
}

// NullableInt is a JSON number that may also be null or absent (Set
// false), so that null can mean "remove" and absent "leave alone".
type NullableInt struct {
	Set   bool
	Value *int64
}

// UnmarshalJSON records that the field was present.
func (n *NullableInt) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(b) == "null" {
		n.Value = nil
		return nil
	}
	var v int64
	if err := json.Unmarshal(b, &v); err != nil {
		return errors.New("max_members must be an integer or null")
	}
	n.Value = &v
	return nil
}

// seatLimitUpdate turns a request's max_members into Update.MaxMembers.
func seatLimitUpdate(n NullableInt) (*int64, error) {
	if !n.Set {
		return nil, nil
	}
	var v int64
	if n.Value != nil {
		if err := CheckSeatLimit(*n.Value); err != nil {
			return nil, err
		}
		v = *n.Value
	}
	return &v, nil
}

// Update changes name, slug, metadata (replaced whole), locale, the seat
// limit or the reminder offsets.
// A limit below what is used is allowed: nothing is removed, new
// invitations and acceptances are refused until seats are free.
func (s *Service) Update(ctx context.Context, ref string, r UpdateRequest) (Organization, error) {
	var u Update
	limit, err := seatLimitUpdate(r.MaxMembers)
	if err != nil {
		return Organization{}, err
	}
	u.MaxMembers = limit
	if u.Reminders, err = reminderUpdate(r.Reminders); err != nil {
		return Organization{}, err
	}
	if r.Name != nil {
		name, err := CheckName(*r.Name)
		if err != nil {
			return Organization{}, err
		}
		u.Name = &name
	}
	if r.Slug != nil {
		if err := CheckSlug(*r.Slug); err != nil {
			return Organization{}, err
		}
		u.Slug = r.Slug
	}
	if r.Metadata != nil {
		if err := checkMetadata(r.Metadata); err != nil {
			return Organization{}, err
		}
		u.Metadata = r.Metadata
	}
	if r.Locale != nil {
		locale, err := templates.ParseLocale("locale", *r.Locale)
		if err != nil {
			return Organization{}, err
		}
		u.Locale = &locale
	}
	id, err := s.store.ResolveID(ctx, ref)
	if err != nil {
		return Organization{}, err
	}
	return s.store.Update(ctx, id, u)
}

// Delete removes an organization, revoking its pending invitations.
func (s *Service) Delete(ctx context.Context, ref string) (int, error) {
	id, err := s.store.ResolveID(ctx, ref)
	if err != nil {
		return 0, err
	}
	n, err := s.store.Delete(ctx, id)
	if err == nil {
		s.wake()
	}
	return n, err
}

// AddMemberRequest is the body of POST /admin/organizations/{org}/members.
type AddMemberRequest struct {
	IdentityID string `json:"identity_id"`
	Role       string `json:"role"`
}

// AddMember adds an existing Kratos identity directly (operators, imports).
func (s *Service) AddMember(ctx context.Context, ref string, r AddMemberRequest) (Member, bool, error) {
	if r.Role == "" {
		r.Role = DefaultRole
	}
	if err := s.roles.Check(r.Role); err != nil {
		return Member{}, false, err
	}
	id, err := s.store.ResolveID(ctx, ref)
	if err != nil {
		return Member{}, false, err
	}
	who, err := s.lookupIdentity(ctx, "identity_id", r.IdentityID)
	if err != nil {
		return Member{}, false, err
	}
	m, added, err := s.store.AddMember(ctx, id, Member{IdentityID: who.ID, Email: who.Email, Role: r.Role})
	if err == nil && added {
		s.wake()
	}
	return m, added, err
}

// SetRole changes a member's role.
func (s *Service) SetRole(ctx context.Context, ref, identityID, role string) (Member, error) {
	if err := s.roles.Check(role); err != nil {
		return Member{}, err
	}
	id, err := s.store.ResolveID(ctx, ref)
	if err != nil {
		return Member{}, err
	}
	m, err := s.store.SetRole(ctx, id, identityID, role)
	if err == nil {
		s.wake()
	}
	return m, err
}

// RemoveMember ends a membership.
func (s *Service) RemoveMember(ctx context.Context, ref, identityID string) error {
	id, err := s.store.ResolveID(ctx, ref)
	if err != nil {
		return err
	}
	_, err = s.store.RemoveMember(ctx, id, identityID)
	if err == nil {
		s.wake()
	}
	return err
}
