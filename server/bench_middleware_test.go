package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/identity/identitytest"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/mail"
)

// BenchmarkAdminRequestWithoutRedis measures what every admin API request
// pays before and after its Redis work: the router, request id, access log
// (enabled, to a discarded text log), metrics, admin key check, strict JSON
// decoding, validation and the JSON error answer. The invitation names an
// invalid address, so nothing reaches Redis or Kratos: what is left is the
// Go side alone, free of the machine's other load on Redis.
//
//	go test -run=NONE -bench=AdminRequestWithoutRedis -benchtime=2s -count=5 ./server/
func BenchmarkAdminRequestWithoutRedis(b *testing.B) {
	cfg := testConfig(testenv.SharedRedis(b).Addr, "http://127.0.0.1:1", "http://127.0.0.1:1", "http://127.0.0.1:1/")
	cfg.Mail.Sender = "log"
	srv, err := New(context.Background(), Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Identities: identitytest.New(), Sender: mail.NewLogSender(io.Discard)})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	handler := srv.AdminHandler()
	path := "/admin/organizations/org_00000000000000000000000000/invitations"
	body := `{"email":"not an address","role":"member","inviter":{"name":"Bench"}}`
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+adminKey)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
}
