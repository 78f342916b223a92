package invites

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// fuzzMax keeps the fuzzer's row limit small, so "too many rows" is found.
const fuzzMax = 5

// FuzzParseCSV: any upload parses into at most max rows of valid UTF-8, or
// is refused with a 4xx error; never a panic, never a 5xx.
func FuzzParseCSV(f *testing.F) {
	f.Add([]byte("email,role\nx@example.com,admin\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := ParseCSV(data, fuzzMax)
		if err != nil {
			e, ok := apperr.As(err)
			if !ok || (e.Kind != apperr.Invalid && e.Kind != apperr.TooLarge) {
				t.Fatalf("error %v is not a 4xx", err)
			}
			if rows != nil {
				t.Fatalf("rows with an error: %v", rows)
			}
			return
		}
		if len(rows) > fuzzMax {
			t.Fatalf("%d rows, max %d", len(rows), fuzzMax)
		}
		for _, r := range rows {
			for _, v := range []string{r.Email, r.Role, r.FirstName, r.LastName, r.Locale, r.RedirectTo} {
				if !utf8.ValidString(v) || v != strings.TrimSpace(v) {
					t.Fatalf("field %q", v)
				}
			}
			if r.TTL != nil && *r.TTL < 0 {
				t.Fatalf("negative ttl %v", *r.TTL)
			}
		}
	})
}

func TestParseCSV(t *testing.T) {
	for _, c := range []struct {
		name, in string
		rows     int
		code     string
	}{
		{"with BOM", "\uFEFFemail,role\nA@example.com,admin\n", 1, ""},
		{"without BOM, CRLF, blank lines", "email\r\n\r\nb@example.com\r\nc@example.com\r\n", 2, ""},
		{"columns in any case and order", "First_Name, EMAIL\nAnn,a@example.com\n", 1, ""},
		{"header only", "email\n", 0, ""},
		{"empty", "", 0, "invalid_csv"},
		{"unknown column", "email,colour\na@example.com,red\n", 0, "unknown_column"},
		{"twice the same column", "email,email\na,b\n", 0, "duplicate_column"},
		{"no email column", "role\nadmin\n", 0, "invalid_csv"},
		{"ragged row", "email,role\na@example.com\n", 0, "invalid_csv"},
		{"not UTF-8", "email\n\xff@example.com\n", 0, "invalid_csv"},
		{"bad ttl", "email,ttl\na@example.com,soon\n", 0, "invalid_ttl"},
		{"too many rows", "email\n" + strings.Repeat("a@example.com\n", fuzzMax+1), 0, "too_many_rows"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rows, err := ParseCSV([]byte(c.in), fuzzMax)
			code := ""
			if err != nil {
				code = apperr.CodeOf(err)
			}
			if code != c.code || len(rows) != c.rows {
				t.Fatalf("%d rows, %v; want %d rows, code %q", len(rows), err, c.rows, c.code)
			}
		})
	}
	rows, _ := ParseCSV([]byte("\uFEFFemail,first_name,ttl\n x@example.com ,Zoë,3600\n"), fuzzMax)
	if r := rows[0]; r.Email != "x@example.com" || r.FirstName != "Zoë" || r.TTL == nil || *r.TTL != Duration(3600e9) {
		t.Fatalf("row %+v", r)
	}
	if got := rows[0].Request().Context["first_name"]; got != "Zoë" {
		t.Fatalf("context.first_name = %v", got)
	}
}
