package invites

import (
	"encoding/json"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/textcheck"
)

// MaxEmailLen is RFC 5321's limit on a forward path.
const MaxEmailLen = 254

// NormalizeEmail trims and lower-cases an address and checks that it is a
// bare address (no display name, no comments) of at most 254 characters.
func NormalizeEmail(raw string) (string, error) {
	bad := func(why string) error {
		return apperr.Invalidf("invalid_email", "%q is not a valid email address: %s", raw, why).WithDetails("field", "email")
	}
	// Checked before lower-casing, which would turn invalid bytes into U+FFFD.
	if !utf8.ValidString(raw) {
		return "", bad("it is not valid UTF-8")
	}
	e := strings.ToLower(strings.TrimSpace(raw))
	if e == "" {
		return "", bad("it is empty")
	}
	if len(e) > MaxEmailLen {
		return "", bad("it is longer than 254 characters")
	}
	// net/mail rejects ASCII controls but lets C1 controls (U+0080-U+009F) through.
	if strings.ContainsFunc(e, unicode.IsControl) {
		return "", bad("it contains control characters")
	}
	// Format characters (bidi overrides, zero-width joiners) make an address
	// display as something it is not.
	if strings.ContainsFunc(e, func(r rune) bool { return unicode.Is(unicode.Cf, r) }) {
		return "", bad("it contains invisible formatting characters")
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" {
		return "", bad("expected a bare address like name@example.com")
	}
	at := strings.LastIndexByte(e, '@')
	domain := e[at+1:]
	if at < 1 || !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") ||
		strings.Contains(domain, "..") || strings.ContainsAny(domain, "[]") || !hostLabels(domain) {
		return "", bad("the domain must be a host name like example.com")
	}
	return e, nil
}

// hostLabels reports whether every label of a lower-cased domain is made of
// letters, digits and inner hyphens; net/mail's atoms also allow !#$%&'*+/=?^_`{|}~
// and leading or trailing hyphens. Non-ASCII letters stay allowed
// (internationalized domain names).
func hostLabels(domain string) bool {
	for _, label := range strings.Split(domain, ".") {
		if strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, r := range label {
			if r < utf8.RuneSelf && r != '-' && (r < '0' || r > '9') && (r < 'a' || r > 'z') {
				return false
			}
		}
	}
	return true
}

// CheckRedirect accepts an absolute http(s) URL on an allowed host; relative,
// protocol-relative and foreign URLs are refused (open redirects).
func CheckRedirect(raw string, allowedHosts []string) error {
	bad := func(why string) error {
		return apperr.Invalidf("invalid_redirect", "redirect_to %q is not allowed: %s", raw, why).WithDetails("field", "redirect_to")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return bad("it must be an absolute http(s) URL")
	}
	if u.User != nil {
		return bad("it must not carry credentials")
	}
	if strings.EqualFold(u.Scheme, "http") && !config.IsLoopback(u.Host) {
		return bad("it must be https:// (http:// only for a loopback host)")
	}
	if strings.ContainsAny(raw, "\\\r\n\t") {
		return bad("it contains characters browsers rewrite")
	}
	for _, h := range allowedHosts {
		if strings.EqualFold(u.Host, h) {
			return nil
		}
	}
	return bad("its host is not in invitations.allowed_redirect_hosts")
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// IsUUID reports whether s looks like a Kratos identity id.
func IsUUID(s string) bool { return uuidPattern.MatchString(s) }

// Limits on free-form input.
const (
	MaxNameLen     = 200
	MaxContextSize = 8 << 10
)

func checkInviter(in *Inviter) error {
	if in == nil {
		return nil
	}
	if in.ID != "" && !IsUUID(in.ID) {
		return apperr.Invalidf("invalid_inviter", "inviter.id must be a Kratos identity id (a UUID)").WithDetails("field", "inviter.id")
	}
	name, err := textcheck.Name("inviter.name", in.Name, MaxNameLen, false)
	if err != nil {
		return err
	}
	in.Name = name
	return nil
}

func checkContext(c map[string]any) error {
	if len(c) == 0 {
		return nil
	}
	b, _ := json.Marshal(c)
	if len(b) > MaxContextSize {
		return apperr.Invalidf("invalid_context", "context must be at most %d bytes of JSON", MaxContextSize).WithDetails("field", "context")
	}
	return nil
}
