// Package config holds kratos-orgs' configuration: the type, its defaults,
// loading from a YAML file with KRATOS_ORGS_* environment overrides, and
// validation with messages that name the key and the problem.
package config

import (
	"time"
)

// Config is the whole configuration. Every field has a yaml key; the
// environment variable that overrides it is KRATOS_ORGS_ followed by the key
// path in upper case with dots as underscores (redis.key_prefix →
// KRATOS_ORGS_REDIS_KEY_PREFIX). Lists take comma-separated values.
//
// Every key also has a doc tag: its one-line meaning in the README's
// configuration table (Docs), where {x} is rendered as code. A section's
// doc tag (serve.public, limits.mail_global) starts its keys' meanings.
// secret:"true" marks a key whose value is never printed, not even its
// default.
type Config struct {
	Serve       Serve       `yaml:"serve"`
	Redis       Redis       `yaml:"redis"`
	Kratos      Kratos      `yaml:"kratos"`
	Admin       Admin       `yaml:"admin"`
	Invitations Invitations `yaml:"invitations"`
	Accept      Accept      `yaml:"accept"`
	Register    Register    `yaml:"registration"`
	Roles       []string    `yaml:"roles" doc:"roles, most privileged first; must start with {owner} and contain {admin} and {member}"`
	Hooks       Hooks       `yaml:"hooks"`
	Mail        Mail        `yaml:"mail"`
	Templates   Templates   `yaml:"templates"`
	Secrets     Secrets     `yaml:"secrets"`
	Outbox      Outbox      `yaml:"outbox"`
	Log         Log         `yaml:"log"`
	Limits      Limits      `yaml:"limits"`
	Reconcile   Reconcile   `yaml:"reconcile"`
	Domains     Domains     `yaml:"domains"`
	Audit       Audit       `yaml:"audit"`
	Events      Events      `yaml:"events"`
}

// Serve configures the two listeners, as Kratos has them.
type Serve struct {
	Public          Listener      `yaml:"public" doc:"public listener"`
	Admin           Listener      `yaml:"admin" doc:"admin listener (API, webhooks; never expose it)"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" doc:"on SIGTERM, time for in-flight requests to finish"`
	// MaxBodyBytes limits every request body; larger bodies get 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes" doc:"request body limit (413 above; at least 1024)"`
}

// Listener is one HTTP listener.
type Listener struct {
	Host string `yaml:"host" doc:"address to bind"`
	Port int    `yaml:"port" doc:"port"`
	// BaseURL is how browsers reach the public listener; links in mail start with it.
	BaseURL string `yaml:"base_url" doc:"how browsers reach the listener; links in mail start with it (public listener only)"`
	// TrustedProxies are the addresses or CIDRs of reverse proxies whose
	// X-Forwarded-For / X-Real-IP is believed. Empty: none, and the client
	// address (rate limits, logs) is the socket's peer.
	TrustedProxies []string `yaml:"trusted_proxies" doc:"proxies (IPs or CIDRs) whose {X-Forwarded-For} gives the client address; see [Security](#security)"`
}

// Redis selects and configures the Redis deployment.
type Redis struct {
	// Mode is single, sentinel or cluster. (make dev falls back to an
	// in-process Redis when redis-server is missing; serve never does.)
	Mode       string   `yaml:"mode" doc:"{single}, {sentinel} or {cluster}"`
	URL        string   `yaml:"url" doc:"single mode: {redis://[user:pass@]host:port/db} ({rediss://} for TLS)"`
	Addrs      []string `yaml:"addrs" doc:"Sentinel or Cluster seed addresses ({host:port})"`
	MasterName string   `yaml:"master_name" doc:"Sentinel master name"`
	Username   string   `yaml:"username" doc:"Redis user"`
	Password   string   `yaml:"password" doc:"Redis password" secret:"true"`
	DB         int      `yaml:"db" doc:"database number"`
	KeyPrefix  string   `yaml:"key_prefix" doc:"prefix of every key (no braces)"`
	TLS        bool     `yaml:"tls" doc:"connect with TLS"`
	// WaitReplicas makes state-changing writes wait (Redis WAIT) until this
	// many replicas have them before answering; 0 answers once the master
	// has them (Redis' asynchronous replication). README "Redis failover".
	WaitReplicas int           `yaml:"wait_replicas" doc:"replicas that must confirm an invitation, acceptance, revocation, organization or membership change before it is answered (Redis {WAIT}); 0 turns it off; unconfirmed in time: 503 {redis_unavailable}"`
	WaitTimeout  time.Duration `yaml:"wait_timeout" doc:"how long such a write waits for the replicas (1ms to 1s)"`
}

