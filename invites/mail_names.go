package invites

import (
	"context"
	"strings"

	"github.com/kratos-orgs/kratos-orgs/templates"
	"github.com/kratos-orgs/kratos-orgs/textcheck"
)

// maxFromName caps the inviter's part of a From display name: mail clients
// show only the start of it, and a long one can push the real sender out
// of view.
const maxFromName = 64

// inviter is the inviter as the mail shows them. The name is the one given
// with the invitation, else the inviter's Kratos name; either way it passes
// the name rule again here, because a Kratos trait or a name stored before
// the rule existed never went through it. The address, shown in the body
// and used as Reply-To, is set only when Kratos has it verified: an
// unverified one may belong to someone else.
func (m *Mailer) inviter(ctx context.Context, in Inviter) (templates.Person, error) {
	p := templates.Person{ID: in.ID, Name: in.Name}
	if in.ID != "" {
		who, err := m.ids.Get(ctx, in.ID)
		if err != nil {
			return p, err
		}
		if who != nil {
			if who.Verified {
				p.Email = who.Email
			}
			if p.Name == "" {
				p.Name = who.Name
			}
		}
	}
	p.Name = shownName(p.Name, MaxNameLen)
	return p, nil
}

// fromDisplayName derives the From display name from the (checked)
// inviter name: "Ada Lovelace via Example" when mail.from_name is set,
// so the recipient always sees which service sent it and an inviter
// cannot take over the operator's sender name, the inviter's name alone
// otherwise (django-organizations' "<inviter> <DEFAULT_FROM_EMAIL>").
func (m *Mailer) fromDisplayName(inviterName string) string {
	// Quotes and angle brackets are fine in a body, where they are text,
	// but in a From display name they imitate an address part.
	name := strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		if strings.ContainsRune(`"<>\`, r) {
			return ' '
		}
		return r
	}, shownName(inviterName, MaxNameLen))), " ")
	if r := []rune(name); len(r) > maxFromName {
		name = strings.TrimSpace(string(r[:maxFromName-1])) + "…"
	}
	switch {
	case name == "":
		return m.fromName
	case m.fromName == "":
		return name
	}
	return name + " via " + m.fromName
}

// shownName is name if the name rule accepts it within max characters,
// else "": a template then says "You have been invited" instead.
func shownName(name string, max int) string {
	clean, problem := textcheck.Check(name, max, false)
	if problem != nil {
		return ""
	}
	return clean
}

// shownOrgName is the organization's name for a mail, or its slug (only
// [a-z0-9-]) for a name stored before the name rule that it refuses.
func shownOrgName(name, slug string) string {
	if clean := shownName(name, 1000); clean != "" {
		return clean
	}
	return slug
}
