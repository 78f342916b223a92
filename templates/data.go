package templates

import "time"

// MailData is what every mail template sees.
type MailData struct {
	Organization Organization
	Inviter      Person
	Invitee      Invitee
	Role         string
	AcceptURL    string
	ExpiresAt    time.Time
	// Context holds the invitation's extra variables (the seed's **kwargs).
	Context map[string]any
}

// Organization as templates see it.
type Organization struct {
	ID   string
	Slug string
	Name string
}

// Person is someone with an optional name and address.
type Person struct {
	ID    string
	Name  string
	Email string
}

// Invitee is the addressee.
type Invitee struct {
	Email string
	// Existing is true when the address already had a Kratos identity.
	Existing bool
}

// SampleMailData is used to check templates at start-up and to preview them.
func SampleMailData(set string) MailData {
	return MailData{
		Organization: Organization{ID: "org_sample", Slug: "acme", Name: "Acme & Co"},
		Inviter:      Person{ID: "7f1b8f0e-0000-4000-8000-000000000000", Name: "Ada Lovelace", Email: "ada@example.com"},
		Invitee:      Invitee{Email: "grace@example.com"},
		Role:         "admin",
		AcceptURL:    "https://orgs.example.com/invitations/accept/0SAMPLE-TOKEN",
		ExpiresAt:    time.Date(2030, 1, 8, 12, 0, 0, 0, time.UTC),
		Context:      map[string]any{"team": "Platform"},
	}
}

// MessagePage is the data of message.html: a title, some text and an
// optional button.
type MessagePage struct {
	Title      string
	Paragraphs []string
	LinkURL    string
	LinkText   string
}

// SamplePageData returns preview data for a page.
func SamplePageData(name string) any {
	switch name {
	case "message.html":
		return MessagePage{Title: "This invitation has expired", Paragraphs: []string{"Ask Ada Lovelace for a new invitation."}}
	}
	return nil
}
