package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const testGroup = "g"

// ---------------------------------------------------------------- helpers

// fakeClock is an injectable clock; the worker reads it from several
// goroutines, hence the mutex.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// tLogWriter sends the worker's log lines to the test log (shown on failure).
type tLogWriter struct{ t testing.TB }

func (w tLogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func baseConfig() Config {
	return Config{
		Group: testGroup, Consumer: "c1", Concurrency: 4, Batch: 32,
		PollInterval: 10 * time.Millisecond, MaxAttempts: 5,
		BaseBackoff: time.Second, MaxBackoff: 10 * time.Second, ClaimAfter: time.Hour,
	}
}

// sharedEnv returns a client of the package's shared redis-server (of the
// shared Redis Cluster under TestCluster, see cluster_test.go) and a
// keyspace no other test uses.
func sharedEnv(t *testing.T) (redis.UniversalClient, redisx.Keyspace) {
	t.Helper()
	ks := redisx.Keyspace{Prefix: testenv.UniquePrefix(t)}
	if testenv.OnCluster(t) {
		return testenv.SharedCluster(t).Open(t), ks
	}
	return testenv.SharedRedis(t).Client(t), ks
}

func newWorker(t *testing.T, rdb redis.UniversalClient, ks redisx.Keyspace, cfg Config, clock *fakeClock) *Worker {
	t.Helper()
	if clock != nil {
		cfg.Now = clock.Now
	}
	return NewWorker(rdb, ks, cfg, testLogger(t))
}

// recorder is a handler that counts calls per Ref and keeps the jobs it saw.
type recorder struct {
	mu    sync.Mutex
	jobs  []Job
	byRef map[string]int
	// result decides what the n-th call (1-based) returns; nil = success.
	result func(job Job, n int) error
}

func newRecorder(result func(job Job, n int) error) *recorder {
	return &recorder{byRef: map[string]int{}, result: result}
}

func (r *recorder) Handle(_ context.Context, job Job) error {
	r.mu.Lock()
	r.jobs = append(r.jobs, job)
	r.byRef[job.Ref]++
	n := len(r.jobs)
	r.mu.Unlock()
	if r.result == nil {
		return nil
	}
	return r.result(job, n)
}

func (r *recorder) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.jobs)
}

func (r *recorder) Seen() []Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Job(nil), r.jobs...)
}

func (r *recorder) Count(ref string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byRef[ref]
}

// deadRecorder records DeadFunc calls.
type deadRecorder struct {
	mu   sync.Mutex
	jobs []Job
	errs []error
}

func (d *deadRecorder) Dead(_ context.Context, job Job, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.jobs = append(d.jobs, job)
	d.errs = append(d.errs, err)
}

func (d *deadRecorder) Calls() ([]Job, []error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Job(nil), d.jobs...), append([]error(nil), d.errs...)
}

func runOnce(t *testing.T, w *Worker) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := w.RunOnce(ctx)
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	return n
}

func enqueue(t *testing.T, w *Worker, shard int, job Job) {
	t.Helper()
	if err := w.Enqueue(context.Background(), shard, job); err != nil {
		t.Fatalf("Enqueue(%d, %+v): %v", shard, job, err)
	}
}

// streamLen sums XLEN over the outbox streams of every shard.
func streamLen(t *testing.T, rdb redis.UniversalClient, ks redisx.Keyspace) int64 {
	t.Helper()
	var total int64
	for s := 0; s < redisx.Shards; s++ {
		n, err := rdb.XLen(context.Background(), ks.Outbox(s)).Result()
		if err != nil {
			t.Fatalf("XLEN shard %d: %v", s, err)
		}
		total += n
	}
	return total
}

// pendingCount sums XPENDING over every shard (the groups must exist).
func pendingCount(t *testing.T, rdb redis.UniversalClient, ks redisx.Keyspace) int64 {
	t.Helper()
	var total int64
	for s := 0; s < redisx.Shards; s++ {
		p, err := rdb.XPending(context.Background(), ks.Outbox(s), testGroup).Result()
		if err != nil {
			t.Fatalf("XPENDING shard %d: %v", s, err)
		}
		total += p.Count
	}
	return total
}

// delayedCount sums ZCARD over the delayed sets of every shard.
func delayedCount(t *testing.T, rdb redis.UniversalClient, ks redisx.Keyspace) int64 {
	t.Helper()
	var total int64
	for s := 0; s < redisx.Shards; s++ {
		n, err := rdb.ZCard(context.Background(), ks.OutboxDelayed(s)).Result()
		if err != nil {
			t.Fatalf("ZCARD shard %d: %v", s, err)
		}
		total += n
	}
	return total
}

type deadEntry struct {
	raw string
	job Job
}

// deadEntries returns the dead letters of one shard, decoded.
func deadEntries(t *testing.T, rdb redis.UniversalClient, ks redisx.Keyspace, shard int) []deadEntry {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), ks.OutboxDead(shard), "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE dead shard %d: %v", shard, err)
	}
	var out []deadEntry
	for _, m := range msgs {
		raw, ok := m.Values[Field].(string)
		if !ok {
			t.Fatalf("dead entry %s has no %q field: %v", m.ID, Field, m.Values)
		}
		var j Job
		if err := json.Unmarshal([]byte(raw), &j); err != nil {
			t.Fatalf("dead entry %s is not a job: %q: %v", m.ID, raw, err)
		}
		out = append(out, deadEntry{raw: raw, job: j})
	}
	return out
}

func deadTotal(t *testing.T, rdb redis.UniversalClient, ks redisx.Keyspace) int {
	t.Helper()
	total := 0
	for s := 0; s < redisx.Shards; s++ {
		total += len(deadEntries(t, rdb, ks, s))
	}
	return total
}

// delayedDue returns the single delayed retry of a shard and its due time.
func delayedDue(t *testing.T, rdb redis.UniversalClient, ks redisx.Keyspace, shard int) (Job, time.Time) {
	t.Helper()
	zs, err := rdb.ZRangeWithScores(context.Background(), ks.OutboxDelayed(shard), 0, -1).Result()
	if err != nil {
		t.Fatalf("ZRANGE delayed: %v", err)
	}
	if len(zs) != 1 {
		t.Fatalf("delayed set of shard %d holds %d entries, want 1: %v", shard, len(zs), zs)
	}
	j, err := decodeJob(zs[0].Member.(string))
	if err != nil {
		t.Fatal(err)
	}
	return j, time.UnixMilli(int64(zs[0].Score)).UTC()
}