// Kratos locates Kratos and describes its identity schema.
type Kratos struct {
	AdminURL  string `yaml:"admin_url" doc:"Kratos' admin API"`
	PublicURL string `yaml:"public_url" doc:"Kratos' public API"`
	SchemaID  string `yaml:"schema_id" doc:"identity schema of invited identities"`
	// EmailTrait is the dotted path of the email trait (e.g. "email").
	EmailTrait string `yaml:"email_trait" doc:"dotted path of the email trait"`
	// NameTrait is the dotted path of the display-name trait; an object with
	// first/last is joined with a space.
	NameTrait string        `yaml:"name_trait" doc:"dotted path of the display-name trait; an object with {first}/{last} is joined"`
	Timeout   time.Duration `yaml:"timeout" doc:"per call to Kratos"`
	// SessionCookie is Kratos' session cookie name (Kratos'
	// session.cookie.name): the only cookie forwarded to Kratos.
	SessionCookie string `yaml:"session_cookie" doc:"Kratos' session cookie name (its {session.cookie.name}): the only cookie forwarded to Kratos"`
	// WhoamiCacheTTL keeps the org admins' API's session look-ups for this
	// long (0 turns the cache off).
	WhoamiCacheTTL time.Duration `yaml:"whoami_cache_ttl" doc:"the org admins' API reuses a session look-up this long (0 to 1m; 0 turns it off)"`
}

// Admin protects the admin API.
type Admin struct {
	// APIKeys are accepted as "Authorization: Bearer <key>"; several so a key
	// can be rotated without downtime.
	APIKeys []string `yaml:"api_keys" doc:"bearer keys, 16+ characters; several for rotation" secret:"true"`
}

// Invitations holds the invitation backend's policy.
type Invitations struct {
	TTL            time.Duration `yaml:"ttl" doc:"default link lifetime"`
	MaxTTL         time.Duration `yaml:"max_ttl" doc:"maximum link lifetime (at most 8760h)"`
	RemindInterval time.Duration `yaml:"remind_interval" doc:"at most one reminder per interval"`
	// Retention keeps ended invitations listable for this long.
	Retention            time.Duration `yaml:"retention" doc:"how long ended invitations stay listable"`
	SuccessURL           string        `yaml:"success_url" doc:"where an accepted invitation lands ({https://} unless the host is loopback)"`
	AllowedRedirectHosts []string      `yaml:"allowed_redirect_hosts" doc:"hosts {redirect_to} may point at ({https://} only, {http://} too for loopback hosts)"`
	// AcceptPath is where invitation links point on the public listener.
	AcceptPath string `yaml:"accept_path" doc:"path of invitation links on the public listener"`
	// Reminders are the automatic reminders of pending invitations; an
	// organization's reminders field overrides them.
	Reminders Reminders `yaml:"reminders"`
}

// Reminders are the offsets at which a pending invitation gets its
// reminder mail automatically, each at most once (README "Automatic
// reminders"). Empty lists: no automatic reminders.
type Reminders struct {
	AfterSent    []time.Duration `yaml:"after_sent" doc:"automatic reminders this long after the invitation was created (at most 5, each below invitations.max_ttl; empty: none)"`
	BeforeExpiry []time.Duration `yaml:"before_expiry" doc:"automatic reminders this long before the invitation expires (at most 5, each below invitations.max_ttl; empty: none)"`
}

