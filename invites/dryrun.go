package invites

import (
	"context"
	"slices"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// Dry runs
//
// POST .../invitations?dry_run=true checks an invitation as the real call
// would (the same validation, role ceiling and organization rules, the same
// structured errors) and renders the mail it would send, but writes nothing
// to Redis and calls none of Kratos' write APIs. The link in the mail is
// DryRunLink: no token is ever made.
//
// The operator's dry run reads Kratos (the inviter, and whether the address
// has an account, which decides the mail's wording). The org admins' dry
// run does not look the address up: the answer would tell whether it has an
// account (issue 10), so its mail is the one a person new to Kratos gets.

// DryRunToken stands where the token would be in a dry run's link.
const DryRunToken = "DRY-RUN-NO-TOKEN"

// PreviewMail is the mail a dry run would send.
type PreviewMail struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
	Text    string `json:"text"`
	HTML    string `json:"html"`
}

// DryRun is what the operator's dry run answers: the invitation as it would
// be (id only when a pending invitation would be re-issued), and its mail
// (nil with send_email false).
type DryRun struct {
	Invitation
	ID      string       `json:"id,omitempty"`
	DryRun  bool         `json:"dry_run"`
	Created bool         `json:"created"` // false: the pending invitation would be re-issued
	Mail    *PreviewMail `json:"mail,omitempty"`
}

// OrgAdminDryRun is the org admins' view of a dry run.
type OrgAdminDryRun struct {
	OrgAdminInvitation
	ID      string       `json:"id,omitempty"`
	DryRun  bool         `json:"dry_run"`
	Created bool         `json:"created"`
	Mail    *PreviewMail `json:"mail"`
}

// ForOrgAdminDryRun returns the org admins' view of a dry run.
func ForOrgAdminDryRun(d DryRun) OrgAdminDryRun {
	return OrgAdminDryRun{OrgAdminInvitation: ForOrgAdmin(d.Invitation), ID: d.ID, DryRun: true, Created: d.Created, Mail: d.Mail}
}

// mailPreviewer renders the mail of an invitation that is not stored
// (Mailer).
type mailPreviewer interface {
	Preview(ctx context.Context, inv Invitation, org orgs.Organization, link, set string) (PreviewMail, error)
}

// organizationReader reads an organization (orgs.Store).
type organizationReader interface {
	Get(ctx context.Context, id string) (orgs.Organization, error)
}

// Previewer runs dry runs: the service's checks, then the mailer's
// rendering.
type Previewer struct {
	svc  *Service
	orgs organizationReader
	mail mailPreviewer
}

// NewPreviewer wires the dry runs.
func NewPreviewer(svc *Service, o organizationReader, m mailPreviewer) *Previewer {
	return &Previewer{svc: svc, orgs: o, mail: m}
}

// Invite is the operator's dry run of Service.Invite.
func (p *Previewer) Invite(ctx context.Context, orgRef string, r InviteRequest) (DryRun, error) {
	email, ttl, err := p.svc.validate(&r)
	if err != nil {
		return DryRun{}, err
	}
	if err := p.svc.checkInviterExists(ctx, r.Inviter); err != nil {
		return DryRun{}, err
	}
	return p.run(ctx, orgRef, r, email, ttl, grant{})
}

// InviteAs is the org admins' dry run of Service.InviteAs.
func (p *Previewer) InviteAs(ctx context.Context, orgRef string, who Actor, r InviteRequest) (DryRun, error) {
	r.UniformKratosWork = true
	g, email, ttl, err := p.svc.checkAs(who, &r)
	if err != nil {
		return DryRun{}, err
	}
	return p.run(ctx, orgRef, r, email, ttl, g)
}

