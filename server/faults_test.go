package server

import (
	"context"
	"encoding/json"
	"github.com/alicebob/miniredis/v2"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
)

// A SIGTERM (context cancel) lets a request in flight finish and answers
// readiness with 503 while draining; Run returns once both listeners and
// the worker have stopped.
func TestGracefulShutdownFinishesInFlightRequests(t *testing.T) {
	r := testenv.SharedRedis(t)
	k := testenv.SharedKratos(t)
	// A Kratos admin API that answers identity calls slowly (an invitation
	// of a new address creates first: its one call is the POST).
	var slow atomic.Bool
	entered := make(chan struct{}, 1)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if slow.Load() && strings.HasPrefix(req.URL.Path, "/admin/identities") {
			select {
			case entered <- struct{}{}:
			default:
			}
			time.Sleep(700 * time.Millisecond)
		}
		target, _ := http.NewRequest(req.Method, k.AdminURL+req.URL.RequestURI(), req.Body)
		target.Header = req.Header
		resp, err := http.DefaultClient.Do(target)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for key, v := range resp.Header {
			w.Header()[key] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	defer proxy.Close()
	st := startStackWith(t, r.Addr, &testenv.Kratos{AdminURL: proxy.URL, PublicURL: k.PublicURL})
	st.createOrg("Shutdown")

	slow.Store(true)
	result := make(chan response, 1)
	go func() {
		result <- st.api("POST", "/admin/organizations/shutdown/invitations", map[string]any{"email": "inflight@example.com"})
	}()
	<-entered
	stopped := make(chan struct{})
	go func() { st.stop(); close(stopped) }()

	// While draining, readiness says so (the listener may already refuse new
	// connections, which is fine too).
	time.Sleep(100 * time.Millisecond)
	if resp, err := http.Get(st.admin + "/health/ready"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("ready while draining = %d, want 503", resp.StatusCode)
		}
	}
	got := <-result
	if got.status != http.StatusCreated {
		t.Fatalf("the request in flight got %d %s, want 201", got.status, got.body)
	}
	select {
	case <-stopped:
	case <-time.After(15 * time.Second):
		t.Fatal("shutdown did not finish")
	}
}

// Redis going away answers 503 (not 500) and readiness fails; once it is
// back, the service works again without a restart.
func TestRedisOutageAndRecovery(t *testing.T) {
	r := testenv.StartRedis(t)
	k := testenv.SharedKratos(t)
	st := startStackWith(t, r.Addr, k)
	org := st.createOrg("Outage")

	r.Kill()
	resp := st.api("POST", "/admin/organizations/"+org["id"].(string)+"/invitations", map[string]any{"email": "outage@example.com"})
	if resp.status != http.StatusServiceUnavailable || resp.code() != "redis_unavailable" {
		t.Fatalf("invite with Redis down: %d %s", resp.status, resp.body)
	}
	if len(st.kratosIdentities("outage@example.com")) != 0 {
		t.Fatal("the identity created before Redis failed was left in Kratos")
	}
	ready, _ := http.Get(st.admin + "/health/ready")
	var body map[string]any
	_ = json.NewDecoder(ready.Body).Decode(&body)
	ready.Body.Close()
	if ready.StatusCode != http.StatusServiceUnavailable || body["errors"].(map[string]any)["redis"] == nil {
		t.Fatalf("ready with Redis down: %d %v", ready.StatusCode, body)
	}

	r.Restart(t)
	eventually(t, "the service recovers", func() bool {
		resp := st.api("POST", "/admin/organizations/"+org["id"].(string)+"/invitations", map[string]any{"email": "outage@example.com"})
		return resp.status == http.StatusCreated
	})
	mails := st.waitMails(1)
	if mails[0].To[0] != "outage@example.com" {
		t.Fatalf("mail to %v", mails[0].To)
	}
}

// The in-process Redis make dev falls back to runs the same scripts.
func TestEmbeddedRedisRunsTheWholeFlow(t *testing.T) {
	k := testenv.SharedKratos(t)
	cfg := testConfig(miniredis.RunT(t).Addr(), k.AdminURL, k.PublicURL, "http://127.0.0.1:1/")
	cfg.Mail.Sender = "log"
	var mailLog strings.Builder
	srv, err := New(context.Background(), Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MailLog: &syncWriter{b: &mailLog}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()

	org, err := srv.Orgs.Store().Create(context.Background(), organization("Embedded"), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	inv, _, err := srv.Invites.Invite(context.Background(), org.ID, invitationFor("embedded@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the log sender printed the mail", func() bool {
		got, _ := srv.Invites.Get(context.Background(), inv.ID)
		return got.Delivery.Status == "sent"
	})
	if !strings.Contains(mailLog.String(), "embedded@example.com") || !strings.Contains(mailLog.String(), "/invitations/accept/") {
		t.Fatalf("log sender output:\n%s", mailLog.String())
	}
	if _, err := srv.Invites.Revoke(context.Background(), inv.ID); err != nil {
		t.Fatal(err)
	}
	page, err := srv.Invites.List(context.Background(), org.ID, listAll())
	if err != nil || page.Total != 1 || page.Items[0].Status != "revoked" {
		t.Fatalf("list on the embedded Redis: %+v %v", page, err)
	}
	// Clean the shared Kratos up for other tests.
	eventually(t, "the identity is cleaned up", func() bool {
		ids, _ := srv.ids.FindByEmail(context.Background(), "embedded@example.com")
		return ids == nil
	})
}
