// Package domains is verified-domain auto-join: an organization claims an
// e-mail domain, the operator verifies it (by saying so, or by a DNS TXT
// record the claim asked for), and then a person whose Kratos-verified
// address is in the domain either becomes a member at once (policy
// auto_join) or is offered the organization on kratos-orgs' welcome page
// and joins with one click (policy suggest).
//
// A domain belongs to at most one organization: the claims live in one
// hash in Redis' global tag (redisx.Keyspace.Domains), so taking a domain
// is one atomic check-and-set. Each organization also lists the domains it
// claimed in its own shard (OrgDomains), deleted with the organization.
// The two are in different slots; see store.go for the order of writes and
// how a reader tells the truth from what a crash left behind.
package domains

import (
	"net"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// Policies.
const (
	// AutoJoin makes a person with a verified address in the domain a
	// member as soon as Kratos shows the address verified.
	AutoJoin = "auto_join"
	// Suggest offers the organization on the welcome page; the person
	// joins with one click.
	Suggest = "suggest"
)

// Who verified a domain.
const (
	VerifiedByOperator = "operator"
	VerifiedByDNS      = "dns"
)

// RecordPrefix is the label under which the DNS TXT check looks for the
// claim's token: _kratos-orgs.<domain>.
const RecordPrefix = "_kratos-orgs."

// Domain is an organization's claim on an e-mail domain.
type Domain struct {
	Domain         string     `json:"domain"`
	OrganizationID string     `json:"organization_id"`
	Policy         string     `json:"policy"`
	Role           string     `json:"role"`
	Verified       bool       `json:"verified"`
	VerifiedAt     *time.Time `json:"verified_at,omitempty"`
	VerifiedBy     string     `json:"verified_by,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	// DNSRecord is where the TXT check looks; its value (the token) is
	// shown once, in the claim's answer.
	DNSRecord DNSRecord `json:"dns_record"`

	tokenHash string
}

// DNSRecord is the TXT record that proves control of a domain.
type DNSRecord struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value,omitempty"`
}

// CheckPolicy refuses an unknown policy.
func CheckPolicy(p string) error {
	if p != AutoJoin && p != Suggest {
		return apperr.Invalidf("invalid_policy", "policy must be %s or %s, got %q", AutoJoin, Suggest, p).
			WithDetails("field", "policy", "allowed", []string{AutoJoin, Suggest})
	}
	return nil
}

// Normalize returns a domain's canonical form: lower-case ASCII (an
// internationalised name in its xn-- form), no trailing dot. It refuses
// what is not a registrable host name: IP addresses, single labels, and
// public suffixes (com, co.uk): no organization may claim a whole TLD.
func Normalize(raw string) (string, error) {
	bad := func(why string) error {
		return apperr.Invalidf("invalid_domain", "%q is not a domain an organization can claim: %s", raw, why).
			WithDetails("field", "domain")
	}
	if !utf8.ValidString(raw) || len(raw) > 1024 {
		return "", bad("it is not a short UTF-8 text")
	}
	d := strings.TrimSuffix(strings.TrimSpace(raw), ".")
	if d == "" {
		return "", bad("it is empty")
	}
	if strings.ContainsAny(d, "@/:\\ ") {
		return "", bad("give the domain alone (example.com), not an address or a URL")
	}
	ascii, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return "", bad("it is not a valid host name")
	}
	if net.ParseIP(ascii) != nil {
		return "", bad("it is an IP address")
	}
	if len(ascii) > 253 || !strings.Contains(ascii, ".") {
		return "", bad("it needs at least two labels and at most 253 characters")
	}
	for _, label := range strings.Split(ascii, ".") {
		if !validLabel(label) {
			return "", bad("a label is empty, too long, or holds a character other than a-z, 0-9 and -")
		}
	}
	if etld1, err := publicsuffix.EffectiveTLDPlusOne(ascii); err != nil || len(etld1) > len(ascii) {
		return "", bad("it is a public suffix, shared by many owners")
	}
	return ascii, nil
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// OfAddress is the normalised domain of an e-mail address, or "" when it
// has none that could be claimed.
func OfAddress(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return ""
	}
	d, err := Normalize(email[at+1:])
	if err != nil {
		return ""
	}
	return d
}
