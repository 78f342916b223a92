package outbox

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestBatchHandlerKeepsEachJobsOutcome: the jobs of a kind with a batch
// handler that one round reads run in one call, and each job's error is
// applied to that job alone: done, retried, deferred or dead-lettered
// (with its DeadFunc); a job alone runs the single handler.
func TestBatchHandlerKeepsEachJobsOutcome(t *testing.T) {
	rdb, ks := sharedEnv(t)
	clock := newClock()
	w := newWorker(t, rdb, ks, baseConfig(), clock)
	single, dead := newRecorder(nil), &deadRecorder{}
	var mu sync.Mutex
	var calls [][]string
	w.Handle("b", single.Handle, dead.Dead)
	w.HandleBatch("b", func(_ context.Context, jobs []Job) []error {
		mu.Lock()
		defer mu.Unlock()
		var refs []string
		errs := make([]error, len(jobs))
		for i, j := range jobs {
			refs = append(refs, j.Ref)
			switch j.Ref {
			case "retry":
				errs[i] = Retry(errors.New("try again"), 0)
			case "wait":
				errs[i] = Defer(errors.New("budget"), time.Minute)
			case "refused":
				errs[i] = Permanent(errors.New("no"))
			}
		}
		calls = append(calls, refs)
		return errs
	})
	for _, ref := range []string{"ok", "retry", "wait", "refused"} {
		enqueue(t, w, 3, Job{Kind: "b", Ref: ref})
	}
	if n := runOnce(t, w); n != 4 || len(calls) != 1 || len(calls[0]) != 4 || single.Calls() != 0 {
		t.Fatalf("ran %d, batch calls %v, single calls %d; want 4 in one batch call", n, calls, single.Calls())
	}
	if jobs, _ := dead.Calls(); len(jobs) != 1 || jobs[0].Ref != "refused" || deadTotal(t, rdb, ks) != 1 {
		t.Fatalf("dead: %+v", jobs)
	}
	if got := delayedCount(t, rdb, ks); got != 2 {
		t.Fatalf("delayed jobs = %d, want the retry and the deferred one", got)
	}
	clock.Advance(2 * time.Minute)
	if n := runOnce(t, w); n != 2 || len(calls) != 2 {
		t.Fatalf("second round ran %d in %d batch calls", n, len(calls))
	}
	enqueue(t, w, 3, Job{Kind: "b", Ref: "alone"})
	if n := runOnce(t, w); n != 1 || single.Count("alone") != 1 {
		t.Fatalf("a job alone: ran %d, single handler %d", n, single.Count("alone"))
	}
}

// TestReclaimedJobsAreMarked: a job taken over from a dead consumer comes
// with Reclaimed set (a handler must assume it may have run); a fresh one
// does not.
func TestReclaimedJobsAreMarked(t *testing.T) {
	rdb, ks := sharedEnv(t)
	ctx := context.Background()
	cfg := baseConfig()
	cfg.ClaimAfter = 30 * time.Second
	clock := newClock()
	w := newWorker(t, rdb, ks, cfg, clock)
	rec := newRecorder(nil)
	w.Handle("k", rec.Handle, nil)
	runOnce(t, w)
	enqueue(t, w, 5, Job{Kind: "k", Ref: "orphan"})
	streams, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: testGroup, Consumer: "crashed", Streams: []string{ks.Outbox(5), ">"}, Count: 10, Block: -1,
	}).Result()
	if err != nil || len(streams) != 1 || len(streams[0].Messages) != 1 {
		t.Fatalf("XREADGROUP: %v %v", streams, err)
	}
	if err := rdb.Do(ctx, "XCLAIM", ks.Outbox(5), testGroup, "crashed", 0, streams[0].Messages[0].ID, "IDLE", 60_000).Err(); err != nil {
		t.Fatal(err)
	}
	enqueue(t, w, 5, Job{Kind: "k", Ref: "fresh"})
	clock.Advance(cfg.ClaimAfter)
	runOnce(t, w)
	for _, j := range rec.Seen() {
		if j.Reclaimed != (j.Ref == "orphan") {
			t.Errorf("job %s: Reclaimed = %v", j.Ref, j.Reclaimed)
		}
	}
	if rec.Calls() != 2 {
		t.Fatalf("handler calls = %d, want 2", rec.Calls())
	}
}