// assertDrained checks that no job is left in a stream, pending or delayed.
func assertDrained(t *testing.T, rdb redis.UniversalClient, ks redisx.Keyspace) {
	t.Helper()
	if n := streamLen(t, rdb, ks); n != 0 {
		t.Errorf("outbox streams hold %d entries, want 0", n)
	}
	if n := pendingCount(t, rdb, ks); n != 0 {
		t.Errorf("XPENDING reports %d entries, want 0", n)
	}
	if n := delayedCount(t, rdb, ks); n != 0 {
		t.Errorf("delayed sets hold %d entries, want 0", n)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ---------------------------------------------------------------- tests

// 1. A job is handled exactly once, then removed from the stream.
func TestEnqueuedJobHandledOnceAndRemoved(t *testing.T) {
	rdb, ks := sharedEnv(t)
	clock := newClock()
	w := newWorker(t, rdb, ks, baseConfig(), clock)
	rec := newRecorder(nil)
	w.Handle("k", rec.Handle, nil)

	if n := runOnce(t, w); n != 0 {
		t.Fatalf("RunOnce on an empty outbox ran %d jobs", n)
	}
	enqueue(t, w, 5, Job{Kind: "k", Ref: "r1", Subject: "id-1"})
	if n := streamLen(t, rdb, ks); n != 1 {
		t.Fatalf("after Enqueue the streams hold %d entries, want 1", n)
	}
	if n := runOnce(t, w); n != 1 {
		t.Fatalf("RunOnce ran %d jobs, want 1", n)
	}
	if n := runOnce(t, w); n != 0 {
		t.Fatalf("second RunOnce ran %d jobs, want 0", n)
	}
	seen := rec.Seen()
	if len(seen) != 1 {
		t.Fatalf("handler called %d times, want 1", len(seen))
	}
	got := seen[0]
	if got.Kind != "k" || got.Ref != "r1" || got.Subject != "id-1" || got.Attempt != 0 || got.LastErr != "" {
		t.Errorf("handler saw %+v", got)
	}
	if got.Enqueued != clock.Now().UnixMilli() {
		t.Errorf("Enqueued = %d, want the worker clock %d", got.Enqueued, clock.Now().UnixMilli())
	}
	assertDrained(t, rdb, ks)
	if n := deadTotal(t, rdb, ks); n != 0 {
		t.Errorf("%d dead letters, want 0", n)
	}
}

// 2. Retries wait for their backoff and carry Attempt and LastErr.
func TestRetryWaitsForBackoff(t *testing.T) {
	rdb, ks := sharedEnv(t)
	clock := newClock()
	cfg := baseConfig()
	cfg.BaseBackoff, cfg.MaxBackoff = time.Second, 10*time.Second
	w := newWorker(t, rdb, ks, cfg, clock)
	rec := newRecorder(func(_ Job, n int) error {
		if n <= 2 {
			return fmt.Errorf("boom %d", n)
		}
		return nil
	})
	w.Handle("flaky", rec.Handle, nil)
	const shard = 9
	enqueue(t, w, shard, Job{Kind: "flaky", Ref: "r"})

	if n := runOnce(t, w); n != 1 || rec.Calls() != 1 {
		t.Fatalf("first round: ran %d, handler calls %d; want 1, 1", n, rec.Calls())
	}
	for attempt := 1; attempt <= 2; attempt++ {
		// The failed entry left the stream for the delayed set.
		if n := streamLen(t, rdb, ks); n != 0 {
			t.Fatalf("attempt %d: stream holds %d entries, want 0", attempt, n)
		}
		if n := pendingCount(t, rdb, ks); n != 0 {
			t.Fatalf("attempt %d: %d pending, want 0", attempt, n)
		}
		delayed, due := delayedDue(t, rdb, ks, shard)
		if delayed.Attempt != attempt || delayed.LastErr != fmt.Sprintf("boom %d", attempt) {
			t.Fatalf("delayed job %+v, want attempt %d", delayed, attempt)
		}
		// backoff(attempt) lies in [cap/2, cap], cap = base·2^(attempt-1).
		ceiling := cfg.BaseBackoff << (attempt - 1)
		if wait := due.Sub(clock.Now()); wait < ceiling/2 || wait > ceiling {
			t.Fatalf("attempt %d: retry due in %s, want within [%s, %s]", attempt, wait, ceiling/2, ceiling)
		}

		if n := runOnce(t, w); n != 0 {
			t.Fatalf("attempt %d: RunOnce right away ran %d jobs, want 0", attempt, n)
		}
		clock.Set(due.Add(-time.Millisecond))
		if n := runOnce(t, w); n != 0 {
			t.Fatalf("attempt %d: RunOnce 1ms before the retry is due ran %d jobs", attempt, n)
		}
		if rec.Calls() != attempt {
			t.Fatalf("handler ran %d times before the backoff elapsed, want %d", rec.Calls(), attempt)
		}
		clock.Set(due)
		if n := runOnce(t, w); n != 1 {
			t.Fatalf("attempt %d: RunOnce when due ran %d jobs, want 1", attempt, n)
		}
		seen := rec.Seen()
		if len(seen) != attempt+1 {
			t.Fatalf("handler calls %d, want %d", len(seen), attempt+1)
		}
		last := seen[attempt]
		if last.Attempt != attempt || last.LastErr != fmt.Sprintf("boom %d", attempt) || last.Ref != "r" {
			t.Fatalf("retry %d: handler saw %+v", attempt, last)
		}
	}
	clock.Advance(time.Hour)
	if n := runOnce(t, w); n != 0 {
		t.Fatalf("after success RunOnce ran %d jobs", n)
	}
	if rec.Calls() != 3 {
		t.Fatalf("handler calls %d, want 3", rec.Calls())
	}
	assertDrained(t, rdb, ks)
	if n := deadTotal(t, rdb, ks); n != 0 {
		t.Errorf("%d dead letters, want 0", n)
	}
}

// 3. Retry(err, after) waits at least after; a smaller after is raised to the backoff.
func TestRetryAfter(t *testing.T) {
	t.Run("larger than backoff", func(t *testing.T) {
		rdb, ks := sharedEnv(t)
		clock := newClock()
		cfg := baseConfig()
		cfg.BaseBackoff, cfg.MaxBackoff = 10*time.Millisecond, 100*time.Millisecond
		w := newWorker(t, rdb, ks, cfg, clock)
		rec := newRecorder(func(_ Job, n int) error {
			if n == 1 {
				return Retry(errors.New("rate limited"), time.Hour)
			}
			return nil
		})
		w.Handle("k", rec.Handle, nil)
		enqueue(t, w, 2, Job{Kind: "k", Ref: "r"})
		start := clock.Now()
		runOnce(t, w)

		job, due := delayedDue(t, rdb, ks, 2)
		if want := start.Add(time.Hour); !due.Equal(want) {
			t.Fatalf("retry due at %s, want exactly %s (Retry's after)", due, want)
		}
		if job.LastErr != "retryable: rate limited" || job.Attempt != 1 {
			t.Errorf("delayed job %+v", job)
		}
		clock.Set(start.Add(cfg.MaxBackoff * 10))
		if n := runOnce(t, w); n != 0 {
			t.Fatalf("ran %d jobs once the backoff but not after had elapsed", n)
		}
		clock.Set(start.Add(time.Hour - time.Millisecond))
		if n := runOnce(t, w); n != 0 {
			t.Fatalf("ran %d jobs 1ms before after elapsed", n)
		}
		clock.Set(start.Add(time.Hour))
		if n := runOnce(t, w); n != 1 {
			t.Fatalf("ran %d jobs once after elapsed, want 1", n)
		}
		if rec.Calls() != 2 {
			t.Fatalf("handler calls %d, want 2", rec.Calls())
		}
		assertDrained(t, rdb, ks)
	})
	t.Run("smaller than backoff", func(t *testing.T) {
		rdb, ks := sharedEnv(t)
		clock := newClock()
		cfg := baseConfig()
		cfg.BaseBackoff, cfg.MaxBackoff = 10*time.Second, time.Minute
		w := newWorker(t, rdb, ks, cfg, clock)
		rec := newRecorder(func(_ Job, n int) error {
			return Retry(errors.New("soon"), time.Millisecond)
		})
		w.Handle("k", rec.Handle, nil)
		enqueue(t, w, 0, Job{Kind: "k", Ref: "r"})
		start := clock.Now()
		runOnce(t, w)
		_, due := delayedDue(t, rdb, ks, 0)
		if wait := due.Sub(start); wait < cfg.BaseBackoff/2 || wait > cfg.BaseBackoff {
			t.Fatalf("retry due in %s, want the backoff within [%s, %s]", wait, cfg.BaseBackoff/2, cfg.BaseBackoff)
		}
	})
}

// 4. Permanent errors are dead-lettered at once, without the sealed token.
func TestPermanentDeadLetters(t *testing.T) {
	rdb, ks := sharedEnv(t)
	clock := newClock()
	w := newWorker(t, rdb, ks, baseConfig(), clock)
	cause := errors.New("bad address")
	rec := newRecorder(func(Job, int) error { return Permanent(cause) })
	var dead deadRecorder
	w.Handle("mail", rec.Handle, dead.Dead)
	const shard = 11
	const sealed = "sealed-secret-token-value"
	enqueue(t, w, shard, Job{Kind: "mail", Ref: "inv_1", Version: 3, Template: "invitation", Sealed: sealed})

	if n := runOnce(t, w); n != 1 {
		t.Fatalf("RunOnce ran %d, want 1", n)
	}
	clock.Advance(24 * time.Hour)
	for i := 0; i < 3; i++ {
		if n := runOnce(t, w); n != 0 {
			t.Fatalf("a permanently failed job ran again (%d jobs)", n)
		}
	}
	if rec.Calls() != 1 {
		t.Fatalf("handler calls %d, want 1", rec.Calls())
	}
	if rec.Seen()[0].Sealed != sealed {
		t.Errorf("handler did not get the sealed token")
	}
	assertDrained(t, rdb, ks)

	entries := deadEntries(t, rdb, ks, shard)
	if len(entries) != 1 {
		t.Fatalf("%d dead letters in shard %d, want 1", len(entries), shard)
	}
	if total := deadTotal(t, rdb, ks); total != 1 {
		t.Fatalf("%d dead letters overall, want 1", total)
	}
	d := entries[0]
	if d.job.Kind != "mail" || d.job.Ref != "inv_1" || d.job.Version != 3 || d.job.Attempt != 1 || d.job.LastErr != "bad address" {
		t.Errorf("dead letter %+v", d.job)
	}
	if d.job.Sealed != "" || strings.Contains(d.raw, sealed) || strings.Contains(d.raw, `"s":`) {
		t.Errorf("dead letter keeps the sealed token: %s", d.raw)
	}

	jobs, errs := dead.Calls()
	if len(jobs) != 1 {
		t.Fatalf("DeadFunc called %d times, want 1", len(jobs))
	}
	if !errors.Is(errs[0], cause) || jobs[0].LastErr != "bad address" || jobs[0].Attempt != 1 || jobs[0].Ref != "inv_1" {
		t.Errorf("DeadFunc got job %+v err %v", jobs[0], errs[0])
	}
}

// 5. MaxAttempts retryable failures dead-letter the job.
func TestMaxAttemptsDeadLetters(t *testing.T) {
	rdb, ks := sharedEnv(t)
	clock := newClock()
	cfg := baseConfig()
	cfg.MaxAttempts = 3
	cfg.BaseBackoff, cfg.MaxBackoff = time.Second, time.Second
	w := newWorker(t, rdb, ks, cfg, clock)
	rec := newRecorder(func(Job, int) error { return errors.New("down") })
	var dead deadRecorder
	w.Handle("k", rec.Handle, dead.Dead)
	const shard = 4
	enqueue(t, w, shard, Job{Kind: "k", Ref: "r", Sealed: "tok"})

	for i := 0; i < 10; i++ {
		runOnce(t, w)
		clock.Advance(2 * time.Second) // past any backoff
	}
	if rec.Calls() != cfg.MaxAttempts {
		t.Fatalf("handler calls %d, want MaxAttempts=%d", rec.Calls(), cfg.MaxAttempts)
	}
	for i, j := range rec.Seen() {
		if j.Attempt != i {
			t.Errorf("call %d saw Attempt %d, want %d", i+1, j.Attempt, i)
		}
	}
	assertDrained(t, rdb, ks)
	entries := deadEntries(t, rdb, ks, shard)
	if len(entries) != 1 {
		t.Fatalf("%d dead letters, want 1", len(entries))
	}
	if j := entries[0].job; j.Attempt != cfg.MaxAttempts || j.LastErr != "down" || j.Sealed != "" {
		t.Errorf("dead letter %+v", j)
	}
	jobs, errs := dead.Calls()
	if len(jobs) != 1 {
		t.Fatalf("DeadFunc called %d times, want 1", len(jobs))
	}
	if jobs[0].Attempt != cfg.MaxAttempts || errs[0] == nil || errs[0].Error() != "down" {
		t.Errorf("DeadFunc got job %+v err %v", jobs[0], errs[0])
	}
}

// 6. Unknown kinds and undecodable entries are dead-lettered and do not
// hold up the rest of their batch.
func TestUnknownAndUndecodableJobs(t *testing.T) {
	rdb, ks := sharedEnv(t)
	clock := newClock()
	w := newWorker(t, rdb, ks, baseConfig(), clock)
	rec := newRecorder(nil)
	w.Handle("ok", rec.Handle, nil)
	ctx := context.Background()
	const shard = 3

	runOnce(t, w) // creates the groups, so everything below arrives as one batch
	xadd := func(values ...string) {
		t.Helper()
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: ks.Outbox(shard), Values: values}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	xadd(Field, "{not json")
	enqueue(t, w, shard, Job{Kind: "nope", Ref: "x"})
	xadd("other", "no job field")
	enqueue(t, w, shard, Job{Kind: "ok", Ref: "a"})
	enqueue(t, w, shard+1, Job{Kind: "ok", Ref: "b"})

	if n := runOnce(t, w); n != 5 {
		t.Fatalf("RunOnce ran %d entries, want 5", n)
	}
	if rec.Count("a") != 1 || rec.Count("b") != 1 || rec.Calls() != 2 {
		t.Fatalf("good jobs handled a=%d b=%d total=%d, want 1 1 2", rec.Count("a"), rec.Count("b"), rec.Calls())
	}
	clock.Advance(24 * time.Hour)
	for i := 0; i < 3; i++ {
		if n := runOnce(t, w); n != 0 {
			t.Fatalf("round %d ran %d entries again", i, n)
		}
	}
	assertDrained(t, rdb, ks)

	entries := deadEntries(t, rdb, ks, shard)
	if len(entries) != 3 {
		t.Fatalf("%d dead letters, want 3: %v", len(entries), entries)
	}
	var undecodable []string // their LastErr: why, never the raw entry (it may hold a sealed link)
	var unknown int
	for _, e := range entries {
		switch e.job.Kind {
		case "undecodable":
			undecodable = append(undecodable, e.job.LastErr)
		case "nope":
			unknown++
			if e.job.LastErr != "no handler for job kind nope" || e.job.Ref != "x" {
				t.Errorf("unknown-kind dead letter %+v", e.job)
			}
		default:
			t.Errorf("unexpected dead letter %+v", e.job)
		}
	}
	if len(undecodable) != 2 || unknown != 1 {
		t.Errorf("dead letters: %d undecodable, %d unknown; want 2, 1", len(undecodable), unknown)
	}
	for _, e := range undecodable {
		if !strings.HasPrefix(e, "outbox: undecodable job") || strings.Contains(e, "not json") {
			t.Errorf("undecodable dead letter says %q: it must explain without echoing the entry", e)
		}
	}
	if n := deadTotal(t, rdb, ks); n != 3 {
		t.Errorf("%d dead letters overall, want 3", n)
	}
}

// 7. A panicking handler is a permanent failure; the worker carries on.
func TestPanickingHandler(t *testing.T) {
	rdb, ks := sharedEnv(t)
	clock := newClock()
	w := newWorker(t, rdb, ks, baseConfig(), clock)
	var dead deadRecorder
	w.Handle("boom", func(context.Context, Job) error { panic("kaboom") }, dead.Dead)
	rec := newRecorder(nil)
	w.Handle("ok", rec.Handle, nil)
	const shard = 6
	enqueue(t, w, shard, Job{Kind: "boom", Ref: "p"})
	enqueue(t, w, shard, Job{Kind: "ok", Ref: "a"})

	if n := runOnce(t, w); n != 2 {
		t.Fatalf("RunOnce ran %d, want 2", n)
	}
	if rec.Count("a") != 1 {
		t.Fatalf("the job next to the panicking one ran %d times", rec.Count("a"))
	}
	entries := deadEntries(t, rdb, ks, shard)
	if len(entries) != 1 || entries[0].job.Kind != "boom" || !strings.Contains(entries[0].job.LastErr, "handler panicked: kaboom") {
		t.Fatalf("dead letters %+v", entries)
	}
	if jobs, _ := dead.Calls(); len(jobs) != 1 {
		t.Fatalf("DeadFunc called %d times, want 1", len(jobs))
	}

	// The worker still works.
	clock.Advance(time.Hour)
	enqueue(t, w, shard, Job{Kind: "ok", Ref: "b"})
	if n := runOnce(t, w); n != 1 || rec.Count("b") != 1 {
		t.Fatalf("after the panic: ran %d, b handled %d times", n, rec.Count("b"))
	}
	assertDrained(t, rdb, ks)
	if n := deadTotal(t, rdb, ks); n != 1 {
		t.Errorf("%d dead letters, want 1", n)
	}
}

// 8. A job read by a consumer that died unacknowledged is reclaimed once
// it has been idle for ClaimAfter, and handled exactly once.
func TestReclaimFromDeadConsumer(t *testing.T) {
	rdb, ks := sharedEnv(t)
	ctx := context.Background()
	clock := newClock()
	cfg := baseConfig()
	cfg.Consumer = "survivor"
	cfg.ClaimAfter = 30 * time.Second
	w := newWorker(t, rdb, ks, cfg, clock)
	rec := newRecorder(nil)
	w.Handle("k", rec.Handle, nil)
	const shard = 7

	runOnce(t, w) // creates the groups
	enqueue(t, w, shard, Job{Kind: "k", Ref: "orphan"})
	// The crashed worker reads the entry and never acknowledges it.
	streams, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: testGroup, Consumer: "crashed", Streams: []string{ks.Outbox(shard), ">"}, Count: 10, Block: -1,
	}).Result()
	if err != nil || len(streams) != 1 || len(streams[0].Messages) != 1 {
		t.Fatalf("XREADGROUP by the crashed consumer: %v %v", streams, err)
	}
	id := streams[0].Messages[0].ID

	// Not idle long enough yet (by Redis' clock): nobody may take it.
	clock.Advance(cfg.ClaimAfter)
	if n := runOnce(t, w); n != 0 || rec.Calls() != 0 {
		t.Fatalf("the job was taken before ClaimAfter: ran %d, handler %d", n, rec.Calls())
	}
	owner := func() string {
		t.Helper()
		p, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: ks.Outbox(shard), Group: testGroup, Start: "-", End: "+", Count: 10}).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != 1 {
			t.Fatalf("%d pending entries, want 1", len(p))
		}
		return p[0].Consumer
	}
	if c := owner(); c != "crashed" {
		t.Fatalf("pending entry belongs to %q, want crashed", c)
	}

	// Let the entry look idle for a minute (XCLAIM ... IDLE sets Redis' idle
	// time without waiting for it) and let the worker's reclaim interval pass.
	if err := rdb.Do(ctx, "XCLAIM", ks.Outbox(shard), testGroup, "crashed", 0, id, "IDLE", 60_000).Err(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(cfg.ClaimAfter)
	if n := runOnce(t, w); n != 1 {
		t.Fatalf("reclaim round ran %d jobs, want 1", n)
	}
	if rec.Count("orphan") != 1 {
		t.Fatalf("orphan handled %d times, want 1", rec.Count("orphan"))
	}
	for i := 0; i < 3; i++ {
		clock.Advance(cfg.ClaimAfter)
		if n := runOnce(t, w); n != 0 {
			t.Fatalf("round %d after the reclaim ran %d jobs", i, n)
		}
	}
	if rec.Calls() != 1 {
		t.Fatalf("handler calls %d, want 1", rec.Calls())
	}
	assertDrained(t, rdb, ks)
}

