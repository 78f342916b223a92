package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/identity/identitytest"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/mail"
)

// sentCounter counts the mails the outbox sent.
type sentCounter struct {
	mail.Sender
	n atomic.Int64
}

func (s *sentCounter) Send(ctx context.Context, m mail.Message) (string, error) {
	id, err := s.Sender.Send(ctx, m)
	if err == nil {
		s.n.Add(1)
	}
	return id, err
}

// BenchmarkInviteWithOutbox invites at a steady rate (BENCH_RATE, default
// 200/s: what `make bench-kratos` reaches for new addresses) with the
// outbox worker running, and reports what an invitation costs Redis
// including its mail job and the worker's polling: commands per
// invitation (INFO commandstats, a script's inner calls counted), the
// round trips of this process and CPU. Unlike BenchmarkInviteHTTP's rate,
// these counts hardly depend on what else runs on the machine.
//
//	go test -run=NONE -bench=InviteWithOutbox -benchtime=2000x ./server/
func BenchmarkInviteWithOutbox(b *testing.B) {
	rate := 200.0
	if v, err := strconv.ParseFloat(os.Getenv("BENCH_RATE"), 64); err == nil && v > 0 {
		rate = v
	}
	cfg := testConfig(testenv.SharedRedis(b).Addr, "http://127.0.0.1:1", "http://127.0.0.1:1", "http://127.0.0.1:1/")
	cfg.Mail.Sender = "log"
	cfg.Outbox.PollInterval = 500 * time.Millisecond // the default, not the e2e tests' 20 ms
	cfg.Limits.MailGlobal.Requests, cfg.Limits.MailPerOrganization.Requests = 0, 0
	sender := &sentCounter{Sender: mail.NewLogSender(io.Discard)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := New(context.Background(), Options{Config: cfg, Logger: log, Identities: identitytest.New(), Sender: sender})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Worker.Run(ctx) }()
	defer func() { stop(); <-done }()
	org, err := srv.Orgs.Store().Create(context.Background(), organization("Bench"), false, nil)
	if err != nil {
		b.Fatal(err)
	}
	time.Sleep(time.Second) // the worker's first rounds (groups, scripts) are not the invitations'
	cost := newCostMeter(b, srv.Redis())
	b.ResetTimer()
	failures := paceInvites(b.N, rate, srv.AdminHandler(), "/admin/organizations/"+org.ID+"/invitations")
	for deadline := time.Now().Add(time.Minute); sender.n.Load() < int64(b.N-failures); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d mails sent after a minute", sender.n.Load(), b.N)
		}
	}
	b.StopTimer()
	if failures > 0 {
		b.Fatalf("%d invitations failed", failures)
	}
	cost.report(b)
}

// BenchmarkOutboxIdle runs the outbox worker with nothing to do, with
// the default outbox settings, for one second per operation: redis-cmds/op
// is what the idle worker costs Redis per second (a script's inner calls
// counted).
//
//	go test -run=NONE -bench=OutboxIdle -benchtime=20x ./server/
func BenchmarkOutboxIdle(b *testing.B) {
	cfg := testConfig(testenv.SharedRedis(b).Addr, "http://127.0.0.1:1", "http://127.0.0.1:1", "http://127.0.0.1:1/")
	cfg.Outbox = config.Default().Outbox // not the tests' short poll interval
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := New(context.Background(), Options{Config: cfg, Logger: log, Identities: identitytest.New()})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Worker.Run(ctx) }()
	defer func() { stop(); <-done }()
	time.Sleep(time.Second) // the worker's first round (groups, scripts, every shard) is not idling
	cost := newCostMeter(b, srv.Redis())
	b.ResetTimer()
	time.Sleep(time.Duration(b.N) * time.Second)
	b.StopTimer()
	cost.report(b)
}

// paceInvites sends n invitations at rate per second, at most 64 at once,
// and returns how many failed.
func paceInvites(n int, rate float64, h http.Handler, path string) int {
	var failures atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	start := time.Now()
	for i := 0; i < n; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			body := fmt.Sprintf(`{"email":"paced%d-%d@example.com","role":"member","inviter":{"name":"Bench"}}`, start.UnixNano(), i)
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+adminKey)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusCreated {
				failures.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(failures.Load())
}
