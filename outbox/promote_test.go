package outbox

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// promoteCounter counts the promotion scripts a client sends (one per
// shard looked at), pipelined or not (not the EVAL that loads the script).
type promoteCounter struct{ n atomic.Int64 }

func (c *promoteCounter) count(cmd redis.Cmder) {
	if args := cmd.Args(); cmd.Name() == "evalsha" && len(args) > 1 && args[1] == promoteScript.Hash() {
		c.n.Add(1)
	}
}

func (c *promoteCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *promoteCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.count(cmd)
		return next(ctx, cmd)
	}
}

func (c *promoteCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.count(cmd)
		}
		return next(ctx, cmds)
	}
}

// 14. Promotion of delayed jobs costs nothing while nothing is due: a
// script runs on a shard only when a job there is due (one this worker
// delayed, or one the last look at the shard found), and every shard is
// looked at every ClaimAfter/2, which finds what a worker that died had
// delayed.
func TestPromotionRunsOnlyWhenDue(t *testing.T) {
	rdb, ks := sharedEnv(t)
	var scripts promoteCounter
	rdb.AddHook(&scripts)
	clock := newClock()
	cfg := baseConfig()
	cfg.ClaimAfter = time.Minute
	cfg.BaseBackoff, cfg.MaxBackoff = time.Second, time.Second
	w := newWorker(t, rdb, ks, cfg, clock)
	rec := newRecorder(func(job Job, n int) error {
		if n == 1 {
			return Retry(errors.New("first try fails"), 0)
		}
		return nil
	})
	w.Handle("k", rec.Handle, nil)
	runOnce(t, w) // the first round looks at every shard
	first := scripts.n.Load()
	if first < 16 { // and more where the server had to load the script
		t.Fatalf("first round ran %d promotion scripts, want one per shard", first)
	}
	for i := 0; i < 20; i++ {
		clock.Advance(time.Second)
		runOnce(t, w)
	}
	if n := scripts.n.Load() - first; n != 0 {
		t.Fatalf("20 idle rounds ran %d promotion scripts, want none", n)
	}
	// A job this worker delays is promoted when due, by one script.
	enqueue(t, w, 3, Job{Kind: "k", Ref: "own"})
	runOnce(t, w)
	_, due := delayedDue(t, rdb, ks, 3)
	clock.Set(due)
	if n := runOnce(t, w); n != 1 || rec.Count("own") != 2 {
		t.Fatalf("round when due ran %d jobs (own handled %d times), want 1 (2)", n, rec.Count("own"))
	}
	if n := scripts.n.Load() - first; n != 1 {
		t.Fatalf("the promotion of one due job ran %d scripts, want 1", n)
	}
	orphanPromotedByScan(t, w, rdb, clock, rec, &scripts)
}

// orphanPromotedByScan: a job another worker delayed (and never
// promoted: it died) is promoted by w's next look at every shard, within
// ClaimAfter/2 of the last.
func orphanPromotedByScan(t *testing.T, w *Worker, rdb redis.UniversalClient, clock *fakeClock, rec *recorder, scripts *promoteCounter) {
	t.Helper()
	due := clock.Now().Add(time.Second)
	job := Job{Kind: "k", Ref: "orphan", Attempt: 1}
	if err := rdb.ZAdd(context.Background(), w.ks.OutboxDelayed(11), redis.Z{Score: float64(due.UnixMilli()), Member: job.encode()}).Err(); err != nil {
		t.Fatal(err)
	}
	clock.Set(due)
	if n := runOnce(t, w); n != 0 {
		t.Fatalf("ran %d jobs before the scan", n)
	}
	before := scripts.n.Load()
	clock.Advance(w.scanEvery())
	if n := runOnce(t, w); n != 1 || rec.Count("orphan") != 1 {
		t.Fatalf("the scan's round ran %d jobs (orphan handled %d times), want 1", n, rec.Count("orphan"))
	}
	if n := scripts.n.Load() - before; n != 16 {
		t.Fatalf("the scan ran %d scripts, want 16", n)
	}
	assertDrained(t, rdb, w.ks)
}
