package invites

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/httpx"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// BulkQuotas are the quotas a bulk request's rows count against, row by
// row, as that many single invitations would (server/limits.go).
type BulkQuotas interface {
	// AdminRows: the admin API key's quota.
	AdminRows(c *gin.Context) RowQuota
	// APIRows: the org admin's and the organization's invitation quotas.
	APIRows(c *gin.Context, org string) RowQuota
}

// BulkHandlersOptions wire the bulk routes.
type BulkHandlersOptions struct {
	Service   *Service
	Previewer *Previewer
	Orgs      *orgs.Service
	Quotas    BulkQuotas // nil: no per-row quota
}

// BulkHandlers serve POST .../invitations/bulk on both APIs.
type BulkHandlers struct{ o BulkHandlersOptions }

// NewBulkHandlers returns the handlers.
func NewBulkHandlers(o BulkHandlersOptions) *BulkHandlers { return &BulkHandlers{o: o} }

// BulkPath is the route, under /admin and /api.
const BulkPath = "/organizations/:org/invitations/bulk"

// RegisterAdmin adds the operator's route to the admin group.
func (h *BulkHandlers) RegisterAdmin(r gin.IRouter) { r.POST(BulkPath, httpx.H(h.admin)) }

// RegisterAPI adds the org admins' route to the session group.
func (h *BulkHandlers) RegisterAPI(r gin.IRouter) { r.POST(BulkPath, httpx.H(h.api)) }

func (h *BulkHandlers) admin(c *gin.Context) error {
	body, err := readBulk(c)
	if err != nil {
		return err
	}
	rows, err := bulkRows(c, body, func(r BulkRow) BulkRow { return r })
	if err != nil {
		return err
	}
	var quota RowQuota
	if h.o.Quotas != nil {
		quota = h.o.Quotas.AdminRows(c)
	}
	return h.run(c, c.Param("org"), body, rows, BulkOptions{Quota: quota}, "admin", false)
}

func (h *BulkHandlers) api(c *gin.Context) error {
	body, err := readBulk(c)
	if err != nil {
		return err
	}
	o, me, err := h.o.Orgs.Authorize(c.Request.Context(), c.Param("org"), httpx.CallerOf(c).IdentityID, "admin")
	if err != nil {
		return err
	}
	rows, err := bulkRows(c, body, APIBulkRow.Row)
	if err != nil {
		return err
	}
	who := httpx.CallerOf(c)
	inviter := actor(who.IdentityID, who.Name, me)
	opts := BulkOptions{Actor: &inviter}
	if h.o.Quotas != nil {
		opts.Quota = h.o.Quotas.APIRows(c, o.ID)
	}
	return h.run(c, o.ID, body, rows, opts, "api:"+who.IdentityID, true)
}

// run answers a bulk request: a dry run, or the real one under its
// Idempotency-Key.
func (h *BulkHandlers) run(c *gin.Context, org string, body bulkBody, rows []BulkRow, o BulkOptions, scope string, orgAdmin bool) error {
	ctx := c.Request.Context()
	if body.dryRun {
		// A dry run counts once against the caller's quota, not per row:
		// it writes nothing, and is followed by the real request.
		if o.Quota != nil {
			if err := o.Quota(ctx); err != nil {
				return err
			}
		}
		o.Quota = nil
		resp, err := h.o.Previewer.Bulk(ctx, org, rows, o)
		if err != nil {
			return err
		}
		c.JSON(http.StatusOK, view(resp, orgAdmin))
		return nil
	}
	idem := Idempotent{Key: body.idemKey, Scope: scope, Digest: BulkDigest(body.contentType, body.raw, false)}
	resp, replayed, err := h.o.Service.RunBulk(ctx, org, idem, func(ctx context.Context) (BulkResponse, error) {
		return h.o.Service.BulkInvite(ctx, org, rows, o)
	})
	if err != nil {
		return err
	}
	if replayed {
		c.Header("Idempotent-Replayed", "true")
	}
	c.JSON(http.StatusOK, view(resp, orgAdmin))
	return nil
}

// view strips, for org admins, what their API never shows: the identity
// id an already_member refusal names.
func view(r BulkResponse, orgAdmin bool) BulkResponse {
	if !orgAdmin {
		return r
	}
	for i := range r.Results {
		if e := r.Results[i].Error; e != nil && e.Details != nil {
			d := make(map[string]any, len(e.Details))
			for k, v := range e.Details {
				if k != "identity_id" {
					d[k] = v
				}
			}
			r.Results[i].Error = &RowError{Code: e.Code, Message: e.Message, Details: d}
		}
	}
	return r
}

// bulkBody is a bulk request's body and headers.
type bulkBody struct {
	raw         []byte
	csv         bool
	contentType string
	idemKey     string
	dryRun      bool
}

// readBulk reads the body (JSON or text/csv, within the body limit), the
// dry_run parameter and the Idempotency-Key header, refusing each with a
// structured 4xx before anything is done.
func readBulk(c *gin.Context) (bulkBody, error) {
	b := bulkBody{contentType: c.GetHeader("Content-Type"), idemKey: c.GetHeader("Idempotency-Key")}
	b.csv = isCSV(b.contentType)
	if !b.csv && !httpx.IsJSON(b.contentType) {
		return b, apperr.New(apperr.UnsupportedMedia, "unsupported_media_type",
			"the request body must be JSON (application/json) or CSV (text/csv), got %q", b.contentType)
	}
	if err := CheckIdempotencyKey(b.idemKey); err != nil {
		return b, err
	}
	var err error
	if b.dryRun, err = dryRun(c); err != nil {
		return b, err
	}
	var buf bytes.Buffer
	if err := httpx.ReadBody(&buf, c.Request); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return b, apperr.New(apperr.TooLarge, "body_too_large", "the request body is larger than %d bytes", mbe.Limit).
				WithDetails("limit", mbe.Limit)
		}
		return b, apperr.Invalidf("invalid_body", "could not read the request body")
	}
	b.raw = buf.Bytes()
	return b, nil
}

// bulkRows reads a request's rows, 1 to MaxBulkRows: the CSV, or the JSON
// body's invitations (rows of type R: BulkRow on the operator's API,
// APIBulkRow on the org admins'), each made a BulkRow by row.
func bulkRows[R any](c *gin.Context, body bulkBody, row func(R) BulkRow) ([]BulkRow, error) {
	var rows []BulkRow
	var err error
	if body.csv {
		rows, err = ParseCSV(body.raw, MaxBulkRows)
	} else {
		var req struct {
			Invitations []R `json:"invitations"`
		}
		err = decodeBulkJSON(c, body.raw, &req)
		for _, r := range req.Invitations {
			rows = append(rows, row(r))
		}
	}
	if err != nil {
		return nil, err
	}
	return rows, checkRowCount(len(rows))
}

// decodeBulkJSON decodes a JSON body strictly (httpx.DecodeJSON's rules).
func decodeBulkJSON(c *gin.Context, raw []byte, dst any) error {
	c.Request.Body = io.NopCloser(bytes.NewReader(raw))
	c.Request.ContentLength = int64(len(raw))
	return httpx.DecodeJSON(c, dst)
}

func checkRowCount(n int) error {
	if n == 0 {
		return apperr.Invalidf("no_rows", "the request has no rows to invite").WithDetails("field", "invitations")
	}
	if n > MaxBulkRows {
		return errTooManyRows(n)
	}
	return nil
}
