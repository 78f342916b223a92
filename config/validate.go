package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Problems is every validation failure at once, so an operator fixes the
// file in one go.
type Problems []string

func (p Problems) Error() string {
	return "invalid configuration:\n  - " + strings.Join(p, "\n  - ")
}

var (
	roleName  = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
	traitPath = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)
	// RFC 6265's cookie-name token.
	cookieName = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")
)

// CrossKeyRules are the rules Validate enforces between keys, as the
// README's configuration table lists them below the keys ({x} is code).
// Keep each next to its check's wording; a test checks that every key a
// rule names exists.
var CrossKeyRules = []string{
	"{serve.admin.port} must differ from {serve.public.port} when both listeners bind the same host.",
	"{redis.url} (or exactly one {redis.addrs}) is required when {redis.mode} is {single}; {redis.addrs} and {redis.master_name} when it is {sentinel}; {redis.addrs} when it is {cluster}.",
	"{redis.wait_timeout} is checked only when {redis.wait_replicas} is above 0.",
	"{invitations.ttl} must not exceed {invitations.max_ttl}.",
	"The hosts of {invitations.success_url} and {registration.success_url} must be in {invitations.allowed_redirect_hosts}.",
	"{registration.pending_ttl} must be between 1m and {invitations.max_ttl}.",
	"{registration.allowed_domains} is required when {registration.mode} is {domains}.",
	"{registration.path} and {registration.activate_path} are checked only when {registration.enabled} is true.",
	"No {accept.fields} trait may be {kratos.email_trait}: the invited address is fixed.",
	"{mail.resend.api_key} is required when {mail.sender} is {resend}.",
	"{outbox.claim_after} must exceed {mail.resend.timeout}, or a slow send is taken over while still running.",
}

// addFunc records one problem under its key.
type addFunc func(key, format string, args ...any)

// Validate checks the configuration and names the key of every problem.
// Each section has its own check, in the order of the file.
func (c *Config) Validate() error {
	var p Problems
	add := func(key, format string, args ...any) {
		p = append(p, key+": "+fmt.Sprintf(format, args...))
	}
	for _, check := range []func(addFunc){
		c.validateServe, c.validateRedis, c.validateKratos, c.validateAdmin, c.validateInvitations,
		c.validateAccept, c.validateRegistration, c.validateHooks, c.validateRoles, c.validateMail,
		c.validateSecrets, c.validateOutbox, c.validateReconcile, c.validateLog, c.validateLimits,
		c.validateDomains, c.validateAudit, c.validateEvents,
	} {
		check(add)
	}
	if len(p) > 0 {
		return p
	}
	return nil
}

// validateServe checks the listeners.
func (c *Config) validateServe(add addFunc) {
	for _, l := range []struct {
		key string
		l   Listener
	}{{"serve.public", c.Serve.Public}, {"serve.admin", c.Serve.Admin}} {
		if l.l.Port < 0 || l.l.Port > 65535 {
			add(l.key+".port", "must be between 0 and 65535, got %d", l.l.Port)
		}
	}
	if c.Serve.Public.Port != 0 && c.Serve.Public.Port == c.Serve.Admin.Port && c.Serve.Public.Host == c.Serve.Admin.Host {
		add("serve.admin.port", "must differ from serve.public.port (%d)", c.Serve.Public.Port)
	}
	checkURL(add, "serve.public.base_url", c.Serve.Public.BaseURL, true)
	if c.Serve.MaxBodyBytes < 1024 {
		add("serve.max_body_bytes", "must be at least 1024, got %d", c.Serve.MaxBodyBytes)
	}
	if c.Serve.ShutdownTimeout <= 0 {
		add("serve.shutdown_timeout", "must be positive")
	}
}

