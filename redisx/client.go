package redisx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
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
		client = redis.NewClusterClient(opts.Cluster())
	} else if cfg.Mode == "sentinel" {
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

func options(cfg config.Redis) (*redis.UniversalOptions, error) {
	opts := &redis.UniversalOptions{
		Addrs:      cfg.Addrs,
		MasterName: cfg.MasterName,
		Username:   cfg.Username,
		Password:   cfg.Password,
		DB:         cfg.DB,
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

// IsUnavailable reports whether err means Redis could not be reached or
// answered with a transient error, as opposed to a script or data error.
func IsUnavailable(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		// Server replies: only LOADING/TRYAGAIN/CLUSTERDOWN/MASTERDOWN are transient.
		msg := rerr.Error()
		for _, p := range []string{"LOADING", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "READONLY"} {
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
	if IsUnavailable(err) {
		return apperr.Unavailablef(err, "redis_unavailable", "the %s is unavailable; try again", what)
	}
	return fmt.Errorf("%s: redis: %w", what, err)
}
