package config

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// ID names the endpoint in Redis keys, metrics and the CLI: its name, or
// "ep-" and 8 hex digits of its URL's SHA-256.
func (e EventEndpoint) ID() string {
	if e.Name != "" {
		return e.Name
	}
	sum := sha256.Sum256([]byte(e.URL))
	return "ep-" + hex.EncodeToString(sum[:4])
}

var (
	endpointName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)
	eventFilter  = regexp.MustCompile(`^(\*|[a-z_]+\.(\*|[a-z_]+))$`)
)

// validateAudit checks the audit trail's retention.
func (c *Config) validateAudit(add addFunc) {
	if c.Audit.MaxEntries < 10 {
		add("audit.max_entries", "must be at least 10, got %d", c.Audit.MaxEntries)
	}
	if c.Audit.MaxAge < time.Minute {
		add("audit.max_age", "must be at least 1m, got %s", c.Audit.MaxAge)
	}
}

// validateEvents checks the webhook endpoints and their delivery.
func (c *Config) validateEvents(add addFunc) {
	e := c.Events
	seen := map[string]bool{}
	for i, ep := range e.Endpoints {
		key := fmt.Sprintf("events.endpoints[%d]", i)
		if u, err := url.Parse(ep.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			add(key+".url", "must be an http(s) URL, got %q", ep.URL)
		}
		if ep.Name != "" && !endpointName.MatchString(ep.Name) {
			add(key+".name", "must be 1 to 40 of a-z 0-9 _ - (starting with a letter or digit), got %q", ep.Name)
		}
		if seen[ep.ID()] {
			add(key+".name", "%q names two endpoints", ep.ID())
		}
		seen[ep.ID()] = true
		if len(ep.Secrets) == 0 {
			add(key+".secrets", "at least one whsec_ secret is required (in the file or in %s)", EndpointSecretsEnv(ep))
		}
		for j, sec := range ep.Secrets {
			raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sec, "whsec_"))
			if !strings.HasPrefix(sec, "whsec_") || err != nil || len(raw) < 24 || len(raw) > 64 {
				add(fmt.Sprintf("%s.secrets[%d]", key, j), "must be whsec_ followed by 24 to 64 bytes in base64 (Standard Webhooks)")
			}
		}
		for j, f := range ep.Events {
			if !eventFilter.MatchString(f) {
				add(fmt.Sprintf("%s.events[%d]", key, j), "must be an event type (invitation.created), a prefix (invitation.*) or *, got %q", f)
			}
		}
	}
	if e.MaxEntries < 100 {
		add("events.max_entries", "must be at least 100, got %d", e.MaxEntries)
	}
	if e.RetryFor < time.Minute {
		add("events.retry_for", "must be at least 1m, got %s", e.RetryFor)
	}
	if e.BaseBackoff <= 0 || e.MaxBackoff < e.BaseBackoff {
		add("events.base_backoff", "must be positive and at most events.max_backoff")
	}
	if e.PollInterval <= 0 || e.Timeout <= 0 {
		add("events.poll_interval", "events.poll_interval and events.timeout must be positive")
	}
	if e.Lease < 2*e.Timeout+time.Second {
		add("events.lease", "must exceed twice events.timeout (%s) by a second: a delivery never outlives its lease", e.Timeout)
	}
}