// validateRedis checks the Redis deployment.
func (c *Config) validateRedis(add addFunc) {
	switch c.Redis.Mode {
	case "single":
		if c.Redis.URL == "" && len(c.Redis.Addrs) != 1 {
			add("redis.url", "required in single mode (or exactly one address in redis.addrs)")
		}
		if c.Redis.URL != "" {
			if u, err := url.Parse(c.Redis.URL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
				add("redis.url", "must be a redis:// or rediss:// URL, got %q", c.Redis.URL)
			}
		}
	case "sentinel":
		if len(c.Redis.Addrs) == 0 {
			add("redis.addrs", "required in sentinel mode: the sentinels' host:port")
		}
		if c.Redis.MasterName == "" {
			add("redis.master_name", "required in sentinel mode")
		}
	case "cluster":
		if len(c.Redis.Addrs) == 0 {
			add("redis.addrs", "required in cluster mode: one or more seed nodes' host:port")
		}
	default:
		add("redis.mode", "must be single, sentinel or cluster, got %q", c.Redis.Mode)
	}
	if strings.ContainsAny(c.Redis.KeyPrefix, "{} \t\n") {
		add("redis.key_prefix", "must not contain braces or spaces (braces are hash tags), got %q", c.Redis.KeyPrefix)
	}
	if c.Redis.WaitReplicas < 0 {
		add("redis.wait_replicas", "must be 0 (off) or more, got %d", c.Redis.WaitReplicas)
	}
	// WAIT blocks the connection it runs on; past the client's 2 s read
	// timeout the answer would be a broken connection, not a count.
	if c.Redis.WaitReplicas > 0 && (c.Redis.WaitTimeout < time.Millisecond || c.Redis.WaitTimeout > time.Second) {
		add("redis.wait_timeout", "must be between 1ms and 1s, got %s", c.Redis.WaitTimeout)
	}
}

// validateKratos checks where Kratos is.
func (c *Config) validateKratos(add addFunc) {
	checkURL(add, "kratos.admin_url", c.Kratos.AdminURL, true)
	checkURL(add, "kratos.public_url", c.Kratos.PublicURL, true)
	if c.Kratos.SchemaID == "" {
		add("kratos.schema_id", "required")
	}
	if c.Kratos.EmailTrait == "" {
		add("kratos.email_trait", "required")
	}
	if c.Kratos.Timeout <= 0 {
		add("kratos.timeout", "must be positive")
	}
	if !cookieName.MatchString(c.Kratos.SessionCookie) {
		add("kratos.session_cookie", "must be a cookie name like ory_kratos_session, got %q", c.Kratos.SessionCookie)
	}
	if c.Kratos.WhoamiCacheTTL < 0 || c.Kratos.WhoamiCacheTTL > time.Minute {
		add("kratos.whoami_cache_ttl", "must be between 0 (off) and 1m, got %s", c.Kratos.WhoamiCacheTTL)
	}
}

// validateAdmin checks the admin API keys.
func (c *Config) validateAdmin(add addFunc) {
	if len(c.Admin.APIKeys) == 0 {
		add("admin.api_keys", "at least one key is required (KRATOS_ORGS_ADMIN_API_KEYS=key1,key2)")
	}
	for i, k := range c.Admin.APIKeys {
		if len(k) < 16 {
			add(fmt.Sprintf("admin.api_keys[%d]", i), "must be at least 16 characters")
		}
	}
}

// validateInvitations checks the invitation policy.
func (c *Config) validateInvitations(add addFunc) {
	inv := c.Invitations
	if inv.MaxTTL <= 0 || inv.MaxTTL > 365*24*time.Hour {
		add("invitations.max_ttl", "must be positive and at most 8760h, got %s", inv.MaxTTL)
	}
	if inv.TTL <= 0 {
		add("invitations.ttl", "must be positive, got %s", inv.TTL)
	} else if inv.TTL > inv.MaxTTL {
		add("invitations.ttl", "%s exceeds invitations.max_ttl (%s)", inv.TTL, inv.MaxTTL)
	}
	if inv.RemindInterval < 0 {
		add("invitations.remind_interval", "must not be negative")
	}
	if inv.Retention < 0 {
		add("invitations.retention", "must not be negative")
	}
	checkReminderOffsets(add, "invitations.reminders.after_sent", inv.Reminders.AfterSent, inv.MaxTTL)
	checkReminderOffsets(add, "invitations.reminders.before_expiry", inv.Reminders.BeforeExpiry, inv.MaxTTL)
	if inv.SuccessURL != "" {
		if checkURL(add, "invitations.success_url", inv.SuccessURL, true) && checkTLS(add, "invitations.success_url", inv.SuccessURL) {
			u, _ := url.Parse(inv.SuccessURL)
			if !slices.Contains(inv.AllowedRedirectHosts, u.Host) {
				add("invitations.success_url", "host %q is not in invitations.allowed_redirect_hosts", u.Host)
			}
		}
	}
	for i, h := range inv.AllowedRedirectHosts {
		if h == "" || strings.ContainsAny(h, "/ ") {
			add(fmt.Sprintf("invitations.allowed_redirect_hosts[%d]", i), "must be a host or host:port, got %q", h)
		}
	}
	if !strings.HasPrefix(inv.AcceptPath, "/") || !strings.HasSuffix(inv.AcceptPath, "/") {
		add("invitations.accept_path", "must start and end with '/', got %q", inv.AcceptPath)
	}
}

