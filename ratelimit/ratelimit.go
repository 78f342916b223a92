// Package ratelimit holds kratos-orgs' abuse quotas: rate limits kept in
// Redis, so every replica shares them.
//
// Each check is one round trip: a Lua script implementing GCRA (the generic
// cell rate algorithm) on a single key. A bucket is one number, the
// "theoretical arrival time" of the next request; it expires by itself once
// the bucket would be full again, so idle keys cost nothing. A limit of N
// requests per period with burst B lets B requests through at once, then one
// every period/N.
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// Limit is one named quota. Requests per Period is the sustained rate;
// Burst (default Requests) is how many may come at once. A Limit with no
// Requests is off.
type Limit struct {
	Name     string
	Requests int
	Period   time.Duration
	Burst    int
}

// Enabled reports whether the limit checks anything.
func (l Limit) Enabled() bool { return l.Requests > 0 && l.Period > 0 }

// interval is the time one request "costs"; burst is the bucket's depth.
func (l Limit) interval() time.Duration {
	return max(l.Period/time.Duration(l.Requests), time.Millisecond)
}

func (l Limit) burst() int {
	if l.Burst > 0 {
		return l.Burst
	}
	return l.Requests
}

// Decision is the outcome of a check.
type Decision struct {
	Allowed bool
	// RetryAfter is how long until one request would be allowed (refusals only).
	RetryAfter time.Duration
	// Remaining is how many more requests would be allowed right now.
	Remaining int
}

// Observer is told about every refusal (metrics).
type Observer interface {
	RateLimited(limit string)
}

// Options configure a Limiter; all fields are optional.
type Options struct {
	Now      func() time.Time // the clock (tests); default time.Now
	Observer Observer
	Logger   *slog.Logger
	// LogEvery bounds refusal log lines per limit and key (default 1m).
	LogEvery time.Duration
}

// Limiter checks limits against Redis.
type Limiter struct {
	rdb redis.UniversalClient
	ks  redisx.Keyspace
	opt Options

	mu     sync.Mutex
	logged map[string]time.Time // limit + key hash → last log line
}

// New returns a limiter.
func New(rdb redis.UniversalClient, ks redisx.Keyspace, o Options) *Limiter {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.LogEvery <= 0 {
		o.LogEvery = time.Minute
	}
	return &Limiter{rdb: rdb, ks: ks, opt: o, logged: map[string]time.Time{}}
}

// gcraScript takes cost cells from one bucket, or refuses without
// changing it. A negative cost gives cells back (a refund).
// KEYS: the bucket. Arguments: gcraArgs.
// Returns {allowed (1/0), retry after (ms), remaining}.
var gcraScript = redisx.NewScript("ratelimit.gcra", redisx.Standalone, `
local now, t, burst, cost = A.now, A.interval, A.burst, A.cost
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + t * cost
if new_tat < now then new_tat = now end
local allow_at = new_tat - t * burst
if cost > 0 and allow_at > now then
  return {0, allow_at - now, 0}
end
if new_tat > now then
  redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
else
  redis.call('DEL', KEYS[1])
end
return {1, 0, math.floor((now - allow_at) / t)}
`)

// gcraArgs are gcraScript's arguments.
type gcraArgs struct {
	Now      int64 `json:"now"`      // ms
	Interval int64 `json:"interval"` // ms per cell
	Burst    int   `json:"burst"`
	Cost     int   `json:"cost"` // negative: a refund
}

// Allow takes one request from key's bucket of limit l. A disabled limit
// always allows.
func (r *Limiter) Allow(ctx context.Context, l Limit, key string) (Decision, error) {
	return r.take(ctx, l, key, 1)
}

// Refund gives back one request taken by Allow (a later step refused the
// work the request was for).
func (r *Limiter) Refund(ctx context.Context, l Limit, key string) error {
	_, err := r.take(ctx, l, key, -1)
	return err
}

func (r *Limiter) take(ctx context.Context, l Limit, key string, cost int) (Decision, error) {
	if !l.Enabled() {
		return Decision{Allowed: true, Remaining: math.MaxInt32}, nil
	}
	res, err := gcraScript.Eval(ctx, r.rdb, []string{r.ks.RateLimit(l.Name, key)}, &gcraArgs{
		Now: r.opt.Now().UnixMilli(), Interval: l.interval().Milliseconds(), Burst: l.burst(), Cost: cost,
	}).Int64Slice()
	if err != nil {
		return Decision{}, apperr.Unavailablef(err, "redis_unavailable", "the rate limit store is unavailable; try again")
	}
	d := Decision{Allowed: res[0] == 1, RetryAfter: time.Duration(res[1]) * time.Millisecond, Remaining: int(res[2])}
	if !d.Allowed {
		r.refused(l, key, d)
	}
	return d, nil
}

// Check is Allow as an error: nil when allowed, else a rate_limited error
// with the limit's name in its details and Retry-After set.
func (r *Limiter) Check(ctx context.Context, l Limit, key string) error {
	d, err := r.Allow(ctx, l, key)
	if err != nil {
		return err
	}
	if !d.Allowed {
		return Refusal(l, d.RetryAfter)
	}
	return nil
}

// Refusal is the error every refused request gets.
func Refusal(l Limit, retryAfter time.Duration) *apperr.Error {
	secs := int64(math.Ceil(retryAfter.Seconds()))
	e := apperr.New(apperr.RateLimited, "rate_limited", "too many requests; try again in %s", Human(time.Duration(secs)*time.Second)).
		WithDetails("limit", l.Name, "retry_after_seconds", secs)
	e.RetryAfter = time.Duration(secs) * time.Second
	return e
}

// Human says a wait the way a person would: "40 seconds", "12 minutes",
// "3 hours" (rounded up, so nobody comes back too early).
func Human(d time.Duration) string {
	n, name := HumanParts(d)
	if n == 1 {
		return "1 " + name
	}
	return strconv.FormatInt(n, 10) + " " + name + "s"
}

// HumanParts is Human's count and unit ("second", "minute" or "hour"), for
// saying the wait in another language.
func HumanParts(d time.Duration) (n int64, unit string) {
	size, unit := time.Second, "second"
	switch {
	case d > 90*time.Minute:
		size, unit = time.Hour, "hour"
	case d > 90*time.Second:
		size, unit = time.Minute, "minute"
	}
	return max(1, int64((d+size-1)/size)), unit
}

// IsRefusal reports whether err is a rate_limited refusal.
func IsRefusal(err error) bool {
	e, ok := apperr.As(err)
	return ok && e.Code == "rate_limited"
}

// refused counts a refusal and logs it at most once per LogEvery per limit
// and key. The key is logged hashed: it may be an address or a client IP.
func (r *Limiter) refused(l Limit, key string, d Decision) {
	if r.opt.Observer != nil {
		r.opt.Observer.RateLimited(l.Name)
	}
	sum := sha256.Sum256([]byte(key))
	hashed := hex.EncodeToString(sum[:6])
	now := r.opt.Now()
	r.mu.Lock()
	last, seen := r.logged[l.Name+":"+hashed]
	log := !seen || now.Sub(last) >= r.opt.LogEvery
	if log {
		if len(r.logged) >= 10000 {
			// Bounded memory under a flood of distinct keys: forget them all;
			// at worst a key logs once more than it should.
			clear(r.logged)
		}
		r.logged[l.Name+":"+hashed] = now
	}
	r.mu.Unlock()
	if log {
		r.opt.Logger.Warn("rate limit reached", "limit", l.Name, "key_hash", hashed, "retry_after", d.RetryAfter.Round(time.Second))
	}
}
