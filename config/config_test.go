package config

import (
	"gopkg.in/yaml.v3"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	testAPIKey  = "admin-key-0123456789abcdef"
	testAPIKey2 = "admin-key-fedcba9876543210"
	testCipher  = "cipher-secret-0123456789abcdef0123456789"
)

// valid returns a configuration that passes Validate.
func valid() Config {
	c := Default()
	c.Admin.APIKeys = []string{testAPIKey}
	c.Secrets.Cipher = []string{testCipher}
	c.Mail.FromAddress = "invites@example.com"
	return c
}

// env turns a map into a getenv function.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// requiredEnv holds what Default lacks for Validate to pass.
func requiredEnv() map[string]string {
	return map[string]string{
		"KRATOS_ORGS_ADMIN_API_KEYS":    testAPIKey,
		"KRATOS_ORGS_SECRETS_CIPHER":    testCipher,
		"KRATOS_ORGS_MAIL_FROM_ADDRESS": "invites@example.com",
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kratos-orgs.yml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaultIsValidOnceSecretsAreSet(t *testing.T) {
	t.Parallel()
	c := valid()
	if err := c.Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	d := Default()
	err := d.Validate()
	if err == nil {
		t.Fatal("Default() without keys, cipher and sender address passed validation")
	}
	for _, key := range []string{"admin.api_keys", "secrets.cipher", "mail.from_address"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error %q does not mention %s", err, key)
		}
	}
}

func TestLoadFileAppliesDefaults(t *testing.T) {
	t.Parallel()
	path := writeFile(t, `
serve:
  public:
    port: 8080
    base_url: https://orgs.example.com
admin:
  api_keys: [`+testAPIKey+`, `+testAPIKey2+`]
secrets:
  cipher: [`+testCipher+`]
mail:
  from_address: invites@example.com
invitations:
  ttl: 48h
`)
	c, err := Load(path, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	// From the file.
	if c.Serve.Public.Port != 8080 || c.Serve.Public.BaseURL != "https://orgs.example.com" {
		t.Errorf("serve.public = %+v, want port 8080 and the file's base_url", c.Serve.Public)
	}
	if !slices.Equal(c.Admin.APIKeys, []string{testAPIKey, testAPIKey2}) {
		t.Errorf("admin.api_keys = %q", c.Admin.APIKeys)
	}
	if c.Invitations.TTL != 48*time.Hour {
		t.Errorf("invitations.ttl = %s, want 48h", c.Invitations.TTL)
	}
	// Defaults for everything else, including siblings of keys the file set.
	d := Default()
	if c.Serve.Public.Host != d.Serve.Public.Host {
		t.Errorf("serve.public.host = %q, want default %q", c.Serve.Public.Host, d.Serve.Public.Host)
	}
	if c.Invitations.MaxTTL != d.Invitations.MaxTTL || c.Invitations.AcceptPath != d.Invitations.AcceptPath {
		t.Errorf("invitations defaults lost: %+v", c.Invitations)
	}
	if !reflect.DeepEqual(c.Redis, d.Redis) {
		t.Errorf("redis = %+v, want defaults %+v", c.Redis, d.Redis)
	}
	if !reflect.DeepEqual(c.Outbox, d.Outbox) || !reflect.DeepEqual(c.Roles, d.Roles) || c.Log != d.Log {
		t.Errorf("outbox/roles/log not defaulted: %+v %v %+v", c.Outbox, c.Roles, c.Log)
	}
}

func TestLoadEmptyFileIsAllDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(writeFile(t, ""), env(requiredEnv()))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := valid()
	if !reflect.DeepEqual(c, want) {
		t.Errorf("empty file:\n got %+v\nwant %+v", c, want)
	}
}

func TestLoadNoPath(t *testing.T) {
	t.Parallel()
	c, err := Load("", env(requiredEnv()))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !reflect.DeepEqual(c, valid()) {
		t.Errorf("got %+v", c)
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "absent.yml")
	_, err := Load(path, env(requiredEnv()))
	if err == nil || !strings.Contains(err.Error(), "absent.yml") {
		t.Fatalf("err = %v, want an error naming the file", err)
	}
}

func TestLoadUnknownKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		want    []string
	}{
		{
			name:    "nested typo",
			content: "redis:\n  mode: single\n  key_prefx: x\n",
			want:    []string{"key_prefx", "line 3"},
		},
		{
			name:    "top-level typo",
			content: "log:\n  level: info\ninvitation:\n  ttl: 1h\n",
			want:    []string{"invitation", "line 3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, tt.content)
			_, err := Load(path, env(requiredEnv()))
			if err == nil {
				t.Fatal("unknown key accepted")
			}
			for _, w := range append(tt.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadWrongTypeInFile(t *testing.T) {
	t.Parallel()
	_, err := Load(writeFile(t, "serve:\n  public:\n    port: lots\n"), env(requiredEnv()))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("err = %v, want an error with the line", err)
	}
}

func TestLoadEnvOverrides(t *testing.T) {
	t.Parallel()
	path := writeFile(t, `
redis:
  key_prefix: "from-file:"
serve:
  public:
    port: 9000
`)
	e := requiredEnv()
	e["KRATOS_ORGS_REDIS_KEY_PREFIX"] = "from-env:"                                   // string
	e["KRATOS_ORGS_SERVE_PUBLIC_PORT"] = "9100"                                       // int
	e["KRATOS_ORGS_SERVE_MAX_BODY_BYTES"] = "4096"                                    // int64
	e["KRATOS_ORGS_INVITATIONS_TTL"] = "36h"                                          // duration
	e["KRATOS_ORGS_MAIL_RATE_PER_SECOND"] = "7.5"                                     // float
	e["KRATOS_ORGS_REDIS_TLS"] = "true"                                               // bool
	e["KRATOS_ORGS_ADMIN_API_KEYS"] = " " + testAPIKey + " ,, " + testAPIKey2 + " , " // list
	e["KRATOS_ORGS_INVITATIONS_REMINDERS_AFTER_SENT"] = "48h, 96h"                    // list of durations
	c, err := Load(path, env(e))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Redis.KeyPrefix != "from-env:" {
		t.Errorf("redis.key_prefix = %q, want the environment's over the file's", c.Redis.KeyPrefix)
	}
	if c.Serve.Public.Port != 9100 {
		t.Errorf("serve.public.port = %d, want 9100", c.Serve.Public.Port)
	}
	if c.Serve.MaxBodyBytes != 4096 {
		t.Errorf("serve.max_body_bytes = %d, want 4096", c.Serve.MaxBodyBytes)
	}
	if c.Invitations.TTL != 36*time.Hour {
		t.Errorf("invitations.ttl = %s, want 36h", c.Invitations.TTL)
	}
	if c.Mail.RatePerSec != 7.5 {
		t.Errorf("mail.rate_per_second = %v, want 7.5", c.Mail.RatePerSec)
	}
	if !c.Redis.TLS {
		t.Error("redis.tls = false, want true")
	}
	if !slices.Equal(c.Admin.APIKeys, []string{testAPIKey, testAPIKey2}) {
		t.Errorf("admin.api_keys = %q, want the two trimmed keys", c.Admin.APIKeys)
	}
	if !slices.Equal(c.Invitations.Reminders.AfterSent, []time.Duration{48 * time.Hour, 96 * time.Hour}) {
		t.Errorf("invitations.reminders.after_sent = %v, want [48h 96h]", c.Invitations.Reminders.AfterSent)
	}
	// Untouched keys keep the file's or the default value.
	if c.Redis.Mode != "single" || c.Serve.Admin.Port != 4481 {
		t.Errorf("unrelated keys changed: redis.mode=%q serve.admin.port=%d", c.Redis.Mode, c.Serve.Admin.Port)
	}
}

func TestLoadBadEnvValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env, key, value string
	}{
		{"KRATOS_ORGS_INVITATIONS_TTL", "invitations.ttl", "7days"},
		{"KRATOS_ORGS_OUTBOX_POLL_INTERVAL", "outbox.poll_interval", "500"},
		{"KRATOS_ORGS_SERVE_PUBLIC_PORT", "serve.public.port", "http"},
		{"KRATOS_ORGS_MAIL_RATE_PER_SECOND", "mail.rate_per_second", "fast"},
		{"KRATOS_ORGS_REDIS_TLS", "redis.tls", "yes please"},
		{"KRATOS_ORGS_INVITATIONS_REMINDERS_BEFORE_EXPIRY", "invitations.reminders.before_expiry", "1 day"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			t.Parallel()
			e := requiredEnv()
			e[tt.env] = tt.value
			_, err := Load("", env(e))
			if err == nil {
				t.Fatalf("%s=%q accepted", tt.env, tt.value)
			}
			for _, w := range []string{tt.env, tt.key, tt.value} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if IsProblems(err) {
				t.Errorf("a parse error is reported as a validation problem: %v", err)
			}
		})
	}
}