// validateAccept checks the accept form and login mode.
func (c *Config) validateAccept(add addFunc) {
	switch c.Accept.LoginMode {
	case "kratos_settings", "password":
	default:
		add("accept.login_mode", "must be kratos_settings or password, got %q", c.Accept.LoginMode)
	}
	for i, f := range c.Accept.Fields {
		key := fmt.Sprintf("accept.fields[%d]", i)
		if !traitPath.MatchString(f.Trait) {
			add(key+".trait", "must be a dotted trait path like name.first, got %q", f.Trait)
		}
		if f.Trait == c.Kratos.EmailTrait {
			add(key+".trait", "must not be the email trait: the invited address is fixed")
		}
		if f.Label == "" {
			add(key+".label", "required")
		}
		if f.MaxLength < 0 || f.MaxLength > 1000 {
			add(key+".max_length", "must be between 0 (default 200) and 1000")
		}
	}
	if c.Accept.PasswordMinLength < 8 || c.Accept.PasswordMinLength > 256 {
		add("accept.password_min_length", "must be between 8 and 256, got %d", c.Accept.PasswordMinLength)
	}
	if c.Accept.ClaimTimeout < 5*time.Second {
		add("accept.claim_timeout", "must be at least 5s")
	}
}

// validateRegistration checks sign-up with a new organization.
func (c *Config) validateRegistration(add addFunc) {
	switch c.Register.Mode {
	case "open", "invite_only":
	case "domains":
		if len(c.Register.AllowedDomains) == 0 {
			add("registration.allowed_domains", "required when registration.mode is domains")
		}
	default:
		add("registration.mode", "must be open, invite_only or domains, got %q", c.Register.Mode)
	}
	for i, d := range c.Register.AllowedDomains {
		if d == "" || strings.ContainsAny(d, "@/ ") || d != strings.ToLower(d) {
			add(fmt.Sprintf("registration.allowed_domains[%d]", i), "must be a lower-case domain like example.com, got %q", d)
		}
	}
	if c.Register.Enabled {
		for _, p := range []struct{ key, v string }{{"registration.path", c.Register.Path}, {"registration.activate_path", c.Register.ActivatePath}} {
			if !strings.HasPrefix(p.v, "/") {
				add(p.key, "must start with '/', got %q", p.v)
			}
		}
		if !strings.HasSuffix(c.Register.ActivatePath, "/") {
			add("registration.activate_path", "must end with '/', got %q", c.Register.ActivatePath)
		}
	}
	if c.Register.SuccessURL != "" && checkURL(add, "registration.success_url", c.Register.SuccessURL, true) &&
		checkTLS(add, "registration.success_url", c.Register.SuccessURL) {
		u, _ := url.Parse(c.Register.SuccessURL)
		if !slices.Contains(c.Invitations.AllowedRedirectHosts, u.Host) {
			add("registration.success_url", "host %q is not in invitations.allowed_redirect_hosts", u.Host)
		}
	}
}

// validateHooks checks the Kratos webhooks.
func (c *Config) validateHooks(add addFunc) {
	if c.Hooks.Secret != "" && len(c.Hooks.Secret) < 16 {
		add("hooks.secret", "must be at least 16 characters")
	}
	// Long enough for Kratos' retries and the outbox's retries of a hook's
	// work; a week bounds what Redis keeps per login.
	if c.Hooks.ReplayWindow < time.Minute || c.Hooks.ReplayWindow > 7*24*time.Hour {
		add("hooks.replay_window", "must be between 1m and 168h, got %s", c.Hooks.ReplayWindow)
	}
}

// validateRoles checks the role list.
func (c *Config) validateRoles(add addFunc) {
	for _, must := range []string{"owner", "admin", "member"} {
		if !slices.Contains(c.Roles, must) {
			add("roles", "must contain %q (roles are listed from most to least privileged)", must)
		}
	}
	seen := map[string]bool{}
	for i, r := range c.Roles {
		if !roleName.MatchString(r) {
			add(fmt.Sprintf("roles[%d]", i), "%q is not a valid role name (lower-case letters, digits, _ and -)", r)
		}
		if seen[r] {
			add(fmt.Sprintf("roles[%d]", i), "%q is listed twice", r)
		}
		seen[r] = true
	}
	if len(c.Roles) > 0 && c.Roles[0] != "owner" {
		add("roles", "must start with \"owner\", the most privileged role")
	}
}

