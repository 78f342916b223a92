package invites

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/textcheck"
)

// MaxBulkRows is the most rows one bulk request may carry; larger lists
// are sent in chunks (the CLI's invite --csv does).
const MaxBulkRows = 1000

// BulkRow is one row of a bulk invitation: the single invitation's fields,
// plus first_name and last_name, which go into the mail's context (as
// context.first_name and context.last_name) for the templates to greet
// the person by name.
type BulkRow struct {
	Email      string         `json:"email"`
	Role       string         `json:"role,omitempty"`
	FirstName  string         `json:"first_name,omitempty"`
	LastName   string         `json:"last_name,omitempty"`
	Inviter    *Inviter       `json:"inviter,omitempty"`
	Context    map[string]any `json:"context,omitempty"`
	TTL        *Duration      `json:"ttl,omitempty"`
	RedirectTo string         `json:"redirect_to,omitempty"`
	SendEmail  *bool          `json:"send_email,omitempty"`
	Locale     string         `json:"locale,omitempty"`
}

// APIBulkRow is a row on the org admins' API: no inviter (the caller is)
// and no send_email (the mail is always sent), as for a single invitation.
type APIBulkRow struct {
	Email      string         `json:"email"`
	Role       string         `json:"role,omitempty"`
	FirstName  string         `json:"first_name,omitempty"`
	LastName   string         `json:"last_name,omitempty"`
	Context    map[string]any `json:"context,omitempty"`
	TTL        *Duration      `json:"ttl,omitempty"`
	RedirectTo string         `json:"redirect_to,omitempty"`
	Locale     string         `json:"locale,omitempty"`
}

// Row is the row as the admin API's row (which has every field).
func (r APIBulkRow) Row() BulkRow {
	return BulkRow{Email: r.Email, Role: r.Role, FirstName: r.FirstName, LastName: r.LastName, Context: r.Context,
		TTL: r.TTL, RedirectTo: r.RedirectTo, Locale: r.Locale}
}

// Request is the row as a single invitation's request.
func (r BulkRow) Request() InviteRequest {
	ctx := r.Context
	if r.FirstName != "" || r.LastName != "" {
		ctx = make(map[string]any, len(r.Context)+2)
		for k, v := range r.Context {
			ctx[k] = v
		}
		if r.FirstName != "" {
			ctx["first_name"] = r.FirstName
		}
		if r.LastName != "" {
			ctx["last_name"] = r.LastName
		}
	}
	return InviteRequest{Email: r.Email, Role: r.Role, Inviter: r.Inviter, Context: ctx, TTL: r.TTL,
		RedirectTo: r.RedirectTo, SendEmail: r.SendEmail, Locale: r.Locale}
}

// checkNames cleans first_name and last_name as names typed by people
// (textcheck: no control or bidi characters, no links, capped).
func (r BulkRow) checkNames() (BulkRow, error) {
	var err error
	if r.FirstName, err = textcheck.Name("first_name", r.FirstName, MaxNameLen, false); err != nil {
		return r, err
	}
	r.LastName, err = textcheck.Name("last_name", r.LastName, MaxNameLen, false)
	return r, err
}

// CSVColumns are the columns a CSV upload may have (in any order; email
// is required). Both APIs take the same columns.
var CSVColumns = []string{"email", "role", "first_name", "last_name", "locale", "ttl", "redirect_to"}

// errTooManyRows refuses a request over MaxBulkRows.
func errTooManyRows(n int) error {
	return apperr.New(apperr.TooLarge, "too_many_rows", "a bulk request holds at most %d rows, got %d; send the rest in another request", MaxBulkRows, n).
		WithDetails("max_rows", MaxBulkRows, "rows", n)
}

func csvError(line int, format string, args ...any) error {
	return apperr.Invalidf("invalid_csv", format, args...).WithDetails("line", line)
}

// ParseCSV reads a CSV upload: UTF-8 (a byte-order mark is skipped), a
// header row naming columns of CSVColumns, then at most max rows. Blank
// lines are skipped. Every error is a 4xx apperr.Error naming the line.
func ParseCSV(data []byte, max int) ([]BulkRow, error) {
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	if !utf8.Valid(data) {
		return nil, apperr.Invalidf("invalid_csv", "the CSV is not valid UTF-8")
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = 0 // every row as long as the header
	r.ReuseRecord = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, csvError(1, "the CSV is empty; it needs a header row (%s)", strings.Join(CSVColumns, ","))
	}
	if err != nil {
		return nil, csvReadError(err)
	}
	cols, err := csvHeader(header)
	if err != nil {
		return nil, err
	}
	var rows []BulkRow
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, csvReadError(err)
		}
		if len(rows) == max {
			return nil, errTooManyRows(max + 1 + countRest(r))
		}
		line, _ := r.FieldPos(0)
		row, err := csvRow(cols, rec, line)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
}

// countRest counts the records left (to say how many rows came).
func countRest(r *csv.Reader) int {
	n := 0
	for {
		if _, err := r.Read(); err != nil {
			return n
		}
		n++
	}
}

func csvReadError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return csvError(pe.Line, "the CSV does not parse at line %d: %v", pe.Line, pe.Err)
	}
	return apperr.Invalidf("invalid_csv", "the CSV does not parse")
}

// csvHeader checks the header row and returns the column names in order.
func csvHeader(header []string) ([]string, error) {
	cols := make([]string, len(header))
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		if !slices.Contains(CSVColumns, name) {
			return nil, apperr.Invalidf("unknown_column", "unknown CSV column %q; the columns are %s", h, strings.Join(CSVColumns, ", ")).
				WithDetails("column", h, "line", 1)
		}
		if slices.Contains(cols[:i], name) {
			return nil, apperr.Invalidf("duplicate_column", "the CSV column %q appears twice", name).WithDetails("column", name, "line", 1)
		}
		cols[i] = name
	}
	if !slices.Contains(cols, "email") {
		return nil, csvError(1, "the CSV header has no email column")
	}
	return cols, nil
}

// csvRow turns a record into a row.
func csvRow(cols, rec []string, line int) (BulkRow, error) {
	var row BulkRow
	for i, v := range rec {
		v = strings.TrimSpace(v)
		switch cols[i] {
		case "email":
			row.Email = v
		case "role":
			row.Role = v
		case "first_name":
			row.FirstName = v
		case "last_name":
			row.LastName = v
		case "locale":
			row.Locale = v
		case "redirect_to":
			row.RedirectTo = v
		case "ttl":
			if v == "" {
				continue
			}
			var d Duration
			raw := strconv.Quote(v)
			if _, err := strconv.ParseUint(v, 10, 32); err == nil {
				raw = v // a number of seconds, as in JSON
			}
			if err := d.UnmarshalJSON([]byte(raw)); err != nil {
				return row, apperr.Invalidf("invalid_ttl", "line %d: %v", line, err).WithDetails("field", "ttl", "line", line)
			}
			row.TTL = &d
		}
	}
	return row, nil
}

// isCSV tells a CSV Content-Type ("text/csv", parameters allowed).
func isCSV(contentType string) bool {
	ct := strings.ToLower(strings.TrimSpace(contentType))
	return ct == "text/csv" || strings.HasPrefix(ct, "text/csv;")
}
