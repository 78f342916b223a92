package templates

import "time"

// MailData is what every mail template sees.
type MailData struct {
	Organization Organization
	Inviter      Person
	Invitee      Invitee
	Role         string
	AcceptURL    string
	// LoginURL is where a person who already has an account signs in.
	LoginURL  string
	ExpiresAt time.Time
	// Context holds the invitation's extra variables (django-organizations' **kwargs).
	Context map[string]any
	// Locale is the mail's locale (BCP 47, e.g. "de"): the renderer picks
	// the locale's files by it, and templates may show it.
	Locale string
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
		LoginURL:     "https://auth.example.com/self-service/login/browser",
		ExpiresAt:    time.Date(2030, 1, 8, 12, 0, 0, 0, time.UTC),
		Context:      map[string]any{"team": "Platform"},
	}
}

// Base is what every page's data carries.
type Base struct {
	// Nonce is the request's Content-Security-Policy nonce for the page's
	// own style and script.
	Nonce string
	// Lang is the page's locale, negotiated from the browser's
	// Accept-Language ("": the default locale).
	Lang string
}

func (b Base) pageLocale() string { return b.Lang }

// MessagePage is the data of message.html: a title, some text, an
// optional button and an optional secondary one (e.g. "Cancel").
type MessagePage struct {
	Base
	Title         string
	Paragraphs    []string
	LinkURL       string
	LinkText      string
	SecondaryURL  string
	SecondaryText string
}

// FieldView is one form field of accept.html.
type FieldView struct {
	Name, Label, Value, Error, Autocomplete string
	Required                                bool
	MaxLength                               int
}

// AcceptPage is the data of accept.html (a person new to Kratos).
type AcceptPage struct {
	Base
	Organization, Inviter, Role, Email string
	Action, CSRF, Error                string
	Fields                             []FieldView
	PasswordMode                       bool
	PasswordMin                        int
	PasswordError                      string
	KratosPublicURL                    string
}

// JoinPage is the data of join.html (a person with a Kratos account).
type JoinPage struct {
	Base
	Organization, Inviter, Role, Email string
	Action, CSRF, Error                string
}

// RegisterPage is the data of register.html.
type RegisterPage struct {
	Base
	Action, CSRF, Error string
	Name, Slug, Email   string
	Errors              map[string]string
}

// FlowPage is the data of kratos_flow.html, a Kratos self-service flow.
type FlowPage struct {
	Base
	Title, Action, Method string
	Messages              []FlowMessage
	Forms                 []FlowForm
	Links                 []FlowLink
}

// FlowForm is one group of nodes rendered as its own form.
type FlowForm struct{ Nodes []FlowNode }

// FlowNode is a Kratos UI node.
type FlowNode struct {
	Kind                                            string // hidden, input, submit, text
	ID, Name, InputType, Value, Label, Autocomplete string
	Required, Disabled, Secondary                   bool
	Messages                                        []FlowMessage
}

// FlowMessage is a Kratos UI message.
type FlowMessage struct{ Type, Text string }

// FlowLink is a link under a flow's form.
type FlowLink struct{ URL, Text string }

// WelcomePage is the data of welcome.html.
type WelcomePage struct {
	Base
	Name, Email   string
	Organizations []WelcomeOrg
	// Suggestions are organizations the person may join with one click
	// (a verified address in their suggest domain; package domains).
	Suggestions []WelcomeSuggestion
	LogoutURL   string
}

// WelcomeSuggestion is one organization offered on welcome.html: its
// form posts Domain with CSRF to Action.
type WelcomeSuggestion struct{ Name, Domain, Role, Action, CSRF string }

// WelcomeOrg is one membership on welcome.html; ManageURL links the org
// admins' page when the role may use it.
type WelcomeOrg struct{ Name, Role, ManageURL string }

// SamplePageData returns preview data for a page.
func SamplePageData(name, locale string) any {
	base := Base{Nonce: "sample-nonce", Lang: locale}
	switch name {
	case "message.html":
		return MessagePage{Base: base, Title: "This invitation has expired", Paragraphs: []string{"Ask Ada Lovelace for a new invitation."}}
	case "accept.html":
		return AcceptPage{Base: base, Organization: "Acme & Co", Inviter: "Ada Lovelace", Role: "admin", Email: "grace@example.com",
			Action: "/invitations/accept/0SAMPLE", CSRF: "sample", PasswordMode: true, PasswordMin: 8, KratosPublicURL: "https://auth.example.com",
			Fields: []FieldView{{Name: "name.first", Label: "First name", Required: true, MaxLength: 100}}}
	case "join.html":
		return JoinPage{Base: base, Organization: "Acme & Co", Inviter: "Ada Lovelace", Role: "admin", Email: "grace@example.com", Action: "/x", CSRF: "sample"}
	case "register.html":
		return RegisterPage{Base: base, Action: "/register", CSRF: "sample", Errors: map[string]string{"slug": "That address is taken."}}
	case "kratos_flow.html":
		return FlowPage{Base: base, Title: "Sign in", Action: "https://auth.example.com/self-service/login?flow=1", Method: "POST",
			Forms: []FlowForm{{Nodes: []FlowNode{{Kind: "input", ID: "1", Name: "identifier", InputType: "email", Label: "E-Mail"},
				{Kind: "submit", Name: "method", Value: "password", Label: "Sign in"}}}}}
	case "orgadmin.html":
		return sampleOrgAdminPage(base)
	case "welcome.html":
		return WelcomePage{Base: base, Name: "Grace", Email: "grace@example.com", Organizations: []WelcomeOrg{{Name: "Acme & Co", Role: "admin", ManageURL: "/orgs/acme"}},
			Suggestions: []WelcomeSuggestion{{Name: "Globex", Domain: "globex.example", Role: "member", Action: "/domains/join", CSRF: "sample"}}}
	}
	return base
}

// HookData is what Kratos webhook message templates see.
type HookData struct {
	Email   string
	Domains string // the allowed domains, comma-separated
	Reason  string // what was wrong with a malformed request
}

// SampleHookData is used to check hook templates at start-up.
func SampleHookData() HookData {
	return HookData{Email: "grace@example.com", Domains: "example.com", Reason: "the email trait is missing"}
}
