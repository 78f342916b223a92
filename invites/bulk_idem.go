package invites

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// Idempotent bulk requests
//
// A bulk request with an Idempotency-Key header runs once: its answer is
// kept in the organization's slot (redisx OrgBulk) for
// BulkIdempotencyTTL, and a repeat with the same key and the same body
// gets that answer again, sending nothing. The same key with another body
// is refused (422 idempotency_key_reused); a repeat while the first is
// still running gets 409 idempotency_in_progress (retry later). Keys are
// scoped to the caller: the operator's, or one org admin's.

const (
	// BulkIdempotencyTTL is how long a bulk answer is kept for repeats.
	BulkIdempotencyTTL = 24 * time.Hour
	// BulkRunningTTL bounds how long a request holds its key while it
	// runs: a process that died mid-request frees the key after it (a
	// retry then re-invites: created rows answer reinvited).
	BulkRunningTTL = 10 * time.Minute
	// MaxIdempotencyKey is the longest Idempotency-Key accepted.
	MaxIdempotencyKey = 255
)

// idemRecord is what the key holds.
type idemRecord struct {
	Digest string        `json:"digest"`
	State  string        `json:"state"` // running or done
	Answer *BulkResponse `json:"answer,omitempty"`
}

// BulkDigest is the fingerprint of a request's content.
func BulkDigest(contentType string, body []byte, dryRun bool) string {
	h := sha256.New()
	h.Write([]byte(contentType))
	h.Write([]byte{0})
	if dryRun {
		h.Write([]byte("dry"))
	}
	h.Write([]byte{0})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// CheckIdempotencyKey refuses an unusable header value.
func CheckIdempotencyKey(key string) error {
	if len(key) > MaxIdempotencyKey {
		return apperr.Invalidf("invalid_idempotency_key", "Idempotency-Key is at most %d characters", MaxIdempotencyKey).
			WithDetails("header", "Idempotency-Key")
	}
	return nil
}

// beginBulk takes the key for a request; a stored answer is returned for
// a repeat (nil when this request is the first and must run).
func (s *Store) beginBulk(ctx context.Context, org, scope, key, digest string) (*BulkResponse, error) {
	k := s.ks.OrgBulk(org, scope+"\x00"+key)
	rec, _ := json.Marshal(idemRecord{Digest: digest, State: "running"})
	ok, err := s.rdb.SetNX(ctx, k, rec, BulkRunningTTL).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	if ok {
		return nil, nil
	}
	raw, err := s.rdb.Get(ctx, k).Bytes()
	if errors.Is(err, redis.Nil) {
		return s.beginBulk(ctx, org, scope, key, digest) // it expired meanwhile
	}
	if err != nil {
		return nil, storeErr(err)
	}
	var cur idemRecord
	if err := json.Unmarshal(raw, &cur); err != nil {
		return nil, storeErr(err)
	}
	switch {
	case cur.Digest != digest:
		return nil, apperr.New(apperr.Unprocessable, "idempotency_key_reused",
			"this Idempotency-Key was used with another request body; use a new key for a new request").
			WithDetails("header", "Idempotency-Key")
	case cur.State != "done" || cur.Answer == nil:
		e := apperr.Conflictf("idempotency_in_progress", "a request with this Idempotency-Key is still running; try again shortly").
			WithDetails("header", "Idempotency-Key")
		e.RetryAfter = 5 * time.Second
		return nil, e
	}
	return cur.Answer, nil
}

// finishBulk stores a request's answer under its key.
func (s *Store) finishBulk(ctx context.Context, org, scope, key, digest string, answer BulkResponse) error {
	rec, err := json.Marshal(idemRecord{Digest: digest, State: "done", Answer: &answer})
	if err != nil {
		return err
	}
	return storeErr(s.rdb.Set(context.WithoutCancel(ctx), s.ks.OrgBulk(org, scope+"\x00"+key), rec, BulkIdempotencyTTL).Err())
}

// abandonBulk frees a key whose request failed as a whole (nothing was
// done), so a retry runs.
func (s *Store) abandonBulk(ctx context.Context, org, scope, key string) {
	_ = s.rdb.Del(context.WithoutCancel(ctx), s.ks.OrgBulk(org, scope+"\x00"+key)).Err()
}

// Idempotent is how a bulk request is run once.
type Idempotent struct {
	Key    string // the Idempotency-Key header ("" for none)
	Scope  string // the caller: "admin" or the org admin's identity id
	Digest string // BulkDigest of the request
}

// RunBulk runs a bulk request under its idempotency key: the first request
// runs and its answer is stored; repeats get that answer. replayed says a
// stored answer was returned.
func (s *Service) RunBulk(ctx context.Context, orgRef string, idem Idempotent, run func(ctx context.Context) (BulkResponse, error)) (resp BulkResponse, replayed bool, err error) {
	if idem.Key == "" {
		resp, err = run(ctx)
		return resp, false, err
	}
	org, err := s.orgs.ResolveID(ctx, orgRef)
	if err != nil {
		return resp, false, err
	}
	stored, err := s.store.beginBulk(ctx, org, idem.Scope, idem.Key, idem.Digest)
	if err != nil || stored != nil {
		if stored != nil {
			return *stored, true, nil
		}
		return resp, false, err
	}
	resp, err = run(ctx)
	if err != nil {
		s.store.abandonBulk(ctx, org, idem.Scope, idem.Key)
		return resp, false, err
	}
	if err := s.store.finishBulk(ctx, org, idem.Scope, idem.Key, idem.Digest, resp); err != nil {
		s.log.Warn("could not store a bulk answer under its Idempotency-Key", "err", err)
	}
	return resp, false, nil
}

// keptBulk reads the answer kept under a bulk request's key: nil with
// running true while that request runs, nil with false when there is none
// (never sent, or expired).
func (s *Store) keptBulk(ctx context.Context, org, scope, key string) (answer *BulkResponse, running bool, err error) {
	raw, err := s.rdb.Get(ctx, s.ks.OrgBulk(org, scope+"\x00"+key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, storeErr(err)
	}
	var rec idemRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, false, storeErr(err)
	}
	if rec.State != "done" || rec.Answer == nil {
		return nil, true, nil
	}
	return rec.Answer, false, nil
}

// KeptBulk is the answer of an earlier bulk request of the organization
// (its id) under the caller's key: nil when there is none, with running
// true while that request has not finished.
func (s *Service) KeptBulk(ctx context.Context, org, scope, key string) (*BulkResponse, bool, error) {
	return s.store.keptBulk(ctx, org, scope, key)
}
