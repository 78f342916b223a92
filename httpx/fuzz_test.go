package httpx

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// fuzzLimit is small so that the fuzzer also reaches the body limit.
const fuzzLimit = 256

func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []struct {
		ct   string
		body string
	}{
		{"application/json", `{"name":"acme","count":1,"tags":["a"],"inner":{"flag":true}}`},
		{"application/json", ``},
		{"application/json", `{"name":`},
		{"application/json", `{"colour":1}`},
		{"application/json", `{"count":"x"}`},
		{"application/json", `{}{}`},
		{"application/json", `[1]`},
		{"application/json", `null`},
		{"application/json; charset=utf-8", `{"count":1e400}`},
		{"text/plain", `{}`},
		{"", `{}`},
		{"application/json", `{"name":"\ud800"}`},
		{"application/json", "\xef\xbb\xbf{}"},
	} {
		f.Add(seed.ct, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		rec := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(rec)
		c.Request = httptest.NewRequest(http.MethodPost, "/x", bytes.NewReader(body))
		c.Request.Header.Set("Content-Type", contentType)
		c.Request.Body = http.MaxBytesReader(rec, c.Request.Body, fuzzLimit)
		var p payload
		err := DecodeJSON(c, &p)
		if err == nil {
			if len(body) > fuzzLimit {
				t.Errorf("accepted a %d-byte body over the %d-byte limit", len(body), fuzzLimit)
			}
			if !json.Valid(body) {
				t.Errorf("accepted invalid JSON %q", body)
			}
			return
		}
		e, ok := apperr.As(err)
		if !ok {
			t.Fatalf("error %v (%T) is not an *apperr.Error", err, err)
		}
		switch e.Kind {
		case apperr.Invalid, apperr.TooLarge, apperr.UnsupportedMedia:
		default:
			t.Errorf("error %v has kind %d", err, e.Kind)
		}
		status, b := Describe(err)
		if status >= 500 || b.Error.Code == "" || b.Error.Code == "internal" {
			t.Errorf("error %v becomes %d %q", err, status, b.Error.Code)
		}
		if e.Kind == apperr.TooLarge && len(body) <= fuzzLimit {
			t.Errorf("a %d-byte body is reported too large", len(body))
		}
	})
}
