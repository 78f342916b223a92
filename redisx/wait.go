package redisx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// Wait is redis.wait_replicas and redis.wait_timeout: how many replicas
// must have a state-changing write (an invitation created, accepted or
// revoked; an organization created; a membership changed) before
// kratos-orgs answers it, and how long it waits for them. Zero replicas is
// Redis' own asynchronous replication: the answer comes as soon as the
// master has the write.
//
// It uses WAIT, not WAITAOF: what loses acknowledged writes in a failover
// is a replica promoted before it received them, and WAIT is exactly "the
// replicas received it". WAITAOF (Redis 7.2+) waits for fsyncs to the
// append-only file instead, which guards against a master that restarts
// from its own disk, a different failure; it needs appendonly on.
type Wait struct {
	Replicas int
	Timeout  time.Duration
}

// NotReplicatedError is a write the master applied but fewer replicas than
// asked confirmed within the timeout. The write stands on the master; it
// is lost only if that master fails before a replica gets it.
type NotReplicatedError struct {
	Acked, Wanted int
}

func (e *NotReplicatedError) Error() string {
	return fmt.Sprintf("redis: the write reached %d of the %d replicas required within the timeout", e.Acked, e.Wanted)
}

// RunWaiting runs a script that changes state, like Run, then makes sure w
// holds. With w.Replicas > 0 the script and a WAIT go in one pipeline on
// one connection (WAIT counts the replicas that have that connection's
// writes): still one round trip, plus the replicas' acknowledgement. On
// Redis Cluster both go to the master of keys[0]'s slot, where the script
// runs.
//
// When the replicas do not confirm in time, the script's reply comes back
// with a *NotReplicatedError (see WaitError for what callers answer).
func (s *Script) RunWaiting(ctx context.Context, c redis.UniversalClient, w Wait, keys []string, args any) (Reply, error) {
	if w.Replicas <= 0 {
		return s.Run(ctx, c, keys, args)
	}
	arg, err := s.args(ctx, args)
	if err != nil {
		return Reply{}, err
	}
	target := redis.Cmdable(c)
	cc, cluster := c.(*redis.ClusterClient)
	if cluster {
		if target, err = cc.MasterForKey(ctx, keys[0]); err != nil {
			return Reply{}, err
		}
	}
	res, acked, err := s.evalAndWait(ctx, target, w, keys, arg)
	if cluster && err != nil && movedOrDown(err) {
		// The slot moved or its master is gone. The node's own client does
		// not reload the cluster's slot map (reloadOnConnError hooks the
		// cluster client): ask for a fresh one, so the next try goes where
		// the slot is now. This request answers 503 meanwhile.
		cc.ReloadState(ctx)
		return Reply{}, slotMoved{err}
	}
	if err != nil {
		return Reply{}, err
	}
	rep, err := splitReply(res)
	if err != nil {
		return Reply{}, err
	}
	if acked < w.Replicas {
		return rep, &NotReplicatedError{Acked: acked, Wanted: w.Replicas}
	}
	return rep, nil
}

// evalAndWait sends EVALSHA and WAIT in one pipeline, and again with EVAL
// when the node does not have the script yet.
func (s *Script) evalAndWait(ctx context.Context, c redis.Cmdable, w Wait, keys []string, arg []byte) ([]any, int, error) {
	run := func(sha bool) ([]any, int, error) {
		pipe := c.Pipeline()
		// Queued in a pipeline, Run is EVALSHA alone (its NOSCRIPT
		// fallback needs the answer, which comes with Exec).
		var cmd *redis.Cmd
		if sha {
			cmd = s.lua.Run(ctx, pipe, keys, arg)
		} else {
			cmd = s.lua.Eval(ctx, pipe, keys, arg)
		}
		wait := redis.NewIntCmd(ctx, "wait", w.Replicas, w.Timeout.Milliseconds())
		_ = pipe.Process(ctx, wait)
		_, _ = pipe.Exec(ctx)
		res, err := cmd.Slice()
		if err != nil {
			return nil, 0, err
		}
		n, err := wait.Result()
		if err != nil {
			return nil, 0, err
		}
		return res, int(n), nil
	}
	res, n, err := run(true)
	if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		return run(false)
	}
	return res, n, err
}

// slotMoved is an outage to callers (IsUnavailable: 503), not the
// redis.Error it carries, which would read as a bug.
type slotMoved struct{ err error }

func (e slotMoved) Error() string { return "redis: the slot's master changed: " + e.err.Error() }

func movedOrDown(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "MOVED ") || strings.HasPrefix(msg, "ASK ") || IsUnavailable(err)
}

// WaitError is what a store returns for a write whose replicas did not
// confirm: 503 redis_unavailable, like any Redis outage, because the
// client's right move is the same (try again later), with details saying
// that the change was applied on the master and may or may not survive a
// failover. Retrying is safe: every write RunWaiting guards is idempotent
// to repeat or answers what already happened (an invitation re-issued, an
// acceptance answered as already accepted). Nil for any other error.
func WaitError(err error, what string) error {
	var nr *NotReplicatedError
	if !errors.As(err, &nr) {
		return nil
	}
	return apperr.Unavailablef(err, "redis_unavailable",
		"the %s applied the change, but fewer Redis replicas than required (redis.wait_replicas) confirmed it in time; it may be lost if Redis fails over now: try again", what).
		WithDetails("write", "unconfirmed", "replicas_acknowledged", nr.Acked, "replicas_required", nr.Wanted)
}
