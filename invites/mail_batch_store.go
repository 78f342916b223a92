package invites

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/mail"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// Mail batches: what makes sending through the provider's batch endpoint
// exactly-once, given that Resend takes one Idempotency-Key for a whole
// batch and replays its first answer only for the same key and the same
// body.
//
// A batch's key is derived from its mails' own keys (batchKey), and
// before it is sent one script binds ("pins") every mail to it and stores
// the batch's request, sealed (the links are in it), all in one slot
// (redisx MailBatches): either every mail was free and is now bound to
// the batch, or nothing is written. From then on the mail is only ever sent
// as part of that request, byte for byte, under that key: a retry after a
// 5xx, a timeout or a crash re-sends the stored request, which Resend
// either carries out (it never did) or replays (same ids, nothing sent
// twice). A mail sent on its own, once retried, is pinned to its own key
// the same way (pinSingle), so it can never join a batch afterwards. The
// batch's answer (an id or an error per mail) replaces the request once
// known, for the mails whose jobs come later.

// pinSingle binds a mail to a send of its own, under its own key.
const pinSingle = "1"

// MailBatchTTL is how long pins, requests and answers are kept: Resend's
// idempotency window, beyond which the mail jobs give up (RetryWindow).
const MailBatchTTL = 24 * time.Hour

// batchMail is one mail of a batch.
type batchMail struct {
	Key        string `json:"k"` // the mail's own idempotency key
	Invitation string `json:"i"`
	Version    int    `json:"v"`
}

// batchRecord is a batch's request, kept until it is answered.
type batchRecord struct {
	Mails  []batchMail `json:"m"`
	Sealed string      `json:"s"` // the []mail.Message, JSON, sealed
}

// batchAnswer is what the provider answered, per mail in request order:
// an id, or the reason it alone was refused.
type batchAnswer struct {
	IDs    []string `json:"ids"`
	Errors []string `json:"errors"`
}

// sealer seals a batch's request while it is stored (tokens.Sealer).
type sealer interface {
	Seal(plaintext, context string) string
	Open(sealed, context string) (string, error)
}

// MailBatches stores the pins, requests and answers of mail batches.
type MailBatches struct {
	rdb    redis.UniversalClient
	ks     redisx.Keyspace
	sealer sealer
	ttl    time.Duration
}

// NewMailBatches returns the batch bookkeeping; sealer is the outbox's
// (secrets.cipher).
func NewMailBatches(rdb redis.UniversalClient, ks redisx.Keyspace, s sealer) *MailBatches {
	return &MailBatches{rdb: rdb, ks: ks, sealer: s, ttl: MailBatchTTL}
}

// commitScript binds every mail of a batch to it and stores its request,
// if no mail is bound yet; otherwise it writes nothing and returns each
// mail's binding ("" for a free mail).
// KEYS: the batch's record, then each mail's pin. Arguments: commitArgs.
var commitScript = redisx.NewScript("invites.mail_batch_commit", redisx.Standalone, `
local pins, taken = {}, false
for i = 2, #KEYS do
  local v = redis.call('GET', KEYS[i])
  pins[i-1] = v or ''
  if v then taken = true end
end
if taken then return pins end
for i = 2, #KEYS do redis.call('SET', KEYS[i], A.batch, 'PX', A.ttl) end
redis.call('SET', KEYS[1], A.record, 'PX', A.ttl)
return {}
`)

// commitArgs are commitScript's arguments.
type commitArgs struct {
	Batch  string `json:"batch"`  // the batch's key
	Record string `json:"record"` // batchRecord JSON
	TTL    int64  `json:"ttl"`    // ms
}

// pinScript returns what each mail is bound to, binding a free one to a
// send of its own.
// KEYS: each mail's pin. Arguments: {ttl (ms)}.
var pinScript = redisx.NewScript("invites.mail_pin", redisx.Standalone, `
local out = {}
for i = 1, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if not v then
    v = '`+pinSingle+`'
    redis.call('SET', KEYS[i], v, 'PX', A.ttl)
  end
  out[i] = v
end
return out
`)