// Accept configures how a person accepting an invitation or activating a
// registration ends up logged in to Kratos.
type Accept struct {
	// LoginMode is kratos_settings (an admin recovery link; Kratos asks for
	// a password on its settings page) or password (the accept form takes
	// the password and the page completes a Kratos browser login).
	LoginMode string `yaml:"login_mode" doc:"{kratos_settings} (recovery link, password on Kratos' settings page) or {password} (the form takes it)"`
	// Fields are asked of a person new to Kratos and written as traits
	// (django-organizations' form_class).
	Fields            []Field `yaml:"fields" doc:"form fields for a new person: {trait}, {label}, {required}, {max_length}"`
	PasswordMinLength int     `yaml:"password_min_length" doc:"minimum password length in {password} mode (8 to 256)"`
	// ClaimTimeout bounds the Kratos calls of one acceptance; a claim older
	// than this is released so the link works again.
	ClaimTimeout time.Duration `yaml:"claim_timeout" doc:"an acceptance interrupted longer than this is released (at least 5s)"`
}

// Field is one form field mapped to an identity trait.
type Field struct {
	Trait     string `yaml:"trait"` // dotted trait path, e.g. name.first
	Label     string `yaml:"label"`
	Required  bool   `yaml:"required"`
	MaxLength int    `yaml:"max_length"`
}

// Register configures sign-up with a new organization (django-organizations'
// RegistrationBackend) and who may sign up through Kratos itself.
type Register struct {
	// Mode decides Kratos sign-ups (the registration webhook): open,
	// invite_only (a pending invitation for the address, or a valid
	// invite_token) or domains (an address in allowed_domains, or invited).
	Mode           string   `yaml:"mode" doc:"who may sign up through Kratos: {open}, {invite_only} or {domains}"`
	AllowedDomains []string `yaml:"allowed_domains" doc:"domains that may sign up in {domains} mode"`
	Enabled        bool     `yaml:"enabled" doc:"sign-up with a new organization (off: see [Security](#security))"`
	Path           string   `yaml:"path" doc:"path of the sign-up form"`                                                                                    // the sign-up form
	ActivatePath   string   `yaml:"activate_path" doc:"path of activation links"`                                                                           // activation links
	SuccessURL     string   `yaml:"success_url" doc:"where an activation lands (empty: {invitations.success_url}; {https://} unless the host is loopback)"` // after activation (default invitations.success_url)
	// PendingTTL is how long an activation link lives; an organization
	// never activated is deleted with its placeholder identity after it.
	PendingTTL time.Duration `yaml:"pending_ttl" doc:"life of an activation link; an organization never activated is deleted with its placeholder identity"`
}

// Limits are the abuse quotas, shared by all replicas through Redis. A
// limit with requests 0 is off.
type Limits struct {
	// Public sign-up (registration.path), per client address and per
	// address signed up.
	RegisterPerClient Rate `yaml:"register_per_client" doc:"sign-ups per client address"`
	RegisterPerEmail  Rate `yaml:"register_per_email" doc:"sign-ups per address signed up"`
	// Invitation and activation links, per client address: GET (token
	// look-ups) and POST (accepting, which costs Kratos work).
	LinkViewsPerClient   Rate `yaml:"link_views_per_client" doc:"invitation and activation link views per client address"`
	LinkSubmitsPerClient Rate `yaml:"link_submits_per_client" doc:"invitation and activation link submits per client address"`
	// The org admins' /api invitations (invite, resend), per signed-in
	// identity and per organization.
	APIInvitesPerIdentity     Rate `yaml:"api_invites_per_identity" doc:"org admins' API invitations per signed-in identity"`
	APIInvitesPerOrganization Rate `yaml:"api_invites_per_organization" doc:"org admins' API invitations per organization"`
	// AdminPerKey limits each admin API key; off by default.
	AdminPerKey Rate `yaml:"admin_per_key" doc:"admin API calls per key (off by default)"`
	// Outgoing mail budgets; mail over budget waits in the outbox.
	MailGlobal          Rate `yaml:"mail_global" doc:"outgoing mail, all organizations"`
	MailPerOrganization Rate `yaml:"mail_per_organization" doc:"outgoing mail per organization"`
	// ResendWebhooksPerClient limits POST /hooks/resend per client
	// address (Resend's senders), before the signature is checked.
	ResendWebhooksPerClient Rate `yaml:"resend_webhooks_per_client" doc:"Resend delivery webhooks per client address"`
}

