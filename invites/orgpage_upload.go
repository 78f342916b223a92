package invites

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/httpx"
	"github.com/kratos-orgs/kratos-orgs/templates"
)

// The org admins' page's CSV upload
//
// The file goes through the bulk invitation of the org admins' API
// (Service.BulkInvite: every row checked as a single invitation, within
// the caller's role ceiling, each row that would be invited counted
// against the caller's and the organization's quotas). Like every form of
// the page it answers with a redirect (post/redirect/get): the answer is
// kept by the bulk Idempotency-Key mechanism under the form's upload key
// (scoped to the person) for BulkIdempotencyTTL, and the page shows it
// from ?upload=<key>. So a reload shows the results again instead of
// inviting again, and a second submission of the same form (a double
// click, the back button) gets the first one's answer.

const (
	uploadFileField = "file"
	uploadKeyField  = "upload_key"
	// uploadMemory is how much of a multipart body is held in memory; the
	// body itself is capped by serve.max_body_bytes (httpx.Common).
	uploadMemory = 1 << 20
)

// uploadKeyPattern is what NewUploadKey makes (and nothing longer).
var uploadKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{16,64}$`)

// newUploadKey names one rendering of the upload form.
func newUploadKey() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// uploadScope keeps the page's upload keys apart from the /api's
// Idempotency-Keys, per person.
func uploadScope(identityID string) string { return "page:" + identityID }

// RowQuotas spends, per row, the quotas of an org admin's invitations
// (server/limits.go; BulkQuotas.APIRows).
type RowQuotas interface {
	APIRows(c *gin.Context, org string) RowQuota
}

func (p *OrgPages) upload(c *gin.Context) {
	if err := readUploadForm(c); err != nil {
		p.uploadFailed(c, err)
		return
	}
	if !p.checked(c) {
		return
	}
	ctx, who, key := c.Request.Context(), httpx.CallerOf(c), c.PostForm(uploadKeyField)
	o, me, err := p.admin.authorize(ctx, c.Param("org"), who.IdentityID)
	var raw []byte
	var rows []BulkRow
	if err == nil {
		raw, rows, err = uploadedRows(c)
	}
	if err == nil && !uploadKeyPattern.MatchString(key) {
		err = apperr.Invalidf("invalid_form", "the form is incomplete; reload the page and try again")
	}
	if err == nil {
		var quota RowQuota
		if p.o.Quotas != nil {
			quota = p.o.Quotas.APIRows(c, o.ID)
		}
		role := c.PostForm("role")
		idem := Idempotent{Key: key, Scope: uploadScope(who.IdentityID), Digest: BulkDigest("text/csv; role="+role, raw, false)}
		_, _, err = p.admin.bulk(ctx, o, me, who.IdentityID, who.Name, withRole(rows, role), quota, idem)
	}
	if err == nil || apperr.CodeOf(err) == "idempotency_in_progress" {
		// A second submission while the first runs: the results page says so.
		c.Redirect(http.StatusSeeOther, p.pagePath(c)+"?upload="+key)
		return
	}
	p.uploadFailed(c, err)
}

// withRole gives the rows without a role the form's.
func withRole(rows []BulkRow, role string) []BulkRow {
	for i := range rows {
		if rows[i].Role == "" {
			rows[i].Role = role
		}
	}
	return rows
}

// readUploadForm reads the multipart body (within serve.max_body_bytes).
func readUploadForm(c *gin.Context) error {
	err := c.Request.ParseMultipartForm(uploadMemory)
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &mbe):
		return apperr.New(apperr.TooLarge, "body_too_large", "the upload is larger than %d bytes", mbe.Limit).WithDetails("limit", mbe.Limit)
	case errors.Is(err, http.ErrNotMultipart):
		return apperr.New(apperr.UnsupportedMedia, "not_multipart", "the upload must be sent by the page's form (multipart/form-data)")
	default:
		return apperr.Invalidf("invalid_form", "the upload could not be read")
	}
}

// uploadedRows reads the uploaded file and its rows. Its content decides
// whether it is CSV, not its name or declared type: text (a spreadsheet
// or a PDF is refused as not_csv), UTF-8, a header naming known columns,
// 1 to MaxBulkRows rows.
func uploadedRows(c *gin.Context) ([]byte, []BulkRow, error) {
	fh, err := c.FormFile(uploadFileField)
	if err != nil || fh.Size == 0 {
		return nil, nil, apperr.Invalidf("no_file", "choose a CSV file to upload").WithDetails("field", uploadFileField)
	}
	f, err := fh.Open()
	if err != nil {
		return nil, nil, apperr.Invalidf("invalid_form", "the upload could not be read")
	}
	defer f.Close()
	raw, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, apperr.Invalidf("invalid_form", "the upload could not be read")
	}
	if kind := http.DetectContentType(raw); !strings.HasPrefix(kind, "text/plain") {
		return nil, nil, apperr.New(apperr.UnsupportedMedia, "not_csv", "the file is not CSV text (it looks like %s)", kind).
			WithDetails("field", uploadFileField, "detected", kind)
	}
	rows, err := ParseCSV(raw, MaxBulkRows)
	if err == nil {
		err = checkRowCount(len(rows))
	}
	return raw, rows, err
}

// uploadFailed shows the page again with why the upload was refused;
// nothing of it was written.
func (p *OrgPages) uploadFailed(c *gin.Context, err error) {
	e, _ := apperr.As(err)
	var text string
	switch apperr.CodeOf(err) {
	case "no_file", "not_multipart":
		text = p.t(c, "orgadmin.upload.no_file")
	case "not_csv", "no_rows":
		text = p.t(c, "orgadmin.upload."+e.Code)
	case "body_too_large":
		limit, _ := e.Details["limit"].(int64)
		text = p.t(c, "orgadmin.upload.too_large", limit/1024)
	case "too_many_rows":
		text = p.t(c, "orgadmin.upload.too_many_rows", e.Details["rows"], e.Details["max_rows"])
	case "idempotency_key_reused":
		text = p.t(c, "orgadmin.upload.reused")
	default:
		p.failed(c, err, pageState{})
		return
	}
	httpx.SetRetryAfter(c, err)
	p.page(c, httpx.PageStatus(err), pageState{Error: text})
}

// uploadResults is the kept answer of the caller's upload key as the
// page shows it; when there is none (any more), or it is still running,
// the page says so instead.
func (p *OrgPages) uploadResults(c *gin.Context, org, key string, pv *templates.OrgAdminPage) (*templates.OrgUploadView, error) {
	kept, running, err := p.admin.svc.KeptBulk(c.Request.Context(), org, uploadScope(httpx.CallerOf(c).IdentityID), key)
	switch {
	case err != nil:
		return nil, err
	case running:
		pv.Notice = p.t(c, "orgadmin.upload.running")
		return nil, nil
	case kept == nil:
		pv.Notice = p.t(c, "orgadmin.upload.gone")
		return nil, nil
	}
	out := &templates.OrgUploadView{}
	counts := map[string]int{}
	for _, r := range view(*kept, true).Results {
		result := r.Result
		if !slices.Contains(uploadOutcomes, result) {
			result = "other"
		}
		row := templates.OrgUploadRow{Number: r.Row + 1, Email: r.Email, Result: r.Result,
			Label: p.t(c, "orgadmin.upload.result."+result), Invited: r.Result == BulkCreated || r.Result == BulkReinvited}
		row.Reason = p.rowReason(c, r)
		counts[result]++
		out.Rows = append(out.Rows, row)
	}
	for _, result := range append(uploadOutcomes, "other") {
		if counts[result] > 0 {
			out.Summary = append(out.Summary, templates.OrgUploadCount{Result: result,
				Label: p.t(c, "orgadmin.upload.result."+result), Count: counts[result]})
		}
	}
	return out, nil
}

// uploadOutcomes are the bulk results the page has words for, in the
// order its summary lists them; any other (invalid_role, invalid_ttl,
// invalid_locale, ...) is "not invited", with the reason.
var uploadOutcomes = []string{BulkCreated, BulkReinvited, BulkAlreadyMember, BulkInvalidEmail, BulkRoleTooHigh,
	BulkSeatLimit, BulkDuplicate, "address_suppressed", BulkRateLimited, BulkError}

// rowReason says why a row was not invited: the domain's message, except
// for a repeated address, whose row is named as the page numbers rows.
func (p *OrgPages) rowReason(c *gin.Context, r BulkResult) string {
	if r.Error == nil {
		return ""
	}
	if r.Result == BulkDuplicate {
		switch first := r.Error.Details["row"].(type) {
		case int: // as BulkInvite answers it
			return p.t(c, "orgadmin.upload.duplicate_of", first+1)
		case float64: // as the kept answer reads back
			return p.t(c, "orgadmin.upload.duplicate_of", int(first)+1)
		}
	}
	return asSentence(r.Error.Message)
}