// 8b. The same with real time: a worker whose handler never returns is
// abandoned; a second worker with a short ClaimAfter takes the job over.
func TestReclaimFromAbandonedWorker(t *testing.T) {
	rdb, ks := sharedEnv(t)
	const claimAfter = 100 * time.Millisecond
	const shard = 12

	cfgA := baseConfig()
	cfgA.Consumer, cfgA.ClaimAfter = "stuck", time.Hour
	a := newWorker(t, rdb, ks, cfgA, nil)
	started := make(chan struct{})
	release := make(chan struct{})
	aDone := make(chan struct{})
	a.Handle("k", func(context.Context, Job) error {
		close(started)
		<-release // the process "died" here: it never acknowledges
		return nil
	}, nil)
	enqueue(t, a, shard, Job{Kind: "k", Ref: "r"})
	begin := time.Now() // before the first worker reads the entry
	go func() {
		defer close(aDone)
		_, _ = a.RunOnce(context.Background())
	}()
	t.Cleanup(func() { <-aDone })
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the first worker never started the job")
	}

	cfgB := baseConfig()
	cfgB.Consumer, cfgB.ClaimAfter = "rescuer", claimAfter
	b := newWorker(t, rdb, ks, cfgB, nil)
	rec := newRecorder(nil)
	b.Handle("k", rec.Handle, nil)
	waitFor(t, 10*time.Second, "the rescuer to reclaim the job", func() bool {
		runOnce(t, b)
		return rec.Calls() > 0
	})
	// (A few ms of slack for Redis' millisecond clock.)
	if waited := time.Since(begin); waited < claimAfter-5*time.Millisecond {
		t.Errorf("job reclaimed after %s, before ClaimAfter=%s", waited, claimAfter)
	}
	// Rounds later (well past ClaimAfter) must not run it again.
	time.Sleep(2 * claimAfter)
	for i := 0; i < 3; i++ {
		runOnce(t, b)
	}
	if rec.Calls() != 1 || rec.Count("r") != 1 {
		t.Fatalf("rescuer handled the job %d times, want 1", rec.Calls())
	}
	if n := streamLen(t, rdb, ks); n != 0 {
		t.Errorf("stream holds %d entries, want 0", n)
	}
	if n := pendingCount(t, rdb, ks); n != 0 {
		t.Errorf("%d pending, want 0", n)
	}

	// The abandoned handler finally returns success: acknowledging an entry
	// that is already gone must not resurrect or duplicate anything.
	close(release)
	<-aDone
	assertDrained(t, rdb, ks)
	if n := deadTotal(t, rdb, ks); n != 0 {
		t.Errorf("%d dead letters, want 0", n)
	}
}

