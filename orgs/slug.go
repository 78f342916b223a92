package orgs

import (
	"regexp"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// MaxSlugLen leaves room for a "-NNNN" suffix within 64 characters.
const MaxSlugLen = 58

var slugPattern = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

// ValidSlug reports whether s is an acceptable explicit slug.
func ValidSlug(s string) bool { return len(s) <= MaxSlugLen && slugPattern.MatchString(s) }

// Slugify makes a slug from a name: accents folded ("Café" → "cafe"),
// anything else that is not a letter or digit becomes a hyphen.
// A name with nothing usable gives "org".
func Slugify(name string) string {
	var b strings.Builder
	hyphen := false
	for _, r := range norm.NFKD.String(strings.ToLower(name)) {
		if b.Len() >= MaxSlugLen {
			break
		}
		switch {
		case unicode.Is(unicode.Mn, r):
			// a combining accent separated by NFKD
		case r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			if hyphen && b.Len() > 0 {
				b.WriteByte('-')
			}
			hyphen = false
			// NFKD can turn a letter without a lower case (ℌ, ᴬ) into an
			// upper-case ASCII one, so lower-case again here.
			b.WriteRune(unicode.ToLower(r))
		default:
			hyphen = true
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > MaxSlugLen {
		s = strings.Trim(s[:MaxSlugLen], "-")
	}
	if s == "" {
		return "org"
	}
	return s
}
