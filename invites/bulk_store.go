package invites

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// The bulk path's Redis writes: the same scripts as a single invitation's,
// pipelined (a round trip per node for every hundred rows' address
// references, one for every hundred rows' invitations, all in the
// organization's slot).

// bulkPipeline is the most rows' scripts sent in one pipeline. go-redis
// reads a pipeline's replies within one read timeout (2 s, see redisx)
// and sends the whole pipeline again when that runs out, which would run
// every script a second time: the rows written by the first would answer
// reinvited, with a second mail each. A thousand invitation scripts in
// one pipeline did run out on a loaded machine; a hundred take a tenth.
const bulkPipeline = 100

// pipelined queues n commands (add queues the i-th) in pipelines of at
// most bulkPipeline and runs them one after the other; each command holds
// its own result or error.
func (s *Store) pipelined(ctx context.Context, n int, add func(pipe redis.Pipeliner, i int)) {
	for from := 0; from < n; from += bulkPipeline {
		pipe := s.rdb.Pipeline()
		for i := from; i < min(n, from+bulkPipeline); i++ {
			add(pipe, i)
		}
		_, _ = pipe.Exec(ctx)
	}
}

// refReply is one row's reference outcome (see Store.reference).
type refReply struct {
	outcome    string
	known      string
	suppressed bool // the address is on the suppression list
	err        error
}

// referenceMany registers the references of ids[i] for emails[i] in one
// pipeline. A row whose address is being cleaned up answers "wait": the
// caller retries it alone (Service.referenceAddress).
func (s *Store) referenceMany(ctx context.Context, org string, emails, ids []string, at time.Time) []refReply {
	out := make([]refReply, len(emails))
	if err := referenceScript.Load(ctx, s.rdb); err != nil {
		for i := range out {
			out[i].err = storeErr(err)
		}
		return out
	}
	ref := org + " " + strconv.FormatInt(at.UnixMilli(), 10)
	cmds := make([]*redis.Cmd, len(emails))
	s.pipelined(ctx, len(emails), func(pipe redis.Pipeliner, i int) {
		keys := []string{s.ks.AddressRefs(emails[i]), s.ks.AddressClaim(emails[i]), s.ks.AddressIdentity(emails[i]), s.ks.AddressSuppression(emails[i])}
		cmds[i] = referenceScript.Eval(ctx, pipe, keys, map[string]string{"id": ids[i], "ref": ref})
	})
	for i, c := range cmds {
		res, err := c.Slice()
		if err != nil {
			out[i].err = storeErr(err)
			continue
		}
		out[i] = refReply{outcome: redisx.Str(res[0]), known: redisx.Str(res[2]), suppressed: redisx.Int(res[3]) == 1}
	}
	return out
}

// createReply is one row's create outcome.
type createReply struct {
	inv     Invitation
	rotated bool
	err     error
}

// createMany writes invitations of one organization. Without
// redis.wait_replicas they go in one pipeline (the script checks each
// row's seat, membership and pending invitation atomically, in order, so
// rows past the seat limit get seat_limit); with it, one by one, each
// waiting for its replicas as a single invitation does.
func (s *Store) createMany(ctx context.Context, ns []NewInvitation) []createReply {
	out := make([]createReply, len(ns))
	if s.wait.Replicas > 0 {
		for i, n := range ns {
			out[i].inv, out[i].rotated, out[i].err = s.Create(ctx, n)
		}
		return out
	}
	if err := createScript.Load(ctx, s.rdb); err != nil {
		for i := range out {
			out[i].err = storeErr(err)
		}
		return out
	}
	now := s.now()
	cmds := make([]*redis.Cmd, len(ns))
	args := make([]*createArgs, len(ns))
	s.pipelined(ctx, len(ns), func(pipe redis.Pipeliner, i int) {
		var keys []string
		keys, args[i] = s.createCall(ns[i], now)
		cmds[i] = createScript.Eval(ctx, pipe, keys, args[i])
	})
	for i, c := range cmds {
		res, err := c.Slice()
		if err == nil && len(res) == 0 {
			err = errors.New("invites: empty create reply")
		}
		if err != nil {
			out[i].err = storeErr(err)
			continue
		}
		rep := redisx.Reply{Outcome: redisx.Str(res[0]), Values: res[1:]}
		out[i].inv, out[i].rotated, out[i].err = s.settleCreate(rep, ns[i], args[i], now)
	}
	return out
}
