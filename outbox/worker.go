package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/redact"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// Config tunes a Worker.
type Config struct {
	Group        string // consumer group name, shared by every replica
	Consumer     string // this process' name in the group; unique per process
	Concurrency  int
	Batch        int
	PollInterval time.Duration
	MaxAttempts  int
	BaseBackoff  time.Duration
	MaxBackoff   time.Duration
	ClaimAfter   time.Duration
	// Now is the clock (server.Options.Now); nil: time.Now.
	Now func() time.Time
}

// HandlerFunc carries out one job. nil means done; an error is retried or
// not as it says itself (see Retryable); an error that says nothing is
// retried with backoff.
type HandlerFunc func(ctx context.Context, job Job) error

// BatchFunc carries out several jobs of one kind together (mail: one
// call of the provider's batch endpoint) and returns one error per job, in
// order, each read as a HandlerFunc's: every job keeps its own outcome.
type BatchFunc func(ctx context.Context, jobs []Job) []error

// DeadFunc is told when a job of its kind will not be retried any more;
// Temporary(err) tells a refused job from one that ran out of attempts.
type DeadFunc func(ctx context.Context, job Job, err error)

// Retryable is the one answer to "should this be retried, and when",
// given by the error itself anywhere in its chain: mail and
// Kratos errors implement it, so handlers return them as they are (wrapped
// with %w) instead of translating them.
//
//   - Temporary() == false: the job is dead-lettered at once.
//   - Temporary() == true: the job is retried, no sooner than RetryAfter()
//     and never sooner than the worker's backoff, until MaxAttempts.
//   - An error that does not implement it is retried with backoff, as a
//     temporary error with no RetryAfter.
//   - A joined error (errors.Join) is temporary if any of its parts is.
type Retryable interface {
	Temporary() bool
	RetryAfter() time.Duration
}

// Temporary reports whether the worker would try err's job again (if
// attempts remain): what err's chain says, else true.
func Temporary(err error) bool {
	t, _ := classify(err)
	return t
}

// classify reads err's answer to Retryable, as errors.As finds it, except
// that a joined error (errors.Join, several %w) is temporary if any of its
// parts is, after the longest of their RetryAfter: a job that did several
// things is worth another attempt if one of them may still succeed. An
// error that gives no answer is temporary, after the backoff.
func classify(err error) (temporary bool, after time.Duration) {
	for err != nil {
		if r, ok := err.(Retryable); ok {
			return r.Temporary(), r.RetryAfter()
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			return classifyJoined(u.Unwrap())
		default:
			err = nil
		}
	}
	return true, 0
}

func classifyJoined(errs []error) (temporary bool, after time.Duration) {
	answered := false
	for _, e := range errs {
		if e == nil {
			continue
		}
		answered = true
		if t, a := classify(e); t {
			temporary, after = true, max(after, a)
		}
	}
	if !answered {
		return true, 0 // no part at all: the default
	}
	return temporary, after
}

// classified gives an error that says nothing (a decoding error, a broken
// template) an answer to Retryable.
type classified struct {
	err       error
	temporary bool
	after     time.Duration
}

func (e *classified) Error() string {
	if e.temporary {
		return "retryable: " + e.err.Error()
	}
	return e.err.Error()
}
func (e *classified) Unwrap() error             { return e.err }
func (e *classified) Temporary() bool           { return e.temporary }
func (e *classified) RetryAfter() time.Duration { return e.after }

// Permanent marks err as not worth retrying.
func Permanent(err error) error { return &classified{err: err} }

// Retry marks err as worth another attempt, no sooner than after (0: the
// worker's backoff).
func Retry(err error, after time.Duration) error {
	return &classified{err: err, temporary: true, after: after}
}

// Observer is told what happens to jobs (metrics).
type Observer interface {
	JobDone(kind string, outcome string, d time.Duration) // outcome: done, retry, deferred, dead
}

