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
	// InviteEmail and InviteRole refill the invite form after an error;
	// InviteRole is also the upload's preselected role.
	InviteEmail, InviteRole string
	// UploadKey names this rendering's CSV upload form: its results are
	// kept under it, and a second submission of the same form (a reload,
	// a double click) shows them instead of inviting again.
	UploadKey string
	// CSVColumns lists the columns an upload may have; MaxRows is the
	// most rows it may have.
	CSVColumns string
	MaxRows    int
	// Upload is the outcome of the upload the page was redirected from.
	Upload *OrgUploadView
}

// OrgUploadView is the outcome of a CSV upload, row by row.
type OrgUploadView struct {
	Summary []OrgUploadCount // one line per outcome, in a fixed order
	Rows    []OrgUploadRow
}

// OrgUploadCount is how many rows had one outcome.
type OrgUploadCount struct {
	Result, Label string
	Count         int
}

// OrgUploadRow is one row's outcome: Number counts the file's rows after
// the header from 1; Label is the outcome in the page's language and
// Reason why a row was not invited.
type OrgUploadRow struct {
	Number                       int
	Email, Result, Label, Reason string
	Invited                      bool
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
		UploadKey:         "sample-upload-key-0000", MaxRows: 1000, CSVColumns: "email, role, first_name, last_name",
		Upload: &OrgUploadView{
			Summary: []OrgUploadCount{{Result: "created", Label: "Invited", Count: 1}, {Result: "invalid_email", Label: "Not an email address", Count: 1}},
			Rows: []OrgUploadRow{
				{Number: 1, Email: "alan@example.com", Result: "created", Label: "Invited", Invited: true},
				{Number: 2, Email: "alan at example", Result: "invalid_email", Label: "Not an email address", Reason: "Email is not a valid address."},
			},
		},
	}
}
