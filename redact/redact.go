// Package redact masks what must not reach logs verbatim: e-mail addresses
// ("j***@example.com") and bodies of other services' errors, which may
// quote them.
package redact

import (
	"regexp"
	"strings"
)

// Email masks an address to its first character and its domain.
func Email(s string) string {
	at := strings.LastIndexByte(s, '@')
	if at < 1 {
		if at == 0 {
			return "***" + s
		}
		return s
	}
	first := []rune(s[:at])[0]
	return string(first) + "***" + s[at:]
}

var addressPattern = regexp.MustCompile(`[^\s"'<>@,;:()\[\]]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}`)

// maxText is how much of another service's error body a log line keeps.
const maxText = 300

// Text masks every e-mail address in s and cuts it to 300 bytes.
func Text(s string) string {
	s = addressPattern.ReplaceAllStringFunc(s, Email)
	if len(s) > maxText {
		cut := maxText
		for cut > 0 && s[cut]&0xC0 == 0x80 {
			cut-- // not inside a UTF-8 sequence
		}
		s = s[:cut] + "…"
	}
	return s
}
