// Package outbox is kratos-orgs' durable job queue: side effects that must
// happen after a Redis write (sending mail, repairing cross-shard indexes,
// deleting an abandoned Kratos identity) are written as jobs in the same
// atomic step as the data, then carried out by workers.
//
// Each shard has a Redis Stream read through a consumer group. A job that
// fails with a temporary error (see Retryable) moves to a delayed set and
// comes back after a backoff, or after the error's RetryAfter if longer;
// after MaxAttempts, or at once for an error that is not temporary, it is
// dead-lettered. A job whose worker died unacknowledged is claimed by
// another worker after ClaimAfter. Handlers must therefore be idempotent: a
// job can run more than once, never zero times.
package outbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Job is one unit of work. Lua scripts write the same JSON (short keys keep
// streams small).
type Job struct {
	Kind     string `json:"k"`
	Ref      string `json:"r"`           // the invitation or organization id
	Subject  string `json:"i,omitempty"` // an identity id, when the job is about one
	Version  int    `json:"v,omitempty"` // token version of a mail job
	Template string `json:"t,omitempty"` // mail template set: invitation, reminder, activation
	Name     string `json:"n,omitempty"` // an organization name, for notices
	Email    string `json:"m,omitempty"` // an address, for jobs about one
	Sealed   string `json:"s,omitempty"` // the sealed token of a mail job
	// Claims is, on a member.sync job of an acceptance, the digest of the
	// organizations claims that acceptance wrote to Kratos with the
	// activation (orgs.ClaimsDigest): the claims mirror skips Kratos when
	// the claims it computes are these.
	Claims   string `json:"c,omitempty"`
	Attempt  int    `json:"a,omitempty"`  // attempts made so far
	LastErr  string `json:"e,omitempty"`  // the last attempt's error
	Enqueued int64  `json:"at,omitempty"` // enqueue time, unix ms
	// First is the time of the job's first attempt, unix ms: set by the
	// worker before the first run and kept across retries, so a handler can
	// bound how long it keeps retrying (Resend's idempotency window).
	First int64 `json:"f,omitempty"`
	// Reclaimed is set by the worker (never stored) on a job taken over
	// from a worker presumed dead: it may have run, in part, already.
	Reclaimed bool `json:"-"`
}

// FirstAttempt is when the job was first tried: First, else its enqueue
// time (never later than the first attempt), else zero.
func (j Job) FirstAttempt() time.Time {
	switch {
	case j.First > 0:
		return time.UnixMilli(j.First)
	case j.Enqueued > 0:
		return time.UnixMilli(j.Enqueued)
	}
	return time.Time{}
}

// Field is the stream entry field that holds the job JSON.
const Field = "job"

func decodeJob(raw string) (Job, error) {
	var j Job
	if err := json.Unmarshal([]byte(raw), &j); err != nil {
		return j, fmt.Errorf("outbox: undecodable job (%d bytes): %w", len(raw), err)
	}
	return j, nil
}

func (j Job) encode() string {
	b, _ := json.Marshal(j)
	return string(b)
}

// DeferError asks to run the job again after After without counting an
// attempt: the job did not fail, it must wait (an outgoing-mail budget is
// spent). A deferred job is never dead-lettered for waiting.
type DeferError struct {
	Err   error
	After time.Duration
}

func (e *DeferError) Error() string { return "deferred: " + e.Err.Error() }
func (e *DeferError) Unwrap() error { return e.Err }

// Defer marks a job as waiting, not failing.
func Defer(err error, after time.Duration) error { return &DeferError{Err: err, After: after} }

// IsDefer reports whether err asks to wait, and for how long.
func IsDefer(err error) (time.Duration, bool) {
	var d *DeferError
	if errors.As(err, &d) {
		return d.After, true
	}
	return 0, false
}