// validateMail checks the mail sender.
func (c *Config) validateMail(add addFunc) {
	switch c.Mail.Sender {
	case "log":
	case "resend":
		if c.Mail.Resend.APIKey == "" {
			add("mail.resend.api_key", "required when mail.sender is resend (KRATOS_ORGS_MAIL_RESEND_API_KEY)")
		}
		checkURL(add, "mail.resend.base_url", c.Mail.Resend.BaseURL, true)
		if c.Mail.Resend.Timeout <= 0 {
			add("mail.resend.timeout", "must be positive")
		}
		for i, sec := range c.Mail.Resend.WebhookSecrets {
			if key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sec, "whsec_")); !strings.HasPrefix(sec, "whsec_") || err != nil || len(key) < 16 {
				add(fmt.Sprintf("mail.resend.webhook_secrets[%d]", i), "must be a signing secret as Resend shows it: whsec_ and base64 of 16+ bytes")
			}
		}
	default:
		add("mail.sender", "must be resend or log, got %q", c.Mail.Sender)
	}
	if c.Mail.FromAddress == "" {
		add("mail.from_address", "required")
	} else if a, err := mail.ParseAddress(c.Mail.FromAddress); err != nil || a.Name != "" {
		add("mail.from_address", "must be a bare address like invites@example.com, got %q", c.Mail.FromAddress)
	}
	if c.Mail.RatePerSec <= 0 {
		add("mail.rate_per_second", "must be positive")
	}
}

// validateSecrets checks the keys that seal links.
func (c *Config) validateSecrets(add addFunc) {
	if len(c.Secrets.Cipher) == 0 {
		add("secrets.cipher", "at least one key of 32 or more characters is required; it encrypts invitation links waiting in the outbox")
	}
	for i, k := range c.Secrets.Cipher {
		if len(k) < 32 {
			add(fmt.Sprintf("secrets.cipher[%d]", i), "must be at least 32 characters")
		}
	}
}

// validateOutbox checks the outbox.
func (c *Config) validateOutbox(add addFunc) {
	o := c.Outbox
	if o.Workers < 1 {
		add("outbox.workers", "must be at least 1")
	}
	if o.MaxAttempts < 1 {
		add("outbox.max_attempts", "must be at least 1")
	}
	for _, d := range []struct {
		key string
		v   int64
	}{{"outbox.poll_interval", int64(o.PollInterval)}, {"outbox.base_backoff", int64(o.BaseBackoff)},
		{"outbox.max_backoff", int64(o.MaxBackoff)}, {"outbox.claim_after", int64(o.ClaimAfter)},
		{"outbox.sweep_interval", int64(o.SweepInterval)}} {
		if d.v <= 0 {
			add(d.key, "must be positive")
		}
	}
	if o.ClaimAfter > 0 && c.Mail.Resend.Timeout >= o.ClaimAfter {
		add("outbox.claim_after", "must exceed mail.resend.timeout (%s), or a slow send is taken over while still running", c.Mail.Resend.Timeout)
	}
}

// validateLog checks logging.
func (c *Config) validateLog(add addFunc) {
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		add("log.format", "must be json or text, got %q", c.Log.Format)
	}
}

// validateLimits checks serve.*.trusted_proxies, registration.pending_ttl
// and the limits section.
func (c *Config) validateLimits(add addFunc) {
	for _, l := range []struct {
		key     string
		proxies []string
	}{{"serve.public.trusted_proxies", c.Serve.Public.TrustedProxies}, {"serve.admin.trusted_proxies", c.Serve.Admin.TrustedProxies}} {
		for i, p := range l.proxies {
			if !isIPOrCIDR(p) {
				add(fmt.Sprintf("%s[%d]", l.key, i), "must be an IP address or a CIDR like 10.0.0.0/8, got %q", p)
			}
		}
	}
	if c.Register.PendingTTL < time.Minute || c.Register.PendingTTL > c.Invitations.MaxTTL {
		add("registration.pending_ttl", "must be between 1m and invitations.max_ttl (%s), got %s", c.Invitations.MaxTTL, c.Register.PendingTTL)
	}
	for _, r := range c.Limits.List() {
		key := "limits." + r.Key
		if r.Requests < 0 {
			add(key+".requests", "must not be negative (0 turns the limit off), got %d", r.Requests)
		}
		if r.Burst < 0 {
			add(key+".burst", "must not be negative (0 means requests), got %d", r.Burst)
		}
		if r.Requests > 0 && (r.Period < time.Second || r.Period > 31*24*time.Hour) {
			add(key+".period", "must be between 1s and 744h, got %s", r.Period)
		}
	}
}

