package templates

import "time"

// OrgAdminPage is the data of orgadmin.html, the page where an
// organization's owners and admins manage members and invitations.
type OrgAdminPage struct {
	Base
	Organization string
	YourRole     string
	// Path is the page's own path (/orgs/{org}); the forms post below it.
	Path   string
	CSRF   string
	Notice string // what the last action did (after its redirect)
	Error  string // why the last action failed
	// Roles are those the caller may grant: their own and those below.
	Roles       []string
	Members     []OrgMemberView
	Invitations []OrgInvitationView
	// InvitationActions are the buttons of a pending invitation's row
	// (resend, remind, revoke), each posting to {Path}/invitations/{id}/{action}.
	InvitationActions []string
	// MoreMembers and MoreInvitations link to the next page ("" for none).
	MoreMembers, MoreInvitations string
	// InviteEmail and InviteRole refill the invite form after an error.
	InviteEmail, InviteRole string
}

// OrgMemberView is one member row.
type OrgMemberView struct {
	IdentityID, Email, Role string
	JoinedAt                time.Time
	You                     bool // the caller's own row
	CanManage               bool // within the caller's role ceiling
}

// OrgInvitationView is one pending invitation row.
type OrgInvitationView struct {
	ID, Email, Role, Status string
	ExpiresAt               time.Time
	RemindedAt              *time.Time
	CanManage               bool
	// Delivery is the state of the latest mail, nil when unknown.
	Delivery *DeliveryView
}

// DeliveryView is an invitation mail's delivery state as the page shows
// it: Label is the status in the page's language, Reason the provider's
// or the outbox's word for a failure.
type DeliveryView struct {
	Status, Label, Reason string
	At                    *time.Time
}

func sampleOrgAdminPage(base Base) OrgAdminPage {
	at := time.Date(2030, 1, 2, 9, 30, 0, 0, time.UTC)
	return OrgAdminPage{
		Base: base, Organization: "Acme & Co", YourRole: "admin", Path: "/orgs/acme", CSRF: "sample",
		Notice: "Invitation sent.", Roles: []string{"admin", "member"},
		Members: []OrgMemberView{
			{IdentityID: "7f1b8f0e-0000-4000-8000-000000000000", Email: "ada@example.com", Role: "owner", JoinedAt: at},
			{IdentityID: "7f1b8f0e-0000-4000-8000-000000000001", Email: "grace@example.com", Role: "admin", JoinedAt: at, You: true},
			{IdentityID: "7f1b8f0e-0000-4000-8000-000000000002", Email: "linus@example.com", Role: "member", JoinedAt: at, CanManage: true},
		},
		Invitations: []OrgInvitationView{
			{ID: "inv_sample", Email: "alan@example.com", Role: "member", Status: "pending", ExpiresAt: at, CanManage: true,
				Delivery: &DeliveryView{Status: "bounced", Label: "Bounced", Reason: "mailbox does not exist", At: &at}},
		},
		InvitationActions: []string{"resend", "remind", "revoke"},
		MoreMembers:       "/orgs/acme?members=7f1b8f0e-0000-4000-8000-000000000002",
	}
}
