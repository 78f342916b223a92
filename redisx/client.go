package redisx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/config"
)

// Open connects to the Redis deployment the configuration names and checks
// that it answers.
func Open(ctx context.Context, cfg config.Redis) (redis.UniversalClient, func() error, error) {
	opts, err := options(cfg)
	if err != nil {
		return nil, nil, err
	}
	var client redis.UniversalClient
	if cfg.Mode == "cluster" {
		client = newClusterClient(opts)
	} else if cfg.Mode == "sentinel" {
		// No slot map to go stale: the failover client asks a sentinel for
		// the master's address on every dial and drops its connections on
		// +switch-master, so after a failover the next dial reaches the
		// promoted replica.
		client = redis.NewFailoverClient(opts.Failover())
	} else {
		client = redis.NewClient(opts.Simple())
	}
	closeAll := client.Close
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		_ = closeAll()
		return nil, nil, fmt.Errorf("redis: ping %v: %w", opts.Addrs, err)
	}
	return client, closeAll, nil
}

// Timeouts and retries for every mode. Redis answers kratos-orgs' commands
// (single-slot scripts over a handful of keys) in well under a millisecond,
// so anything slower means a node is gone; the settings make that show as a
// quick 503 redis_unavailable instead of a request hanging on it.
const (
	// dialTimeout: a connect to a reachable Redis takes a round trip; one
	// to a crashed host or through a partition never completes, and go-redis
	// would wait 5 s for it.
	dialTimeout = time.Second
	// dialAttempts: go-redis dials a refused connection 5 times, 100 ms
	// apart, before a command fails; in a cluster that is 0.4 s per attempt
	// spent on a dead master instead of on a fresh slot map. A second dial
	// still covers a connection refused by a node that is restarting.
	dialAttempts = 2
	// readTimeout and writeTimeout bound a command on a node that stopped
	// answering without closing the connection (a crashed host). 2 s is far
	// above a healthy answer (a script running that long blocks its whole
	// node anyway) and below the 5 s go-redis gives cluster clients. The
	// outbox polls without blocking (XREADGROUP without BLOCK), so no
	// command legitimately waits longer.
	readTimeout  = 2 * time.Second
	writeTimeout = 2 * time.Second
	// poolTimeout bounds the wait for a free connection when every pooled
	// one is busy: under an outage the pool fills with commands waiting on
	// the dead node, and a request should fail fast rather than queue. The
	// pool size stays go-redis' (10 per CPU, 5 per CPU and node on a
	// cluster): a request holds a connection for one round trip at a time.
	poolTimeout = 2 * time.Second
	// clusterReloadInterval bounds how stale the slot map gets without
	// errors (go-redis' default is a minute); errors reload it at once (see
	// reloadOnConnError).
	clusterReloadInterval = 5 * time.Second
)

func options(cfg config.Redis) (*redis.UniversalOptions, error) {
	opts := &redis.UniversalOptions{
		Addrs:        cfg.Addrs,
		MasterName:   cfg.MasterName,
		Username:     cfg.Username,
		Password:     cfg.Password,
		DB:           cfg.DB,
		DialTimeout:  dialTimeout,
		ReadTimeout:  readTimeout,
		WriteTimeout: writeTimeout,
		PoolTimeout:  poolTimeout,
		// go-redis' DialerRetries counts every attempt, the first included.
		DialerRetries: dialAttempts,
	}
	if cfg.Mode == "single" && cfg.URL != "" {
		u, err := redis.ParseURL(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("redis.url: %w", err)
		}
		opts.Addrs = []string{u.Addr}
		opts.DB = u.DB
		if u.Username != "" {
			opts.Username = u.Username
		}
		if u.Password != "" {
			opts.Password = u.Password
		}
		opts.TLSConfig = u.TLSConfig
	}
	if cfg.TLS && opts.TLSConfig == nil {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if len(opts.Addrs) == 0 {
		return nil, errors.New("redis: no address configured")
	}
	return opts, nil
}

// newClusterClient builds the Redis Cluster client. go-redis reloads its
// slot map on MOVED, ASK and READONLY replies and once a minute, but not
// when a node stops answering: a killed master's slots stay mapped to its
// dead address, and each command retries that address (marking it failing
// changes nothing, as the slot still names it) until the next periodic
// reload, long after Redis promoted the replica. reloadOnConnError closes
// that gap.
func newClusterClient(opts *redis.UniversalOptions) *redis.ClusterClient {
	copts := opts.Cluster()
	copts.ClusterStateReloadInterval = clusterReloadInterval
	cc := redis.NewClusterClient(copts)
	cc.AddHook(reloadOnConnError{cc: cc})
	return cc
}

// reloadOnConnError is a go-redis hook that asks the cluster client for a
// fresh slot map whenever a command or pipeline fails because a node could
// not be reached or the cluster is failing over. ReloadState is lazy and
// coalesced (at most one CLUSTER SLOTS in flight, then a 200 ms pause), so
// a burst of failures costs a few reloads, and the first reload after the
// promotion sends traffic to the new master.
type reloadOnConnError struct{ cc *redis.ClusterClient }

func (h reloadOnConnError) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h reloadOnConnError) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.check(ctx, err)
		return err
	}
}

func (h reloadOnConnError) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds) // the first failed command's error
		h.check(ctx, err)
		return err
	}
}

func (h reloadOnConnError) check(ctx context.Context, err error) {
	if IsUnavailable(err) && !errors.Is(err, context.Canceled) {
		h.cc.ReloadState(ctx)
	}
}

// IsUnavailable reports whether err means Redis could not be reached or
// answered with a transient error, as opposed to a script or data error.
func IsUnavailable(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		// Server replies: only these are transient. NOREPLICAS is a master
		// configured with min-replicas-to-write that lost its replicas.
		msg := rerr.Error()
		for _, p := range []string{"LOADING", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "READONLY", "NOREPLICAS"} {
			if len(msg) >= len(p) && msg[:len(p)] == p {
				return true
			}
		}
		return false
	}
	return true
}

// StoreError maps a Redis failure for callers: an outage becomes a 503
// redis_unavailable naming what is unavailable; anything else is wrapped
// as an internal error.
func StoreError(err error, what string) error {
	if err == nil {
		return nil
	}
	if werr := WaitError(err, what); werr != nil {
		return werr
	}
	if IsUnavailable(err) {
		return apperr.Unavailablef(err, "redis_unavailable", "the %s is unavailable; try again", what)
	}
	return fmt.Errorf("%s: redis: %w", what, err)
}

// nodePingTimeout bounds each node's answer to Ping: a health check must
// answer before the prober gives up on it, whatever one node does.
const nodePingTimeout = time.Second

// Ping checks that Redis answers. On a cluster it reloads the slot map and
// pings every master in it, naming each one that does not answer: a plain
// PING reaches one node, which says nothing about the master of the slot a
// request needs. Replicas are left out: kratos-orgs neither reads from nor
// writes to them, and a replica being down must not take every kratos-orgs
// instance out of service.
func Ping(ctx context.Context, client redis.UniversalClient) error {
	cc, ok := client.(*redis.ClusterClient)
	if !ok {
		return client.Ping(ctx).Err()
	}
	var mu sync.Mutex
	var failed []string
	err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		ctx, cancel := context.WithTimeout(ctx, nodePingTimeout)
		defer cancel()
		if err := node.Ping(ctx).Err(); err != nil {
			mu.Lock()
			failed = append(failed, fmt.Sprintf("master %s: %v", node.Options().Addr, err))
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}
