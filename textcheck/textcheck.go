// Package textcheck decides whether a short text a person typed (an
// organization name, an inviter's name, a field of the accept form) may be
// shown to other people: in a mail's subject, body and From display name,
// and on pages. It is the one place that rule lives; orgs, invites and the
// Kratos hooks call it wherever such a text enters.
//
// A text is accepted when, after NFC normalisation and trimming, it
//   - is valid UTF-8, not empty (when required), at most the caller's limit
//     in characters;
//   - has no control (Cc), format (Cf: bidi overrides and isolates, zero-width
//     characters, soft hyphens), private-use (Co), line or paragraph
//     separator (Zl, Zp) characters, and no long runs of combining marks; the
//     zero-width joiner and non-joiner are allowed between two non-ASCII
//     letters (Persian, Indic scripts) and the joiner between two symbols
//     (emoji sequences), where they are part of the writing;
//   - does not look like a link to a mail client: no URL scheme ("xxx://",
//     "mailto:", "javascript:"…), no "www.", no host followed by a path
//     ("word.word/"), and no bare host name whose last label is a real
//     top-level domain ("evil.example.com", "paypal.com"), which Gmail,
//     Outlook and Apple Mail turn into links on their own, and no e-mail
//     address ("ada@evil.example"). Look-alike dots,
//     slashes and colons (full-width, ideographic) count as the real ones.
//
// Anything else is allowed, markup included: templates escape it.
package textcheck

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/publicsuffix"
	"golang.org/x/text/unicode/norm"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// Reason says why a text was refused; it is the API's details.reason.
type Reason string

// Reasons a text is refused.
const (
	Empty       Reason = "empty"
	TooLong     Reason = "too_long"
	InvalidUTF8 Reason = "invalid_utf8"
	Control     Reason = "control_character"
	Invisible   Reason = "invisible_character"
	Link        Reason = "link"
)

// Problem is a refused text.
type Problem struct {
	Reason Reason
	Max    int // the limit, for TooLong
}

func (p *Problem) Error() string { return p.Message() }

// Message explains the problem to the person who typed the text.
func (p *Problem) Message() string {
	switch p.Reason {
	case Empty:
		return "it is required"
	case TooLong:
		return fmt.Sprintf("it must be at most %d characters", p.Max)
	case InvalidUTF8:
		return "it is not valid UTF-8"
	case Control:
		return "it must be one line without control characters"
	case Invisible:
		return "it contains invisible or direction-changing characters"
	case Link:
		return "it must not contain a web address or a link"
	}
	return "it is not allowed"
}

// maxMarks is the longest run of combining marks accepted on one letter:
// real scripts (Vietnamese, Hebrew with points) need three or four; more is
// "Zalgo" text that spills over the lines around it.
const maxMarks = 6

// Check normalises s (NFC, trimmed, every run of spaces one ASCII space)
// and returns it, or the first problem found. required=false accepts an
// empty text. max counts characters (runes) after normalisation.
func Check(s string, max int, required bool) (string, *Problem) {
	if !utf8.ValidString(s) {
		return "", &Problem{Reason: InvalidUTF8}
	}
	// Long inputs are refused before any work proportional to them: NFC
	// never shrinks a text to less than a quarter of its bytes.
	if len(s) > 4*max+64 {
		return "", &Problem{Reason: TooLong, Max: max}
	}
	s = norm.NFC.String(s)
	if p := checkRunes(s); p != nil {
		return "", p
	}
	s = collapseSpaces(s)
	if s == "" {
		if required {
			return "", &Problem{Reason: Empty}
		}
		return "", nil
	}
	if utf8.RuneCountInString(s) > max {
		return "", &Problem{Reason: TooLong, Max: max}
	}
	if LooksLikeLink(s) {
		return "", &Problem{Reason: Link}
	}
	return s, nil
}

// Name checks a name field of the API and answers 400 invalid_name with
// details.field and details.reason.
func Name(field, s string, max int, required bool) (string, error) {
	out, p := Check(s, max, required)
	if p != nil {
		return "", apperr.Invalidf("invalid_name", "%s: %s", field, p.Message()).
			WithDetails("field", field, "reason", string(p.Reason))
	}
	return out, nil
}

func checkRunes(s string) *Problem {
	runes := []rune(s)
	marks := 0
	for i, r := range runes {
		switch {
		case r == '\t':
			// Tabs become spaces; any other control character is refused.
		case unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp):
			return &Problem{Reason: Control}
		case r == '\u200c' || r == '\u200d':
			if !joinerAllowed(runes, i) {
				return &Problem{Reason: Invisible}
			}
		case unicode.In(r, unicode.Cf, unicode.Co) || invisibleLetter(r):
			return &Problem{Reason: Invisible}
		}
		if unicode.In(r, unicode.Mn, unicode.Me) {
			if marks++; marks > maxMarks {
				return &Problem{Reason: Invisible}
			}
		} else {
			marks = 0
		}
	}
	return nil
}

