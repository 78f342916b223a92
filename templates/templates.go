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
	"os"
	"path/filepath"
	"slices"
	"strings"
	texttemplate "text/template"
	"time"
)

//go:embed mail/* pages/* hooks/*
var embedded embed.FS

// MailSets are the mail kinds; each has <set>_subject.txt, <set>_body.html
// and <set>_body.txt.
var MailSets = []string{"invitation", "reminder", "activation"}

// Renderer holds every parsed template.
type Renderer struct {
	text  map[string]*texttemplate.Template // subjects and text bodies
	html  map[string]*htmltemplate.Template // html bodies
	pages map[string]*htmltemplate.Template // pages, each with the layout
	hooks map[string]*texttemplate.Template // Kratos webhook messages
	// Sources says where each template came from (embedded or a file path).
	Sources map[string]string
}

var funcs = map[string]any{
	"date":     func(t time.Time) string { return t.UTC().Format("January 2, 2006") },
	"datetime": func(t time.Time) string { return t.UTC().Format("January 2, 2006 15:04 UTC") },
}

// New parses the embedded templates, replacing those that overrideDir (if
// not empty) has a file for, and checks each by rendering sample data.
func New(overrideDir string) (*Renderer, error) {
	files, sources, err := collect(overrideDir)
	if err != nil {
		return nil, err
	}
	r := &Renderer{
		text:    map[string]*texttemplate.Template{},
		html:    map[string]*htmltemplate.Template{},
		pages:   map[string]*htmltemplate.Template{},
		hooks:   map[string]*texttemplate.Template{},
		Sources: sources,
	}
	where := func(name string, err error) error {
		return fmt.Errorf("templates: %s: %w", sources[name], err)
	}
	for _, set := range MailSets {
		for _, name := range []string{set + "_subject.txt", set + "_body.txt"} {
			t, err := texttemplate.New(name).Funcs(funcs).Option("missingkey=error").Parse(files[name])
			if err != nil {
				return nil, where(name, err)
			}
			r.text[name] = t
		}
		name := set + "_body.html"
		t, err := htmltemplate.New(name).Funcs(funcs).Option("missingkey=error").Parse(files[name])
		if err != nil {
			return nil, where(name, err)
		}
		r.html[name] = t
	}
	for name := range sources {
		if !strings.HasPrefix(name, "hook_") {
			continue
		}
		t, err := texttemplate.New(name).Option("missingkey=error").Parse(files[name])
		if err != nil {
			return nil, where(name, err)
		}
		r.hooks[name] = t
	}
	layout, ok := files["layout.html"]
	if !ok {
		return nil, errors.New("templates: layout.html is missing")
	}
	for name := range sources {
		// Overrides can only replace known names, so the embedded pages
		// directory lists every page.
		if name == "layout.html" || !isPage(name) {
			continue
		}
		t, err := htmltemplate.New("layout.html").Funcs(funcs).Option("missingkey=error").Parse(layout)
		if err != nil {
			return nil, where("layout.html", err)
		}
		if _, err := t.New(name).Parse(files[name]); err != nil {
			return nil, where(name, err)
		}
		r.pages[name] = t
	}
	if err := r.selfCheck(); err != nil {
		return nil, err
	}
	return r, nil
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
	for _, dir := range []string{"mail", "pages", "hooks"} {
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
		if _, known := files[e.Name()]; !known {
			known := slices.Sorted(func(yield func(string) bool) {
				for k := range files {
					if !yield(k) {
						return
					}
				}
			})
			return nil, nil, fmt.Errorf("templates: %s overrides no template; known names: %s",
				filepath.Join(overrideDir, e.Name()), strings.Join(known, ", "))
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

// Mail renders one mail set ("invitation", "reminder", "activation").
func (r *Renderer) Mail(set string, data MailData) (Mail, error) {
	var m Mail
	subject, err := r.execText(set+"_subject.txt", data)
	if err != nil {
		return m, err
	}
	// A subject is one line: header injection and wrapped templates alike
	// end here.
	m.Subject = strings.Join(strings.Fields(subject), " ")
	if m.Text, err = r.execText(set+"_body.txt", data); err != nil {
		return m, err
	}
	t, ok := r.html[set+"_body.html"]
	if !ok {
		return m, fmt.Errorf("templates: unknown mail set %q", set)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return m, fmt.Errorf("templates: %s: %w", r.Sources[set+"_body.html"], err)
	}
	m.HTML = b.String()
	return m, nil
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

// Page renders a page template inside the layout.
func (r *Renderer) Page(w io.Writer, name string, data any) error {
	t, ok := r.pages[name]
	if !ok {
		return fmt.Errorf("templates: unknown page %q", name)
	}
	return t.ExecuteTemplate(w, "layout.html", data)
}

// HasPage reports whether a page template exists.
func (r *Renderer) HasPage(name string) bool { _, ok := r.pages[name]; return ok }

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

// Render renders any template by name with sample data (the CLI's preview).
func (r *Renderer) Render(w io.Writer, name string) error {
	for _, set := range MailSets {
		// Exact names only: a typo such as invitation_body.htm is unknown,
		// not a preview of the HTML body.
		if name == set+"_subject.txt" || name == set+"_body.txt" || name == set+"_body.html" {
			m, err := r.Mail(set, SampleMailData(set))
			if err != nil {
				return err
			}
			switch {
			case strings.HasSuffix(name, "_subject.txt"):
				_, err = fmt.Fprintln(w, m.Subject)
			case strings.HasSuffix(name, "_body.txt"):
				_, err = io.WriteString(w, m.Text)
			default:
				_, err = io.WriteString(w, m.HTML)
			}
			return err
		}
	}
	if strings.HasPrefix(name, "hook_") {
		if _, ok := r.hooks[name]; ok {
			_, err := fmt.Fprintln(w, r.HookMessage(strings.TrimSuffix(strings.TrimPrefix(name, "hook_"), ".txt"), SampleHookData()))
			return err
		}
	}
	if name == "layout.html" {
		// The layout has no page of its own: preview it around the message page.
		name = "message.html"
	}
	if r.HasPage(name) {
		return r.Page(w, name, SamplePageData(name))
	}
	return fmt.Errorf("templates: unknown template %q; known: %s", name, strings.Join(r.Names(), ", "))
}

func (r *Renderer) selfCheck() error {
	for _, set := range MailSets {
		for _, existing := range []bool{false, true} {
			d := SampleMailData(set)
			d.Invitee.Existing = existing
			if _, err := r.Mail(set, d); err != nil {
				return err
			}
		}
	}
	for name, t := range r.hooks {
		if err := t.Execute(io.Discard, SampleHookData()); err != nil {
			return fmt.Errorf("templates: %s: %w", r.Sources[name], err)
		}
	}
	for name := range r.pages {
		if err := r.Page(io.Discard, name, SamplePageData(name)); err != nil {
			return fmt.Errorf("templates: %s: %w", r.Sources[name], err)
		}
	}
	return nil
}
