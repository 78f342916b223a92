package invites

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/kratos-orgs/kratos-orgs/mail"
	"github.com/kratos-orgs/kratos-orgs/outbox"
)

// HandleBatch sends the mail jobs one outbox round read together: the
// fresh ones (never tried) in batches of up to mail.MaxBatch, one provider
// call each; a job tried before only as it was tried (mail_batch_store.go):
// again in its batch, whose stored request is re-sent under the batch's
// key, or alone under its own key. Every job keeps its own outcome: its
// delivery state, its retries, its budget and suppression check.
func (m *Mailer) HandleBatch(ctx context.Context, jobs []outbox.Job) []error {
	errs := make([]error, len(jobs))
	var fresh, again []int
	for i, j := range jobs {
		if j.Attempt == 0 && !j.Reclaimed {
			fresh = append(fresh, i)
		} else {
			again = append(again, i)
		}
	}
	m.sendAgain(ctx, jobs, again, errs)
	ready := m.prepare(ctx, jobs, fresh, errs)
	if len(ready) == 1 {
		// Alone: a send of its own. A fresh job is not pinned: were another
		// worker running it too, it would be a retry there, pinned alone.
		r := ready[0]
		id, err := m.sender.Send(ctx, r.msg)
		errs[r.job] = m.sent(ctx, jobs[r.job], 1, id, err)
		return errs
	}
	for chunk := range slices.Chunk(ready, mail.MaxBatch) {
		m.sendFresh(ctx, jobs, chunk, errs)
	}
	return errs
}

// readyMail is a fresh job's mail, admitted and rendered.
type readyMail struct {
	job int // index in the round's jobs
	msg mail.Message
}

// prepare renders the fresh jobs' mails and admits them (suppression list,
// budget), in the order of their keys; a job that is dropped, waits or
// fails gets its answer in errs.
func (m *Mailer) prepare(ctx context.Context, jobs []outbox.Job, fresh []int, errs []error) []readyMail {
	var ready []readyMail
	for _, i := range fresh {
		inv, msg, ok, err := m.compose(ctx, jobs[i])
		if ok {
			ok, err = m.admit(ctx, inv, jobs[i])
		}
		if !ok {
			errs[i] = err
			continue
		}
		ready = append(ready, readyMail{job: i, msg: msg})
	}
	slices.SortFunc(ready, func(a, b readyMail) int { return strings.Compare(a.msg.IdempotencyKey, b.msg.IdempotencyKey) })
	return ready
}

// batchKey is a batch's idempotency key, derived from its mails' keys in
// request order: the same mails make the same key.
func batchKey(mailKeys []string) string {
	sum := sha256.Sum256([]byte(strings.Join(mailKeys, "\n")))
	return "kratos-orgs/batch/" + hex.EncodeToString(sum[:16])
}

// errElsewhere answers a fresh job whose mail another worker bound to a
// send meanwhile (it took the job over): it is retried, and then sent as
// bound, under that send's key.
var errElsewhere = errors.New("mail bound to a send by another worker; retried as bound")

// sendFresh binds a chunk of fresh mails to a new batch and sends it. A
// mail bound meanwhile (another worker took its job over) is left out, and
// the batch is made again of the others.
func (m *Mailer) sendFresh(ctx context.Context, jobs []outbox.Job, chunk []readyMail, errs []error) {
	for len(chunk) > 1 {
		mails, msgs := make([]batchMail, len(chunk)), make([]mail.Message, len(chunk))
		keys := make([]string, len(chunk))
		for n, r := range chunk {
			j := jobs[r.job]
			mails[n], msgs[n], keys[n] = batchMail{Key: r.msg.IdempotencyKey, Invitation: j.Ref, Version: j.Version}, r.msg, r.msg.IdempotencyKey
		}
		key := batchKey(keys)
		pins, err := m.batches.commit(ctx, key, mails, msgs)
		if err != nil {
			for _, r := range chunk {
				errs[r.job] = err // nothing was sent; a retry sends it alone
			}
			return
		}
		if pins == nil {
			inHand := map[string]int{}
			for _, r := range chunk {
				inHand[r.msg.IdempotencyKey] = r.job
			}
			m.sendBatch(ctx, key, batchRecord{Mails: mails}, msgs, jobs, inHand, errs)
			return
		}
		var free []readyMail
		for n, r := range chunk {
			if pins[n] == "" {
				free = append(free, r)
			} else {
				errs[r.job] = outbox.Retry(errElsewhere, 0)
			}
		}
		chunk = free
	}
	for _, r := range chunk {
		id, err := m.sender.Send(ctx, r.msg)
		errs[r.job] = m.sent(ctx, jobs[r.job], 1, id, err)
	}
}

