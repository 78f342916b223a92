package invites

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// wantInvalid checks that err is an Invalid error with code and details.field.
func wantInvalid(t *testing.T, err error, code, field string) {
	t.Helper()
	e, ok := apperr.As(err)
	if !ok {
		t.Fatalf("err = %v, want an *apperr.Error with code %s", err, code)
	}
	if e.Kind != apperr.Invalid || e.Code != code || e.Details["field"] != field {
		t.Errorf("err = kind %d code %q field %v (%s), want Invalid %q field %q", e.Kind, e.Code, e.Details["field"], e.Message, code, field)
	}
}

// longDomainAddress returns an address of exactly n bytes made of short
// labels, so only its total length can be at fault.
func longDomainAddress(n int) string {
	s := "ada@example"
	for len(s)+len(".abcdefghij") <= n-len(".com") {
		s += ".abcdefghij"
	}
	return s + strings.Repeat("x", n-len(".com")-len(s)) + ".com"
}

func TestNormalizeEmailAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"  New@Example.COM ", "new@example.com"},
		{"\tADA@EXAMPLE.COM\r\n", "ada@example.com"},
		{"a@b.co", "a@b.co"},
		{"first.last+tag@mail.example.co.uk", "first.last+tag@mail.example.co.uk"},
		{"o'brien@example.com", "o'brien@example.com"},
		{"x_y-z@sub-domain.example.com", "x_y-z@sub-domain.example.com"},
		{"user@123.example.com", "user@123.example.com"},
		{"Ünïcode@Bücher.DE", "ünïcode@bücher.de"},
		{longDomainAddress(254), longDomainAddress(254)},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizeEmail(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestNormalizeEmailRejects(t *testing.T) {
	t.Parallel()
	if n := len(longDomainAddress(255)); n != 255 {
		t.Fatalf("test setup: %d-byte address", n)
	}
	for _, in := range []string{
		"",
		"   ",
		"ada",
		"a@b",            // no dot in the domain
		"Name <a@b.com>", // display name
		"<a@b.com>",
		"a@@b.com",
		"a@b@c.com",
		"@b.com",
		"a@",
		"a@b..com",
		"a@.b.com",
		"a@b.com.",
		".a@b.com",
		"a..b@c.com",
		"a@-b.com",
		"a@b-.com",
		"a@b.-com",
		"a@ex!ample.com",
		"a@b_c.com",
		"a@b.c%m",
		"a@[192.0.2.1]",
		`"a b"@b.com`,
		"a b@c.com",
		"a@b.com (comment)",
		"(comment)a@b.com",
		"a@b.com, c@d.com",
		longDomainAddress(255),
		strings.Repeat("a", 250) + "@example.com",
		"a\x00@b.com",
		"a\x1b@b.com",
		"a\x7f@b.com",
		"a\r\n@b.com",
		"a@b.com\r\nBcc: c@d.com",
		"a\u0085@b.com", // NEL, a C1 control character
		"a\u009b@b.com", // CSI
		"a\xff@b.com",   // invalid UTF-8
		"a@b\xc3.com",
	} {
		t.Run(in, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizeEmail(in)
			if err == nil {
				t.Fatalf("NormalizeEmail(%q) = %q, want an error", in, got)
			}
			if got != "" {
				t.Errorf("NormalizeEmail(%q) returned %q along with its error", in, got)
			}
			wantInvalid(t, err, "invalid_email", "email")
		})
	}
}

var allowedHosts = []string{"app.example.com", "localhost:3000"}

func TestCheckRedirect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw string
		ok  bool
	}{
		{"https://app.example.com/welcome?x=1#done", true},
		{"http://app.example.com", false}, // plain HTTP only for loopback hosts
		{"https://APP.Example.COM/x", true},
		{"HTTPS://app.example.com/", true},
		{"http://localhost:3000/callback", true},
		{"https://app.example.com:8443/", false},
		{"http://localhost/", false},
		{"http://localhost:3001/", false},
		{"https://evil.com/", false},
		{"https://app.example.com.evil.com/", false},
		{"https://evilapp.example.com/", false},
		{"/x", false},
		{"x", false},
		{"", false},
		{"//evil.com", false},
		{"//app.example.com/x", false},
		{"javascript:alert(1)", false},
		{"JavaScript://app.example.com/%0aalert(1)", false},
		{"data:text/html,<script>alert(1)</script>", false},
		{"ftp://app.example.com/", false},
		{"https:app.example.com", false},
		{"https:///app.example.com", false},
		{"https://allowed@evil.com", false},
		{"https://app.example.com@evil.com", false},
		{"https://user:pass@app.example.com/", false},
		{"https://app.example.com@app.example.com/", false},
		{`https://evil.com\@app.example.com`, false},
		{`https://app.example.com\evil.com`, false},
		{`https://app.example.com/\evil.com`, false},
		{"https://app.example.com/\tx", false},
		{"https://app.example.com/\r\nx", false},
		{"https://app.example.com%2f@evil.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			t.Parallel()
			err := CheckRedirect(tt.raw, allowedHosts)
			if tt.ok {
				if err != nil {
					t.Errorf("CheckRedirect(%q) = %v, want accepted", tt.raw, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckRedirect(%q) accepted", tt.raw)
			}
			wantInvalid(t, err, "invalid_redirect", "redirect_to")
		})
	}
}

