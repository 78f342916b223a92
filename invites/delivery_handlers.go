package invites

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/httpx"
	"github.com/kratos-orgs/kratos-orgs/mail"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// ResendHookPath is where Resend's webhooks are received (public
// listener: Resend must reach it, and the admin listener is never exposed).
const ResendHookPath = "/hooks/resend"

// webhookVerifier checks a webhook's signature and returns its message id
// (mail.WebhookVerifier).
type webhookVerifier interface {
	Verify(h http.Header, body []byte) (string, error)
}

// outcomeRecorder is what the webhook does with a verified report
// (Deliveries).
type outcomeRecorder interface {
	ClaimWebhook(ctx context.Context, id string) (bool, error)
	ReleaseWebhook(ctx context.Context, id string)
	Record(ctx context.Context, o Outcome) (RecordResult, error)
}

// DeliveryHook serves POST /hooks/resend.
type DeliveryHook struct {
	verify webhookVerifier
	record outcomeRecorder
}

// NewDeliveryHook returns the Resend webhook handler.
func NewDeliveryHook(v webhookVerifier, r outcomeRecorder) *DeliveryHook {
	return &DeliveryHook{verify: v, record: r}
}

// Register adds the route.
func (h *DeliveryHook) Register(r gin.IRouter) { r.POST(ResendHookPath, httpx.H(h.resend)) }

// WebhookAnswer is the body of a 200 to Resend.
type WebhookAnswer struct {
	// Result: recorded, older, stale, unknown (no invitation has this
	// email id), duplicate (this svix-id was seen before) or ignored (an
	// event type kratos-orgs does not record).
	Result     string `json:"result"`
	Suppressed bool   `json:"suppressed,omitempty"`
}

// resend verifies, de-duplicates and records one webhook. Only a failure
// to record answers 5xx (Svix retries it); a report about mail kratos-orgs
// does not know, a repeat and an event type it ignores answer 200 so that
// Svix stops sending them.
func (h *DeliveryHook) resend(c *gin.Context) error {
	body, err := readWebhookBody(c)
	if err != nil {
		return err
	}
	id, err := h.verify.Verify(c.Request.Header, body)
	if err != nil {
		return err
	}
	ev, err := mail.ParseResendEvent(body)
	if err != nil {
		return err
	}
	o, known := OutcomeOf(ev)
	if !known {
		c.JSON(http.StatusOK, WebhookAnswer{Result: "ignored"})
		return nil
	}
	ctx := c.Request.Context()
	first, err := h.record.ClaimWebhook(ctx, id)
	if err != nil {
		return err
	}
	if !first {
		c.JSON(http.StatusOK, WebhookAnswer{Result: "duplicate"})
		return nil
	}
	res, err := h.record.Record(ctx, o)
	if err != nil {
		h.record.ReleaseWebhook(ctx, id)
		return err
	}
	c.JSON(http.StatusOK, WebhookAnswer{Result: res.Result, Suppressed: res.Suppressed})
	return nil
}

// readWebhookBody reads at most mail.MaxWebhookBody bytes of JSON.
func readWebhookBody(c *gin.Context) ([]byte, error) {
	if ct := c.GetHeader("Content-Type"); !httpx.IsJSON(ct) {
		return nil, apperr.New(apperr.UnsupportedMedia, "unsupported_media_type", "a webhook body is JSON, got %q", ct)
	}
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, mail.MaxWebhookBody+1))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || len(body) > mail.MaxWebhookBody {
		return nil, apperr.New(apperr.TooLarge, "body_too_large", "the webhook body is over %d bytes", mail.MaxWebhookBody).
			WithDetails("limit", mail.MaxWebhookBody)
	}
	if err != nil {
		return nil, apperr.Invalidf("invalid_body", "could not read the request body")
	}
	return body, nil
}

// suppressionList is what the operator's suppression routes use
// (Deliveries).
type suppressionList interface {
	ListSuppressions(ctx context.Context, cursor string, limit int) (orgs.Page[Suppression], error)
	Suppressed(ctx context.Context, email string) (*Suppression, error)
	Suppress(ctx context.Context, s Suppression) error
	ClearSuppression(ctx context.Context, email string) (bool, error)
}

// SuppressionHandlers serve the operator's suppression list.
type SuppressionHandlers struct{ list suppressionList }

// NewSuppressionHandlers returns the handlers.
func NewSuppressionHandlers(list suppressionList) *SuppressionHandlers {
	return &SuppressionHandlers{list: list}
}

// Register adds the routes to the admin API group (authenticated).
func (h *SuppressionHandlers) Register(r gin.IRouter) {
	r.GET("/suppressions", httpx.H(h.listAll))
	r.POST("/suppressions", httpx.H(h.add))
	r.GET("/suppressions/:email", httpx.H(h.get))
	r.DELETE("/suppressions/:email", httpx.H(h.clear))
}

func (h *SuppressionHandlers) listAll(c *gin.Context) error {
	cursor, limit, err := httpx.Page(c)
	if err != nil {
		return err
	}
	page, err := h.list.ListSuppressions(c.Request.Context(), cursor, limit)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, page)
	return nil
}

func (h *SuppressionHandlers) get(c *gin.Context) error {
	email, err := NormalizeEmail(c.Param("email"))
	if err != nil {
		return err
	}
	s, err := h.list.Suppressed(c.Request.Context(), email)
	if err != nil {
		return err
	}
	if s == nil {
		return apperr.NotFoundf("suppression_not_found", "the address is not suppressed")
	}
	c.JSON(http.StatusOK, s)
	return nil
}

// add suppresses an address by hand (reason manual): an address that
// asked not to be mailed, say.
func (h *SuppressionHandlers) add(c *gin.Context) error {
	var req struct {
		Email  string `json:"email"`
		Detail string `json:"detail,omitempty"`
	}
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	email, err := NormalizeEmail(req.Email)
	if err != nil {
		return err
	}
	if len(req.Detail) > 500 {
		return apperr.Invalidf("invalid_detail", "detail is at most 500 bytes").WithDetails("field", "detail")
	}
	if err := h.list.Suppress(c.Request.Context(), Suppression{Email: email, Reason: "manual", Detail: req.Detail}); err != nil {
		return err
	}
	s, err := h.list.Suppressed(c.Request.Context(), email)
	if err != nil || s == nil {
		return errors.Join(err, errors.New("suppression not readable after writing it"))
	}
	c.JSON(http.StatusCreated, s)
	return nil
}

func (h *SuppressionHandlers) clear(c *gin.Context) error {
	cleared, err := h.list.ClearSuppression(c.Request.Context(), c.Param("email"))
	if err != nil {
		return err
	}
	if !cleared {
		return apperr.NotFoundf("suppression_not_found", "the address is not suppressed")
	}
	c.Status(http.StatusNoContent)
	return nil
}
