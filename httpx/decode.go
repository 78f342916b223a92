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
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// DecodeJSON reads the request body into dst strictly: JSON content type,
// within the body limit, no unknown fields, exactly one value.
func DecodeJSON(c *gin.Context, dst any) error {
	ct := c.GetHeader("Content-Type")
	if !IsJSON(ct) {
		return apperr.New(apperr.UnsupportedMedia, "unsupported_media_type",
			"the request body must be JSON (Content-Type: application/json), got %q", ct)
	}
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer putBodyBuffer(buf)
	if err := ReadBody(buf, c.Request); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge(mbe.Limit)
		}
		return apperr.Invalidf("invalid_body", "could not read the request body")
	}
	body := buf.Bytes()
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return apperr.Invalidf("invalid_json", "the request body is empty; expected a JSON object")
	}
	if bytes.Equal(trimmed, []byte("null")) {
		// Decoding null into a struct succeeds and leaves every default:
		// an action nobody asked for.
		return apperr.Invalidf("invalid_json", "the request body must be a JSON object, not null")
	}
	if err := DecodeStrict(body, dst); err != nil {
		if errors.Is(err, errTrailing) {
			return apperr.Invalidf("invalid_json", "the request body must hold exactly one JSON value")
		}
		return jsonError(err)
	}
	return nil
}

// errTrailing: something follows the JSON value.
var errTrailing = errors.New("httpx: data after the JSON value")

// DecodeStrict decodes exactly one JSON value from body into dst, refusing
// unknown fields; what follows the value may only be JSON whitespace
// (errTrailing otherwise). The decoder copies what it keeps, so body may
// be reused afterwards.
func DecodeStrict(body []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return err
	}
	for _, ch := range body[dec.InputOffset():] {
		if ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n' {
			return errTrailing
		}
	}
	return nil
}

// IsJSON tells a JSON Content-Type ("application/json", parameters
// allowed) without parsing the common exact spelling.
func IsJSON(contentType string) bool {
	if contentType == "application/json" {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// ReadBody reads r's body into buf (which it resets), sized up front from
// Content-Length when that is known.
func ReadBody(buf *bytes.Buffer, r *http.Request) error {
	buf.Reset()
	if n := r.ContentLength; n > 0 && n <= 1<<20 {
		buf.Grow(int(n) + 1) // +1: the read that sees EOF needs room
	}
	_, err := buf.ReadFrom(r.Body)
	return err
}

// bodyBuffers recycles request body buffers; very large ones are dropped
// so one big request does not pin its memory.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// GetBodyBuffer and PutBodyBuffer lend a body buffer (webhooks).
func GetBodyBuffer() *bytes.Buffer { return bodyBuffers.Get().(*bytes.Buffer) }

// PutBodyBuffer returns a buffer from GetBodyBuffer; nothing may use its
// bytes afterwards.
func PutBodyBuffer(b *bytes.Buffer) { putBodyBuffer(b) }

func putBodyBuffer(b *bytes.Buffer) {
	if b.Cap() <= 64<<10 {
		bodyBuffers.Put(b)
	}
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