func TestCheckRedirectWithoutAllowedHosts(t *testing.T) {
	t.Parallel()
	for _, hosts := range [][]string{nil, {}, {""}} {
		if err := CheckRedirect("https://app.example.com/", hosts); err == nil {
			t.Errorf("allowed hosts %q accepted a redirect", hosts)
		}
	}
}

func TestIsUUID(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"7f1b8f0e-0000-4000-8000-000000000000":   true,
		"7F1B8F0E-ABCD-4000-8000-00000000000F":   true,
		"7f1b8f0e00004000800000000000000000":     false,
		"7f1b8f0e-0000-4000-8000-00000000000":    false,
		"7f1b8f0e-0000-4000-8000-0000000000000":  false,
		"7f1b8f0g-0000-4000-8000-000000000000":   false,
		" 7f1b8f0e-0000-4000-8000-000000000000":  false,
		"7f1b8f0e-0000-4000-8000-000000000000\n": false,
		"":                                       false,
	} {
		if got := IsUUID(s); got != want {
			t.Errorf("IsUUID(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestCheckInviter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    *Inviter
		field string // "" when valid
		code  string
	}{
		{"absent", nil, "", ""},
		{"empty", &Inviter{}, "", ""},
		{"id", &Inviter{ID: "7f1b8f0e-0000-4000-8000-000000000000"}, "", ""},
		{"name at the limit in runes", &Inviter{Name: strings.Repeat("é", MaxNameLen)}, "", ""},
		{"id not a uuid", &Inviter{ID: "bob"}, "inviter.id", "invalid_inviter"},
		{"id with a suffix", &Inviter{ID: "7f1b8f0e-0000-4000-8000-000000000000x"}, "inviter.id", "invalid_inviter"},
		{"name too long", &Inviter{Name: strings.Repeat("a", MaxNameLen+1)}, "inviter.name", "invalid_name"},
		{"name with a newline", &Inviter{Name: "Ada\nBcc: x@y.z"}, "inviter.name", "invalid_name"},
		{"name with a carriage return", &Inviter{Name: "Ada\r"}, "inviter.name", "invalid_name"},
		{"name with a URL", &Inviter{Name: "Ada http://evil.example/login"}, "inviter.name", "invalid_name"},
		{"name with www", &Inviter{Name: "Ada www.evil.example"}, "inviter.name", "invalid_name"},
		{"name with RLO", &Inviter{Name: "Ada \u202eecilA"}, "inviter.name", "invalid_name"},
		{"name with a zero-width space", &Inviter{Name: "A\u200bda"}, "inviter.name", "invalid_name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := checkInviter(tt.in)
			if tt.field == "" {
				if err != nil {
					t.Errorf("checkInviter(%+v) = %v", tt.in, err)
				}
				return
			}
			wantInvalid(t, err, tt.code, tt.field)
		})
	}
}

func TestCheckInviterNormalisesTheName(t *testing.T) {
	t.Parallel()
	in := &Inviter{Name: "  Ada \t Love\u0301lace "}
	if err := checkInviter(in); err != nil || in.Name != "Ada Lovélace" {
		t.Fatalf("checkInviter: %v, name %q", err, in.Name)
	}
}