func TestLoadValidates(t *testing.T) {
	t.Parallel()
	e := requiredEnv()
	e["KRATOS_ORGS_REDIS_MODE"] = "galaxy"
	_, err := Load("", env(e))
	if !IsProblems(err) || !strings.Contains(err.Error(), "redis.mode") {
		t.Fatalf("err = %v, want a validation problem naming redis.mode", err)
	}
}

func TestEnvKeys(t *testing.T) {
	t.Parallel()
	keys := EnvKeys()
	if !slices.Contains(keys, [2]string{"redis.key_prefix", "KRATOS_ORGS_REDIS_KEY_PREFIX"}) {
		t.Error("EnvKeys lacks redis.key_prefix → KRATOS_ORGS_REDIS_KEY_PREFIX")
	}
	for _, want := range [][2]string{
		{"admin.api_keys", "KRATOS_ORGS_ADMIN_API_KEYS"},
		{"mail.resend.api_key", "KRATOS_ORGS_MAIL_RESEND_API_KEY"},
		{"serve.public.base_url", "KRATOS_ORGS_SERVE_PUBLIC_BASE_URL"},
		{"roles", "KRATOS_ORGS_ROLES"},
	} {
		if !slices.Contains(keys, want) {
			t.Errorf("EnvKeys lacks %v", want)
		}
	}
	seen := map[string]bool{}
	for _, kv := range keys {
		if !strings.HasPrefix(kv[1], EnvPrefix) {
			t.Errorf("%s: variable %s lacks the prefix", kv[0], kv[1])
		}
		if seen[kv[1]] {
			t.Errorf("variable %s is listed twice", kv[1])
		}
		seen[kv[1]] = true
	}
	// Struct-valued keys are not leaves.
	for _, kv := range keys {
		if kv[0] == "serve" || kv[0] == "serve.public" || kv[0] == "mail.resend" {
			t.Errorf("EnvKeys lists the section %s", kv[0])
		}
	}
}

