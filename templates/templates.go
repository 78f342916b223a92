// Package templates renders kratos-orgs' mail and pages.
//
// Defaults are embedded under django-organizations' names (invitation_subject.txt,
// invitation_body.html, ...). A configured directory overrides any of them by
// file name, as Django's template directories do. Every template is parsed
// and executed against sample data at start-up, so a broken override stops
// the service with its file and line instead of failing a mail later.
package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	texttemplate "text/template"

	"golang.org/x/text/language"
)

//go:embed mail/* pages/* hooks/* messages/*
var embedded embed.FS

// dirs are the embedded directories, each a kind of template.
var dirs = []string{"mail", "pages", "hooks", "messages"}

// MailSets are the mail kinds; each has <set>_subject.txt, <set>_body.html
// and <set>_body.txt.
var MailSets = []string{"invitation", "reminder", "activation"}

// Renderer holds every parsed template.
type Renderer struct {
	// text and html hold mail templates by file name, with the locale if
	// the file has one (invitation_subject.de.txt).
	text  map[string]*texttemplate.Template            // subjects and text bodies
	html  map[string]*htmltemplate.Template            // html bodies
	pages map[string]map[string]*htmltemplate.Template // locale → page → the page with the layout
	hooks map[string]*texttemplate.Template            // Kratos webhook messages

	cat     *catalogue
	locales []string // supported, English first
	matcher language.Matcher
	def     string // the configured default locale
	// Sources says where each template came from (embedded or a file path).
	Sources map[string]string
}

// Options configure a Renderer.
type Options struct {
	// Dir is a directory whose files override the embedded ones by name,
	// or add a locale's versions of them ("" for none).
	Dir string
	// DefaultLocale is the locale of a mail whose invitation and
	// organization name none, and of a page whose visitor's browser asks
	// for none the renderer supports ("": English). It must be supported.
	DefaultLocale string
}

// New parses the embedded templates, replacing those that overrideDir (if
// not empty) has a file for, and checks each by rendering sample data.
func New(overrideDir string) (*Renderer, error) { return Load(Options{Dir: overrideDir}) }

// Load is New with options.
func Load(o Options) (*Renderer, error) {
	files, sources, err := collect(o.Dir)
	if err != nil {
		return nil, err
	}
	r := &Renderer{
		text:    map[string]*texttemplate.Template{},
		html:    map[string]*htmltemplate.Template{},
		pages:   map[string]map[string]*htmltemplate.Template{},
		hooks:   map[string]*texttemplate.Template{},
		locales: locales(files),
		Sources: sources,
	}
	tags := make([]language.Tag, len(r.locales))
	for i, loc := range r.locales {
		tags[i] = language.MustParse(loc)
	}
	r.matcher = language.NewMatcher(tags)
	if r.cat, err = loadCatalogue(files, sources, r.locales); err != nil {
		return nil, err
	}
	if r.def, err = r.defaultLocale(o.DefaultLocale); err != nil {
		return nil, err
	}
	if err := r.parse(files); err != nil {
		return nil, err
	}
	if err := r.selfCheck(); err != nil {
		return nil, err
	}
	return r, nil
}

// defaultLocale checks the configured default: it must be one the
// templates support (a parent counts: de-CH uses de).
func (r *Renderer) defaultLocale(want string) (string, error) {
	if want == "" {
		return BaseLocale.String(), nil
	}
	tag, err := language.Parse(want)
	if err == nil {
		if _, i, conf := r.matcher.Match(tag); conf >= language.High {
			return r.locales[i], nil
		}
	}
	return "", fmt.Errorf("templates: default locale %q is not one the templates have; they have %s", want, strings.Join(r.locales, ", "))
}

// parse parses every template file: mail per file (each with the
// functions of its own locale), pages once per locale.
func (r *Renderer) parse(files map[string]string) error {
	where := func(name string, err error) error {
		return fmt.Errorf("templates: %s: %w", r.Sources[name], err)
	}
	for name, src := range files {
		base, loc, _ := splitLocale(name)
		if loc == "" {
			loc = BaseLocale.String()
		}
		funcs := r.localeFuncs(loc)
		switch {
		case strings.HasSuffix(base, "_subject.txt") || strings.HasSuffix(base, "_body.txt"):
			t, err := texttemplate.New(name).Funcs(funcs).Option("missingkey=error").Parse(src)
			if err != nil {
				return where(name, err)
			}
			r.text[name] = t
		case strings.HasSuffix(base, "_body.html"):
			t, err := htmltemplate.New(name).Funcs(funcs).Option("missingkey=error").Parse(src)
			if err != nil {
				return where(name, err)
			}
			r.html[name] = t
		case strings.HasPrefix(base, "hook_"):
			t, err := texttemplate.New(name).Option("missingkey=error").Parse(src)
			if err != nil {
				return where(name, err)
			}
			r.hooks[name] = t
		}
	}
	if _, ok := files["layout.html"]; !ok {
		return errors.New("templates: layout.html is missing")
	}
	for _, loc := range r.locales {
		if err := r.parsePages(files, loc); err != nil {
			return err
		}
	}
	return nil
}

