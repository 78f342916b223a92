package invites

import (
	"fmt"
	"time"

	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/textcheck"
)

// OrgAdminInvitation is an invitation as the org admins' API shows it. Any
// customer's org owner can call that API, so nothing in it tells whether an
// address has a Kratos account or which one: no identity_id, no
// existing_identity (the operator's admin API keeps both). accepted_by stays:
// the person who accepted is a member of the caller's organization, listed
// with their identity id by the members endpoint anyway.
type OrgAdminInvitation struct {
	ID             string         `json:"id"`
	OrganizationID string         `json:"organization_id"`
	Email          string         `json:"email"`
	Role           string         `json:"role"`
	Status         Status         `json:"status"`
	Inviter        *Inviter       `json:"inviter,omitempty"`
	Context        map[string]any `json:"context,omitempty"`
	RedirectTo     string         `json:"redirect_to,omitempty"`
	Locale         string         `json:"locale,omitempty"`
	CreatedAt      time.Time      `json:"created_at"`
	UpdatedAt      time.Time      `json:"updated_at"`
	ExpiresAt      time.Time      `json:"expires_at"`
	AcceptedAt     *time.Time     `json:"accepted_at,omitempty"`
	AcceptedBy     string         `json:"accepted_by,omitempty"`
	EndedAt        *time.Time     `json:"ended_at,omitempty"`
	RemindedAt     *time.Time     `json:"reminded_at,omitempty"`
	RemindersSent  int            `json:"reminders_sent"`
	NextReminderAt *time.Time     `json:"next_reminder_at,omitempty"`
	Delivery       Delivery       `json:"delivery"`
}

// ForOrgAdmin returns the org admins' view of an invitation.
func ForOrgAdmin(inv Invitation) OrgAdminInvitation {
	return OrgAdminInvitation{
		ID: inv.ID, OrganizationID: inv.OrganizationID, Email: inv.Email, Role: inv.Role, Status: inv.Status,
		Inviter: inv.Inviter, Context: inv.Context, RedirectTo: inv.RedirectTo, Locale: inv.Locale,
		CreatedAt: inv.CreatedAt, UpdatedAt: inv.UpdatedAt, ExpiresAt: inv.ExpiresAt,
		AcceptedAt: inv.AcceptedAt, AcceptedBy: inv.AcceptedBy, EndedAt: inv.EndedAt, RemindedAt: inv.RemindedAt,
		RemindersSent: inv.RemindersSent, NextReminderAt: inv.NextReminderAt, Delivery: inv.Delivery,
	}
}

func forOrgAdmins(p orgs.Page[Invitation]) orgs.Page[OrgAdminInvitation] {
	out := orgs.Page[OrgAdminInvitation]{Items: make([]OrgAdminInvitation, len(p.Items)), NextCursor: p.NextCursor, Total: p.Total}
	for i, inv := range p.Items {
		out.Items[i] = ForOrgAdmin(inv)
	}
	return out
}

// MaxContextText caps each string of an org admin's context.
const MaxContextText = 1000

// checkContextText applies the name rule to every string an org admin puts
// in an invitation's context: a customized template may show them in the
// mail, and org admins are customers, not the operator. The operator's
// admin API is trusted with links there (an app URL, say).
func checkContextText(c map[string]any) error {
	return walkContext("context", c)
}

func walkContext(path string, v any) error {
	switch x := v.(type) {
	case string:
		_, err := textcheck.Name(path, x, MaxContextText, false)
		return err
	case map[string]any:
		for k, e := range x {
			if err := walkContext(path+"."+k, e); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range x {
			if err := walkContext(fmt.Sprintf("%s[%d]", path, i), e); err != nil {
				return err
			}
		}
	}
	return nil
}