// sendAgain sends the jobs tried before as they were tried: each bound to
// its send (binding a free one to a send of its own), a batch's jobs
// together.
func (m *Mailer) sendAgain(ctx context.Context, jobs []outbox.Job, again []int, errs []error) {
	if len(again) == 0 {
		return
	}
	keys := make([]string, len(again))
	for n, i := range again {
		keys[n] = mailKey(jobs[i])
	}
	pins, err := m.batches.pin(ctx, keys)
	if err != nil {
		for _, i := range again {
			errs[i] = err
		}
		return
	}
	batches := map[string]map[string]int{} // batch key → mail key → job
	for n, i := range again {
		if pins[n] == pinSingle {
			errs[i] = m.Handle(ctx, jobs[i])
			continue
		}
		if batches[pins[n]] == nil {
			batches[pins[n]] = map[string]int{}
		}
		batches[pins[n]][keys[n]] = i
	}
	for key, inHand := range batches {
		m.resend(ctx, key, jobs, inHand, errs)
	}
}

// resend finishes the jobs of a batch that was sent before: from its
// answer if it has one, else by sending its stored request again under its
// key (Resend replays the first answer if that one got through).
func (m *Mailer) resend(ctx context.Context, key string, jobs []outbox.Job, inHand map[string]int, errs []error) {
	for k, i := range inHand {
		if m.pastWindow(jobs[i]) {
			m.observe("failed", errRetryWindow)
			errs[i] = outbox.Permanent(errRetryWindow)
			delete(inHand, k)
		}
	}
	ans, rec, msgs, err := m.batches.load(ctx, key)
	switch {
	case len(inHand) == 0:
	case errors.Is(err, errBatchLost):
		for _, i := range inHand {
			errs[i] = outbox.Permanent(err)
		}
	case err != nil:
		for _, i := range inHand {
			errs[i] = err
		}
	case ans != nil:
		m.recordAnswer(ctx, rec, *ans, jobs, inHand, errs)
	default:
		m.sendBatch(ctx, key, rec, msgs, jobs, inHand, errs)
	}
}

// sendBatch sends a batch's request under its key, stores the answer and
// records every mail's outcome. An error about the whole batch is every
// job's in hand (a 429 or 5xx retries them, and a retry re-sends the
// batch as it was).
func (m *Mailer) sendBatch(ctx context.Context, key string, rec batchRecord, msgs []mail.Message, jobs []outbox.Job, inHand map[string]int, errs []error) {
	results, err := m.batcher.SendBatch(ctx, msgs, key)
	if err != nil {
		for _, i := range inHand {
			errs[i] = m.sent(ctx, jobs[i], jobs[i].Attempt+1, "", err)
		}
		return
	}
	ans := batchAnswer{IDs: make([]string, len(results)), Errors: make([]string, len(results))}
	for n, r := range results {
		ans.IDs[n] = r.ID
		if se, ok := mail.AsSendError(r.Err); ok {
			ans.Errors[n] = se.Message
		} else if r.Err != nil {
			ans.Errors[n] = r.Err.Error()
		}
	}
	if err := m.batches.answer(ctx, key, rec, ans); err != nil {
		for _, i := range inHand {
			errs[i] = err // retried: the batch is re-sent, and Resend replays its answer
		}
		return
	}
	m.recordAnswer(ctx, rec, ans, jobs, inHand, errs)
}

// recordAnswer records a batch's answer on every mail's invitation: the
// email id and its index for the delivery webhooks, or the refusal (that
// mail's failure, for good). The jobs in hand get their answer; the
// others (retrying apart) find the stored answer when they run.
func (m *Mailer) recordAnswer(ctx context.Context, rec batchRecord, ans batchAnswer, jobs []outbox.Job, inHand map[string]int, errs []error) {
	attempts := 1
	for _, i := range inHand {
		attempts = max(attempts, jobs[i].Attempt+1)
	}
	for n, bm := range rec.Mails {
		job := outbox.Job{Ref: bm.Invitation, Version: bm.Version}
		if i, ok := inHand[bm.Key]; ok {
			job = jobs[i]
		}
		var sendErr error
		if n < len(ans.Errors) && ans.Errors[n] != "" {
			sendErr = &mail.SendError{Status: http.StatusUnprocessableEntity, Name: "validation_error", Message: ans.Errors[n]}
		}
		id := ""
		if n < len(ans.IDs) {
			id = ans.IDs[n]
		}
		if i, ok := inHand[bm.Key]; ok {
			errs[i] = m.sent(ctx, job, attempts, id, sendErr)
		} else {
			_ = m.record(ctx, job, attempts, id, sendErr) // its job records it again when it runs
		}
	}
}