// parsePages parses every page for one locale: the locale's own version
// of a page or of the layout if there is one (accept.de.html), else the
// default, with the locale's functions.
func (r *Renderer) parsePages(files map[string]string, loc string) error {
	pick := func(base string) string {
		if _, ok := files[localized(base, loc)]; ok {
			return localized(base, loc)
		}
		return base
	}
	r.pages[loc] = map[string]*htmltemplate.Template{}
	layout := pick("layout.html")
	for name := range files {
		// Overrides can only replace known names, so the embedded pages
		// directory lists every page.
		if _, l, _ := splitLocale(name); l != "" || name == "layout.html" || !isPage(name) {
			continue
		}
		t, err := htmltemplate.New("layout.html").Funcs(r.localeFuncs(loc)).Option("missingkey=error").Parse(files[layout])
		if err != nil {
			return fmt.Errorf("templates: %s: %w", r.Sources[layout], err)
		}
		page := pick(name)
		if _, err := t.New(name).Parse(files[page]); err != nil {
			return fmt.Errorf("templates: %s: %w", r.Sources[page], err)
		}
		r.pages[loc][name] = t
	}
	return nil
}

func isPage(name string) bool {
	_, err := fs.Stat(embedded, "pages/"+name)
	return err == nil
}

// collect reads the embedded files and the overrides; an override must
// replace a known template, so a misspelt file name is an error, not ignored.
func collect(overrideDir string) (map[string]string, map[string]string, error) {
	files := map[string]string{}
	sources := map[string]string{}
	for _, dir := range dirs {
		entries, err := fs.ReadDir(embedded, dir)
		if err != nil {
			return nil, nil, err
		}
		for _, e := range entries {
			b, err := embedded.ReadFile(dir + "/" + e.Name())
			if err != nil {
				return nil, nil, err
			}
			files[e.Name()] = string(b)
			sources[e.Name()] = "embedded:" + dir + "/" + e.Name()
		}
	}
	if overrideDir == "" {
		return files, sources, nil
	}
	entries, err := os.ReadDir(overrideDir)
	if err != nil {
		return nil, nil, fmt.Errorf("templates: override directory: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if err := checkOverride(files, e.Name()); err != nil {
			return nil, nil, fmt.Errorf("templates: %s %w", filepath.Join(overrideDir, e.Name()), err)
		}
		path := filepath.Join(overrideDir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("templates: %w", err)
		}
		files[e.Name()] = string(b)
		sources[e.Name()] = path
	}
	return files, sources, nil
}

// checkOverride accepts a file name that replaces a known template or is a
// locale's version of a mail template, a page or the message catalogue.
func checkOverride(embeddedFiles map[string]string, name string) error {
	base, loc, ok := splitLocale(name)
	if !ok {
		return errors.New("names no locale: the part before the extension must be a canonical BCP 47 tag (de, pt-BR)")
	}
	if loc == BaseLocale.String() {
		return errors.New("names English: English is the file without a locale, " + base)
	}
	if _, known := embeddedFiles[base]; known && (loc == "" || !strings.HasPrefix(base, "hook_")) {
		return nil
	}
	known := slices.Sorted(maps.Keys(embeddedFiles))
	return fmt.Errorf("overrides no template; known names: %s (a locale's version adds .<locale> before the extension)",
		strings.Join(known, ", "))
}