// 8c. A worker presumed dead comes back with a failure after another worker
// took its job over and finished it: its late retry or dead letter must not
// be recorded, and the DeadFunc must not fire.
func TestLateOutcomeOfPresumedDeadWorkerIsIgnored(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{{"retryable", errors.New("late failure")}, {"permanent", Permanent(errors.New("late failure"))}} {
		t.Run(tc.name, func(t *testing.T) {
			rdb, ks := sharedEnv(t)
			const shard = 5
			cfgA := baseConfig()
			cfgA.Consumer, cfgA.ClaimAfter = "presumed-dead", time.Hour
			a := newWorker(t, rdb, ks, cfgA, nil)
			started, release, aDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
			dead := &deadRecorder{}
			a.Handle("k", func(context.Context, Job) error {
				close(started)
				<-release
				return tc.err
			}, dead.Dead)
			enqueue(t, a, shard, Job{Kind: "k", Ref: "r"})
			go func() { defer close(aDone); _, _ = a.RunOnce(context.Background()) }()
			<-started

			// Make the entry look idle for a minute, then let a rescuer finish it.
			if err := rdb.Do(context.Background(), "XCLAIM", ks.Outbox(shard), testGroup, "presumed-dead", 0,
				pendingIDs(t, rdb, ks, shard)[0], "IDLE", 60000).Err(); err != nil {
				t.Fatal(err)
			}
			cfgB := baseConfig()
			cfgB.Consumer, cfgB.ClaimAfter = "rescuer", 30*time.Second
			b := newWorker(t, rdb, ks, cfgB, nil)
			rec := newRecorder(nil)
			b.Handle("k", rec.Handle, nil)
			runOnce(t, b)
			if rec.Calls() != 1 {
				t.Fatalf("rescuer ran the job %d times, want 1", rec.Calls())
			}

			close(release)
			<-aDone
			assertDrained(t, rdb, ks)
			if n := deadTotal(t, rdb, ks); n != 0 {
				t.Errorf("%d dead letters from the late outcome, want 0", n)
			}
			if calls, _ := dead.Calls(); len(calls) != 0 {
				t.Errorf("DeadFunc fired %d times for a job another worker finished", len(calls))
			}
		})
	}
}

