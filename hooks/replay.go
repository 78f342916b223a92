package hooks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

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

// hookCall is one recorded webhook call.
type hookCall struct {
	hook, flowID string
}

// begin records a call; it answers the request itself (and reports false)
// when the call is a repeat or a forgery.
func (h *Handlers) begin(c *gin.Context, hook, flowID string, raw []byte) (hookCall, bool) {
	if flowID == "" {
		refuse(c, http.StatusBadRequest, "#/", MsgBadRequest, "bad_request",
			h.render.HookMessage("bad_request", templates.HookData{Reason: "the flow id is missing"}))
		return hookCall{}, false
	}
	call := hookCall{hook: hook, flowID: flowID}
	sum := sha256.Sum256(raw)
	rec, err := h.replays.Begin(c.Request.Context(), hook, flowID, hex.EncodeToString(sum[:]), h.cfg.ReplayWindow)
	if err != nil {
		h.unavailable(c, err)
		return hookCall{}, false
	}
	switch rec.State {
	case ReplayNew:
		return call, true
	case ReplayDone:
		h.log.Info("webhook repeated: answered from its record, nothing changed", "hook", hook)
		c.Data(statusOf(rec.Status), "application/json", []byte(rec.Body))
	case ReplayConflict:
		h.log.Warn("webhook repeated for a flow with a different body: ignored", "hook", hook)
		if rec.Status != "" {
			c.Data(statusOf(rec.Status), "application/json", []byte(rec.Body))
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
	if err := h.replays.Finish(context.WithoutCancel(c.Request.Context()), call.hook, call.flowID, strconv.Itoa(http.StatusOK), body); err != nil {
		h.log.Warn("could not record a webhook's answer; a repeat will be answered without repeating the work", "err", err)
	}
	c.Data(http.StatusOK, "application/json", []byte(body))
}

// forget drops a call's record, so that a repeat does the work again (the
// work could neither be done nor queued).
func (h *Handlers) forget(ctx context.Context, call hookCall) {
	if err := h.replays.Forget(context.WithoutCancel(ctx), call.hook, call.flowID); err != nil {
		h.log.Error("could not drop a webhook's record", "err", err)
	}
}

// defaultReplayWindow covers Kratos' retries and the outbox's retries of a
// hook's work with room to spare (see config hooks.replay_window).
const defaultReplayWindow = 2 * time.Hour