// Every variable EnvKeys lists must be one that Load reads.
func TestEnvKeysAreRead(t *testing.T) {
	t.Parallel()
	read := map[string]bool{}
	_, _ = Load("", func(name string) string { read[name] = true; return "" })
	for _, kv := range EnvKeys() {
		if !read[kv[1]] {
			t.Errorf("Load never reads %s", kv[1])
		}
	}
	if len(read) != len(EnvKeys()) {
		t.Errorf("Load reads %d variables, EnvKeys lists %d", len(read), len(EnvKeys()))
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(c *Config)
		want string // a substring of the error: the key, usually with its message
	}{
		{"ttl zero", func(c *Config) { c.Invitations.TTL = 0 }, "invitations.ttl: must be positive"},
		{"ttl over max", func(c *Config) { c.Invitations.TTL = 31 * 24 * time.Hour }, "invitations.ttl: 744h0m0s exceeds invitations.max_ttl"},
		{"max ttl over a year", func(c *Config) { c.Invitations.MaxTTL = 366 * 24 * time.Hour }, "invitations.max_ttl:"},
		{"negative remind interval", func(c *Config) { c.Invitations.RemindInterval = -time.Second }, "invitations.remind_interval:"},
		{"negative retention", func(c *Config) { c.Invitations.Retention = -time.Second }, "invitations.retention:"},
		{"success url host not allowed", func(c *Config) {
			c.Invitations.SuccessURL = "https://app.example.com/welcome"
			c.Invitations.AllowedRedirectHosts = []string{"other.example.com"}
		}, `invitations.success_url: host "app.example.com" is not in invitations.allowed_redirect_hosts`},
		{"success url relative", func(c *Config) { c.Invitations.SuccessURL = "/welcome" }, "invitations.success_url: must be an absolute"},
		{"redirect host with path", func(c *Config) { c.Invitations.AllowedRedirectHosts = []string{"ok.example.com", "bad.example.com/x"} }, "invitations.allowed_redirect_hosts[1]:"},
		{"accept path without trailing slash", func(c *Config) { c.Invitations.AcceptPath = "/accept" }, "invitations.accept_path:"},
		{"unknown redis mode", func(c *Config) { c.Redis.Mode = "galaxy" }, `redis.mode: must be single, sentinel or cluster, got "galaxy"`},
		{"embedded is make dev's", func(c *Config) { c.Redis.Mode = "embedded" }, `redis.mode: must be single, sentinel or cluster, got "embedded"`},
		{"redis url scheme", func(c *Config) { c.Redis.URL = "http://127.0.0.1:6379" }, "redis.url: must be a redis://"},
		{"redis single without url", func(c *Config) { c.Redis.URL = "" }, "redis.url: required"},
		{"sentinel without addrs", func(c *Config) { c.Redis.Mode = "sentinel"; c.Redis.MasterName = "m" }, "redis.addrs: required in sentinel mode"},
		{"sentinel without master", func(c *Config) { c.Redis.Mode = "sentinel"; c.Redis.Addrs = []string{"h:26379"} }, "redis.master_name:"},
		{"cluster without addrs", func(c *Config) { c.Redis.Mode = "cluster" }, "redis.addrs: required in cluster mode"},
		{"key prefix with brace", func(c *Config) { c.Redis.KeyPrefix = "app{x}:" }, "redis.key_prefix:"},
		{"no api keys", func(c *Config) { c.Admin.APIKeys = nil }, "admin.api_keys: at least one key"},
		{"replay window too short", func(c *Config) { c.Hooks.ReplayWindow = time.Second }, "hooks.replay_window: must be between 1m and 168h"},
		{"replay window too long", func(c *Config) { c.Hooks.ReplayWindow = 30 * 24 * time.Hour }, "hooks.replay_window: must be between 1m and 168h"},
		{"trusted proxy not an address", func(c *Config) { c.Serve.Public.TrustedProxies = []string{"10.0.0.0/8", "proxy.local"} }, `serve.public.trusted_proxies[1]: must be an IP address or a CIDR`},
		{"admin trusted proxy bad cidr", func(c *Config) { c.Serve.Admin.TrustedProxies = []string{"10.0.0.0/33"} }, `serve.admin.trusted_proxies[0]:`},
		{"pending ttl too short", func(c *Config) { c.Register.PendingTTL = time.Second }, "registration.pending_ttl: must be between 1m"},
		{"pending ttl over max", func(c *Config) { c.Register.PendingTTL = 31 * 24 * time.Hour }, "registration.pending_ttl:"},
		{"negative limit", func(c *Config) { c.Limits.RegisterPerClient.Requests = -1 }, "limits.register_per_client.requests: must not be negative"},
		{"limit without period", func(c *Config) { c.Limits.MailGlobal.Period = 0 }, "limits.mail_global.period: must be between 1s and 744h"},
		{"negative burst", func(c *Config) { c.Limits.LinkViewsPerClient.Burst = -3 }, "limits.link_views_per_client.burst:"},
		{"enabled admin limit without period", func(c *Config) { c.Limits.AdminPerKey = Rate{Requests: 10} }, "limits.admin_per_key.period:"},
		{"short api key", func(c *Config) { c.Admin.APIKeys = []string{testAPIKey, "short"} }, "admin.api_keys[1]: must be at least 16"},
		{"resend without key", func(c *Config) { c.Mail.Sender = "resend" }, "mail.resend.api_key: required when mail.sender is resend"},
		{"resend with bad base url", func(c *Config) {
			c.Mail.Sender = "resend"
			c.Mail.Resend.APIKey = "re_123"
			c.Mail.Resend.BaseURL = "api.resend"
		}, "mail.resend.base_url:"},
		{"unknown sender", func(c *Config) { c.Mail.Sender = "smtp" }, `mail.sender: must be resend or log, got "smtp"`},
		{"from address with name", func(c *Config) { c.Mail.FromAddress = "Invites <invites@example.com>" }, "mail.from_address: must be a bare address"},
		{"no from address", func(c *Config) { c.Mail.FromAddress = "" }, "mail.from_address: required"},
		{"zero mail rate", func(c *Config) { c.Mail.RatePerSec = 0 }, "mail.rate_per_second:"},
		{"no cipher", func(c *Config) { c.Secrets.Cipher = nil }, "secrets.cipher: at least one key"},
		{"short cipher", func(c *Config) { c.Secrets.Cipher = []string{"0123456789abcdef0123456789abcde"} }, "secrets.cipher[0]: must be at least 32"},
		{"roles missing owner", func(c *Config) { c.Roles = []string{"admin", "member"} }, `roles: must contain "owner"`},
		{"roles missing member", func(c *Config) { c.Roles = []string{"owner", "admin"} }, `roles: must contain "member"`},
		{"owner not first", func(c *Config) { c.Roles = []string{"admin", "owner", "member"} }, `roles: must start with "owner"`},
		{"duplicate role", func(c *Config) { c.Roles = []string{"owner", "admin", "member", "admin"} }, `roles[3]: "admin" is listed twice`},
		{"bad role name", func(c *Config) { c.Roles = []string{"owner", "admin", "member", "Billing"} }, `roles[3]: "Billing" is not a valid role name`},
		{"port out of range", func(c *Config) { c.Serve.Public.Port = 70000 }, "serve.public.port: must be between 0 and 65535"},
		{"same port twice", func(c *Config) { c.Serve.Admin.Port = c.Serve.Public.Port }, "serve.admin.port: must differ"},
		{"tiny body limit", func(c *Config) { c.Serve.MaxBodyBytes = 100 }, "serve.max_body_bytes:"},
		{"no shutdown timeout", func(c *Config) { c.Serve.ShutdownTimeout = 0 }, "serve.shutdown_timeout:"},
		{"base url not http", func(c *Config) { c.Serve.Public.BaseURL = "ftp://example.com" }, "serve.public.base_url: must be an absolute http(s) URL"},
		{"kratos admin url missing", func(c *Config) { c.Kratos.AdminURL = "" }, "kratos.admin_url: required"},
		{"kratos public url without host", func(c *Config) { c.Kratos.PublicURL = "http://" }, "kratos.public_url:"},
		{"kratos schema id", func(c *Config) { c.Kratos.SchemaID = "" }, "kratos.schema_id:"},
		{"kratos email trait", func(c *Config) { c.Kratos.EmailTrait = "" }, "kratos.email_trait:"},
		{"kratos timeout", func(c *Config) { c.Kratos.Timeout = 0 }, "kratos.timeout:"},
		{"no workers", func(c *Config) { c.Outbox.Workers = 0 }, "outbox.workers:"},
		{"no attempts", func(c *Config) { c.Outbox.MaxAttempts = 0 }, "outbox.max_attempts:"},
		{"zero poll interval", func(c *Config) { c.Outbox.PollInterval = 0 }, "outbox.poll_interval:"},
		{"zero sweep interval", func(c *Config) { c.Outbox.SweepInterval = 0 }, "outbox.sweep_interval:"},
		{"claim before send timeout", func(c *Config) { c.Outbox.ClaimAfter = c.Mail.Resend.Timeout }, "outbox.claim_after: must exceed mail.resend.timeout"},
		{"session cookie name", func(c *Config) { c.Kratos.SessionCookie = "ory session" }, "kratos.session_cookie:"},
		{"empty session cookie name", func(c *Config) { c.Kratos.SessionCookie = "" }, "kratos.session_cookie:"},
		{"whoami cache over a minute", func(c *Config) { c.Kratos.WhoamiCacheTTL = 2 * time.Minute }, "kratos.whoami_cache_ttl:"},
		{"negative whoami cache", func(c *Config) { c.Kratos.WhoamiCacheTTL = -time.Second }, "kratos.whoami_cache_ttl:"},
		{"plain http success url", func(c *Config) {
			c.Invitations.SuccessURL = "http://app.example.com/welcome"
			c.Invitations.AllowedRedirectHosts = []string{"app.example.com"}
		}, "invitations.success_url: must be https://"},
		{"plain http registration success url", func(c *Config) {
			c.Register.SuccessURL = "http://app.example.com/welcome"
			c.Invitations.AllowedRedirectHosts = []string{"app.example.com"}
		}, "registration.success_url: must be https://"},
		{"log level", func(c *Config) { c.Log.Level = "verbose" }, "log.level:"},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, "log.format:"},
		{"reconcile interval too short", func(c *Config) { c.Reconcile.Interval = time.Second }, "reconcile.interval: must be 0 (off) or at least 10s"},
		{"reconcile grace too short", func(c *Config) { c.Reconcile.Grace = 30 * time.Second }, "reconcile.grace: must be at least 1m"},
		{"reconcile batch zero", func(c *Config) { c.Reconcile.Batch = 0 }, "reconcile.batch: must be between 1 and 1000"},
		{"reconcile batch huge", func(c *Config) { c.Reconcile.Batch = 5000 }, "reconcile.batch: must be between 1 and 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			tt.edit(&c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("accepted; want an error containing %q", tt.want)
			}
			if !IsProblems(err) {
				t.Errorf("error %T is not Problems", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(c *Config)
	}{
		{"defaults with secrets", func(c *Config) {}},
		{"success url on an allowed host", func(c *Config) {
			c.Invitations.SuccessURL = "https://app.example.com:8443/welcome"
			c.Invitations.AllowedRedirectHosts = []string{"other.example.com", "app.example.com:8443"}
		}},
		{"resend with key", func(c *Config) { c.Mail.Sender = "resend"; c.Mail.Resend.APIKey = "re_123" }},
		{"http success urls on loopback", func(c *Config) {
			c.Invitations.SuccessURL = "http://127.0.0.1:4480/welcome"
			c.Register.SuccessURL = "http://localhost:3000/welcome"
			c.Invitations.AllowedRedirectHosts = []string{"127.0.0.1:4480", "localhost:3000"}
		}},
		{"whoami cache off, custom cookie", func(c *Config) { c.Kratos.WhoamiCacheTTL = 0; c.Kratos.SessionCookie = "__Host-session" }},
		{"sentinel", func(c *Config) {
			c.Redis.Mode = "sentinel"
			c.Redis.URL = ""
			c.Redis.Addrs = []string{"s1:26379", "s2:26379"}
			c.Redis.MasterName = "mymaster"
		}},
		{"cluster", func(c *Config) { c.Redis.Mode = "cluster"; c.Redis.Addrs = []string{"n1:6379"} }},
		{"single by one address", func(c *Config) { c.Redis.URL = ""; c.Redis.Addrs = []string{"h:6379"} }},
		{"rediss url", func(c *Config) { c.Redis.URL = "rediss://u:p@h:6380/1" }},
		{"extra role", func(c *Config) { c.Roles = []string{"owner", "admin", "billing_admin", "member"} }},
		{"random ports", func(c *Config) { c.Serve.Public.Port = 0; c.Serve.Admin.Port = 0 }},
		{"several keys", func(c *Config) {
			c.Admin.APIKeys = []string{testAPIKey, testAPIKey2}
			c.Secrets.Cipher = []string{testCipher, testCipher + "-old"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			tt.edit(&c)
			if err := c.Validate(); err != nil {
				t.Errorf("rejected: %v", err)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.0.0.1:4480": true, "127.9.9.9": true, "localhost": true, "LOCALHOST:3000": true,
		"app.localhost": true, "[::1]:8080": true, "::1": true,
		"app.example.com": false, "10.0.0.1": false, "localhost.example.com": false, "": false, "[::2]:80": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	c := valid()
	c.Redis.Mode = "galaxy"
	c.Log.Format = "xml"
	c.Admin.APIKeys = nil
	err := c.Validate()
	p, ok := err.(Problems)
	if !ok {
		t.Fatalf("err = %T %v, want Problems", err, err)
	}
	if len(p) != 3 {
		t.Errorf("got %d problems, want 3: %q", len(p), p)
	}
	for _, key := range []string{"redis.mode", "log.format", "admin.api_keys"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error lacks %s: %v", key, err)
		}
	}
}

func TestMasked(t *testing.T) {
	t.Parallel()
	c := valid()
	c.Admin.APIKeys = []string{testAPIKey, testAPIKey2}
	c.Secrets.Cipher = []string{testCipher}
	c.Mail.Resend.APIKey = "re_supersecret"
	c.Redis.Password = "redis-pass-secret"
	c.Redis.URL = "redis://alice:url-pass-secret@redis.internal:6379/2"
	c.Redis.Username = "alice"
	c.Hooks.Secret = "hooks-secret-value-0123"

	m := Masked(c)

	// The whole printed configuration, so a secret added later and not
	// masked fails here.
	out, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	dump := string(out)
	for _, secret := range []string{testAPIKey, testAPIKey2, testCipher, "re_supersecret", "redis-pass-secret", "url-pass-secret", "hooks-secret-value-0123"} {
		if strings.Contains(dump, secret) {
			t.Errorf("masked config still holds %q: %s", secret, dump)
		}
	}
	if len(m.Admin.APIKeys) != 2 || m.Admin.APIKeys[0] != "****" || m.Admin.APIKeys[1] != "****" {
		t.Errorf("admin.api_keys = %q, want two masked entries", m.Admin.APIKeys)
	}
	if len(m.Secrets.Cipher) != 1 || m.Secrets.Cipher[0] != "****" {
		t.Errorf("secrets.cipher = %q", m.Secrets.Cipher)
	}
	if m.Hooks.Secret != "****" {
		t.Errorf("hooks.secret %q: want ****", m.Hooks.Secret)
	}
	if m.Mail.Resend.APIKey != "****" || m.Redis.Password != "****" {
		t.Errorf("resend key %q, redis password %q: want ****", m.Mail.Resend.APIKey, m.Redis.Password)
	}
	u, err := url.Parse(m.Redis.URL)
	if err != nil {
		t.Fatalf("masked redis.url %q does not parse: %v", m.Redis.URL, err)
	}
	if pw, _ := u.User.Password(); pw != "masked" || u.User.Username() != "alice" || u.Host != "redis.internal:6379" || u.Path != "/2" {
		t.Errorf("redis.url = %q, want user, host and db kept and the password masked", m.Redis.URL)
	}

	// Everything else is kept.
	if m.Redis.Username != "alice" || m.Mail.FromAddress != c.Mail.FromAddress || m.Redis.KeyPrefix != c.Redis.KeyPrefix ||
		!reflect.DeepEqual(m.Serve, c.Serve) || m.Invitations.TTL != c.Invitations.TTL || !slices.Equal(m.Roles, c.Roles) ||
		m.Mail.Resend.BaseURL != c.Mail.Resend.BaseURL {
		t.Errorf("masking changed non-secret fields:\n got %+v\nwant %+v", m, c)
	}

	// The original is untouched (the slices are not shared).
	if c.Admin.APIKeys[0] != testAPIKey || c.Secrets.Cipher[0] != testCipher || c.Redis.Password != "redis-pass-secret" {
		t.Errorf("Masked modified its argument: %+v", c)
	}
}

func TestMaskedLeavesEmptyAndPasswordlessValues(t *testing.T) {
	t.Parallel()
	c := valid()
	c.Redis.URL = "redis://bob@redis.internal:6379/0"
	c.Mail.Resend.APIKey = ""
	c.Redis.Password = ""
	m := Masked(c)
	if m.Redis.URL != c.Redis.URL {
		t.Errorf("redis.url without password changed to %q", m.Redis.URL)
	}
	if m.Mail.Resend.APIKey != "" || m.Redis.Password != "" {
		t.Errorf("empty secrets became %q and %q; an unset secret should look unset", m.Mail.Resend.APIKey, m.Redis.Password)
	}
	c.Redis.URL = "redis://127.0.0.1:6379/0"
	if got := Masked(c).Redis.URL; got != c.Redis.URL {
		t.Errorf("redis.url without user info changed to %q", got)
	}
}

func TestEnvCannotSetListsOfObjects(t *testing.T) {
	_, err := Load("", func(k string) string {
		if k == "KRATOS_ORGS_ACCEPT_FIELDS" {
			return "name.first"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), "accept.fields") || !strings.Contains(err.Error(), "KRATOS_ORGS_ACCEPT_FIELDS") {
		t.Fatalf("err = %v", err)
	}
}

func TestLimitDefaultsAndEnv(t *testing.T) {
	t.Parallel()
	d := Default()
	if d.Register.Enabled {
		t.Error("registration.enabled defaults to true; anonymous sign-up must be off until an operator turns it on")
	}
	if d.Register.PendingTTL != 48*time.Hour {
		t.Errorf("registration.pending_ttl = %s, want 48h", d.Register.PendingTTL)
	}
	if d.Limits.AdminPerKey.Requests != 0 {
		t.Error("limits.admin_per_key is on by default; it must be opt-in")
	}
	if len(d.Serve.Public.TrustedProxies) != 0 {
		t.Error("a proxy is trusted by default")
	}
	for _, r := range d.Limits.List() {
		if r.Key != "admin_per_key" && (r.Requests <= 0 || r.Period <= 0) {
			t.Errorf("limits.%s is off by default", r.Key)
		}
	}
	env := map[string]string{
		"KRATOS_ORGS_ADMIN_API_KEYS":                      testAPIKey,
		"KRATOS_ORGS_SECRETS_CIPHER":                      testCipher,
		"KRATOS_ORGS_MAIL_FROM_ADDRESS":                   "a@example.com",
		"KRATOS_ORGS_LIMITS_REGISTER_PER_CLIENT_REQUESTS": "2",
		"KRATOS_ORGS_LIMITS_REGISTER_PER_CLIENT_PERIOD":   "10m",
		"KRATOS_ORGS_LIMITS_ADMIN_PER_KEY_REQUESTS":       "600",
		"KRATOS_ORGS_SERVE_PUBLIC_TRUSTED_PROXIES":        "10.0.0.0/8, 192.0.2.1",
		"KRATOS_ORGS_REGISTRATION_PENDING_TTL":            "24h",
		"KRATOS_ORGS_LIMITS_MAIL_PER_ORGANIZATION_BURST":  "50",
	}
	c, err := Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.RegisterPerClient != (Rate{Requests: 2, Period: 10 * time.Minute}) || c.Limits.AdminPerKey.Requests != 600 ||
		c.Limits.MailPerOrganization.Burst != 50 || c.Register.PendingTTL != 24*time.Hour ||
		!slices.Equal(c.Serve.Public.TrustedProxies, []string{"10.0.0.0/8", "192.0.2.1"}) {
		t.Errorf("environment overrides not applied: %+v %+v", c.Limits, c.Serve.Public)
	}
}

func TestReconcileDefaultsAndEnv(t *testing.T) {
	t.Parallel()
	c, err := Load("", env(requiredEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if c.Reconcile != (Reconcile{Interval: 10 * time.Minute, Grace: time.Hour, Batch: 100}) {
		t.Errorf("reconcile defaults: %+v", c.Reconcile)
	}
	e := requiredEnv()
	e["KRATOS_ORGS_RECONCILE_INTERVAL"] = "0s"
	e["KRATOS_ORGS_RECONCILE_GRACE"] = "2h"
	e["KRATOS_ORGS_RECONCILE_BATCH"] = "50"
	if c, err = Load("", env(e)); err != nil {
		t.Fatal(err)
	}
	if c.Reconcile != (Reconcile{Interval: 0, Grace: 2 * time.Hour, Batch: 50}) {
		t.Errorf("reconcile from the environment: %+v", c.Reconcile)
	}
}

// redis.wait_replicas and redis.wait_timeout come from YAML and the
// environment like every key; a timeout past the client's read timeout, or
// a negative count, is refused.
func TestRedisWait(t *testing.T) {
	t.Parallel()
	if d := Default(); d.Redis.WaitReplicas != 0 || d.Redis.WaitTimeout != 500*time.Millisecond {
		t.Fatalf("defaults %d %s, want 0 (off) and 500ms", d.Redis.WaitReplicas, d.Redis.WaitTimeout)
	}
	path := writeFile(t, "redis:\n  wait_replicas: 1\n  wait_timeout: 100ms\n")
	c, err := Load(path, env(requiredEnv()))
	if err != nil || c.Redis.WaitReplicas != 1 || c.Redis.WaitTimeout != 100*time.Millisecond {
		t.Fatalf("from YAML: %d %s %v", c.Redis.WaitReplicas, c.Redis.WaitTimeout, err)
	}
	e := requiredEnv()
	e["KRATOS_ORGS_REDIS_WAIT_REPLICAS"], e["KRATOS_ORGS_REDIS_WAIT_TIMEOUT"] = "2", "250ms"
	if c, err = Load(path, env(e)); err != nil || c.Redis.WaitReplicas != 2 || c.Redis.WaitTimeout != 250*time.Millisecond {
		t.Fatalf("the environment over YAML: %d %s %v", c.Redis.WaitReplicas, c.Redis.WaitTimeout, err)
	}
	for _, bad := range []Redis{{WaitReplicas: -1}, {WaitReplicas: 1, WaitTimeout: 0}, {WaitReplicas: 1, WaitTimeout: 3 * time.Second}} {
		c := valid()
		c.Redis.WaitReplicas, c.Redis.WaitTimeout = bad.WaitReplicas, bad.WaitTimeout
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "redis.wait_") {
			t.Errorf("%d replicas, %s: Validate() = %v", bad.WaitReplicas, bad.WaitTimeout, err)
		}
	}
}

// Reminder offsets: few, distinct, at least a minute, below max_ttl.
func TestValidateReminderOffsets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		after, before []time.Duration
		problem       string // "" for valid
	}{
		{[]time.Duration{48 * time.Hour}, []time.Duration{24 * time.Hour}, ""},
		{nil, nil, ""},
		{[]time.Duration{time.Second}, nil, "invitations.reminders.after_sent[0]: must be at least 1m"},
		{nil, []time.Duration{31 * 24 * time.Hour}, "invitations.reminders.before_expiry[0]: must be at least 1m and below invitations.max_ttl"},
		{[]time.Duration{time.Hour, time.Hour}, nil, "invitations.reminders.after_sent[1]: 1h0m0s is listed twice"},
		{[]time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour, 4 * time.Hour, 5 * time.Hour, 6 * time.Hour}, nil, "invitations.reminders.after_sent: at most 5 offsets"},
	} {
		c := Default()
		c.Invitations.Reminders = Reminders{AfterSent: tc.after, BeforeExpiry: tc.before}
		err := c.Validate()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if tc.problem == "" && strings.Contains(got, "invitations.reminders") {
			t.Errorf("%v / %v refused: %v", tc.after, tc.before, err)
		}
		if tc.problem != "" && !strings.Contains(got, tc.problem) {
			t.Errorf("%v / %v: error %q lacks %q", tc.after, tc.before, got, tc.problem)
		}
	}
}

// An event endpoint's secrets may come from its own variable, so a
// deployment keeps them in a Secret and the endpoints in the file.
func TestEndpointSecretsFromEnv(t *testing.T) {
	t.Parallel()
	const s1, s2 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
	path := writeFile(t, `
events:
  endpoints:
    - name: crm-prod
      url: https://crm.example.com/hooks
    - url: https://billing.example.com/hooks
      secrets: [`+s1+`]
`)
	unnamed := EventEndpoint{URL: "https://billing.example.com/hooks"}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		crm     []string
		billing []string
		wantErr string
	}{
		{"from the variables", map[string]string{
			"KRATOS_ORGS_EVENTS_ENDPOINTS_CRM_PROD_SECRETS": s2 + ", " + s1,
			EndpointSecretsEnv(unnamed):                     s2,
		}, []string{s2, s1}, []string{s2}, ""},
		{"the file's when unset", map[string]string{
			"KRATOS_ORGS_EVENTS_ENDPOINTS_CRM_PROD_SECRETS": s1,
		}, []string{s1}, []string{s1}, ""},
		{"missing everywhere names the variable", nil, nil, nil, "KRATOS_ORGS_EVENTS_ENDPOINTS_CRM_PROD_SECRETS"},
		{"a bad secret from the variable", map[string]string{
			"KRATOS_ORGS_EVENTS_ENDPOINTS_CRM_PROD_SECRETS": "not-a-secret",
		}, nil, nil, "events.endpoints[0].secrets[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := requiredEnv()
			for k, v := range tc.env {
				e[k] = v
			}
			c, err := Load(path, env(e))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Events.Endpoints; !slices.Equal(got[0].Secrets, tc.crm) || !slices.Equal(got[1].Secrets, tc.billing) {
				t.Errorf("secrets = %q and %q, want %q and %q", got[0].Secrets, got[1].Secrets, tc.crm, tc.billing)
			}
		})
	}
	clash := writeFile(t, `
events:
  endpoints:
    - {name: a-b, url: "https://a.example.com/", secrets: [`+s1+`]}
    - {name: a_b, url: "https://b.example.com/", secrets: [`+s1+`]}
`)
	if _, err := Load(clash, env(requiredEnv())); err == nil || !strings.Contains(err.Error(), "KRATOS_ORGS_EVENTS_ENDPOINTS_A_B_SECRETS") {
		t.Errorf("two endpoints sharing a variable: err = %v", err)
	}
}
