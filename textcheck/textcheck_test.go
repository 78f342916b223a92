package textcheck

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		reason         Reason // "" when accepted
	}{
		// Accepted, normalised.
		{"plain", "Acme & Co", "Acme & Co", ""},
		{"trimmed and spaces collapsed", "  Acme \t  Co\u00a0 ", "Acme Co", ""},
		{"NFC", "Cafe\u0301", "Café", ""},
		{"markup is text", "<b>Acme</b>", "<b>Acme</b>", ""},
		{"quotes and ampersand", `O'Brien "Team" & Sons`, `O'Brien "Team" & Sons`, ""},
		{"initials are not a host", "J.R.R. Tolkien Society", "J.R.R. Tolkien Society", ""},
		{"framework names", "Node.js and Vue.js Guild", "Node.js and Vue.js Guild", ""},
		{"version numbers", "Release 2.0.1 team", "Release 2.0.1 team", ""},
		{"a colon with a space", "Big data: platform", "Big data: platform", ""},
		{"Persian with ZWNJ", "می\u200cخواهم", "می\u200cخواهم", ""},
		{"emoji ZWJ sequence", "Team 👩\u200d💻", "Team 👩\u200d💻", ""},
		{"Vietnamese", "Công ty Cổ phần", "Công ty Cổ phần", ""},
		{"Japanese", "株式会社アクメ", "株式会社アクメ", ""},
		{"at the limit in runes", strings.Repeat("é", 60), strings.Repeat("é", 60), ""},
		{"www inside a word", "Awww. Cute Co", "Awww. Cute Co", ""},

		// Refused.
		{"empty", "   ", "", Empty},
		{"too long", strings.Repeat("a", 61), "", TooLong},
		{"10 kB", strings.Repeat("Acme ", 2048), "", TooLong},
		{"invalid UTF-8", "Acme\xff", "", InvalidUTF8},
		{"newline", "Acme\nBcc: x@example.com", "", Control},
		{"carriage return", "Acme\r", "", Control},
		{"NUL", "Acme\x00", "", Control},
		{"C1 control", "Acme\u0085", "", Control},
		{"line separator", "Acme\u2028Co", "", Control},
		{"RLO", "Acme \u202egnp.exe", "", Invisible},
		{"LRI isolate", "Acme \u2066x\u2069", "", Invisible},
		{"zero-width space", "pay\u200bpal", "", Invisible},
		{"ZWJ between ASCII letters", "pay\u200dpal", "", Invisible},
		{"ZWNJ at the end", "Acme\u200c", "", Invisible},
		{"BOM", "\ufeffAcme", "", Invisible},
		{"soft hyphen", "Ac\u00adme", "", Invisible},
		{"private use", "Acme \ue000", "", Invisible},
		{"Hangul filler", "\u3164\u3164", "", Invisible},
		{"Zalgo", "A" + strings.Repeat("\u0301", 8), "", Invisible},
		{"http URL", "Spam Co <b>Click http://evil.example/login</b>", "", Link},
		{"any scheme", "Acme foo://bar", "", Link},
		{"scheme with backslashes", `Acme http:\\evil`, "", Link},
		{"mailto", "Write mailto:boss@example.org", "", Link},
		{"javascript", "javascript:alert(1)", "", Link},
		{"upper-case scheme", "HTTPS://EVIL", "", Link},
		{"full-width scheme", "ｈｔｔｐ：／／evil", "", Link},
		{"www", "Visit www.evil", "", Link},
		{"WWW", "WWW.EVIL", "", Link},
		{"host with a path", "evil.example/login", "", Link},
		{"host with a path, unknown TLD", "acme.internal/x", "", Link},
		{"bare host", "Acme paypal.com support", "", Link},
		{"bare host with subdomain", "login.evil.co.uk", "", Link},
		{"email address", "ceo@acme.io", "", Link},
		{"ideographic dot", "paypal。com", "", Link},
		{"full-width dot", "paypal．com", "", Link},
		{"IPv4", "Acme 10.0.0.1", "", Link},
		{"division slash path", "evil.example∕login", "", Link},
		{"punycode", "xn--80ak6aa92e.com", "", Link},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, p := Check(tt.in, 60, true)
			if tt.reason == "" {
				if p != nil || got != tt.want {
					t.Fatalf("Check(%q) = %q, %v; want %q", tt.in, got, p, tt.want)
				}
				return
			}
			if p == nil || p.Reason != tt.reason {
				t.Fatalf("Check(%q) = %q, %v; want reason %s", tt.in, got, p, tt.reason)
			}
		})
	}
}

func TestCheckOptional(t *testing.T) {
	t.Parallel()
	if got, p := Check("  ", 10, false); got != "" || p != nil {
		t.Fatalf("optional empty: %q %v", got, p)
	}
}

func TestNameIsInvalidName(t *testing.T) {
	t.Parallel()
	_, err := Name("inviter.name", "see www.evil.example", 100, true)
	e, ok := apperr.As(err)
	if !ok || e.Kind != apperr.Invalid || e.Code != "invalid_name" || e.Details["field"] != "inviter.name" || e.Details["reason"] != "link" {
		t.Fatalf("Name: %#v", err)
	}
}

// FuzzCheck holds the properties every accepted text must have, whatever
// was typed: valid NFC UTF-8 within the limit, one line, no control,
// format or bidi characters (but the joiners the rule allows), no edge
// spaces, nothing a mail client would link, and stable under a second Check.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"Acme & Co", "Spam Co <b>Click http://evil.example/login</b>", "pay\u200dpal",
		"\u202eevil", "www.x", "a.com", "ｈｔｔｐ：／／x", "J.R.R.", "می\u200cخواهم", "👩\u200d💻", "x\r\ny"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		const max = 64
		out, p := Check(in, max, true)
		if p != nil {
			if out != "" {
				t.Fatalf("refused text returned %q", out)
			}
			return
		}
		if !utf8.ValidString(out) || !norm.NFC.IsNormalString(out) {
			t.Fatalf("%q: not valid NFC", out)
		}
		if n := utf8.RuneCountInString(out); n == 0 || n > max {
			t.Fatalf("%q: %d runes", out, n)
		}
		if out != strings.TrimSpace(out) || strings.Contains(out, "  ") {
			t.Fatalf("%q: spaces not normalised", out)
		}
		for _, r := range out {
			if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Co) {
				t.Fatalf("%q: control or separator %U", out, r)
			}
			if unicode.Is(unicode.Cf, r) && r != '\u200c' && r != '\u200d' {
				t.Fatalf("%q: format character %U", out, r)
			}
		}
		if LooksLikeLink(out) {
			t.Fatalf("%q: accepted but looks like a link", out)
		}
		if again, p := Check(out, max, true); p != nil || again != out {
			t.Fatalf("%q: not stable: %q %v", out, again, p)
		}
	})
}
