package redisx_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// waitScript is a write for the WAIT tests: it counts in KEYS[1].
var waitScript = redisx.NewScript("redisx.test_wait_incr", redisx.Standalone, `
return {'ok', redis.call('INCR', KEYS[1])}
`)

// With a replica in sync, a write waiting for one replica answers, and the
// replica has it; with the replica stopped, the same write answers within
// the timeout with a NotReplicatedError that stores turn into 503
// redis_unavailable saying the change is unconfirmed (it is on the master).
func TestRunWaitingOnMasterAndReplica(t *testing.T) {
	master, replica := testenv.StartReplicated(t)
	ctx := context.Background()
	rdb := master.Client(t)
	w := redisx.Wait{Replicas: 1, Timeout: 300 * time.Millisecond}

	rep, err := waitScript.RunWaiting(ctx, rdb, w, []string{"counter"}, nil)
	if err != nil || rep.Outcome != "ok" || redisx.Int(rep.Values[0]) != 1 {
		t.Fatalf("with the replica: %+v %v", rep, err)
	}
	// The replica acknowledged it: it is there without any waiting.
	if got, err := replica.Client(t).Get(ctx, "counter").Result(); err != nil || got != "1" {
		t.Fatalf("the replica has %q %v right after the answer, want 1", got, err)
	}
	// The node may not have the script (a restart, a failover): EVAL, then
	// WAIT, still counted.
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if rep, err := waitScript.RunWaiting(ctx, rdb, w, []string{"counter"}, nil); err != nil || redisx.Int(rep.Values[0]) != 2 {
		t.Fatalf("after SCRIPT FLUSH: %+v %v", rep, err)
	}

	replica.Kill()
	start := time.Now()
	rep, err = waitScript.RunWaiting(ctx, rdb, w, []string{"counter"}, nil)
	took := time.Since(start)
	var nr *redisx.NotReplicatedError
	if !errors.As(err, &nr) || nr.Acked != 0 || nr.Wanted != 1 {
		t.Fatalf("without the replica: %v, want a NotReplicatedError 0 of 1", err)
	}
	if took < w.Timeout || took > w.Timeout+time.Second {
		t.Errorf("without the replica the write answered after %s; want the timeout, %s", took, w.Timeout)
	}
	t.Logf("without the replica: answered after %s (timeout %s)", took.Round(time.Millisecond), w.Timeout)
	if redisx.Int(rep.Values[0]) != 3 {
		t.Errorf("the reply of the unconfirmed write is %+v; the master applied it", rep)
	}
	e, ok := apperr.As(redisx.StoreError(err, "test store"))
	if !ok || e.Kind != apperr.Unavailable || e.Code != "redis_unavailable" || e.Details["write"] != "unconfirmed" {
		t.Errorf("StoreError = %+v, want 503 redis_unavailable with write: unconfirmed", e)
	}

	// Off (0 replicas): today's behaviour, no WAIT at all.
	if _, err := waitScript.RunWaiting(ctx, rdb, redisx.Wait{}, []string{"counter"}, nil); err != nil {
		t.Fatalf("with wait off: %v", err)
	}
}

// On Redis Cluster the WAIT must run on the master of the key's slot, on
// the connection that wrote: for keys on every master, one replica
// confirms.
func TestRunWaitingOnCluster(t *testing.T) {
	cl := testenv.SharedCluster(t)
	ctx := context.Background()
	cc := cl.Client(t)
	w := redisx.Wait{Replicas: 1, Timeout: time.Second}
	masters := map[string]bool{}
	for i := 0; len(masters) < 3 && i < 100; i++ {
		key := testenv.UniquePrefix(t) + "wait"
		node, err := cc.MasterForKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		masters[node.Options().Addr] = true
		if _, err := waitScript.RunWaiting(ctx, cc, w, []string{key}, nil); err != nil {
			t.Fatalf("%s on %s: %v", key, node.Options().Addr, err)
		}
	}
	if len(masters) < 3 {
		t.Fatalf("reached %d masters, want 3", len(masters))
	}
}
