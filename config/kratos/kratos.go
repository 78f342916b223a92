// Package kratos generates the Kratos configuration that attaches a Kratos
// v1.3 to kratos-orgs: its UI pages on kratos-orgs' public listener, its
// webhooks on the admin one, with the jsonnet bodies of this folder inline.
// `kratos-orgs kratos-config`, `make dev` and the end-to-end tests all use
// Generate, so what the README tells operators is what the tests run.
package kratos

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/template"
)

//go:embed kratos.yml.tmpl *.jsonnet identity.schema.json
var files embed.FS

// Hooks names the webhook bodies (jsonnet files of this folder) the
// configuration wires; each has a route of the same name under /hooks/.
var Hooks = []string{"registration-pre", "registration-post", "verification-after", "login-after", "settings-after"}

// Options describe where things are. URLs have no trailing slash.
type Options struct {
	SidecarURL      string // kratos-orgs' public listener, as browsers reach it
	SidecarAdminURL string // kratos-orgs' admin listener, as Kratos reaches it
	KratosPublicURL string // Kratos' public API, as browsers reach it
	KratosAdminURL  string // Kratos' admin API
	// Host is the address Kratos' listeners bind (default 127.0.0.1);
	// PublicPort and AdminPort their ports (default: the URLs' ports).
	Host                  string
	PublicPort, AdminPort int
	HooksSecret           string // kratos-orgs' hooks.secret (16+ characters)
	// SchemaURL is the identity schema (file://, https:// or base64://);
	// empty: the example schema of this folder, inline.
	SchemaURL string
	SchemaID  string // default "default"
	SMTPURI   string // Kratos' courier; default a local development relay
	// CookieSecret and CipherSecret are Kratos' own secrets; empty: random
	// (the cipher secret is exactly 32 characters).
	CookieSecret, CipherSecret string
	// Dev uses fixed development secrets and a fast password hash.
	Dev bool
}

// Body returns the named jsonnet body.
func Body(name string) ([]byte, error) { return files.ReadFile(name + ".jsonnet") }

// Generate renders kratos.yml for o.
func Generate(o Options) ([]byte, error) {
	data, err := o.data()
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New("kratos.yml.tmpl").Option("missingkey=error").ParseFS(files, "kratos.yml.tmpl")
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, data); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

type templateData struct {
	Options
	KratosPublicPort, KratosAdminPort string
	HaveIBeenPwned                    bool
	LogLevel                          string
	Bodies                            map[string]string
}

func (o Options) data() (templateData, error) {
	d := templateData{Options: o, LogLevel: "info", HaveIBeenPwned: !o.Dev, Bodies: map[string]string{}}
	if o.Dev {
		d.LogLevel = "warning"
	}
	var err error
	for _, u := range []struct {
		name string
		val  *string
		port *string
	}{
		{"sidecar public URL", &d.SidecarURL, nil},
		{"sidecar admin URL", &d.SidecarAdminURL, nil},
		{"Kratos public URL", &d.KratosPublicURL, &d.KratosPublicPort},
		{"Kratos admin URL", &d.KratosAdminURL, &d.KratosAdminPort},
	} {
		var port string
		if *u.val, port, err = checkURL(u.name, *u.val); err != nil {
			return d, err
		}
		if u.port != nil {
			*u.port = port
		}
	}
	if len(o.HooksSecret) < 16 || strings.ContainsAny(o.HooksSecret, "\n\r\"'#: ") {
		return d, errors.New("the hooks secret must be 16+ characters without spaces, quotes, '#' or ':' (kratos-orgs' hooks.secret)")
	}
	if o.PublicPort > 0 {
		d.KratosPublicPort = strconv.Itoa(o.PublicPort)
	}
	if o.AdminPort > 0 {
		d.KratosAdminPort = strconv.Itoa(o.AdminPort)
	}
	if err := d.secrets(); err != nil {
		return d, err
	}
	if d.Host == "" {
		d.Host = "127.0.0.1"
	}
	if d.SchemaID == "" {
		d.SchemaID = "default"
	}
	if d.SMTPURI == "" {
		d.SMTPURI = "smtp://127.0.0.1:1025/?disable_starttls=true"
	}
	if d.SchemaURL == "" {
		schema, err := files.ReadFile("identity.schema.json")
		if err != nil {
			return d, err
		}
		d.SchemaURL = "base64://" + base64.StdEncoding.EncodeToString(schema)
	}
	for _, h := range Hooks {
		b, err := Body(h)
		if err != nil {
			return d, err
		}
		d.Bodies[h] = base64.StdEncoding.EncodeToString(b)
	}
	return d, nil
}

// checkURL accepts an absolute http(s) URL without query or fragment and
// returns it without a trailing slash, with its port (explicit or implied).
func checkURL(name, raw string) (string, string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("the %s must be an absolute http(s) URL, got %q", name, raw)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return strings.TrimRight(u.String(), "/"), port, nil
}

func (d *templateData) secrets() error {
	if d.Dev {
		d.CookieSecret, d.CipherSecret = "DEVELOPMENT-ONLY-COOKIE-SECRET-CHANGE-ME", "32-LONG-DEV-ONLY-CIPHER-CHANGE!!"
		return nil
	}
	if d.CookieSecret == "" {
		d.CookieSecret = randomSecret()
	}
	if d.CipherSecret == "" {
		d.CipherSecret = randomSecret()
	}
	if len(d.CookieSecret) < 16 || len(d.CipherSecret) != 32 {
		return errors.New("the Kratos cookie secret must be 16+ characters and the cipher secret exactly 32")
	}
	return nil
}

// randomSecret is 32 characters of base64url, 192 random bits.
func randomSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}
