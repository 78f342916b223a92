package identity_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/identity/identitytest"
	"github.com/kratos-orgs/kratos-orgs/outbox"
)

// kratosAnswering is an admin API that answers every request with status,
// headers and body (after delay).
func kratosAnswering(t *testing.T, status int, header http.Header, body string, delay time.Duration) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		for k, v := range header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func kratosError(code int, reason string) string {
	return fmt.Sprintf(`{"error":{"code":%d,"status":%q,"reason":%q,"message":"The request was malformed or contained invalid parameters"}}`,
		code, http.StatusText(code), reason)
}

// Kratos' failures answer the outbox's retry vocabulary, even wrapped: an
// outage, a timeout, 5xx, 408, 429 and transient database conflicts are
// temporary (with Kratos' Retry-After); other refusals are not.
func TestKratosErrorsSayWhetherToRetry(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // nothing listens there any more
	retryIn := func(s string) http.Header { return http.Header{"Retry-After": {s}} }
	for _, tc := range []struct {
		name      string
		url       string
		temporary bool
		after     time.Duration
		kind      apperr.Kind
	}{
		{"nothing listens", closed.URL, true, 0, apperr.Unavailable},
		{"timeout", kratosAnswering(t, 200, nil, "{}", 5*time.Second), true, 0, apperr.Unavailable},
		{"500", kratosAnswering(t, 500, nil, kratosError(500, "boom"), 0), true, 0, apperr.Unavailable},
		{"502 from a proxy", kratosAnswering(t, 502, nil, "<html>Bad Gateway</html>", 0), true, 0, apperr.Unavailable},
		{"503 with Retry-After", kratosAnswering(t, 503, retryIn("7"), kratosError(503, "maintenance"), 0), true, 7 * time.Second, apperr.Unavailable},
		{"429 with Retry-After", kratosAnswering(t, 429, retryIn("2"), kratosError(429, "slow down"), 0), true, 2 * time.Second, apperr.Unavailable},
		{"429, Retry-After as a date", kratosAnswering(t, 429, retryIn("Wed, 21 Oct 2015 07:28:00 GMT"), kratosError(429, "slow down"), 0), true, 0, apperr.Unavailable},
		{"408", kratosAnswering(t, 408, nil, kratosError(408, "timeout"), 0), true, 0, apperr.Unavailable},
		{"400, database locked", kratosAnswering(t, 400, nil, kratosError(400, "database is locked"), 0), true, 0, apperr.Unavailable},
		{"400, invalid", kratosAnswering(t, 400, nil, kratosError(400, "traits are invalid"), 0), false, 0, apperr.Invalid},
		{"401", kratosAnswering(t, 401, nil, kratosError(401, "no credentials"), 0), false, 0, apperr.Internal},
		{"403", kratosAnswering(t, 403, retryIn("5"), kratosError(403, "forbidden"), 0), false, 0, apperr.Internal},
		{"422", kratosAnswering(t, 422, nil, kratosError(422, "unprocessable"), 0), false, 0, apperr.Internal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids := identity.New(identity.Config{AdminURL: tc.url, PublicURL: tc.url, SchemaID: "default",
				EmailTrait: "email", NameTrait: "name", Timeout: 300 * time.Millisecond}, nil)
			_, err := ids.Get(context.Background(), "00000000-0000-4000-8000-000000000000")
			if err == nil {
				t.Fatal("Get succeeded")
			}
			wrapped := fmt.Errorf("job: %w", err) // as a handler passes it on
			var r outbox.Retryable
			if !errors.As(wrapped, &r) || r.Temporary() != tc.temporary || r.RetryAfter() != tc.after {
				t.Errorf("err %v: retryable %v, want temporary %v after %s", err, r, tc.temporary, tc.after)
			}
			if outbox.Temporary(wrapped) != tc.temporary {
				t.Errorf("outbox.Temporary = %v", !tc.temporary)
			}
			if k := apperr.KindOf(wrapped); k != tc.kind {
				t.Errorf("kind %v, want %v", k, tc.kind)
			}
		})
	}
}

// The in-memory stand-in fails like Kratos does when it is down.
func TestFakeOutageIsTemporary(t *testing.T) {
	f := identitytest.New()
	f.SetDown(true)
	_, err := f.Get(context.Background(), "x")
	if !outbox.Temporary(err) || apperr.KindOf(err) != apperr.Unavailable || apperr.CodeOf(err) != "kratos_unavailable" {
		t.Errorf("err = %v", err)
	}
	var r outbox.Retryable
	if !errors.As(err, &r) {
		t.Errorf("the fake's outage does not answer Retryable: %#v", err)
	}
}
