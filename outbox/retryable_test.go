package outbox

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// answer is an error that speaks the retry vocabulary itself, as mail's
// and identity's errors do.
type answer struct {
	temporary bool
	after     time.Duration
}

func (a answer) Error() string             { return fmt.Sprintf("answer{%v %s}", a.temporary, a.after) }
func (a answer) Temporary() bool           { return a.temporary }
func (a answer) RetryAfter() time.Duration { return a.after }

// The worker asks the error (anywhere in its chain) whether and when to
// retry: not temporary is dead at once; temporary waits max(backoff,
// RetryAfter); an error that says nothing waits the backoff.
func TestRetryableVocabulary(t *testing.T) {
	const base = 10 * time.Second
	backoff := [2]time.Duration{base / 2, base} // attempt 1: full jitter in [base/2, base]
	exactly := func(d time.Duration) [2]time.Duration { return [2]time.Duration{d, d} }
	for _, tc := range []struct {
		name string
		err  error
		dead bool
		due  [2]time.Duration // wait before the retry, bounds included
	}{
		{name: "temporary, RetryAfter beyond the backoff", err: answer{true, time.Hour}, due: exactly(time.Hour)},
		{name: "temporary, RetryAfter below the backoff", err: answer{true, time.Millisecond}, due: backoff},
		{name: "temporary, no RetryAfter", err: answer{true, 0}, due: backoff},
		{name: "temporary, wrapped", err: fmt.Errorf("send: %w", answer{true, 2 * time.Minute}), due: exactly(2 * time.Minute)},
		{name: "not temporary", err: answer{false, 0}, dead: true},
		{name: "not temporary, with a RetryAfter", err: answer{false, time.Minute}, dead: true},
		{name: "not temporary, wrapped twice", err: fmt.Errorf("job: %w", fmt.Errorf("send: %w", answer{false, 0})), dead: true},
		{name: "plain error: retried with backoff", err: errors.New("redis: i/o timeout"), due: backoff},
		{name: "Permanent", err: Permanent(errors.New("bad template")), dead: true},
		{name: "Retry", err: Retry(errors.New("busy"), time.Hour), due: exactly(time.Hour)},
		// A job that did several things is retried if one part may heal.
		{name: "joined: refused and plain", err: errors.Join(answer{false, 0}, errors.New("redis down")), due: backoff},
		{name: "joined: refused and temporary", err: errors.Join(Permanent(errors.New("no")), answer{true, time.Hour}, answer{true, 2 * time.Minute}), due: exactly(time.Hour)},
		{name: "joined: all refused", err: fmt.Errorf("two: %w, %w", answer{false, 0}, Permanent(errors.New("no"))), dead: true},
		{name: "joined, wrapped", err: fmt.Errorf("job: %w", errors.Join(answer{false, 0}, answer{true, 0})), due: backoff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Temporary(tc.err); got == tc.dead {
				t.Errorf("Temporary(%v) = %v, want %v", tc.err, got, !tc.dead)
			}
			rdb, ks := sharedEnv(t)
			clock := newClock()
			cfg := baseConfig()
			cfg.BaseBackoff, cfg.MaxBackoff = base, time.Minute
			w := newWorker(t, rdb, ks, cfg, clock)
			var dead deadRecorder
			w.Handle("k", func(context.Context, Job) error { return tc.err }, dead.Dead)
			const shard = 6
			enqueue(t, w, shard, Job{Kind: "k", Ref: "r"})
			start := clock.Now()
			runOnce(t, w)

			jobs, errs := dead.Calls()
			if tc.dead {
				if len(jobs) != 1 || deadTotal(t, rdb, ks) != 1 || delayedCount(t, rdb, ks) != 0 {
					t.Fatalf("DeadFunc calls %d, dead letters %d, delayed %d; want 1, 1, 0",
						len(jobs), deadTotal(t, rdb, ks), delayedCount(t, rdb, ks))
				}
				if jobs[0].Attempt != 1 || Temporary(errs[0]) || !errors.Is(errs[0], tc.err) {
					t.Errorf("DeadFunc got attempt %d, err %v (temporary %v)", jobs[0].Attempt, errs[0], Temporary(errs[0]))
				}
				return
			}
			if len(jobs) != 0 || deadTotal(t, rdb, ks) != 0 {
				t.Fatalf("a temporary failure was dead-lettered")
			}
			job, due := delayedDue(t, rdb, ks, shard)
			if wait := due.Sub(start); wait < tc.due[0] || wait > tc.due[1] {
				t.Errorf("retry due in %s, want within [%s, %s]", wait, tc.due[0], tc.due[1])
			}
			if job.Attempt != 1 || job.LastErr != tc.err.Error() {
				t.Errorf("delayed job: attempt %d, last error %q; want 1, %q", job.Attempt, job.LastErr, tc.err.Error())
			}
		})
	}
}
