package config

import "net/url"

// Masked returns a copy with every secret replaced, for printing.
func Masked(c Config) Config {
	mask := func(s string) string {
		if s == "" {
			return ""
		}
		return "****"
	}
	maskAll := func(in []string) []string {
		out := make([]string, len(in))
		for i, s := range in {
			out[i] = mask(s)
		}
		return out
	}
	c.Admin.APIKeys = maskAll(c.Admin.APIKeys)
	c.Secrets.Cipher = maskAll(c.Secrets.Cipher)
	c.Mail.Resend.APIKey = mask(c.Mail.Resend.APIKey)
	c.Mail.Resend.WebhookSecrets = maskAll(c.Mail.Resend.WebhookSecrets)
	c.Hooks.Secret = mask(c.Hooks.Secret)
	c.Redis.Password = mask(c.Redis.Password)
	eps := make([]EventEndpoint, len(c.Events.Endpoints))
	for i, e := range c.Events.Endpoints {
		e.Secrets = maskAll(e.Secrets)
		eps[i] = e
	}
	c.Events.Endpoints = eps
	if c.Redis.URL != "" {
		c.Redis.URL = maskURLPassword(c.Redis.URL)
	}
	return c
}

func maskURLPassword(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "masked")
	}
	return u.String()
}