func TestCheckContext(t *testing.T) {
	t.Parallel()
	// {"x":"…"} is 8 bytes plus the string.
	atLimit := map[string]any{"x": strings.Repeat("y", MaxContextSize-8)}
	if b, _ := json.Marshal(atLimit); len(b) != MaxContextSize {
		t.Fatalf("test setup: %d bytes", len(b))
	}
	overLimit := map[string]any{"x": strings.Repeat("y", MaxContextSize-7)}
	for name, c := range map[string]map[string]any{
		"nil":      nil,
		"empty":    {},
		"small":    {"team": "Platform", "n": 3.0, "nested": map[string]any{"a": []any{1.0, "b"}}},
		"at limit": atLimit,
	} {
		if err := checkContext(c); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	wantInvalid(t, checkContext(overLimit), "invalid_context", "context")
	// Escaping counts: "<" is 6 bytes of JSON.
	escaped := map[string]any{"x": strings.Repeat("<", MaxContextSize/6+1)}
	wantInvalid(t, checkContext(escaped), "invalid_context", "context")
}

func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{
		"  New@Example.COM ", "a@b", "Name <a@b.com>", "a@@b.com", "a@b..com", "a@-b.com",
		"\"a b\"@b.com", "a\u0085@b.com", "a\xff@b.com", "İ@example.com", "ǅ@example.com", "a@[1.2.3.4]",
		strings.Repeat("a", 250) + "@example.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out, err := NormalizeEmail(raw)
		if err != nil {
			if out != "" {
				t.Errorf("NormalizeEmail(%q) = %q with error %v", raw, out, err)
			}
			if e, ok := apperr.As(err); !ok || e.Kind != apperr.Invalid || e.Code != "invalid_email" {
				t.Errorf("NormalizeEmail(%q) error %v is not invalid_email", raw, err)
			}
			return
		}
		if out != strings.ToLower(out) {
			t.Errorf("NormalizeEmail(%q) = %q, not lower-case", raw, out)
		}
		if out != strings.TrimSpace(out) || out == "" {
			t.Errorf("NormalizeEmail(%q) = %q, not trimmed", raw, out)
		}
		if len(out) > MaxEmailLen {
			t.Errorf("NormalizeEmail(%q) = %q, %d bytes", raw, out, len(out))
		}
		if !strings.Contains(out, "@") {
			t.Errorf("NormalizeEmail(%q) = %q, no @", raw, out)
		}
		if !utf8.ValidString(out) || strings.ContainsFunc(out, unicode.IsControl) {
			t.Errorf("NormalizeEmail(%q) = %q, invalid UTF-8 or control characters", raw, out)
		}
		// The result comes from the input: nothing is substituted.
		if out != strings.ToLower(strings.TrimSpace(raw)) {
			t.Errorf("NormalizeEmail(%q) = %q, not the trimmed lower-cased input", raw, out)
		}
		again, err := NormalizeEmail(out)
		if err != nil || again != out {
			t.Errorf("NormalizeEmail(%q) = %q, %v; not idempotent", out, again, err)
		}
	})
}

func FuzzCheckRedirect(f *testing.F) {
	for _, s := range []struct{ raw, host string }{
		{"https://app.example.com/x", "app.example.com"},
		{"https://APP.example.com/x", "app.example.com"},
		{"//evil.com", "evil.com"},
		{"https://allowed@evil.com", "evil.com"},
		{`https://evil.com\@app.example.com`, "app.example.com"},
		{"javascript:alert(1)", ""},
		{"http://localhost:3000/cb", "localhost:3000"},
		{"https://[::1]:8080/", "[::1]:8080"},
	} {
		f.Add(s.raw, s.host)
	}
	f.Fuzz(func(t *testing.T, raw, host string) {
		hosts := []string{host, "app.example.com"}
		err := CheckRedirect(raw, hosts)
		if err != nil {
			if e, ok := apperr.As(err); !ok || e.Code != "invalid_redirect" {
				t.Errorf("CheckRedirect(%q) error %v is not invalid_redirect", raw, err)
			}
			return
		}
		u, perr := url.Parse(raw)
		if perr != nil {
			t.Fatalf("accepted %q, which does not parse: %v", raw, perr)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			t.Errorf("accepted %q with scheme %q", raw, u.Scheme)
		}
		if u.Host == "" || (!strings.EqualFold(u.Host, hosts[0]) && !strings.EqualFold(u.Host, hosts[1])) {
			t.Errorf("accepted %q whose host %q is not allowed (%q)", raw, u.Host, hosts)
		}
		if u.User != nil || u.Opaque != "" || strings.ContainsAny(raw, "\\\r\n\t") {
			t.Errorf("accepted %q with credentials, an opaque part or characters browsers rewrite", raw)
		}
	})
}

func TestNormalizeEmailRejectsFormatCharacters(t *testing.T) {
	for _, raw := range []string{"ad\u202emin@example.com", "a\u200db@example.com", "\ufeffa@example.com"} {
		if _, err := NormalizeEmail(raw); err == nil {
			t.Errorf("NormalizeEmail(%q) accepted an invisible formatting character", raw)
		}
	}
}