func pendingIDs(t *testing.T, rdb redis.UniversalClient, ks redisx.Keyspace, shard int) []string {
	t.Helper()
	p, err := rdb.XPendingExt(context.Background(), &redis.XPendingExtArgs{
		Stream: ks.Outbox(shard), Group: testGroup, Start: "-", End: "+", Count: 10,
	}).Result()
	if err != nil || len(p) == 0 {
		t.Fatalf("no pending entry (%v)", err)
	}
	ids := make([]string, len(p))
	for i, e := range p {
		ids[i] = e.ID
	}
	return ids
}

// 9. Two workers share 200 jobs over all 16 shards; each runs exactly once.
func TestTwoWorkersShareJobsExactlyOnce(t *testing.T) {
	rdb, ks := sharedEnv(t)
	const total = 200

	var mu sync.Mutex
	counts := map[string]int{}
	byWorker := map[string]int{}
	handler := func(name string) HandlerFunc {
		return func(_ context.Context, job Job) error {
			mu.Lock()
			counts[job.Ref]++
			byWorker[name]++
			mu.Unlock()
			return nil
		}
	}
	handled := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, c := range counts {
			n += c
		}
		return n
	}

	var workers []*Worker
	for _, name := range []string{"w1", "w2"} {
		cfg := baseConfig()
		cfg.Consumer, cfg.Concurrency, cfg.Batch = name, 4, 4
		w := newWorker(t, rdb, ks, cfg, nil)
		w.Handle("k", handler(name), nil)
		workers = append(workers, w)
	}
	for i := 0; i < total; i++ {
		enqueue(t, workers[0], i%redisx.Shards, Job{Kind: "k", Ref: fmt.Sprintf("job-%03d", i)})
	}
	for s := 0; s < redisx.Shards; s++ {
		n, err := rdb.XLen(context.Background(), ks.Outbox(s)).Result()
		if err != nil || n < total/redisx.Shards {
			t.Fatalf("shard %d holds %d jobs (%v), want at least %d", s, n, err, total/redisx.Shards)
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := w.RunOnce(context.Background()); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for handled() < total && time.Now().Before(deadline) {
		select {
		case err := <-errs:
			close(stop)
			wg.Wait()
			t.Fatalf("RunOnce: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("RunOnce: %v", err)
	default:
	}
	// One more round each: nothing may be left or run twice.
	for _, w := range workers {
		if n := runOnce(t, w); n != 0 {
			t.Errorf("a final round ran %d jobs", n)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	if len(counts) != total {
		t.Errorf("%d distinct jobs handled, want %d", len(counts), total)
	}
	for i := 0; i < total; i++ {
		ref := fmt.Sprintf("job-%03d", i)
		if counts[ref] != 1 {
			t.Errorf("%s handled %d times, want 1", ref, counts[ref])
		}
	}
	t.Logf("jobs per worker: %v", byWorker)
	assertDrained(t, rdb, ks)
}

// 10. Jobs survive a Redis crash (AOF, fsync always); while Redis is down
// RunOnce fails promptly.
func TestRedisRestartLosesNothing(t *testing.T) {
	srv := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{
		Addr: srv.Addr, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond,
		MaxRetries: 1, MinRetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond,
	})
	t.Cleanup(func() { _ = rdb.Close() })
	ks := redisx.Keyspace{Prefix: "P"}
	clock := newClock()
	cfg := baseConfig()
	cfg.BaseBackoff, cfg.MaxBackoff = time.Second, time.Second
	w := newWorker(t, rdb, ks, cfg, clock)
	rec := newRecorder(func(job Job, _ int) error {
		if job.Ref == "flaky" && job.Attempt == 0 {
			return errors.New("first try fails")
		}
		return nil
	})
	w.Handle("k", rec.Handle, nil)

	runOnce(t, w) // groups exist before the crash
	enqueue(t, w, 1, Job{Kind: "k", Ref: "flaky"})
	runOnce(t, w) // the flaky job now waits in the delayed set
	if rec.Count("flaky") != 1 || delayedCount(t, rdb, ks) != 1 {
		t.Fatalf("flaky job: handled %d times, %d delayed; want 1, 1", rec.Count("flaky"), delayedCount(t, rdb, ks))
	}
	const n = 50
	for i := 0; i < n; i++ {
		enqueue(t, w, i%redisx.Shards, Job{Kind: "k", Ref: fmt.Sprintf("job-%02d", i)})
	}

	srv.Kill()

	// Redis is down: RunOnce must fail, promptly.
	type result struct {
		n   int
		err error
	}
	res := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n, err := w.RunOnce(ctx)
		res <- result{n, err}
	}()
	select {
	case r := <-res:
		if r.err == nil {
			t.Fatalf("RunOnce with Redis down returned no error (ran %d)", r.n)
		}
		t.Logf("RunOnce with Redis down: %v", r.err)
	case <-time.After(10 * time.Second):
		t.Fatal("RunOnce hung with Redis down")
	}
	if rec.Calls() != 1 {
		t.Fatalf("handler ran %d times while Redis was down", rec.Calls()-1)
	}

	srv.Restart(t)

	check := srv.Client(t)
	var stored int64
	for s := 0; s < redisx.Shards; s++ {
		l, err := check.XLen(context.Background(), ks.Outbox(s)).Result()
		if err != nil {
			t.Fatal(err)
		}
		stored += l
	}
	if stored != n {
		t.Fatalf("after the restart the streams hold %d jobs, want %d", stored, n)
	}
	if d, err := check.ZCard(context.Background(), ks.OutboxDelayed(1)).Result(); err != nil || d != 1 {
		t.Fatalf("after the restart the delayed set holds %d (%v), want 1", d, err)
	}

	clock.Advance(2 * time.Second) // the flaky retry is due
	waitFor(t, 15*time.Second, "every job to be handled after the restart", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := w.RunOnce(ctx); err != nil {
			t.Logf("RunOnce after restart: %v", err)
		}
		return rec.Calls() >= n+2
	})
	for i := 0; i < 3; i++ {
		runOnce(t, w)
	}
	if rec.Calls() != n+2 {
		t.Errorf("handler calls %d, want %d", rec.Calls(), n+2)
	}
	for i := 0; i < n; i++ {
		if c := rec.Count(fmt.Sprintf("job-%02d", i)); c != 1 {
			t.Errorf("job-%02d handled %d times, want 1", i, c)
		}
	}
	if c := rec.Count("flaky"); c != 2 {
		t.Errorf("flaky handled %d times, want 2", c)
	}
	assertDrained(t, rdb, ks)
}

// 11. Consumer groups that vanish (FLUSHALL, a Redis restarted without
// persistence) are re-created and work goes on.
func TestConsumerGroupVanished(t *testing.T) {
	for _, tc := range []struct {
		name         string
		reclaimIsDue bool
	}{{"read notices", false}, {"reclaim notices", true}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testenv.StartRedis(t)
			rdb := srv.Client(t)
			ks := redisx.Keyspace{Prefix: "P"}
			clock := newClock()
			cfg := baseConfig()
			cfg.ClaimAfter = time.Minute
			w := newWorker(t, rdb, ks, cfg, clock)
			rec := newRecorder(nil)
			w.Handle("k", rec.Handle, nil)

			enqueue(t, w, 2, Job{Kind: "k", Ref: "before"})
			if n := runOnce(t, w); n != 1 || rec.Count("before") != 1 {
				t.Fatalf("before FLUSHALL: ran %d", n)
			}
			if err := rdb.FlushAll(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
			enqueue(t, w, 2, Job{Kind: "k", Ref: "after"})
			enqueue(t, w, 9, Job{Kind: "k", Ref: "after2"})
			if tc.reclaimIsDue {
				clock.Advance(cfg.ClaimAfter)
			}
			for round := 0; round < 5 && rec.Calls() < 3; round++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := w.RunOnce(ctx)
				cancel()
				t.Logf("round %d: %v", round, err)
			}
			if rec.Count("after") != 1 || rec.Count("after2") != 1 {
				t.Fatalf("after FLUSHALL: jobs handled after=%d after2=%d within 5 rounds, want 1 each",
					rec.Count("after"), rec.Count("after2"))
			}
			// And the worker keeps working normally.
			enqueue(t, w, 2, Job{Kind: "k", Ref: "later"})
			if n := runOnce(t, w); n != 1 || rec.Count("later") != 1 {
				t.Fatalf("later job: ran %d, handled %d", n, rec.Count("later"))
			}
			if rec.Calls() != 4 {
				t.Errorf("handler calls %d, want 4", rec.Calls())
			}
			assertDrained(t, rdb, ks)
		})
	}
}