// Rate is requests per period; burst (default requests) may come at once.
type Rate struct {
	Requests int           `yaml:"requests" doc:"requests per period; 0 turns the limit off"`
	Period   time.Duration `yaml:"period" doc:"the period (1s to 744h)"`
	Burst    int           `yaml:"burst" doc:"how many may come at once (0: requests)"`
}

// Hooks configures the Kratos webhooks on the admin listener.
type Hooks struct {
	// Secret authenticates Kratos: the X-Kratos-Orgs-Secret header
	// (Kratos' api_key auth) or the password of basic auth.
	Secret string `yaml:"secret" doc:"authenticates Kratos' webhooks (16+ characters)" secret:"true"`
	// AcceptOnVerifiedAddress turns pending invitations into memberships
	// once Kratos shows the address verified.
	AcceptOnVerifiedAddress bool `yaml:"accept_on_verified_address" doc:"pending invitations become memberships once Kratos shows the address verified"`
	// ReplayWindow is how long a webhook call is remembered under Kratos'
	// flow id, so that a repeat is answered the same and changes nothing;
	// also the oldest identity a registration webhook may act on.
	ReplayWindow time.Duration `yaml:"replay_window" doc:"how long a webhook call is remembered per Kratos flow (a repeat changes nothing), and the oldest identity a registration webhook acts on; 1m to 168h"`
}

// Mail configures outgoing mail.
type Mail struct {
	Sender      string  `yaml:"sender" doc:"{resend}, or {log} (prints mail with its link: development only)"` // resend or log
	FromAddress string  `yaml:"from_address" doc:"From address, bare ({invites@example.com})"`
	FromName    string  `yaml:"from_name" doc:"From name; with a known inviter the display name is {<inviter> via <from_name>}"`
	Resend      Resend  `yaml:"resend" doc:"Resend API"`
	RatePerSec  float64 `yaml:"rate_per_second" doc:"pace of sends per process (Resend's default team limit is 2/s)"`
}

// Resend is the Resend API client configuration.
type Resend struct {
	APIKey  string        `yaml:"api_key" doc:"API key" secret:"true"`
	BaseURL string        `yaml:"base_url" doc:"base URL"`
	Timeout time.Duration `yaml:"timeout" doc:"per call"`
	// WebhookSecrets verify Resend's delivery webhooks (POST
	// /hooks/resend on the public listener, off while empty); several
	// while one is rotated.
	WebhookSecrets []string `yaml:"webhook_secrets" doc:"signing secrets ({whsec_...}) of Resend's webhooks to {POST /hooks/resend} (delivery status, suppression list); empty: the route is off" secret:"true"`
}

// Templates points at an optional directory whose files override the
// embedded templates by name.
type Templates struct {
	Dir string `yaml:"dir" doc:"a directory whose files override templates by name, or add a locale's versions ({invitation_subject.de.txt}, {messages.de.json})"`
	// DefaultLocale is the locale of mail whose invitation and organization
	// name none, and of pages whose visitor's browser asks for none of the
	// locales the templates have.
	DefaultLocale string `yaml:"default_locale" doc:"BCP 47 locale of mail whose invitation and organization set none, and of pages when the browser's Accept-Language matches no locale the templates have ({en}, {de}, or one the directory adds)"`
}

