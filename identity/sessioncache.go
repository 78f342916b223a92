package identity

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

// WhoamiFunc resolves a session cookie or token.
type WhoamiFunc func(ctx context.Context, cookie, sessionToken string) (*Session, error)

// SessionCache remembers Kratos' whoami answers for a few seconds, keyed by
// a SHA-256 of the session cookie or token (never the secret itself), so an
// application calling the org admins' API in a burst costs Kratos one
// look-up. A session revoked in Kratos keeps working here for at most the
// TTL. Only sessions and "no session" answers are kept; errors are not.
// The cache holds at most max entries: when full, expired entries go, and
// if none have expired, everything goes.
type SessionCache struct {
	lookup WhoamiFunc
	ttl    time.Duration
	max    int
	now    func() time.Time

	mu      sync.Mutex
	entries map[[32]byte]cachedSession
}

type cachedSession struct {
	s       *Session
	expires time.Time
}

// NewSessionCache wraps lookup; ttl <= 0 turns caching off. now is the
// clock (nil: time.Now).
func NewSessionCache(lookup WhoamiFunc, ttl time.Duration, max int, now func() time.Time) *SessionCache {
	if now == nil {
		now = time.Now
	}
	return &SessionCache{lookup: lookup, ttl: ttl, max: max, now: now, entries: map[[32]byte]cachedSession{}}
}

// Whoami answers from the cache or asks Kratos.
func (c *SessionCache) Whoami(ctx context.Context, cookie, sessionToken string) (*Session, error) {
	if c.ttl <= 0 || (cookie == "" && sessionToken == "") {
		return c.lookup(ctx, cookie, sessionToken)
	}
	key := sha256.Sum256([]byte(cookie + "\x00" + sessionToken))
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.s, nil
	}
	s, err := c.lookup(ctx, cookie, sessionToken)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
	}
	c.entries[key] = cachedSession{s: s, expires: now.Add(c.ttl)}
	return s, nil
}

// Len is the number of entries (tests, metrics).
func (c *SessionCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
