package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/identity/identitytest"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/mail"
)

// BenchmarkInviteHTTP drives POST /admin/organizations/{org}/invitations
// through the real router and middleware against a real redis-server, with
// Kratos and mail replaced by in-process fakes. Every invitation is for a new
// address, so each one also creates a (fake) identity. It reports invites/s.
//
//	go test -run=NONE -bench=InviteHTTP -benchtime=5s ./server/
//
// BENCH_REDIS_ADDR=host:port runs it against another Redis (e.g. one with
// the persistence settings of production) instead of a throwaway one.
func BenchmarkInviteHTTP(b *testing.B) {
	addr := os.Getenv("BENCH_REDIS_ADDR")
	if addr == "" {
		addr = testenv.SharedRedis(b).Addr
	}
	cfg := testConfig(addr, "http://127.0.0.1:1", "http://127.0.0.1:1", "http://127.0.0.1:1/")
	cfg.Mail.Sender = "log"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := New(context.Background(), Options{Config: cfg, Logger: log, Identities: identitytest.New(), Sender: mail.NewLogSender(io.Discard)})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	org, err := srv.Orgs.Store().Create(context.Background(), organization("Bench"), false, nil)
	if err != nil {
		b.Fatal(err)
	}
	handler := srv.AdminHandler()
	path := "/admin/organizations/" + org.ID + "/invitations"
	var seq atomic.Int64
	var failures atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8) // requests wait on Redis; keep both cores busy
	cost := newCostMeter(b, srv.Redis())
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := fmt.Sprintf(`{"email":"bench%d@example.com","role":"member","inviter":{"name":"Bench"}}`, seq.Add(1))
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+adminKey)
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)
			if rec.Code != http.StatusCreated {
				failures.Add(1)
			}
		}
	})
	b.StopTimer()
	if n := failures.Load(); n > 0 {
		b.Fatalf("%d invitations failed", n)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "invites/s")
	cost.report(b)
	// Leave the shared Redis clean for other tests and runs.
	keys, _ := srv.Redis().Keys(context.Background(), cfg.Redis.KeyPrefix+"*").Result()
	for i := 0; i < len(keys); i += 500 {
		srv.Redis().Del(context.Background(), keys[i:min(i+500, len(keys))]...)
	}
}