// invisibleLetter reports letters and symbols that render as blank space
// without being spaces (fillers, the Braille blank), so a name cannot be
// padded to look empty or to push text out of view.
func invisibleLetter(r rune) bool {
	switch r {
	case '\u115f', '\u1160', '\u3164', '\uffa0', '\u2800', '\u180e':
		return true
	}
	return false
}

// joinerAllowed keeps ZWNJ/ZWJ where a script needs them: between two
// non-ASCII letters or marks, or (ZWJ) between two symbols of an emoji
// sequence. Between ASCII letters they only hide a difference ("pay‍pal").
func joinerAllowed(runes []rune, i int) bool {
	if i == 0 || i == len(runes)-1 {
		return false
	}
	a, b := runes[i-1], runes[i+1]
	letter := func(r rune) bool {
		return r >= utf8.RuneSelf && (unicode.IsLetter(r) || unicode.In(r, unicode.Mn, unicode.Mc))
	}
	if letter(a) && letter(b) {
		return true
	}
	emoji := func(r rune) bool { return unicode.Is(unicode.So, r) || r == '\ufe0f' || unicode.Is(unicode.Sk, r) }
	return runes[i] == '\u200d' && emoji(a) && emoji(b)
}

func collapseSpaces(s string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.TrimFunc(s, unicode.IsSpace) {
		if unicode.IsSpace(r) {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

var (
	// scheme:// in any form, and the schemes mail clients and browsers act
	// on without slashes.
	schemePattern = regexp.MustCompile(`:[/\\]{2}|(?:^|[^a-z0-9])(?:mailto|javascript|vbscript|data|file|tel|sms|callto|sip|sips|intent|skype|tg|whatsapp|ftp|https?|wss?):[^\s]`)
	// www. as a word of its own ("awww." is not one).
	wwwPattern = regexp.MustCompile(`(?:^|[^\p{L}\p{N}])www\.`)
	// A dotted host followed by a slash: "evil.example/login".
	hostPathPattern = regexp.MustCompile(`[\p{L}\p{N}\-_]+(?:\.[\p{L}\p{N}\-_]+)+\.?[/\\]`)
	// An address: clients link it (mailto:) and, in a From display name,
	// it looks like the sender.
	addressPattern = regexp.MustCompile(`[\p{L}\p{N}._%+\-]@[\p{L}\p{N}\-_]+(?:\.[\p{L}\p{N}\-_]+)+`)
	// A dotted name; its last label decides whether it is a host.
	dottedPattern = regexp.MustCompile(`[\p{L}\p{N}\-_]+(?:\.[\p{L}\p{N}\-_]+)+`)
)

// LooksLikeLink reports whether a mail client would show s, or part of it,
// as a link.
func LooksLikeLink(s string) bool {
	f := fold(s)
	// Every pattern below needs one of these: most names have none, and
	// skip the five regular expressions.
	if !strings.ContainsAny(f, ":.@") {
		return false
	}
	if schemePattern.MatchString(f) || wwwPattern.MatchString(f) || hostPathPattern.MatchString(f) || addressPattern.MatchString(f) {
		return true
	}
	for _, host := range dottedPattern.FindAllString(f, -1) {
		if isHost(host) {
			return true
		}
	}
	return false
}

// isHost reports whether a dotted word ends in a real top-level domain
// (ICANN's part of the public suffix list): "acme.io" does, "node.js" and
// "j.r.r" do not. An IPv4 address counts as a host.
func isHost(dotted string) bool {
	dotted = strings.Trim(dotted, ".-_")
	labels := strings.Split(dotted, ".")
	if len(labels) == 4 && allDigits(labels) {
		return true
	}
	last := labels[len(labels)-1]
	if last == "" || allDigits([]string{last}) {
		return false
	}
	_, icann := publicsuffix.PublicSuffix(dotted)
	return icann
}

func allDigits(labels []string) bool {
	for _, l := range labels {
		if l == "" || strings.TrimFunc(l, unicode.IsDigit) != "" {
			return false
		}
	}
	return true
}

// fold makes look-alikes of the characters that form links into the ASCII
// ones: NFKC (full-width letters, ．／：), lower case, and the dots and
// slashes NFKC leaves alone but IDNA or clients treat as separators.
func fold(s string) string {
	s = strings.ToLower(norm.NFKC.String(s))
	return strings.Map(func(r rune) rune {
		switch r {
		case '\u3002', '\uff61', '\u2024', '\ufe52', '\u0701', '\u0702':
			return '.'
		case '\u2215', '\u2044', '\u29f8', '\u2571':
			return '/'
		case '\u2236', '\ua789', '\u02d0', '\u0589':
			return ':'
		}
		return r
	}, s)
}