// Secrets are keys, newest first, so they can be rotated.
type Secrets struct {
	// Cipher keys encrypt invitation links while they wait in the mail outbox.
	Cipher []string `yaml:"cipher" doc:"keys (32+ characters, newest first) sealing links in the outbox" secret:"true"`
}

// Outbox tunes the durable job queue (mail, index repair, cleanups).
type Outbox struct {
	Workers      int           `yaml:"workers" doc:"concurrent jobs per process"`
	PollInterval time.Duration `yaml:"poll_interval" doc:"polling period when idle"`
	MaxAttempts  int           `yaml:"max_attempts" doc:"attempts before a job is given up"`
	BaseBackoff  time.Duration `yaml:"base_backoff" doc:"first retry delay, doubled per attempt"`
	MaxBackoff   time.Duration `yaml:"max_backoff" doc:"longest retry delay"`
	// ClaimAfter is how long a job may stay unacknowledged before another
	// worker takes it over (its worker is presumed dead).
	ClaimAfter    time.Duration `yaml:"claim_after" doc:"a job unacknowledged this long is taken over (its worker died)"`
	SweepInterval time.Duration `yaml:"sweep_interval" doc:"expiry sweeper period"`
}

// Audit configures the per-organization audit trail (README "Audit trail").
type Audit struct {
	MaxEntries int64         `yaml:"max_entries" doc:"entries kept per organization (trimmed approximately: up to ~100 more)"`
	MaxAge     time.Duration `yaml:"max_age" doc:"entries older are trimmed; a deleted organization's trail is kept this long"`
}

// Events configures signed lifecycle webhooks (README "Events").
type Events struct {
	// Endpoints receive the events; none: no event stream is written.
	Endpoints    []EventEndpoint `yaml:"endpoints" doc:"webhook receivers: {name}, {url}, {secrets} ({whsec_}…, several for rotation), {events} (types or {prefix.*}; empty: all); secrets are masked when printed and may come from {KRATOS_ORGS_EVENTS_ENDPOINTS_<NAME>_SECRETS} instead"`
	MaxEntries   int64           `yaml:"max_entries" doc:"events kept per shard for delivery (trimmed approximately)"`
	RetryFor     time.Duration   `yaml:"retry_for" doc:"an event not delivered this long after it happened is given up"`
	BaseBackoff  time.Duration   `yaml:"base_backoff" doc:"first retry delay, doubled per attempt"`
	MaxBackoff   time.Duration   `yaml:"max_backoff" doc:"longest retry delay"`
	PollInterval time.Duration   `yaml:"poll_interval" doc:"how often a dispatcher looks for new events"`
	Timeout      time.Duration   `yaml:"timeout" doc:"one delivery's HTTP timeout (2xx within it is success)"`
	Lease        time.Duration   `yaml:"lease" doc:"a replica's hold on an (endpoint, shard); more than twice {timeout}"`
}

// EventEndpoint is one webhook receiver.
type EventEndpoint struct {
	// Name identifies the endpoint in Redis (its cursor), metrics and the
	// CLI; empty: derived from the URL.
	Name    string   `yaml:"name"`
	URL     string   `yaml:"url"`
	Secrets []string `yaml:"secrets"`
	Events  []string `yaml:"events"`
}

// Reconcile tunes the reconciler that repairs what crashes left behind
// (package reconcile): `kratos-orgs reconcile` and, every Interval, one
// replica of serve.
type Reconcile struct {
	// Interval between periodic runs inside serve; 0 turns them off.
	Interval time.Duration `yaml:"interval" doc:"how often one replica of {serve} runs a [reconciler](#the-reconciler) round; 0 turns it off (else at least 10s)"`
	// Grace is how old a placeholder identity, a pending organization or a
	// dangling slug must be before it counts as left behind.
	Grace time.Duration `yaml:"grace" doc:"how old a placeholder identity, a pending organization or a dangling slug must be before the reconciler treats it as left behind (at least 1m)"`
	// Batch bounds the items each phase handles in one periodic run.
	Batch int `yaml:"batch" doc:"items per phase in one round (1 to 1000); also the Kratos page size"`
}

