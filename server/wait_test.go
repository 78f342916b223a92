package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/identity/identitytest"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/mail"
)

// redis.wait_replicas through the admin API, on a master with one replica:
// 201 while the replica confirms; once it is stopped, 503
// redis_unavailable with details write: unconfirmed, within the timeout.
func TestInviteWaitsForReplicas(t *testing.T) {
	master, replica := testenv.StartReplicated(t)
	cfg := testConfig(master.Addr, "http://127.0.0.1:1", "http://127.0.0.1:1", "http://127.0.0.1:1/")
	cfg.Mail.Sender = "log"
	cfg.Redis.WaitReplicas, cfg.Redis.WaitTimeout = 1, 250*time.Millisecond
	srv, err := New(context.Background(), Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Identities: identitytest.New(), Sender: mail.NewLogSender(io.Discard)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	org, err := srv.Orgs.Store().Create(context.Background(), organization("Waiting"), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	invite := func(email string) (int, map[string]any, time.Duration) {
		req := httptest.NewRequest(http.MethodPost, "/admin/organizations/"+org.ID+"/invitations",
			strings.NewReader(`{"email":"`+email+`","role":"member"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+adminKey)
		rec := httptest.NewRecorder()
		start := time.Now()
		srv.AdminHandler().ServeHTTP(rec, req)
		var body map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, body, time.Since(start)
	}
	if code, body, _ := invite("a@example.com"); code != http.StatusCreated {
		t.Fatalf("with the replica: %d %v", code, body)
	}
	replica.Kill()
	code, body, took := invite("b@example.com")
	e, _ := body["error"].(map[string]any)
	details, _ := e["details"].(map[string]any)
	if code != http.StatusServiceUnavailable || e["code"] != "redis_unavailable" || details["write"] != "unconfirmed" {
		t.Fatalf("without the replica: %d %v, want 503 redis_unavailable, write unconfirmed", code, body)
	}
	if took > cfg.Redis.WaitTimeout+time.Second {
		t.Errorf("answered after %s; the timeout is %s", took, cfg.Redis.WaitTimeout)
	}
	t.Logf("without the replica: %d %s after %s: %v", code, e["code"], took.Round(time.Millisecond), e["message"])
}
