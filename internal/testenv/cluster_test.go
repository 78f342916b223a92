package testenv

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestClusterServesEverySlotAndFailsOver checks the helper itself: keys
// spread over all masters, and a killed master's replica takes over.
func TestClusterServesEverySlotAndFailsOver(t *testing.T) {
	c := StartCluster(t, ClusterOptions{})
	cc := c.Client(t)
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		if err := cc.Set(ctx, fmt.Sprintf("k%d", i), i, 0).Err(); err != nil {
			t.Fatalf("set k%d: %v", i, err)
		}
	}
	masters := map[string]bool{}
	for i := 0; i < 100; i++ {
		m, err := c.MasterFor(fmt.Sprintf("k%d", i))
		if err != nil {
			t.Fatal(err)
		}
		masters[m.Addr] = true
	}
	if len(masters) != 3 {
		t.Fatalf("keys on %d masters, want 3", len(masters))
	}
	m, err := c.MasterFor("k1")
	if err != nil {
		t.Fatal(err)
	}
	// Replication is asynchronous: a write the replica has not received
	// is lost with its master. WAIT, on the connection that wrote, makes
	// sure it has arrived before the kill.
	mc := redis.NewClient(&redis.Options{Addr: m.Addr, PoolSize: 1})
	defer mc.Close()
	if err := mc.Set(ctx, "k1", 1, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := mc.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n < 1 {
		t.Fatalf("WAIT 1: %d replicas, %v", n, err)
	}
	m.Kill()
	killed := time.Now()
	if _, err := c.WaitNewMaster("k1", m, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("replica promoted %v after the master was killed", time.Since(killed).Round(time.Millisecond))
	// go-redis reloads its slot map on MOVED, not on a dead connection
	// (that is the application's job; see redisx), so reload it here.
	cc.ReloadState(ctx)
	time.Sleep(300 * time.Millisecond)
	if v, err := cc.Get(ctx, "k1").Result(); err != nil || v != "1" {
		t.Fatalf("k1 after failover = %q, %v; want 1", v, err)
	}
}
