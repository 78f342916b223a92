package testenv

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// StartReplicated starts a master and one replica of it (no sentinels) for
// one test, waits until the replica is in sync, and stops both when the
// test ends: enough to see what Redis' WAIT counts.
func StartReplicated(t testing.TB) (master, replica *Redis) {
	t.Helper()
	bin, err := redisBinary()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	dir := t.TempDir()
	if master, err = startDataNode(bin, filepath.Join(dir, "master"), nil); err != nil {
		t.Fatalf("testenv: master: %v", err)
	}
	t.Cleanup(master.Stop)
	replica, err = startDataNode(bin, filepath.Join(dir, "replica"), []string{"--replicaof", "127.0.0.1", strconv.Itoa(master.port)})
	if err != nil {
		t.Fatalf("testenv: replica: %v", err)
	}
	t.Cleanup(replica.Stop)
	if err := waitOnlineReplicas(master.Addr, 1, 30*time.Second); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return master, replica
}

// waitOnlineReplicas waits until the master at addr reports n replicas in
// the online state (INFO replication).
func waitOnlineReplicas(addr string, n int, timeout time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	deadline := time.Now().Add(timeout)
	for {
		info, err := c.Info(context.Background(), "replication").Result()
		if err == nil && strings.Count(info, "state=online") >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d replicas of %s not online within %s: %v %s", n, addr, timeout, err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
