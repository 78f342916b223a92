package config

import (
	"flag"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite README.md's configuration table from Docs()")

// Every key needs a meaning in the README: a new field without a doc tag
// fails here, named.
func TestEveryKeyHasADoc(t *testing.T) {
	t.Parallel()
	docs := KeyDocs()
	for _, k := range docs {
		if strings.TrimSpace(k.Doc) == "" {
			t.Errorf("%s has no description: add a doc:\"...\" tag to its field in config/config.go", k.Key)
		}
	}
	// The table lists exactly the keys that have environment variables.
	var keys [][2]string
	for _, k := range docs {
		keys = append(keys, [2]string{k.Key, k.Env})
	}
	if !slices.Equal(keys, EnvKeys()) {
		t.Errorf("KeyDocs lists %d keys, EnvKeys %d, or in another order:\n%v\n%v", len(keys), len(EnvKeys()), keys, EnvKeys())
	}
}

func TestRenderValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    any
		want string
	}{
		{168 * time.Hour, "168h"},
		{90 * time.Minute, "1h30m"},
		{2 * time.Minute, "2m"},
		{30 * time.Second, "30s"},
		{500 * time.Millisecond, "500ms"},
		{time.Duration(0), "0s"},
		{[]string{"owner", "admin"}, "owner, admin"},
		{[]string(nil), ""},
		{"", ""},
		{int64(1 << 20), "1048576"},
		{2.5, "2.5"},
		{false, "false"},
		{[]Field{{Trait: "name.first", Label: "First", Required: true}}, "{trait: name.first, label: First, required: true}"},
	} {
		if got := renderValue(reflect.ValueOf(tc.v)); got != tc.want {
			t.Errorf("renderValue(%#v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestDocsRows(t *testing.T) {
	t.Parallel()
	docs := Docs()
	for _, row := range []string{
		"| `invitations.ttl` | `168h` | `KRATOS_ORGS_INVITATIONS_TTL` | default link lifetime |",
		"| `roles` | `owner, admin, member` | `KRATOS_ORGS_ROLES` |",
		"| `invitations.success_url` |  | `KRATOS_ORGS_INVITATIONS_SUCCESS_URL` |",
		"| `admin.api_keys` | (required, secret) | `KRATOS_ORGS_ADMIN_API_KEYS` |",
		"| `mail.from_address` | (required) | `KRATOS_ORGS_MAIL_FROM_ADDRESS` |",
		"| `mail.resend.timeout` | `30s` | `KRATOS_ORGS_MAIL_RESEND_TIMEOUT` | Resend API: per call |",
		"| `limits.mail_global.period` | `1h` | `KRATOS_ORGS_LIMITS_MAIL_GLOBAL_PERIOD` | outgoing mail, all organizations: ",
		"* `outbox.claim_after` must exceed `mail.resend.timeout`",
		"| `accept.fields` | `{trait: name.first, label: First name, max_length: 100}, {trait: name.last, label: Last name, max_length: 100}` | (file only) |",
	} {
		if !strings.Contains(docs, row) {
			t.Errorf("Docs() lacks %q", row)
		}
	}
	for _, line := range strings.Split(docs, "\n") {
		if strings.HasPrefix(line, "| `") && strings.Count(strings.ReplaceAll(line, `\|`, ""), "|") != 5 {
			t.Errorf("row does not have 4 cells: %s", line)
		}
	}
}

// Secrets never show a default, and the keys marked secret are exactly
// the ones check-config masks.
func TestDocsSecrets(t *testing.T) {
	t.Parallel()
	cfg := Default()
	set := map[string]string{}
	_ = walk(reflect.ValueOf(&cfg).Elem(), "", "", func(l leaf) error {
		key, v := l.Key, l.Value
		switch {
		case v.Kind() == reflect.String:
			v.SetString("value-of-" + key)
		case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
			v.Set(reflect.ValueOf([]string{"value-of-" + key}))
		default:
			return nil
		}
		set[key] = "value-of-" + key
		return nil
	})
	masked := Masked(cfg)
	changed := map[string]bool{}
	_ = walk(reflect.ValueOf(masked), "", "", func(l leaf) error {
		key, v := l.Key, l.Value
		if want, ok := set[key]; ok && !strings.Contains(renderValue(v), want) {
			changed[key] = true
		}
		return nil
	})
	secrets := 0
	for _, k := range KeyDocs() {
		if k.Secret != changed[k.Key] {
			t.Errorf("%s: marked secret %v, masked by Masked %v", k.Key, k.Secret, changed[k.Key])
		}
		if k.Secret {
			secrets++
			if k.Default != "" {
				t.Errorf("%s is secret but has the default %q", k.Key, k.Default)
			}
		}
	}
	if secrets < 5 {
		t.Errorf("only %d secret keys; expected at least the 5 Masked hides", secrets)
	}
}

// A rule naming a key that does not exist (renamed, removed) fails here.
func TestCrossKeyRulesNameRealKeys(t *testing.T) {
	t.Parallel()
	keys := map[string]bool{}
	for _, kv := range EnvKeys() {
		keys[kv[0]] = true
	}
	for _, r := range CrossKeyRules {
		named := 0
		for _, m := range docCode.FindAllStringSubmatch(r, -1) {
			if !strings.Contains(m[1], ".") {
				continue // a value such as {domains}
			}
			named++
			if !keys[m[1]] {
				t.Errorf("rule %q names %s, which is no key", r, m[1])
			}
		}
		if named < 2 {
			t.Errorf("rule %q names %d keys; a cross-key rule names two or more", r, named)
		}
	}
}

// Each rule's keys, broken, make Validate name the first key: the list
// describes checks that exist.
func TestCrossKeyRulesAreEnforced(t *testing.T) {
	t.Parallel()
	tested := map[int]bool{}
	for _, tc := range []struct {
		rule   string // a prefix of the rule
		break_ func(*Config)
		want   string
	}{
		{"{serve.admin.port} must differ", func(c *Config) { c.Serve.Admin.Port = c.Serve.Public.Port }, "serve.admin.port:"},
		{"{redis.url} (or exactly one", func(c *Config) { c.Redis.URL = "" }, "redis.url:"},
		{"{redis.wait_timeout} is checked only", func(c *Config) { c.Redis.WaitReplicas, c.Redis.WaitTimeout = 1, 2*time.Second }, "redis.wait_timeout:"},
		{"{invitations.ttl} must not exceed", func(c *Config) { c.Invitations.TTL = c.Invitations.MaxTTL + time.Hour }, "invitations.ttl:"},
		{"The hosts of {invitations.success_url}", func(c *Config) { c.Invitations.SuccessURL = "https://app.example.com/" }, "invitations.success_url:"},
		{"{registration.pending_ttl} must be between", func(c *Config) { c.Register.PendingTTL = c.Invitations.MaxTTL + time.Hour }, "registration.pending_ttl:"},
		{"{registration.allowed_domains} is required", func(c *Config) { c.Register.Mode = "domains" }, "registration.allowed_domains:"},
		{"{registration.path} and", func(c *Config) { c.Register.Enabled = true; c.Register.Path = "register" }, "registration.path:"},
		{"No {accept.fields} trait", func(c *Config) { c.Accept.Fields[0].Trait = c.Kratos.EmailTrait }, "accept.fields[0].trait:"},
		{"{mail.resend.api_key} is required", func(c *Config) { c.Mail.Sender = "resend" }, "mail.resend.api_key:"},
		{"{outbox.claim_after} must exceed", func(c *Config) { c.Outbox.ClaimAfter = c.Mail.Resend.Timeout }, "outbox.claim_after:"},
	} {
		i := slices.IndexFunc(CrossKeyRules, func(r string) bool { return strings.HasPrefix(r, tc.rule) })
		if i < 0 {
			t.Errorf("no rule starts with %q", tc.rule)
		} else {
			tested[i] = true
		}
		c := validDefault()
		if err := c.Validate(); err != nil {
			t.Fatalf("the valid base is invalid: %v", err)
		}
		tc.break_(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want a problem %q", tc.rule, err, tc.want)
		}
	}
	for i, r := range CrossKeyRules {
		if !tested[i] {
			t.Errorf("rule %q has no case here", r)
		}
	}
}

func validDefault() Config {
	c := Default()
	c.Admin.APIKeys = []string{"docs-test-admin-key-0123"}
	c.Mail.FromAddress = "invites@example.com"
	c.Secrets.Cipher = []string{"docs-test-cipher-secret-0123456789abc"}
	c.Accept.Fields = slices.Clone(c.Accept.Fields)
	return c
}

var readmeSection = regexp.MustCompile(`(?s)<!-- config-docs:begin -->\n(.*?)<!-- config-docs:end -->`)

// The README's table is Docs(), byte for byte.
func TestReadmeConfigTable(t *testing.T) {
	const path = "../README.md"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := readmeSection.FindSubmatchIndex(raw)
	if m == nil {
		t.Fatalf("%s lacks the <!-- config-docs:begin --> ... <!-- config-docs:end --> section", path)
	}
	want := Docs()
	if string(raw[m[2]:m[3]]) == want {
		return
	}
	if *update {
		out := append(append(slices.Clone(raw[:m[2]]), want...), raw[m[3]:]...)
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s's configuration table", path)
		return
	}
	t.Errorf("README.md's configuration table differs from config.Docs() (the doc tags in config/config.go, "+
		"CrossKeyRules in config/validate.go).\nRegenerate it: make config-docs "+
		"(go test ./config -run TestReadmeConfigTable -update)\n--- README\n%s\n--- Docs()\n%s", raw[m[2]:m[3]], want)
}