func isIPOrCIDR(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	_, err := netip.ParsePrefix(s)
	return err == nil
}

func checkURL(add func(string, string, ...any), key, raw string, required bool) bool {
	if raw == "" {
		if required {
			add(key, "required")
		}
		return false
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add(key, "must be an absolute http(s) URL, got %q", raw)
		return false
	}
	return true
}

// checkTLS refuses a plain http:// URL a browser is sent to, unless its
// host is loopback (development): a link or redirect over plain HTTP can
// be read and rewritten on the way.
func checkTLS(add func(string, string, ...any), key, raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || IsLoopback(u.Host) {
		return true
	}
	add(key, "must be https:// (http:// only for a loopback host such as 127.0.0.1 or localhost), got %q", raw)
	return false
}

// IsLoopback reports whether a host or host:port is localhost or a
// loopback address.
func IsLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsProblems reports whether err is a validation failure.
func IsProblems(err error) bool {
	var p Problems
	return errors.As(err, &p)
}

func (c *Config) validateDomains(add addFunc) {
	d := c.Domains
	if d.DNSServer != "" {
		if _, port, err := net.SplitHostPort(d.DNSServer); err != nil || port == "" {
			add("domains.dns_server", "must be host:port (e.g. 10.0.0.2:53) or empty, got %q", d.DNSServer)
		}
	}
	if d.DNSTimeout < 100*time.Millisecond || d.DNSTimeout > 30*time.Second {
		add("domains.dns_timeout", "must be between 100ms and 30s, got %s", d.DNSTimeout)
	}
	if d.UnverifiedTTL != 0 && (d.UnverifiedTTL < time.Hour || d.UnverifiedTTL > 8760*time.Hour) {
		add("domains.unverified_ttl", "must be 0 (for ever) or between 1h and 8760h, got %s", d.UnverifiedTTL)
	}
	for _, l := range []NamedRate{{"domains.verify_per_domain", d.VerifyPerDomain}, {"domains.claims_per_organization", d.ClaimsPerOrganization},
		{"domains.api_per_identity", d.APIPerIdentity}, {"domains.join_per_identity", d.JoinPerIdentity}} {
		key, r := l.Key, l.Rate
		if r.Requests < 0 || r.Burst < 0 {
			add(key, "requests and burst must not be negative")
		}
		if r.Requests > 0 && (r.Period < time.Second || r.Period > 31*24*time.Hour) {
			add(key+".period", "must be between 1s and 744h, got %s", r.Period)
		}
	}
}

func (c *Config) validateReconcile(add addFunc) {
	r := c.Reconcile
	if r.Interval != 0 && r.Interval < 10*time.Second {
		add("reconcile.interval", "must be 0 (off) or at least 10s, got %s", r.Interval)
	}
	// Shorter, and an invitation being written right now could lose the
	// placeholder Kratos just created for it.
	if r.Grace < time.Minute {
		add("reconcile.grace", "must be at least 1m, got %s", r.Grace)
	}
	if r.Batch < 1 || r.Batch > 1000 {
		add("reconcile.batch", "must be between 1 and 1000, got %d", r.Batch)
	}
}

// MaxReminderOffsets bounds each list of automatic reminder offsets.
const MaxReminderOffsets = 5

// checkReminderOffsets checks one list of automatic reminder offsets:
// few, distinct, at least a minute and below the longest link lifetime.
func checkReminderOffsets(add addFunc, key string, offsets []time.Duration, maxTTL time.Duration) {
	if len(offsets) > MaxReminderOffsets {
		add(key, "at most %d offsets, got %d", MaxReminderOffsets, len(offsets))
	}
	for i, d := range offsets {
		if d < time.Minute || d >= maxTTL {
			add(fmt.Sprintf("%s[%d]", key, i), "must be at least 1m and below invitations.max_ttl (%s), got %s", maxTTL, d)
		}
		if slices.Contains(offsets[:i], d) {
			add(fmt.Sprintf("%s[%d]", key, i), "%s is listed twice", d)
		}
	}
}
