package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/redisx"
	"github.com/kratos-orgs/kratos-orgs/tokens"
)

// Lease lets one process at a time run the reconciler: SET NX PX with a
// random token, renewed while the work runs, released (only by its holder)
// when it ends. A holder that dies without releasing loses the lease when
// its TTL passes.
type Lease struct {
	rdb   redis.UniversalClient
	key   string
	token string
	ttl   time.Duration
}

// ErrLeaseHeld means another process holds the lease.
var ErrLeaseHeld = errors.New("reconcile: another kratos-orgs process is running the reconciler")

// Acquire takes the lease at key, or returns ErrLeaseHeld.
func Acquire(ctx context.Context, rdb redis.UniversalClient, key string, ttl time.Duration) (*Lease, error) {
	token, _ := tokens.New(0)
	ok, err := rdb.SetNX(ctx, key, token, ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("reconcile: take lease: %w", err)
	}
	if !ok {
		return nil, ErrLeaseHeld
	}
	return &Lease{rdb: rdb, key: key, token: token, ttl: ttl}, nil
}

// renewScript extends the lease if this process holds it.
// KEYS: the lease. Arguments: leaseArgs.
var renewScript = redisx.NewScript("reconcile.lease_renew", redisx.Standalone, `
if redis.call('GET', KEYS[1]) == A.token then return redis.call('PEXPIRE', KEYS[1], A.ttl) end
return 0
`)

// releaseScript gives the lease up if this process holds it.
// KEYS: the lease. Arguments: leaseArgs (the token).
var releaseScript = redisx.NewScript("reconcile.lease_release", redisx.Standalone, `
if redis.call('GET', KEYS[1]) == A.token then return redis.call('DEL', KEYS[1]) end
return 0
`)

// leaseArgs are the lease scripts' arguments.
type leaseArgs struct {
	Token string `json:"token"`
	TTL   int64  `json:"ttl,omitempty"` // ms
}

// Renew extends the lease; false means it was lost (expired and taken).
func (l *Lease) Renew(ctx context.Context) (bool, error) {
	n, err := renewScript.Eval(ctx, l.rdb, []string{l.key}, leaseArgs{l.token, l.ttl.Milliseconds()}).Int()
	return n == 1, err
}

// Release gives the lease up if this process still holds it.
func (l *Lease) Release(ctx context.Context) error {
	return releaseScript.Eval(ctx, l.rdb, []string{l.key}, leaseArgs{Token: l.token}).Err()
}

// Hold runs fn under the lease: it renews every third of the TTL and
// cancels fn's context when a renewal fails, then releases the lease.
func (l *Lease) Hold(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(l.ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if ok, err := l.Renew(ctx); !ok || err != nil {
					cancel()
					return
				}
			}
		}
	}()
	err := fn(ctx)
	close(done)
	if rerr := l.Release(context.WithoutCancel(ctx)); rerr != nil && err == nil {
		err = fmt.Errorf("reconcile: release lease: %w", rerr)
	}
	return err
}

// DefaultLeaseTTL bounds how long a dead replica blocks the others.
const DefaultLeaseTTL = 30 * time.Second

// Run steps the reconciler every interval until ctx ends, on whichever
// replica takes the lease first; the others skip that round.
func (r *Reconciler) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.round(ctx)
	}
}

func (r *Reconciler) round(ctx context.Context) {
	lease, err := Acquire(ctx, r.o.Redis, r.o.Keyspace.ReconcileLease(), DefaultLeaseTTL)
	if errors.Is(err, ErrLeaseHeld) {
		return
	}
	if err != nil {
		r.o.Log.Warn("reconciler could not take its lease", "err", err)
		return
	}
	err = lease.Hold(ctx, func(ctx context.Context) error {
		_, err := r.Step(ctx)
		return err
	})
	if err != nil && ctx.Err() == nil {
		r.o.Log.Warn("reconciler round failed; the next round continues", "err", err)
	}
}