// Domains configures verified-domain auto-join (package domains).
type Domains struct {
	// DNSServer answers the TXT check of claimed domains; empty: the
	// system's resolver.
	DNSServer  string        `yaml:"dns_server" doc:"resolver ({host:port}) the DNS TXT check of claimed domains asks; empty: the system's"`
	DNSTimeout time.Duration `yaml:"dns_timeout" doc:"per DNS query of that check (100ms to 30s)"`
	// VerifyPerDomain bounds DNS checks (POST .../domains/{domain}/verify),
	// whoever asks: the operator or the organization's owners.
	VerifyPerDomain Rate `yaml:"verify_per_domain" doc:"DNS checks per claimed domain (admin API, {/api}, CLI together)"`
	// UnverifiedTTL is how long a claim nobody verified holds its domain
	// from other organizations; 0 for ever.
	UnverifiedTTL time.Duration `yaml:"unverified_ttl" doc:"how long a claim nobody verified holds its domain from other organizations (then another claim takes it over); {0s}: for ever, else 1h to 8760h"`
	// ClaimsPerOrganization bounds the claims an organization's owners make
	// on /api (each holds a domain from everyone else until released).
	ClaimsPerOrganization Rate `yaml:"claims_per_organization" doc:"domain claims per organization on the org admins' {/api}"`
	// APIPerIdentity bounds every /api domain request per signed-in identity.
	APIPerIdentity Rate `yaml:"api_per_identity" doc:"requests to the org admins' {/api} domain routes per signed-in identity"`
	// JoinPerIdentity bounds one-click joins of suggested organizations,
	// each of which asks Kratos.
	JoinPerIdentity Rate `yaml:"join_per_identity" doc:"one-click joins of suggested organizations per signed-in identity"`
}

// Log configures structured logging.
type Log struct {
	Level  string `yaml:"level" doc:"{debug}, {info}, {warn} or {error}"` // debug, info, warn, error
	Format string `yaml:"format" doc:"{json} or {text}"`                  // json or text
}