// Worker reads every shard's stream and runs the registered handlers.
type Worker struct {
	rdb      redis.UniversalClient
	ks       redisx.Keyspace
	cfg      Config
	log      *slog.Logger
	handlers map[string]HandlerFunc
	batches  map[string]BatchFunc
	dead     map[string]DeadFunc
	wake     chan struct{}
	now      func() time.Time
	observer Observer

	groupsOnce sync.Mutex
	groupsOK   bool
	lastClaim  time.Time
	// Promotion of delayed jobs runs a script on a shard only when a job
	// there is known to be due: dueAt[s] is the earliest due time of shard
	// s's delayed set as the last script on it answered, lowered when this
	// worker delays a job there (zero: none known). Every scanEvery, all
	// shards are looked at, which finds what other workers delayed and
	// did not promote themselves (they crashed). An idle worker runs no
	// promotion script in between.
	promoteMu sync.Mutex
	dueAt     [redisx.Shards]time.Time
	nextScan  time.Time
	// claimFrom is XAUTOCLAIM's cursor per shard, so that idle entries far
	// behind many in-flight ones are reached in later rounds.
	claimFrom [redisx.Shards]string
	// together is true when one XREADGROUP can read every shard's stream
	// (one Redis, or Sentinel's master): Run then blocks on them instead of
	// polling. On a Cluster the streams live in different slots, which no
	// command spans, so each shard is read on its own and Run polls.
	together bool
	streams  []string // XREADGROUP's STREAMS: every shard's stream, then as many ">"
	shardOf  map[string]int
}