// commit stores a batch and binds its mails to it; nil means done, else
// the bindings found (nothing was written).
func (b *MailBatches) commit(ctx context.Context, key string, mails []batchMail, msgs []mail.Message) ([]string, error) {
	body, err := json.Marshal(msgs)
	if err != nil {
		return nil, err
	}
	rec, err := json.Marshal(batchRecord{Mails: mails, Sealed: b.sealer.Seal(string(body), sealBatch+key)})
	if err != nil {
		return nil, err
	}
	keys := []string{b.ks.MailBatch(key)}
	for _, m := range mails {
		keys = append(keys, b.ks.MailPin(m.Key))
	}
	pins, err := commitScript.Eval(ctx, b.rdb, keys, commitArgs{Batch: key, Record: string(rec), TTL: b.ttl.Milliseconds()}).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("mail batch: commit: %w", err)
	}
	if len(pins) == 0 {
		return nil, nil
	}
	return pins, nil
}

// pin returns what each mail key is bound to, binding the free ones to a
// send of their own (pinSingle).
func (b *MailBatches) pin(ctx context.Context, mailKeys []string) ([]string, error) {
	keys := make([]string, len(mailKeys))
	for i, k := range mailKeys {
		keys[i] = b.ks.MailPin(k)
	}
	pins, err := pinScript.Eval(ctx, b.rdb, keys, map[string]int64{"ttl": b.ttl.Milliseconds()}).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("mail batch: pin: %w", err)
	}
	return pins, nil
}

// sealBatch is the sealing context of a batch's request (followed by its
// key): a sealed request opens only as the batch it was stored for.
const sealBatch = "kratos-orgs/mail-batch/"

// errBatchLost is a mail bound to a batch whose request and answer are
// both gone (expired, or evicted): whether it went out cannot be known,
// and sending it again could deliver it twice.
var errBatchLost = errors.New("the mail batch this mail was bound to is no longer known; resend the invitation for a new link")

// load reads a batch: its answer if it has one, else its request (mails
// and messages); neither is errBatchLost.
func (b *MailBatches) load(ctx context.Context, key string) (*batchAnswer, batchRecord, []mail.Message, error) {
	vals, err := b.rdb.MGet(ctx, b.ks.MailBatchSent(key), b.ks.MailBatch(key)).Result()
	if err != nil {
		return nil, batchRecord{}, nil, fmt.Errorf("mail batch: load: %w", err)
	}
	var rec batchRecord
	if s, ok := vals[1].(string); ok {
		if err := json.Unmarshal([]byte(s), &rec); err != nil {
			return nil, rec, nil, err
		}
	}
	if s, ok := vals[0].(string); ok {
		var ans batchAnswer
		return &ans, rec, nil, json.Unmarshal([]byte(s), &ans)
	}
	if rec.Sealed == "" {
		return nil, rec, nil, errBatchLost
	}
	body, err := b.sealer.Open(rec.Sealed, sealBatch+key)
	if err != nil {
		return nil, rec, nil, err
	}
	var msgs []mail.Message
	return nil, rec, msgs, json.Unmarshal([]byte(body), &msgs)
}

// answer stores a batch's answer in place of its request, and keeps the
// mails with it (those whose jobs come later record theirs from it).
func (b *MailBatches) answer(ctx context.Context, key string, rec batchRecord, ans batchAnswer) error {
	rec.Sealed = ""
	recJSON, _ := json.Marshal(rec)
	ansJSON, _ := json.Marshal(ans)
	_, err := b.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, b.ks.MailBatchSent(key), ansJSON, b.ttl)
		p.Set(ctx, b.ks.MailBatch(key), recJSON, b.ttl) // the mails, without the request
		return nil
	})
	if err != nil {
		return fmt.Errorf("mail batch: answer: %w", err)
	}
	return nil
}