// run checks the organization, the address and a pending invitation for
// it as the create script would, then renders the mail.
func (p *Previewer) run(ctx context.Context, orgRef string, r InviteRequest, email string, ttl time.Duration, g grant) (DryRun, error) {
	orgID, err := p.svc.orgs.ResolveID(ctx, orgRef)
	if err != nil {
		return DryRun{}, err
	}
	org, err := p.orgs.Get(ctx, orgID)
	if err != nil {
		return DryRun{}, err
	}
	if org.State != orgs.StateActive {
		return DryRun{}, apperr.Conflictf("organization_inactive", "the organization is not active yet")
	}
	now := p.svc.now()
	send := r.SendEmail == nil || *r.SendEmail
	inv := Invitation{
		OrganizationID: org.ID, Email: email, Role: r.Role, Status: Pending, Inviter: r.Inviter, Context: r.Context,
		RedirectTo: r.RedirectTo, Locale: r.Locale, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(ttl),
		Delivery: Delivery{Status: DeliveryQueued},
	}
	if !send {
		inv.Delivery.Status = DeliverySkipped
		inv.AcceptURL = p.svc.LinkURL(inv, DryRunToken)
	}
	if !r.UniformKratosWork {
		if inv.ExistingIdentity, err = p.existing(ctx, org.ID, email); err != nil {
			return DryRun{}, err
		}
	}
	d := DryRun{Invitation: inv, DryRun: true, Created: true}
	if err := p.pending(ctx, &d, g); err != nil {
		return DryRun{}, err
	}
	if send {
		m, err := p.mail.Preview(ctx, d.Invitation, org, p.svc.LinkURL(inv, DryRunToken), "invitation")
		if err != nil {
			return DryRun{}, err
		}
		d.Mail = &m
	}
	return d, nil
}

// existing reads (never writes) Kratos: whether the address has an account
// of its own (a placeholder kratos-orgs made does not count), and refuses
// one whose identity is a member already, as the create script would.
func (p *Previewer) existing(ctx context.Context, org, email string) (bool, error) {
	who, err := p.svc.ids.FindByEmail(ctx, email)
	if err != nil || who == nil {
		return false, err
	}
	_, err = p.svc.orgs.Member(ctx, org, who.ID)
	switch {
	case err == nil:
		return false, apperr.Conflictf("already_member", "%s is already a member of the organization", email).
			WithDetails("email", email, "identity_id", who.ID)
	case apperr.CodeOf(err) != "member_not_found":
		return false, err
	}
	return !(who.CreatedByUs && who.State == "inactive"), nil
}

// pending finds a pending invitation for the address, which the real call
// would re-issue (within the caller's ceiling) instead of creating one.
func (p *Previewer) pending(ctx context.Context, d *DryRun, g grant) error {
	cur, ok, err := p.svc.store.PendingFor(ctx, d.OrganizationID, d.Email)
	if err != nil || !ok {
		return err
	}
	if cur.claimed {
		return apperr.Conflictf("invitation_accepting", "the pending invitation for %s is being accepted right now", d.Email)
	}
	if g.within != nil && !slices.Contains(g.within, cur.Role) {
		return apperr.New(apperr.Forbidden, "role_ceiling", "a pending invitation for %s grants the %s role, which is above yours", d.Email, cur.Role).
			WithDetails("role", cur.Role)
	}
	d.ID, d.Created, d.CreatedAt = cur.ID, false, cur.CreatedAt
	return nil
}

// Rotation is the dry run of Service.Resend (remind false; send false
// returns the placeholder link instead of a mail) and of Service.Remind:
// the checks the rotate script makes (the invitation is pending and not
// being accepted; a reminder not within invitations.remind_interval of the
// last one, the same 429), and the mail it would send. Redis and Kratos
// are only read; no token is made, and no quota of the real call is spent.
func (p *Previewer) Rotation(ctx context.Context, id string, remind, send bool) (DryRun, error) {
	inv, err := p.svc.store.Get(ctx, id)
	if err != nil {
		return DryRun{}, err
	}
	if inv.Status != Pending || inv.claimed {
		return DryRun{}, notPending(inv)
	}
	now := p.svc.now()
	set := "invitation"
	if remind {
		set = "reminder"
		if inv.RemindedAt != nil {
			if wait := inv.RemindedAt.Add(p.svc.cfg.RemindInterval).Sub(now); wait > 0 {
				return DryRun{}, errRemindTooSoon(wait)
			}
		}
		inv.RemindersSent++
		t := now
		inv.RemindedAt = &t
	} else {
		inv.ExpiresAt = now.Add(inv.ttl)
	}
	inv.UpdatedAt = now
	inv.Delivery = Delivery{Status: DeliveryQueued, UpdatedAt: &now}
	d := DryRun{Invitation: inv, ID: inv.ID, DryRun: true}
	if !send {
		d.Delivery.Status = DeliverySkipped
		d.AcceptURL = p.svc.LinkURL(inv, DryRunToken)
		return d, nil
	}
	org, err := p.orgs.Get(ctx, inv.OrganizationID)
	if err != nil {
		return DryRun{}, err
	}
	m, err := p.mail.Preview(ctx, inv, org, p.svc.LinkURL(inv, DryRunToken), set)
	if err != nil {
		return DryRun{}, err
	}
	d.Mail = &m
	return d, nil
}