// 11b. When the group of one shard is gone, the jobs already read from the
// other shards in the same round still run in that round instead of waiting
// ClaimAfter in this consumer's pending list.
func TestOneShardGroupVanished(t *testing.T) {
	rdb, ks := sharedEnv(t)
	ctx := context.Background()
	clock := newClock()
	w := newWorker(t, rdb, ks, baseConfig(), clock) // ClaimAfter: an hour
	rec := newRecorder(nil)
	w.Handle("k", rec.Handle, nil)

	runOnce(t, w)
	if err := rdb.XGroupDestroy(ctx, ks.Outbox(15), testGroup).Err(); err != nil {
		t.Fatal(err)
	}
	enqueue(t, w, 0, Job{Kind: "k", Ref: "healthy"})
	n, err := w.RunOnce(ctx)
	if err == nil || !strings.Contains(err.Error(), "NOGROUP") {
		t.Errorf("RunOnce with shard 15's group gone: err %v, want NOGROUP", err)
	}
	t.Logf("ran %d, err %v", n, err)
	for i := 0; i < 3 && rec.Calls() == 0; i++ {
		runOnce(t, w)
	}
	if rec.Count("healthy") != 1 {
		t.Fatalf("job in a healthy shard handled %d times within the next rounds, want 1 (it was left pending for ClaimAfter)", rec.Count("healthy"))
	}
	enqueue(t, w, 15, Job{Kind: "k", Ref: "s15"})
	if n := runOnce(t, w); n != 1 || rec.Count("s15") != 1 {
		t.Fatalf("shard 15 after its group was re-created: ran %d", n)
	}
	assertDrained(t, rdb, ks)
}

