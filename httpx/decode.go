package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// DecodeJSON reads the request body into dst strictly: JSON content type,
// within the body limit, no unknown fields, exactly one value.
func DecodeJSON(c *gin.Context, dst any) error {
	ct := c.GetHeader("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return apperr.New(apperr.UnsupportedMedia, "unsupported_media_type",
			"the request body must be JSON (Content-Type: application/json), got %q", ct)
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge(mbe.Limit)
		}
		return apperr.Invalidf("invalid_body", "could not read the request body")
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return apperr.Invalidf("invalid_json", "the request body is empty; expected a JSON object")
	}
	if bytes.Equal(trimmed, []byte("null")) {
		// Decoding null into a struct succeeds and leaves every default:
		// an action nobody asked for.
		return apperr.Invalidf("invalid_json", "the request body must be a JSON object, not null")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return apperr.Invalidf("invalid_json", "the request body must hold exactly one JSON value")
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return apperr.Invalidf("invalid_json", "the request body must hold exactly one JSON value")
	}
	return nil
}

// DecodeOptionalJSON is DecodeJSON for endpoints whose body may be absent:
// no body at all (no Content-Type, Content-Length 0) means the defaults; a
// body that is there must be a JSON object, so an empty JSON body or null
// is 400, never an action with defaults.
func DecodeOptionalJSON(c *gin.Context, dst any) error {
	if c.Request.ContentLength == 0 && c.GetHeader("Content-Type") == "" {
		return nil
	}
	return DecodeJSON(c, dst)
}

func errTooLarge(limit int64) error {
	return apperr.New(apperr.TooLarge, "body_too_large", "the request body is larger than %d bytes", limit).
		WithDetails("limit", limit)
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return apperr.Invalidf("invalid_json", "malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return apperr.Invalidf("invalid_json", "the request body must be a JSON object")
		}
		return apperr.Invalidf("invalid_field", "%s must be %s, not %s", field, jsonType(typ.Type.Kind().String()), typ.Value).
			WithDetails("field", field)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return apperr.Invalidf("unknown_field", "unknown field %q", name).WithDetails("field", name)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.Invalidf("invalid_json", "the JSON body ends too early")
	default:
		// Custom unmarshalers (durations) explain themselves.
		return apperr.Invalidf("invalid_field", "%s", strings.TrimPrefix(err.Error(), "json: "))
	}
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "ptr":
		return "a value of another type"
	default:
		return "a number"
	}
}

// Page reads ?cursor= and ?limit= (1..100, default 20).
func Page(c *gin.Context) (cursor string, limit int, err error) {
	limit = 20
	if raw := c.Query("limit"); raw != "" {
		n, perr := strconv.Atoi(raw)
		if perr != nil || n < 1 || n > 100 {
			return "", 0, apperr.Invalidf("invalid_limit", "limit must be a whole number from 1 to 100").WithDetails("field", "limit")
		}
		limit = n
	}
	cursor = c.Query("cursor")
	if len(cursor) > 128 || strings.ContainsAny(cursor, " \t\r\n") {
		return "", 0, apperr.Invalidf("invalid_cursor", "malformed cursor").WithDetails("field", "cursor")
	}
	return cursor, limit, nil
}

// Describe an error for debugging (tests).
func (b ErrorBody) String() string { return fmt.Sprintf("%s: %s", b.Error.Code, b.Error.Message) }
