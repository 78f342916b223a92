package redisx_test

import (
	"context"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// A master configured with min-replicas-to-write that lost its replicas
// refuses writes with NOREPLICAS: an outage (503), not a broken script.
func TestNoReplicasIsUnavailable(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	ctx := context.Background()
	if err := rdb.ConfigSet(ctx, "min-replicas-to-write", "1").Err(); err != nil {
		t.Fatal(err)
	}
	err := rdb.Set(ctx, "k", "v", 0).Err()
	if err == nil {
		t.Fatal("a write without replicas succeeded")
	}
	if !redisx.IsUnavailable(err) {
		t.Fatalf("IsUnavailable(%v) = false", err)
	}
	if got := redisx.StoreError(err, "invitation store"); apperr.KindOf(got) != apperr.Unavailable {
		t.Fatalf("StoreError(%v) = %v, want an Unavailable error", err, got)
	}
}