// 12. Run stops when its context ends but lets the job in flight finish.
func TestRunFinishesInFlightJobOnCancel(t *testing.T) {
	rdb, ks := sharedEnv(t)
	w := newWorker(t, rdb, ks, baseConfig(), nil)
	started := make(chan struct{})
	release := make(chan struct{})
	var handlerCtxErr error
	var handlerCalls int
	var mu sync.Mutex
	w.Handle("slow", func(ctx context.Context, job Job) error {
		mu.Lock()
		handlerCalls++
		first := handlerCalls == 1
		mu.Unlock()
		if first {
			close(started)
		}
		<-release
		mu.Lock()
		handlerCtxErr = ctx.Err()
		mu.Unlock()
		return nil
	}, nil)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	enqueue(t, w, 8, Job{Kind: "slow", Ref: "r"})
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("Run never started the job")
	}
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while a job was still running", err)
	default:
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	mu.Lock()
	defer mu.Unlock()
	if handlerCtxErr != nil {
		t.Errorf("the in-flight job's context was cancelled: %v", handlerCtxErr)
	}
	if handlerCalls != 1 {
		t.Errorf("handler calls %d, want 1", handlerCalls)
	}
	assertDrained(t, rdb, ks)
	if n := deadTotal(t, rdb, ks); n != 0 {
		t.Errorf("%d dead letters, want 0", n)
	}
}