// Names lists every template name.
func (r *Renderer) Names() []string {
	var out []string
	for name := range r.Sources {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Mail is a rendered message.
type Mail struct {
	Subject string
	HTML    string
	Text    string
}

// Mail renders one mail set ("invitation", "reminder", "activation") in
// data.Locale (a supported locale; "" or another: the default), each file
// in the locale's version if there is one, else the English one.
func (r *Renderer) Mail(set string, data MailData) (Mail, error) {
	var m Mail
	data.Locale = r.Resolve(data.Locale)
	subject, err := r.execText(r.mailFile(set+"_subject.txt", data.Locale), data)
	if err != nil {
		return m, err
	}
	// A subject is one line: header injection and wrapped templates alike
	// end here.
	m.Subject = strings.Join(strings.Fields(subject), " ")
	if m.Text, err = r.execText(r.mailFile(set+"_body.txt", data.Locale), data); err != nil {
		return m, err
	}
	name := r.mailFile(set+"_body.html", data.Locale)
	t, ok := r.html[name]
	if !ok {
		return m, fmt.Errorf("templates: unknown mail set %q", set)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return m, fmt.Errorf("templates: %s: %w", r.Sources[name], err)
	}
	m.HTML = b.String()
	return m, nil
}

// mailFile is the name of a mail template in locale: its localized file
// if there is one, else the English one.
func (r *Renderer) mailFile(base, locale string) string {
	if name := localized(base, locale); r.Sources[name] != "" {
		return name
	}
	return base
}

func (r *Renderer) execText(name string, data any) (string, error) {
	t, ok := r.text[name]
	if !ok {
		return "", fmt.Errorf("templates: unknown template %q", name)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("templates: %s: %w", r.Sources[name], err)
	}
	return b.String(), nil
}

// localeOf is the locale a page's data asks for (Base.Lang).
type localeOf interface{ pageLocale() string }

// Page renders a page template inside the layout, in the locale of the
// data's Base.Lang (the default if empty or unsupported).
func (r *Renderer) Page(w io.Writer, name string, data any) error {
	loc := r.def
	if l, ok := data.(localeOf); ok {
		loc = r.Resolve(l.pageLocale())
	}
	t, ok := r.pages[loc][name]
	if !ok {
		return fmt.Errorf("templates: unknown page %q", name)
	}
	return t.ExecuteTemplate(w, "layout.html", data)
}

// HasPage reports whether a page template exists.
func (r *Renderer) HasPage(name string) bool { _, ok := r.pages[r.def][name]; return ok }

// HookMessage renders the text of a Kratos webhook message
// (hook_<reason>.txt), on one line.
func (r *Renderer) HookMessage(reason string, data HookData) string {
	name := "hook_" + reason + ".txt"
	t, ok := r.hooks[name]
	if !ok {
		return reason
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return reason
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// Render renders any template by name with sample data (the CLI's
// preview). A locale in the name (invitation_subject.de.txt, accept.de.html)
// renders that locale's version, or what it falls back to.
func (r *Renderer) Render(w io.Writer, name string) error {
	base, loc, ok := splitLocale(name)
	if !ok {
		return fmt.Errorf("templates: unknown template %q; known: %s", name, strings.Join(r.Names(), ", "))
	}
	for _, set := range MailSets {
		// Exact names only: a typo such as invitation_body.htm is unknown,
		// not a preview of the HTML body.
		if base == set+"_subject.txt" || base == set+"_body.txt" || base == set+"_body.html" {
			d := SampleMailData(set)
			d.Locale = loc
			m, err := r.Mail(set, d)
			if err != nil {
				return err
			}
			switch {
			case strings.HasSuffix(base, "_subject.txt"):
				_, err = fmt.Fprintln(w, m.Subject)
			case strings.HasSuffix(base, "_body.txt"):
				_, err = io.WriteString(w, m.Text)
			default:
				_, err = io.WriteString(w, m.HTML)
			}
			return err
		}
	}
	if base == catalogueName && r.Sources[name] != "" {
		return r.writeCatalogue(w, loc)
	}
	if strings.HasPrefix(name, "hook_") {
		if _, ok := r.hooks[name]; ok {
			_, err := fmt.Fprintln(w, r.HookMessage(strings.TrimSuffix(strings.TrimPrefix(name, "hook_"), ".txt"), SampleHookData()))
			return err
		}
	}
	if base == "layout.html" {
		// The layout has no page of its own: preview it around the message page.
		base = "message.html"
	}
	if r.HasPage(base) {
		return r.Page(w, base, SamplePageData(base, loc))
	}
	return fmt.Errorf("templates: unknown template %q; known: %s", name, strings.Join(r.Names(), ", "))
}

func (r *Renderer) selfCheck() error {
	for _, loc := range r.locales {
		for _, set := range MailSets {
			for _, existing := range []bool{false, true} {
				d := SampleMailData(set)
				d.Invitee.Existing, d.Locale = existing, loc
				if _, err := r.Mail(set, d); err != nil {
					return err
				}
			}
		}
		for name := range r.pages[loc] {
			if err := r.Page(io.Discard, name, SamplePageData(name, loc)); err != nil {
				return fmt.Errorf("templates: %s (%s): %w", r.Sources[name], loc, err)
			}
		}
	}
	for name, t := range r.hooks {
		if err := t.Execute(io.Discard, SampleHookData()); err != nil {
			return fmt.Errorf("templates: %s: %w", r.Sources[name], err)
		}
	}
	return nil
}