// Default returns the configuration used for every key the file and the
// environment leave out.
func Default() Config {
	return Config{
		Serve: Serve{
			Public:          Listener{Host: "0.0.0.0", Port: 4480, BaseURL: "http://127.0.0.1:4480"},
			Admin:           Listener{Host: "0.0.0.0", Port: 4481},
			ShutdownTimeout: 30 * time.Second,
			MaxBodyBytes:    1 << 20,
		},
		Redis: Redis{Mode: "single", URL: "redis://127.0.0.1:6379/0", KeyPrefix: "kratos-orgs:", WaitTimeout: 500 * time.Millisecond},
		Kratos: Kratos{
			AdminURL:   "http://127.0.0.1:4434",
			PublicURL:  "http://127.0.0.1:4433",
			SchemaID:   "default",
			EmailTrait: "email",
			NameTrait:  "name",
			Timeout:    10 * time.Second,

			SessionCookie:  "ory_kratos_session",
			WhoamiCacheTTL: 5 * time.Second,
		},
		Invitations: Invitations{
			TTL:            7 * 24 * time.Hour,
			MaxTTL:         30 * 24 * time.Hour,
			RemindInterval: time.Hour,
			Retention:      90 * 24 * time.Hour,
			AcceptPath:     "/invitations/accept/",
		},
		Accept: Accept{
			LoginMode: "kratos_settings",
			Fields: []Field{
				{Trait: "name.first", Label: "First name", MaxLength: 100},
				{Trait: "name.last", Label: "Last name", MaxLength: 100},
			},
			PasswordMinLength: 8,
			ClaimTimeout:      time.Minute,
		},
		// Sign-up with a new organization is anonymous and sends mail:
		// off until an operator turns it on (README "Security").
		Register: Register{Mode: "open", Enabled: false, Path: "/register", ActivatePath: "/register/activate/", PendingTTL: 48 * time.Hour},
		Hooks:    Hooks{AcceptOnVerifiedAddress: true, ReplayWindow: 2 * time.Hour},
		Roles:    []string{"owner", "admin", "member"},
		Mail: Mail{
			Sender:     "log",
			FromName:   "kratos-orgs",
			Resend:     Resend{BaseURL: "https://api.resend.com/", Timeout: 30 * time.Second},
			RatePerSec: 2,
		},
		Audit: Audit{MaxEntries: 10000, MaxAge: 90 * 24 * time.Hour},
		Events: Events{
			MaxEntries: 100000, RetryFor: 24 * time.Hour, BaseBackoff: 5 * time.Second, MaxBackoff: time.Hour,
			PollInterval: 500 * time.Millisecond, Timeout: 10 * time.Second, Lease: 30 * time.Second,
		},
		Outbox: Outbox{
			Workers:       4,
			PollInterval:  500 * time.Millisecond,
			MaxAttempts:   8,
			BaseBackoff:   2 * time.Second,
			MaxBackoff:    10 * time.Minute,
			ClaimAfter:    2 * time.Minute,
			SweepInterval: 30 * time.Second,
		},
		Log:       Log{Level: "info", Format: "json"},
		Templates: Templates{DefaultLocale: "en"},
		Limits: Limits{
			RegisterPerClient:         Rate{Requests: 5, Period: time.Hour},
			RegisterPerEmail:          Rate{Requests: 3, Period: 24 * time.Hour},
			LinkViewsPerClient:        Rate{Requests: 300, Period: time.Hour},
			LinkSubmitsPerClient:      Rate{Requests: 100, Period: time.Hour},
			APIInvitesPerIdentity:     Rate{Requests: 100, Period: time.Hour},
			APIInvitesPerOrganization: Rate{Requests: 500, Period: 24 * time.Hour},
			AdminPerKey:               Rate{Requests: 0, Period: time.Minute},
			MailGlobal:                Rate{Requests: 1000, Period: time.Hour},
			MailPerOrganization:       Rate{Requests: 1000, Period: 24 * time.Hour},
			ResendWebhooksPerClient:   Rate{Requests: 100, Period: time.Second, Burst: 500},
		},
		Reconcile: Reconcile{Interval: 10 * time.Minute, Grace: time.Hour, Batch: 100},
		Domains: Domains{DNSTimeout: 5 * time.Second, UnverifiedTTL: 7 * 24 * time.Hour, VerifyPerDomain: Rate{Requests: 10, Period: time.Hour},
			ClaimsPerOrganization: Rate{Requests: 10, Period: 24 * time.Hour},
			APIPerIdentity:        Rate{Requests: 120, Period: time.Hour},
			JoinPerIdentity:       Rate{Requests: 30, Period: time.Hour}},
	}
}

// NamedRate is one limit with its key under limits.
type NamedRate struct {
	Key string
	Rate
}

// List returns every limit with its key, in declaration order.
func (l Limits) List() []NamedRate {
	return []NamedRate{
		{"register_per_client", l.RegisterPerClient}, {"register_per_email", l.RegisterPerEmail},
		{"link_views_per_client", l.LinkViewsPerClient}, {"link_submits_per_client", l.LinkSubmitsPerClient},
		{"api_invites_per_identity", l.APIInvitesPerIdentity}, {"api_invites_per_organization", l.APIInvitesPerOrganization},
		{"admin_per_key", l.AdminPerKey}, {"mail_global", l.MailGlobal}, {"mail_per_organization", l.MailPerOrganization},
		{"resend_webhooks_per_client", l.ResendWebhooksPerClient},
	}
}