// 12b. Run picks up enqueued jobs by itself (Wake / polling).
func TestRunProcessesJobs(t *testing.T) {
	rdb, ks := sharedEnv(t)
	w := newWorker(t, rdb, ks, baseConfig(), nil)
	rec := newRecorder(nil)
	w.Handle("k", rec.Handle, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	for i := 0; i < 20; i++ {
		enqueue(t, w, i%redisx.Shards, Job{Kind: "k", Ref: fmt.Sprintf("r%d", i)})
	}
	waitFor(t, 10*time.Second, "Run to handle 20 jobs", func() bool { return rec.Calls() >= 20 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	for i := 0; i < 20; i++ {
		if c := rec.Count(fmt.Sprintf("r%d", i)); c != 1 {
			t.Errorf("r%d handled %d times", i, c)
		}
	}
	assertDrained(t, rdb, ks)
}

// 13. The observer sees every outcome.
type observation struct{ kind, outcome string }

type testObserver struct {
	mu   sync.Mutex
	seen map[observation]int
}

func (o *testObserver) JobDone(kind, outcome string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if d < 0 {
		outcome += "(negative duration)"
	}
	o.seen[observation{kind, outcome}]++
}

func TestObserverSeesOutcomes(t *testing.T) {
	rdb, ks := sharedEnv(t)
	clock := newClock()
	cfg := baseConfig()
	cfg.BaseBackoff, cfg.MaxBackoff = time.Second, time.Second
	w := newWorker(t, rdb, ks, cfg, clock)
	obs := &testObserver{seen: map[observation]int{}}
	w.SetObserver(obs)
	w.Handle("ok", func(context.Context, Job) error { return nil }, nil)
	w.Handle("flaky", func(_ context.Context, j Job) error {
		if j.Attempt == 0 {
			return errors.New("once")
		}
		return nil
	}, nil)
	w.Handle("bad", func(context.Context, Job) error { return Permanent(errors.New("no")) }, nil)

	enqueue(t, w, 0, Job{Kind: "ok"})
	enqueue(t, w, 1, Job{Kind: "flaky"})
	enqueue(t, w, 2, Job{Kind: "bad"})
	enqueue(t, w, 3, Job{Kind: "unknown"})
	runOnce(t, w)
	clock.Advance(2 * time.Second)
	runOnce(t, w)

	want := map[observation]int{
		{"ok", "done"}:      1,
		{"flaky", "retry"}:  1,
		{"flaky", "done"}:   1,
		{"bad", "dead"}:     1,
		{"unknown", "dead"}: 1,
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	for k, v := range want {
		if obs.seen[k] != v {
			t.Errorf("observer saw %v %d times, want %d", k, obs.seen[k], v)
		}
	}
	for k, v := range obs.seen {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected observation %v ×%d", k, v)
		}
	}
}

// 14. backoff is jittered within [cap/2, cap], where cap doubles from
// BaseBackoff per attempt until it reaches MaxBackoff.
func TestBackoff(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		base, max time.Duration
		ceilings  []time.Duration // of attempts 1, 2, ...; later attempts: max
	}{
		{100 * ms, 10 * time.Second, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 6400 * ms}},
		{300 * ms, time.Second, []time.Duration{300 * ms, 600 * ms}},
		{time.Second, time.Hour, []time.Duration{1 << 0 * time.Second, 1 << 1 * time.Second, 1 << 2 * time.Second,
			1 << 3 * time.Second, 1 << 4 * time.Second, 1 << 5 * time.Second, 1 << 6 * time.Second, 1 << 7 * time.Second,
			1 << 8 * time.Second, 1 << 9 * time.Second, 1 << 10 * time.Second, 1 << 11 * time.Second}},
	} {
		t.Run(fmt.Sprintf("base=%s,max=%s", tc.base, tc.max), func(t *testing.T) {
			w := NewWorker(nil, redisx.Keyspace{}, Config{BaseBackoff: tc.base, MaxBackoff: tc.max}, slog.Default())
			const samples = 300
			var prevHi time.Duration
			for attempt := 1; attempt <= 20; attempt++ {
				ceiling := tc.max
				if attempt <= len(tc.ceilings) {
					ceiling = tc.ceilings[attempt-1]
				}
				lo, hi := time.Duration(1<<62), time.Duration(0)
				for i := 0; i < samples; i++ {
					d := w.backoff(attempt)
					if d < tc.base/2 || d > tc.max {
						t.Fatalf("backoff(%d) = %s outside [base/2, max] = [%s, %s]", attempt, d, tc.base/2, tc.max)
					}
					if d < ceiling/2 || d > ceiling {
						t.Fatalf("backoff(%d) = %s outside [%s, %s]", attempt, d, ceiling/2, ceiling)
					}
					lo, hi = min(lo, d), max(hi, d)
				}
				// Full jitter: the samples spread over [cap/2, cap]. (The
				// chance of 300 samples all missing a 10% band is ~1e-14.)
				if lo > ceiling*6/10 || hi < ceiling*9/10 {
					t.Errorf("backoff(%d) samples span [%s, %s], want most of [%s, %s]", attempt, lo, hi, ceiling/2, ceiling)
				}
				// Growing: while the cap doubles, every sample is at least
				// the previous attempt's largest.
				if attempt > 1 && attempt <= len(tc.ceilings) && lo < prevHi {
					t.Errorf("backoff(%d) min %s < backoff(%d) max %s: not growing", attempt, lo, attempt-1, prevHi)
				}
				prevHi = hi
			}
		})
	}
}

// The first attempt's time is set once and travels with the job across
// retries (issue 9 §6: a handler bounds retries by it).
func TestFirstAttemptIsKeptAcrossRetries(t *testing.T) {
	rdb, ks := sharedEnv(t)
	clock := newClock()
	w := newWorker(t, rdb, ks, baseConfig(), clock)
	rec := newRecorder(func(_ Job, n int) error {
		if n <= 2 {
			return Retry(fmt.Errorf("boom %d", n), time.Hour)
		}
		return nil
	})
	w.Handle("flaky", rec.Handle, nil)
	enqueue(t, w, 3, Job{Kind: "flaky", Ref: "r"})
	clock.Advance(5 * time.Minute) // the first attempt comes later than the enqueue
	first := clock.Now()
	for i := 0; i < 3; i++ {
		runOnce(t, w)
		clock.Advance(2 * time.Hour)
	}
	seen := rec.Seen()
	if len(seen) != 3 {
		t.Fatalf("%d handler calls, want 3", len(seen))
	}
	for i, j := range seen {
		if !j.FirstAttempt().Equal(first) {
			t.Fatalf("call %d: first attempt %s, want %s (enqueued %s)", i+1, j.FirstAttempt(), first, time.UnixMilli(j.Enqueued))
		}
	}
}

// A deferred job waits (no attempt counted, never dead-lettered however
// often it waits) and runs once its wait is over.
func TestDeferDoesNotCountAttempts(t *testing.T) {
	rdb, ks := sharedEnv(t)
	clock := newClock()
	cfg := baseConfig()
	cfg.MaxAttempts = 2
	w := newWorker(t, rdb, ks, cfg, clock)
	const waits = 5
	rec := newRecorder(func(_ Job, n int) error {
		if n <= waits {
			return Defer(errors.New("mail budget spent"), time.Hour)
		}
		return nil
	})
	var dead deadRecorder
	w.Handle("mail", rec.Handle, dead.Dead)
	enqueue(t, w, 5, Job{Kind: "mail", Ref: "inv_1", Sealed: "tok"})
	for i := 0; i < waits; i++ {
		start := clock.Now()
		if n := runOnce(t, w); n != 1 {
			t.Fatalf("round %d ran %d jobs, want 1", i, n)
		}
		job, due := delayedDue(t, rdb, ks, 5)
		if wait := due.Sub(start); wait < time.Hour || wait > time.Hour+6*time.Minute+time.Millisecond {
			t.Fatalf("deferred for %s, want 1h plus at most 10%% jitter", wait)
		}
		if job.Attempt != 0 || job.Sealed != "tok" {
			t.Fatalf("deferred job %+v: want no attempt counted and the sealed link kept", job)
		}
		if !job.FirstAttempt().Equal(due) {
			t.Fatalf("deferred job's first attempt %s, want its next run %s: waiting is not trying", job.FirstAttempt(), due)
		}
		clock.Set(due.Add(-time.Millisecond))
		if n := runOnce(t, w); n != 0 {
			t.Fatalf("ran %d jobs before the wait was over", n)
		}
		clock.Set(due)
	}
	if n := runOnce(t, w); n != 1 {
		t.Fatalf("ran %d jobs after the last wait, want 1", n)
	}
	if rec.Calls() != waits+1 {
		t.Errorf("handler calls %d, want %d", rec.Calls(), waits+1)
	}
	if jobs, _ := dead.Calls(); len(jobs) != 0 || deadTotal(t, rdb, ks) != 0 {
		t.Errorf("a waiting job was dead-lettered (MaxAttempts %d, %d waits)", cfg.MaxAttempts, waits)
	}
	assertDrained(t, rdb, ks)
}