// NewWorker returns a worker; register handlers before Run.
func NewWorker(rdb redis.UniversalClient, ks redisx.Keyspace, cfg Config, log *slog.Logger) *Worker {
	if cfg.Group == "" {
		cfg.Group = "kratos-orgs"
	}
	if cfg.Consumer == "" {
		host, _ := os.Hostname()
		cfg.Consumer = fmt.Sprintf("%s-%d-%d", host, os.Getpid(), rand.Uint32())
	}
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	if cfg.Batch < 1 {
		cfg.Batch = 32
	}
	if cfg.MaxAttempts < 1 {
		cfg.MaxAttempts = 1
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.ClaimAfter <= 0 {
		cfg.ClaimAfter = 2 * time.Minute
	}
	if cfg.BaseBackoff <= 0 {
		cfg.BaseBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.BaseBackoff {
		cfg.MaxBackoff = cfg.BaseBackoff
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	w := &Worker{
		rdb: rdb, ks: ks, cfg: cfg, log: log,
		handlers: map[string]HandlerFunc{},
		batches:  map[string]BatchFunc{},
		dead:     map[string]DeadFunc{},
		wake:     make(chan struct{}, 1),
		now:      cfg.Now,
		shardOf:  map[string]int{},
	}
	_, cluster := rdb.(*redis.ClusterClient)
	w.together = !cluster
	for s := 0; s < redisx.Shards; s++ {
		w.streams = append(w.streams, ks.Outbox(s))
		w.shardOf[ks.Outbox(s)] = s
	}
	for s := 0; s < redisx.Shards; s++ {
		w.streams = append(w.streams, ">")
	}
	return w
}

// Handle registers the handler of a job kind, and optionally what to do when
// such a job is given up.
func (w *Worker) Handle(kind string, h HandlerFunc, onDead DeadFunc) {
	w.handlers[kind] = h
	if onDead != nil {
		w.dead[kind] = onDead
	}
}

// HandleBatch lets the jobs of a kind that one round reads together run
// in one call of h (two or more; a job alone runs its Handle handler,
// which must be registered too). What each job's error says is applied to
// that job alone: retried, deferred or dead-lettered (with its DeadFunc).
func (w *Worker) HandleBatch(kind string, h BatchFunc) { w.batches[kind] = h }

// SetObserver installs a metrics observer.
func (w *Worker) SetObserver(o Observer) { w.observer = o }

// Wake makes the worker look for jobs now rather than at its next poll;
// call it after enqueueing in this process. (Where Run blocks on the
// streams, an entry added by any process wakes it by itself.)
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Enqueue adds a job to shard s from Go code (scripts XADD their own).
func (w *Worker) Enqueue(ctx context.Context, shard int, job Job) error {
	if job.Enqueued == 0 {
		job.Enqueued = w.now().UnixMilli()
	}
	err := w.rdb.XAdd(ctx, &redis.XAddArgs{Stream: w.ks.Outbox(shard), Values: []string{Field, job.encode()}}).Err()
	if err == nil {
		w.Wake()
	}
	return err
}

// Run processes jobs until ctx ends, then waits for jobs in flight. On
// one Redis (or Sentinel's master) it waits for new entries in a blocking
// read of every shard's stream, up to the next promotion of delayed jobs
// (at most PollInterval), so an idle worker costs one read per
// PollInterval (and one promotion script per shard every ClaimAfter/2)
// and a busy one one read per batch; on a Cluster it polls every
// PollInterval and when woken.
func (w *Worker) Run(ctx context.Context) error {
	ticker := time.NewTicker(w.cfg.PollInterval)
	defer ticker.Stop()
	for {
		block := time.Duration(-1)
		if w.together {
			block = w.untilDue()
		}
		n, err := w.round(ctx, block)
		if err != nil && ctx.Err() == nil {
			w.log.Warn("outbox poll failed", "err", err)
		}
		if ctx.Err() != nil {
			return nil
		}
		if err == nil && (n > 0 || w.together) {
			continue // more may be waiting, or the blocking read did the waiting
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		case <-w.wake:
		}
	}
}

// RunOnce promotes due retries, reclaims abandoned jobs when due, reads one
// batch from every shard and runs it to completion. It returns the number of
// jobs run. Jobs run with a context that outlives ctx's cancellation, so a
// shutdown finishes them instead of abandoning a half-sent mail.
func (w *Worker) RunOnce(ctx context.Context) (int, error) { return w.round(ctx, -1) }

// untilDue is how long Run's read may block: until a delayed job is due
// to be promoted, all shards are to be scanned, or abandoned jobs are to
// be reclaimed, within [1ms, PollInterval].
func (w *Worker) untilDue() time.Duration {
	now := w.now()
	w.promoteMu.Lock()
	due := w.nextScan
	for _, t := range w.dueAt {
		if !t.IsZero() && t.Before(due) {
			due = t
		}
	}
	w.promoteMu.Unlock()
	if claim := w.lastClaim.Add(w.cfg.ClaimAfter / 2); claim.Before(due) {
		due = claim
	}
	return min(max(due.Sub(now), time.Millisecond), w.cfg.PollInterval)
}

// round is one RunOnce; its read blocks up to block when it is ≥ 0 (and
// the worker reads every shard in one command).
func (w *Worker) round(ctx context.Context, block time.Duration) (int, error) {
	if err := w.ensureGroups(ctx); err != nil {
		return 0, err
	}
	if err := w.promoteIfDue(ctx); err != nil {
		return 0, err
	}
	// A failing shard does not hold up the others: whatever was claimed or
	// read is now pending on this consumer and is run in this round (dropping
	// it would leave it waiting ClaimAfter); the error is returned after.
	var msgs []entry
	var errs []error
	if w.now().Sub(w.lastClaim) >= w.cfg.ClaimAfter/2 {
		claimed, err := w.reclaim(ctx)
		if err != nil {
			errs = append(errs, err)
		} else {
			w.lastClaim = w.now()
		}
		msgs = append(msgs, claimed...)
	}
	fresh, err := w.read(ctx, block)
	if err != nil {
		errs = append(errs, err)
	}
	msgs = append(msgs, fresh...)
	w.runAll(context.WithoutCancel(ctx), msgs)
	return len(msgs), errors.Join(errs...)
}

type entry struct {
	shard     int
	id        string
	raw       string
	reclaimed bool // taken over from a worker presumed dead
}

func (w *Worker) ensureGroups(ctx context.Context) error {
	w.groupsOnce.Lock()
	defer w.groupsOnce.Unlock()
	if w.groupsOK {
		return nil
	}
	pipe := w.rdb.Pipeline()
	cmds := make([]*redis.StatusCmd, redisx.Shards)
	for s := 0; s < redisx.Shards; s++ {
		cmds[s] = pipe.XGroupCreateMkStream(ctx, w.ks.Outbox(s), w.cfg.Group, "0")
	}
	_, _ = pipe.Exec(ctx)
	for _, c := range cmds {
		if err := c.Err(); err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
			return fmt.Errorf("outbox: create consumer group: %w", err)
		}
	}
	w.groupsOK = true
	return nil
}

// promoteIfDue promotes the delayed jobs that are due, on the shards
// where one is known to be (see dueAt), or on every shard when a scan is
// due. Idle, it costs nothing between scans.
func (w *Worker) promoteIfDue(ctx context.Context) error {
	w.promoteMu.Lock()
	defer w.promoteMu.Unlock()
	now := w.now()
	scan := !now.Before(w.nextScan)
	var shards []int
	for s, t := range w.dueAt {
		if scan || (!t.IsZero() && !t.After(now)) {
			shards = append(shards, s)
		}
	}
	if len(shards) == 0 {
		return nil
	}
	next, err := w.promote(ctx, shards, now)
	if err != nil {
		return err
	}
	for i, s := range shards {
		w.dueAt[s] = next[i]
	}
	if scan {
		w.nextScan = now.Add(w.scanEvery())
	}
	return nil
}

// scanEvery is how often every shard's delayed set is looked at: the
// cadence at which abandoned jobs are reclaimed (ClaimAfter/2), as a job
// delayed by a worker that then died is left as its running jobs are.
func (w *Worker) scanEvery() time.Duration {
	return max(w.cfg.ClaimAfter/2, w.cfg.PollInterval)
}

// promoteBy notes that this worker delayed a job on shard s until t, so
// that a round promotes it then. Call it after the job is in the delayed
// set: a promotion running meanwhile answers the set's state before it.
func (w *Worker) promoteBy(s int, t time.Time) {
	t = time.UnixMilli(t.UnixMilli()) // what the delayed set holds
	w.promoteMu.Lock()
	defer w.promoteMu.Unlock()
	if w.dueAt[s].IsZero() || t.Before(w.dueAt[s]) {
		w.dueAt[s] = t
	}
}

// promote runs promoteScript on the shards, in one pipeline (on a
// Cluster, one per node), and answers each shard's next due time (zero:
// its delayed set is empty).
func (w *Worker) promote(ctx context.Context, shards []int, now time.Time) ([]time.Time, error) {
	args := promoteArgs{Now: now.UnixMilli(), Limit: 100}
	run := func(c redis.Scripter, s int) *redis.Cmd {
		return promoteScript.Eval(ctx, c, []string{w.ks.OutboxDelayed(s), w.ks.Outbox(s)}, args)
	}
	cmds := make([]*redis.Cmd, len(shards))
	if len(shards) == 1 {
		cmds[0] = run(w.rdb, shards[0]) // EVALSHA, loading the script if needed
	} else {
		pipe := w.rdb.Pipeline()
		for i, s := range shards {
			cmds[i] = run(pipe, s)
		}
		if _, err := pipe.Exec(ctx); isNoScript(err) {
			// Scripts are not cached on a fresh or restarted server: one
			// by one loads it.
			for i, s := range shards {
				cmds[i] = run(w.rdb, s)
			}
		}
	}
	next := make([]time.Time, len(shards))
	for i, c := range cmds {
		reply, err := c.Int64Slice()
		if err == nil && len(reply) != 2 {
			err = fmt.Errorf("unexpected reply %v", reply)
		}
		if err != nil {
			return nil, fmt.Errorf("outbox: promote retries of shard %d: %w", shards[i], err)
		}
		if reply[1] >= 0 {
			next[i] = time.UnixMilli(reply[1])
		}
	}
	return next, nil
}

func isNoScript(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") }

// read reads new entries: of every shard in one XREADGROUP where the
// streams can be read together, blocking up to block when it is ≥ 0;
// otherwise (a Cluster, or a shard whose group vanished) shard by shard.
func (w *Worker) read(ctx context.Context, block time.Duration) ([]entry, error) {
	if !w.together {
		return w.readShards(ctx)
	}
	if block >= 0 {
		block = max(block, time.Millisecond) // BLOCK 0 would wait for ever
	}
	streams, err := w.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: w.cfg.Group, Consumer: w.cfg.Consumer,
		Streams: w.streams, Count: int64(w.cfg.Batch), Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil && strings.HasPrefix(err.Error(), "NOGROUP") {
		// One shard's missing group fails the whole command: read the
		// shards one by one, so the others' jobs still run (and note which
		// group to re-create).
		return w.readShards(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: read: %w", err)
	}
	var out []entry
	for _, st := range streams {
		s := w.shardOf[st.Stream]
		for _, m := range st.Messages {
			raw, _ := m.Values[Field].(string)
			out = append(out, entry{shard: s, id: m.ID, raw: raw})
		}
	}
	return out, nil
}

// readShards reads each shard's stream with its own XREADGROUP, in one
// pipeline (on a Cluster, one per node).
func (w *Worker) readShards(ctx context.Context) ([]entry, error) {
	pipe := w.rdb.Pipeline()
	cmds := make([]*redis.XStreamSliceCmd, redisx.Shards)
	for s := 0; s < redisx.Shards; s++ {
		cmds[s] = pipe.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: w.cfg.Group, Consumer: w.cfg.Consumer,
			Streams: []string{w.ks.Outbox(s), ">"}, Count: int64(w.cfg.Batch), Block: -1,
		})
	}
	_, _ = pipe.Exec(ctx)
	var out []entry
	var firstErr error
	for s, c := range cmds {
		streams, err := c.Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			w.noGroup(err)
			if firstErr == nil {
				firstErr = fmt.Errorf("outbox: read shard %d: %w", s, err)
			}
			continue // the entries read from the other shards still run
		}
		for _, st := range streams {
			for _, m := range st.Messages {
				raw, _ := m.Values[Field].(string)
				out = append(out, entry{shard: s, id: m.ID, raw: raw})
			}
		}
	}
	return out, firstErr
}

// noGroup notes that a stream or its group vanished (FLUSHALL, a Redis
// without persistence restarted), so that the next round re-creates them.
func (w *Worker) noGroup(err error) {
	if err != nil && strings.HasPrefix(err.Error(), "NOGROUP") {
		w.groupsOnce.Lock()
		w.groupsOK = false
		w.groupsOnce.Unlock()
	}
}

func (w *Worker) reclaim(ctx context.Context) ([]entry, error) {
	var out []entry
	for s := 0; s < redisx.Shards; s++ {
		start := w.claimFrom[s]
		if start == "" {
			start = "0-0"
		}
		msgs, next, err := w.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: w.ks.Outbox(s), Group: w.cfg.Group, Consumer: w.cfg.Consumer,
			MinIdle: w.cfg.ClaimAfter, Start: start, Count: int64(w.cfg.Batch),
		}).Result()
		if err == nil {
			w.claimFrom[s] = next // "0-0" again once the scan wrapped around
		}
		if err != nil && !errors.Is(err, redis.Nil) {
			// Without this, a reclaim that is due fails the same way every
			// round and read, which would notice, is never reached.
			w.noGroup(err)
			return out, fmt.Errorf("outbox: reclaim shard %d: %w", s, err)
		}
		for _, m := range msgs {
			raw, _ := m.Values[Field].(string)
			out = append(out, entry{shard: s, id: m.ID, raw: raw, reclaimed: true})
			w.log.Info("outbox: reclaimed a job from a worker that stopped answering", "shard", s, "entry", m.ID)
		}
	}
	return out, nil
}

