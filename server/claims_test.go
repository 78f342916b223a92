package server

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/identity/identitytest"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/mail"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// Membership claims reach Kratos' metadata_public through the outbox: while
// Kratos is down the job is retried, and once it is back the claims land,
// without touching other metadata_public keys.
func TestClaimsAreRetriedWhileKratosIsDown(t *testing.T) {
	r := testenv.SharedRedis(t)
	cfg := testConfig(r.Addr, "http://127.0.0.1:1", "http://127.0.0.1:1", "http://127.0.0.1:1/")
	cfg.Mail.Sender = "log"
	ids := identitytest.New()
	srv, err := New(context.Background(), Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Identities: ids, Sender: mail.NewLogSender(io.Discard)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	person := ids.Add("claims@example.com", "Claimant")
	o, err := srv.Orgs.Create(ctx, orgs.CreateRequest{Name: "Claimed", OwnerIdentityID: person.ID}, orgs.StateActive)
	if err != nil {
		t.Fatal(err)
	}
	ids.SetDown(true)
	for i := 0; i < 3; i++ {
		if _, err := srv.Worker.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(60 * time.Millisecond)
	}
	if got, _ := ids.Get(ctx, person.ID); got != nil {
		t.Fatal("the fake answered while down")
	}
	ids.SetDown(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := srv.Worker.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		got, _ := ids.Get(ctx, person.ID)
		if claims, _ := got.MetadataPublic[orgs.ClaimsKey].([]any); len(claims) == 1 {
			c := claims[0].(map[string]any)
			if c["id"] != o.ID || c["slug"] != o.Slug || c["role"] != "owner" {
				t.Fatalf("claim %v", c)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the claims never reached Kratos: %v", got.MetadataPublic)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
