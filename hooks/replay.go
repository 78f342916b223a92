package hooks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/redisx"
	"github.com/kratos-orgs/kratos-orgs/templates"
)

// Every webhook that may change something (registration/post,
// verification/after, login/after, settings/after) is recorded under
// Kratos' flow id and the hook's name (redisx.Keyspace.HookCall), in one
// hash that lives for Config.ReplayWindow:
//
//	d    SHA-256 of the body the first delivery carried
//	s, b the status and body it was answered with (absent while running)
//	org  the organization a sign-up created ("creating" while under way)
//
// A repeat — Kratos retrying, or someone replaying a captured body — is
// answered from the record and changes nothing. A different body under a
// recorded flow id is a forgery (Kratos runs these hooks once per
// completed flow): it changes nothing either. The queued retry of a hook's
// work (outbox) reads the same record, so an organization is created once
// per flow however the work gets done.
//
// The pre-persist hook (registration/pre) is not recorded: it grants
// nothing, and Kratos legitimately calls it again for the same flow when a
// person corrects a refused form.

// recordScript claims the record of a hook call, or reports what it holds.
// KEYS: the record. Arguments: digest (of the body), ttl (ms).
var recordScript = redisx.NewScript("hooks.record", redisx.Standalone, `
local d = redis.call('HGET', KEYS[1], 'd')
if not d then
  redis.call('HSET', KEYS[1], 'd', A.digest)
  redis.call('PEXPIRE', KEYS[1], A.ttl)
  return {'new'}
end
local r = redis.call('HMGET', KEYS[1], 's', 'b')
if d ~= A.digest then return {'conflict', r[1] or '', r[2] or ''} end
if not r[1] then return {'running'} end
return {'done', r[1], r[2]}
`)

// orgScript claims the right to create a sign-up's organization, once per
// flow; it reports the organization when one was created already, and
// refuses when the record has expired (the flow is too old to act on).
// KEYS: the record.
var orgScript = redisx.NewScript("hooks.claim_org", redisx.Standalone, `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'expired'} end
if redis.call('HSETNX', KEYS[1], 'org', 'creating') == 1 then return {'first'} end
return {'done', redis.call('HGET', KEYS[1], 'org')}
`)

// hookCall is one recorded webhook call.
type hookCall struct {
	key string
}

// begin records a call; it answers the request itself (and reports false)
// when the call is a repeat or a forgery.
func (h *Handlers) begin(c *gin.Context, hook, flowID string, raw []byte) (hookCall, bool) {
	if flowID == "" {
		refuse(c, http.StatusBadRequest, "#/", MsgBadRequest, "bad_request",
			h.render.HookMessage("bad_request", templates.HookData{Reason: "the flow id is missing"}))
		return hookCall{}, false
	}
	call := hookCall{key: h.ks.HookCall(hook, flowID)}
	sum := sha256.Sum256(raw)
	res, err := recordScript.Eval(c.Request.Context(), h.rdb, []string{call.key},
		map[string]any{"digest": hex.EncodeToString(sum[:]), "ttl": h.cfg.ReplayWindow.Milliseconds()}).StringSlice()
	if err != nil {
		h.unavailable(c, err)
		return hookCall{}, false
	}
	switch res[0] {
	case "new":
		return call, true
	case "done":
		h.log.Info("webhook repeated: answered from its record, nothing changed", "hook", hook)
		c.Data(statusOf(res[1]), "application/json", []byte(res[2]))
	case "conflict":
		h.log.Warn("webhook repeated for a flow with a different body: ignored", "hook", hook)
		if res[1] != "" {
			c.Data(statusOf(res[1]), "application/json", []byte(res[2]))
		} else {
			c.JSON(http.StatusOK, map[string]any{})
		}
	default: // running: the first delivery is doing the work
		h.log.Info("webhook delivered again while the first delivery runs: nothing done twice", "hook", hook)
		c.JSON(http.StatusOK, map[string]any{})
	}
	c.Abort()
	return hookCall{}, false
}

func statusOf(s string) int {
	switch s {
	case "200":
		return http.StatusOK
	case "204":
		return http.StatusNoContent
	}
	return http.StatusOK
}

// finish answers a recorded call and stores the answer for repeats.
func (h *Handlers) finish(c *gin.Context, call hookCall) {
	const body = "{}"
	if err := h.rdb.HSet(context.WithoutCancel(c.Request.Context()), call.key, "s", http.StatusOK, "b", body).Err(); err != nil {
		h.log.Warn("could not record a webhook's answer; a repeat will be answered without repeating the work", "err", err)
	}
	c.Data(http.StatusOK, "application/json", []byte(body))
}

// forget drops a call's record, so that a repeat does the work again (the
// work could neither be done nor queued).
func (h *Handlers) forget(ctx context.Context, call hookCall) {
	if err := h.rdb.Del(context.WithoutCancel(ctx), call.key).Err(); err != nil {
		h.log.Error("could not drop a webhook's record", "err", err)
	}
}

// claimOrganization reports whether this delivery of a sign-up creates its
// organization: "first" (create it), "done" (it exists: orgID) or
// "expired" (the record is gone; creating it now could create it twice).
func (h *Handlers) claimOrganization(ctx context.Context, key string) (outcome, orgID string, err error) {
	res, err := orgScript.Eval(ctx, h.rdb, []string{key}, nil).StringSlice()
	if err != nil {
		return "", "", err
	}
	if len(res) > 1 {
		orgID = res[1]
	}
	return res[0], orgID, nil
}

// defaultReplayWindow covers Kratos' retries and the outbox's retries of a
// hook's work with room to spare (see config hooks.replay_window).
const defaultReplayWindow = 2 * time.Hour
