package templates

import (
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/message/catalog"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// Locales
//
// Files without a locale in their name (invitation_subject.txt,
// messages.json) are English and the fallback of every other locale. A
// file named <name>.<locale>.<ext> (invitation_subject.de.txt,
// messages.de.json) is that locale's version; the locales the renderer
// supports are English plus every locale some file names. Mail is rendered
// file by file: a locale missing invitation_body.html uses the English
// one. Pages have one template each and take their text from the message
// catalogue (messages.<locale>.json, key → text with fmt verbs); a key a
// locale lacks shows the English text. Both gaps are what `kratos-orgs
// templates check` reports.

// BaseLocale is the language of the files without a locale in their name.
var BaseLocale = language.English

// catalogueName is the message catalogue's file name (without a locale).
const catalogueName = "messages.json"

// ParseLocale validates a BCP 47 language tag and returns its canonical
// form ("de-at" → "de-AT"); "" stays "". A bad one is a 400 invalid_locale
// naming field.
func ParseLocale(field, s string) (string, error) {
	if s == "" {
		return "", nil
	}
	tag, err := language.Parse(s)
	if err != nil || tag == language.Und || len(s) > 35 {
		return "", apperr.Invalidf("invalid_locale", "%s must be a BCP 47 language tag such as \"de\" or \"pt-BR\"", field).
			WithDetails("field", field, "value", s)
	}
	return tag.String(), nil
}

// splitLocale splits "invitation_subject.de.txt" into the base name
// "invitation_subject.txt" and the locale "de"; a name without a locale
// comes back whole with "". ok is false when the middle part is not a
// canonical language tag.
func splitLocale(name string) (base, locale string, ok bool) {
	parts := strings.Split(name, ".")
	if len(parts) != 3 {
		return name, "", true
	}
	tag, err := language.Parse(parts[1])
	if err != nil || tag.String() != parts[1] || tag == language.Und {
		return name, "", false
	}
	return parts[0] + "." + parts[2], parts[1], true
}

// localized is the file name of base in locale ("" or the base locale:
// base itself).
func localized(base, locale string) string {
	if locale == "" || locale == BaseLocale.String() {
		return base
	}
	i := strings.LastIndexByte(base, '.')
	return base[:i] + "." + locale + base[i:]
}

// locales lists the locales the files name, the base locale first.
func locales(files map[string]string) []string {
	set := map[string]bool{}
	for name := range files {
		if _, loc, ok := splitLocale(name); ok && loc != "" {
			set[loc] = true
		}
	}
	delete(set, BaseLocale.String())
	return append([]string{BaseLocale.String()}, slices.Sorted(maps.Keys(set))...)
}

// catalogue is every locale's messages, the printers that format them and
// the keys each locale lacks.
type catalogue struct {
	printers map[string]*message.Printer
	messages map[string]map[string]string // locale → key → text, as the files say
	missing  map[string][]string          // locale → keys it lacks (English shown)
}

// loadCatalogue parses messages.json and messages.<locale>.json. A locale
// gets every key it lacks in English, so a page never shows a bare key.
func loadCatalogue(files map[string]string, sources map[string]string, locs []string) (*catalogue, error) {
	c := &catalogue{printers: map[string]*message.Printer{}, messages: map[string]map[string]string{}, missing: map[string][]string{}}
	b := catalog.NewBuilder(catalog.Fallback(BaseLocale))
	for _, loc := range locs {
		name := localized(catalogueName, loc)
		msgs := map[string]string{}
		if src, ok := files[name]; ok {
			if err := json.Unmarshal([]byte(src), &msgs); err != nil {
				return nil, fmt.Errorf("templates: %s: %w", sources[name], err)
			}
		}
		c.messages[loc] = msgs
	}
	en := c.messages[BaseLocale.String()]
	for _, loc := range locs {
		tag := language.MustParse(loc)
		for _, key := range slices.Sorted(maps.Keys(en)) {
			text, ok := c.messages[loc][key]
			if !ok {
				text = en[key]
				c.missing[loc] = append(c.missing[loc], key)
			}
			if err := b.SetString(tag, key, text); err != nil {
				return nil, fmt.Errorf("templates: %s: key %s: %w", localized(catalogueName, loc), key, err)
			}
		}
		for key := range c.messages[loc] {
			if _, known := en[key]; !known {
				return nil, fmt.Errorf("templates: %s: key %q is not in %s", sources[localized(catalogueName, loc)], key, catalogueName)
			}
		}
		c.printers[loc] = message.NewPrinter(tag, message.Catalog(b))
	}
	return c, nil
}

// T formats the message key in locale with args (fmt verbs; %[2]s picks
// the second). An unknown locale uses English.
func (r *Renderer) T(locale, key string, args ...any) string {
	p, ok := r.cat.printers[locale]
	if !ok {
		p = r.cat.printers[BaseLocale.String()]
	}
	return p.Sprintf(key, args...)
}

// localeFuncs are the template functions bound to one locale: t (a
// message), tb (a message whose arguments are shown bold, HTML only),
// date and datetime in the locale's format, and lang (the locale).
func (r *Renderer) localeFuncs(locale string) map[string]any {
	return map[string]any{
		"t": func(key string, args ...any) string { return r.T(locale, key, args...) },
		"tb": func(key string, args ...any) htmltemplate.HTML {
			bold := make([]any, len(args))
			for i, a := range args {
				bold[i] = htmltemplate.HTML("<strong>" + htmltemplate.HTMLEscapeString(fmt.Sprint(a)) + "</strong>")
			}
			// The message is the operator's text; only the arguments are data.
			return htmltemplate.HTML(r.T(locale, key, bold...))
		},
		"date":     func(t time.Time) string { return t.UTC().Format(r.T(locale, "format.date")) },
		"datetime": func(t time.Time) string { return t.UTC().Format(r.T(locale, "format.datetime")) },
		"lang":     func() string { return locale },
	}
}

// Locales lists the supported locales, English first.
func (r *Renderer) Locales() []string { return slices.Clone(r.locales) }

// DefaultLocale is the configured default (English unless set).
func (r *Renderer) DefaultLocale() string { return r.def }

// Resolve picks the locale of a mail: the first of candidates (the
// invitation's, then the organization's) that the renderer supports, else
// the configured default. A candidate that is empty, malformed or not
// supported (no file names it, nor a parent of it: de-AT uses de) is
// skipped.
func (r *Renderer) Resolve(candidates ...string) string {
	for _, c := range candidates {
		if c == "" {
			continue
		}
		tag, err := language.Parse(c)
		if err != nil {
			continue
		}
		if _, i, conf := r.matcher.Match(tag); conf >= language.High {
			return r.locales[i]
		}
	}
	return r.def
}

// Negotiate picks a page's locale from an Accept-Language header (q-values
// honoured); no acceptable supported locale gives the configured default.
func (r *Renderer) Negotiate(acceptLanguage string) string {
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(tags) == 0 {
		return r.def
	}
	if _, i, conf := r.matcher.Match(tags...); conf >= language.High {
		return r.locales[i]
	}
	return r.def
}

// Missing lists, per locale other than English, the mail templates and
// message keys it lacks (shown in English instead). Empty means every
// locale is complete.
func (r *Renderer) Missing() map[string][]string {
	out := map[string][]string{}
	for _, loc := range r.locales[1:] {
		var miss []string
		for _, set := range MailSets {
			for _, base := range []string{set + "_subject.txt", set + "_body.txt", set + "_body.html"} {
				if _, ok := r.Sources[localized(base, loc)]; !ok {
					miss = append(miss, localized(base, loc))
				}
			}
		}
		for _, key := range r.cat.missing[loc] {
			miss = append(miss, localized(catalogueName, loc)+": "+key)
		}
		if len(miss) > 0 {
			out[loc] = miss
		}
	}
	return out
}

// writeCatalogue prints a locale's effective messages (its own, and
// English for the keys it lacks) as JSON.
func (r *Renderer) writeCatalogue(w io.Writer, locale string) error {
	if locale == "" {
		locale = BaseLocale.String()
	}
	en := r.cat.messages[BaseLocale.String()]
	out := make(map[string]string, len(en))
	for key, text := range en {
		if own, ok := r.cat.messages[locale][key]; ok {
			text = own
		}
		out[key] = text
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}