// runAll runs a round's entries, then acknowledges the finished ones
// together: one script per shard rather than one per job. A crash before
// that leaves them pending, to be run again after ClaimAfter like a job
// whose worker died mid-way (handlers are idempotent for that reason).
// Entries of a kind with a batch handler run together, in one call.
func (w *Worker) runAll(ctx context.Context, msgs []entry) {
	sem := make(chan struct{}, w.cfg.Concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var done []entry
	for _, group := range w.groups(msgs) {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			var finished []entry
			if len(group) == 1 {
				if w.runOne(ctx, group[0]) {
					finished = group
				}
			} else {
				finished = w.runBatch(ctx, group)
			}
			mu.Lock()
			done = append(done, finished...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := w.ack(ctx, done); err != nil {
		// The entries stay pending; ClaimAfter brings them back.
		w.log.Warn("outbox: could not acknowledge finished jobs", "jobs", len(done), "err", err)
	}
}

// groups splits a round's entries into what runs as one: every entry of a
// kind with a batch handler together, any other entry alone.
func (w *Worker) groups(msgs []entry) [][]entry {
	var out [][]entry
	byKind := map[string]int{} // kind → its group in out
	for _, m := range msgs {
		job, err := decodeJob(m.raw)
		if _, batched := w.batches[job.Kind]; err != nil || !batched {
			out = append(out, []entry{m})
			continue
		}
		i, ok := byKind[job.Kind]
		if !ok {
			i = len(out)
			byKind[job.Kind] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], m)
	}
	return out
}

// ack acknowledges and deletes finished entries, one script per shard, in
// one pipeline (on a Cluster, one per node).
func (w *Worker) ack(ctx context.Context, done []entry) error {
	if len(done) == 0 {
		return nil
	}
	ids := map[int][]string{}
	for _, m := range done {
		ids[m.shard] = append(ids[m.shard], m.id)
	}
	run := func(c redis.Scripter, s int) *redis.Cmd {
		return ackScript.Eval(ctx, c, []string{w.ks.Outbox(s)}, ackArgs{Group: w.cfg.Group, IDs: ids[s]})
	}
	if len(ids) == 1 {
		return run(w.rdb, done[0].shard).Err() // EVALSHA, loading the script if needed
	}
	pipe := w.rdb.Pipeline()
	for s := range ids {
		run(pipe, s)
	}
	_, err := pipe.Exec(ctx)
	if isNoScript(err) {
		// Scripts are not cached on a fresh or restarted server: one by one
		// loads it.
		for s := range ids {
			if err := run(w.rdb, s).Err(); err != nil {
				return err
			}
		}
		return nil
	}
	return err
}

// runOne runs an entry's job and records its outcome, except that a job
// done is only reported (true): runAll acknowledges those together.
func (w *Worker) runOne(ctx context.Context, m entry) (done bool) {
	start := w.now()
	job, h, ok := w.jobOf(ctx, m, start)
	if !ok {
		return false
	}
	return w.settle(ctx, m, job, safeRun(ctx, h, job), start)
}

// runBatch runs entries of one kind in one call of its batch handler and
// records each job's outcome; it returns the entries done.
func (w *Worker) runBatch(ctx context.Context, ms []entry) []entry {
	start := w.now()
	var runs []entry
	var jobs []Job
	for _, m := range ms {
		if job, _, ok := w.jobOf(ctx, m, start); ok {
			runs, jobs = append(runs, m), append(jobs, job)
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	errs := safeRunBatch(ctx, w.batches[jobs[0].Kind], jobs)
	var done []entry
	for i, m := range runs {
		if w.settle(ctx, m, jobs[i], errs[i], start) {
			done = append(done, m)
		}
	}
	return done
}

// jobOf decodes an entry's job and finds its handler; an entry that has
// neither is dead-lettered (false).
func (w *Worker) jobOf(ctx context.Context, m entry, start time.Time) (Job, HandlerFunc, bool) {
	job, err := decodeJob(m.raw)
	if err != nil {
		// Not the raw entry: it may hold a sealed link.
		job = Job{Kind: "undecodable", LastErr: truncate(err.Error(), 200)}
		_, err = w.bury(ctx, m, job)
		w.observe(job.Kind, "dead", start)
		w.finish(ctx, m, job, "dead", err)
		return job, nil, false
	}
	h, ok := w.handlers[job.Kind]
	if !ok {
		job.LastErr = "no handler for job kind " + job.Kind
		_, err = w.bury(ctx, m, job)
		w.observe(job.Kind, "dead", start)
		w.finish(ctx, m, job, "dead", err)
		return job, nil, false
	}
	if job.First == 0 {
		// Kept in the job from now on: retries re-encode it. A job whose
		// worker died before recording this gets a slightly later time when
		// reclaimed (ClaimAfter), which handlers' margins allow for.
		job.First = start.UnixMilli()
	}
	job.Reclaimed = m.reclaimed
	return job, h, true
}

// settle records what a job's run came to: done (reported, true), deferred,
// retried or dead-lettered.
func (w *Worker) settle(ctx context.Context, m entry, job Job, herr error, start time.Time) (done bool) {
	var err error
	outcome := "done"
	switch {
	case herr == nil:
		done = true
	case isDefer(herr):
		outcome = "deferred"
		err = w.postpone(ctx, m, job, herr)
	default:
		job.Attempt++
		job.LastErr = truncate(herr.Error(), 500)
		temporary, after := classify(herr)
		if !temporary || job.Attempt >= w.cfg.MaxAttempts {
			outcome = "dead"
			w.log.Warn("outbox: giving up a job", "kind", job.Kind, "ref", redact.Text(job.Ref), "attempts", job.Attempt, "err", redact.Text(herr.Error()))
			var buried bool
			buried, err = w.bury(ctx, m, job)
			if f, ok := w.dead[job.Kind]; ok && buried {
				f(ctx, job, herr)
			}
		} else {
			outcome = "retry"
			err = w.retry(ctx, m, job, herr, after)
		}
	}
	w.observe(job.Kind, outcome, start)
	w.finish(ctx, m, job, outcome, err)
	return done
}

// retry puts a failed job in the delayed set, after its backoff or the
// error's RetryAfter, whichever is longer.
func (w *Worker) retry(ctx context.Context, m entry, job Job, herr error, after time.Duration) error {
	delay := max(after, w.backoff(job.Attempt))
	// A notice job's ref is an address, and errors may quote one.
	w.log.Info("outbox: job will be retried", "kind", job.Kind, "ref", redact.Text(job.Ref), "attempt", job.Attempt, "in", delay, "err", redact.Text(herr.Error()))
	due := w.now().Add(delay)
	err := delayScript.Eval(ctx, w.rdb, []string{w.ks.Outbox(m.shard), w.ks.OutboxDelayed(m.shard)},
		entryArgs{Group: w.cfg.Group, ID: m.id, Job: job.encode(), Due: due.UnixMilli()}).Err()
	w.promoteBy(m.shard, due)
	return err
}

func isDefer(err error) bool { _, ok := IsDefer(err); return ok }

// postpone puts a deferred job back in the delayed set without counting an
// attempt; a little jitter spreads jobs that waited for the same budget.
func (w *Worker) postpone(ctx context.Context, m entry, job Job, herr error) error {
	after, _ := IsDefer(herr)
	after = max(after, time.Second)
	delay := after + rand.N(after/10+1)
	if job.Attempt == 0 {
		// Nothing was tried yet (the wait comes before any send), so the
		// first attempt is still ahead: a handler bounding retries by it
		// (Resend's idempotency window) must not count the wait.
		job.First = w.now().Add(delay).UnixMilli()
	}
	w.log.Info("outbox: job deferred", "kind", job.Kind, "ref", job.Ref, "in", delay.Round(time.Second), "reason", herr)
	due := w.now().Add(delay)
	err := delayScript.Eval(ctx, w.rdb, []string{w.ks.Outbox(m.shard), w.ks.OutboxDelayed(m.shard)},
		entryArgs{Group: w.cfg.Group, ID: m.id, Job: job.encode(), Due: due.UnixMilli()}).Err()
	w.promoteBy(m.shard, due)
	return err
}

func (w *Worker) observe(kind, outcome string, start time.Time) {
	if w.observer != nil {
		w.observer.JobDone(kind, outcome, w.now().Sub(start))
	}
}

func (w *Worker) finish(_ context.Context, m entry, job Job, outcome string, err error) {
	if err != nil {
		// The entry stays pending; ClaimAfter brings it back.
		w.log.Warn("outbox: could not record a job's outcome", "kind", job.Kind, "entry", m.id, "outcome", outcome, "err", err)
	}
}

// bury dead-letters an entry; false means another worker owns it now.
func (w *Worker) bury(ctx context.Context, m entry, job Job) (bool, error) {
	job.Sealed = "" // a dead letter never keeps a link
	n, err := deadScript.Eval(ctx, w.rdb, []string{w.ks.Outbox(m.shard), w.ks.OutboxDead(m.shard)},
		entryArgs{Group: w.cfg.Group, ID: m.id, Job: job.encode()}).Int()
	return n == 1, err
}

// backoff is exponential with full jitter, capped at MaxBackoff.
func (w *Worker) backoff(attempt int) time.Duration {
	d := w.cfg.BaseBackoff
	for i := 1; i < attempt && d < w.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, w.cfg.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

func safeRun(ctx context.Context, h HandlerFunc, job Job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = Permanent(fmt.Errorf("handler panicked: %v", r))
		}
	}()
	return h(ctx, job)
}

// safeRunBatch runs a batch handler; a panic, or an answer of the wrong
// length, is every job's permanent failure.
func safeRunBatch(ctx context.Context, h BatchFunc, jobs []Job) (errs []error) {
	defer func() {
		if r := recover(); r != nil {
			errs = sameError(len(jobs), Permanent(fmt.Errorf("batch handler panicked: %v", r)))
		}
	}()
	errs = h(ctx, jobs)
	if len(errs) != len(jobs) {
		return sameError(len(jobs), Permanent(fmt.Errorf("batch handler answered %d results for %d jobs", len(errs), len(jobs))))
	}
	return errs
}

func sameError(n int, err error) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
