package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// TestServeReconcilesPeriodically: serve runs reconciler rounds on its
// own; planted leftovers (an address index entry and a slug for an
// organization that was never written) disappear, the fixes show in
// /metrics, and the pending invitation's placeholder stays.
func TestServeReconcilesPeriodically(t *testing.T) {
	st := startStack(t, "password", func(c *config.Config) { c.Reconcile.Interval = 10 * time.Second })
	ctx := context.Background()
	org := st.org("Reconciled")
	inv := st.invite(org, "kept@example.com", "member")
	rdb, ks := st.srv.Redis(), st.srv.Keyspace()
	ghost := redisx.NewID("org", 7, time.Now().Add(-2*time.Hour))
	far := float64(time.Now().Add(time.Hour).UnixMilli())
	rdb.ZAdd(ctx, ks.AddressPending("kept@example.com"), redis.Z{Score: far, Member: ghost})
	rdb.HSet(ctx, ks.Slugs(), "ghost-corp", ghost)

	deadline := time.Now().Add(30 * time.Second)
	for {
		stale, _ := rdb.ZScore(ctx, ks.AddressPending("kept@example.com"), ghost).Result()
		slug, _ := rdb.HExists(ctx, ks.Slugs(), "ghost-corp").Result()
		if stale == 0 && !slug {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("serve did not reconcile within 30s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if score, err := rdb.ZScore(ctx, ks.AddressPending("kept@example.com"), org.ID).Result(); err != nil || score == 0 {
		t.Fatalf("the valid index entry went too: %v", err)
	}
	if who := st.kratosIdentity("kept@example.com"); who == nil || who["id"] != inv.IdentityID {
		t.Fatalf("the pending invitation's placeholder was touched: %v", who)
	}
	resp, err := http.Get(st.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`kratos_orgs_reconciler_fixes_total{kind="address_index_stale"} 1`, `kratos_orgs_reconciler_fixes_total{kind="slug_stale"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
