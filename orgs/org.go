// Package orgs holds organizations and their memberships: the types, the
// Redis store, the service with its rules (slugs, roles, the last owner) and
// the admin API handlers.
package orgs

import (
	"slices"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// Organization states. A registration creates a pending organization that
// its activation link makes active.
const (
	StateActive  = "active"
	StatePending = "pending"
)

// Organization is a group of Kratos identities.
type Organization struct {
	ID       string         `json:"id"`
	Slug     string         `json:"slug"`
	Name     string         `json:"name"`
	Metadata map[string]any `json:"metadata"`
	// Locale is the default locale (BCP 47) of the organization's
	// invitation mail; an invitation's own locale wins.
	Locale string `json:"locale,omitempty"`
	State  string `json:"state"`
	Seats  Seats  `json:"seats"`
	// Reminders are the organization's own automatic reminder offsets;
	// absent: the configured ones (invitations.reminders).
	Reminders *Reminders `json:"reminders,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// Seats are an organization's seat limit (max_members; nil: unlimited)
// and what counts against it: members plus pending invitations.
type Seats struct {
	Limit   *int64 `json:"limit"`
	Members int64  `json:"members"`
	Pending int64  `json:"pending"`
}

// MaxSeatLimit bounds max_members.
const MaxSeatLimit = 1_000_000

// CheckSeatLimit validates a max_members value.
func CheckSeatLimit(n int64) error {
	if n < 1 || n > MaxSeatLimit {
		return apperr.Invalidf("invalid_max_members", "max_members must be between 1 and %d, or null for no limit", MaxSeatLimit).
			WithDetails("field", "max_members")
	}
	return nil
}

// Member is one identity's membership of an organization.
type Member struct {
	OrganizationID string    `json:"organization_id"`
	IdentityID     string    `json:"identity_id"`
	Email          string    `json:"email,omitempty"`
	Role           string    `json:"role"`
	JoinedAt       time.Time `json:"joined_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// DefaultRole is the role of an invitation or a member when none is given.
const DefaultRole = "member"

// Roles are ordered from most to least privileged; "owner", "admin" and
// "member" are always present, more come from configuration.
type Roles []string

// Valid reports whether role is known.
func (r Roles) Valid(role string) bool { return slices.Contains(r, role) }

// Check returns an invalid_role error for an unknown role.
func (r Roles) Check(role string) error {
	if !r.Valid(role) {
		return apperr.Invalidf("invalid_role", "unknown role %q", role).WithDetails("role", role, "allowed", []string(r))
	}
	return nil
}

// Ceiling enforces that nobody grants, or acts on, a role above their own
// (role_ceiling, 403).
func (r Roles) Ceiling(callerRole, role string) error {
	if !r.AtLeast(callerRole, role) {
		return apperr.New(apperr.Forbidden, "role_ceiling", "you cannot grant or change the %s role: it is above yours", role).
			WithDetails("role", role, "your_role", callerRole)
	}
	return nil
}

// Within lists the roles a caller may grant: their own and those below it.
func (r Roles) Within(callerRole string) []string {
	i := slices.Index(r, callerRole)
	if i < 0 {
		return nil
	}
	return append([]string(nil), r[i:]...)
}

// AtLeast reports whether role is as privileged as min or more.
func (r Roles) AtLeast(role, min string) bool {
	i, j := slices.Index(r, role), slices.Index(r, min)
	return i >= 0 && j >= 0 && i <= j
}

// Page is one page of a listing.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
	Total      int64  `json:"total"`
}

// CheckCursor refuses a listing cursor that this listing cannot have
// returned (valid says what its next_cursor values look like): 400
// invalid_cursor, as the OpenAPI document says, rather than a page that
// silently starts somewhere else.
func CheckCursor(cursor string, valid func(string) bool) error {
	if cursor == "" || valid(cursor) {
		return nil
	}
	return apperr.Invalidf("invalid_cursor", "the cursor is not one this listing returned; start again without it").
		WithDetails("field", "cursor")
}

// IsID returns a CheckCursor test for ids of a kind (org, inv).
func IsID(kind string) func(string) bool {
	return func(s string) bool { _, ok := redisx.ParseID(kind, s); return ok }
}
