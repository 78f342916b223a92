package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a real Redis Cluster of redis-server processes: three masters
// and three replicas on free ports, built with `redis-cli --cluster create`,
// as an operator would build one.
type Cluster struct {
	// Nodes holds every node; the first three start as masters.
	Nodes []*Redis
	// NodeTimeout is the cluster-node-timeout: how long a master must be
	// unreachable before its replica is promoted.
	NodeTimeout time.Duration
}

// ClusterOptions tunes StartCluster.
type ClusterOptions struct {
	// NodeTimeout defaults to 1s (Redis' own default is 15s; tests want
	// fast failovers).
	NodeTimeout time.Duration
	// Durable makes every node append each write to disk before answering.
	Durable bool
}

// StartCluster starts a 3-master, 3-replica Redis Cluster for one test
// and stops it when the test ends.
func StartCluster(t testing.TB, opt ClusterOptions) *Cluster {
	t.Helper()
	c, err := startCluster(t.TempDir(), opt)
	if err != nil {
		t.Fatalf("testenv: redis cluster: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

var (
	sharedCluster     *Cluster
	sharedClusterErr  error
	sharedClusterOnce sync.Once
	sharedClusterDir  string
)

// SharedCluster returns the package's Redis Cluster, started on first use
// and stopped by Main. Tests isolate themselves with UniquePrefix.
func SharedCluster(t testing.TB) *Cluster {
	t.Helper()
	sharedClusterOnce.Do(func() {
		sharedClusterDir, sharedClusterErr = os.MkdirTemp("", "kratos-orgs-cluster-")
		if sharedClusterErr == nil {
			sharedCluster, sharedClusterErr = startCluster(sharedClusterDir, ClusterOptions{})
		}
	})
	if sharedClusterErr != nil {
		t.Fatalf("testenv: redis cluster: %v", sharedClusterErr)
	}
	return sharedCluster
}

func startCluster(dir string, opt ClusterOptions) (*Cluster, error) {
	if opt.NodeTimeout == 0 {
		opt.NodeTimeout = time.Second
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redis-cli is not on PATH: install it with redis-server (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)")
	}
	bin, err := redisBinary()
	if err != nil {
		return nil, err
	}
	c := &Cluster{NodeTimeout: opt.NodeTimeout}
	for i := 0; i < 6; i++ {
		nodeDir := filepath.Join(dir, "node"+strconv.Itoa(i))
		if err := os.MkdirAll(nodeDir, 0o755); err != nil {
			return nil, err
		}
		n, err := startNode(bin, nodeDir, opt)
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.Nodes {
		args = append(args, n.Addr)
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		c.Stop()
		return nil, fmt.Errorf("redis-cli --cluster create: %v: %s", err, out)
	}
	if err := c.WaitHealthy(30 * time.Second); err != nil {
		c.Stop()
		return nil, err
	}
	if err := c.waitReplicasSynced(30 * time.Second); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// waitReplicasSynced waits until three nodes are replicas whose link to
// their master is up: a replica that never synced refuses to be promoted,
// so a failover test must not start before.
func (c *Cluster) waitReplicasSynced(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		synced := 0
		for _, n := range c.Nodes {
			cl := redis.NewClient(&redis.Options{Addr: n.Addr, MaxRetries: -1})
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			info, err := cl.Info(ctx, "replication").Result()
			cancel()
			_ = cl.Close()
			if err == nil && strings.Contains(info, "role:slave") && strings.Contains(info, "master_link_status:up") {
				synced++
			}
		}
		if synced == 3 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the cluster's replicas did not sync within %v", timeout)
}

func startNode(bin, dir string, opt ClusterOptions) (*Redis, error) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		r := &Redis{dir: dir, port: port, durable: opt.Durable, Addr: "127.0.0.1:" + strconv.Itoa(port),
			extra: []string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
				"--cluster-node-timeout", strconv.Itoa(int(opt.NodeTimeout / time.Millisecond)),
			}}
		if err := r.start(bin); err != nil {
			lastErr = err
			continue
		}
		return r, nil
	}
	return nil, fmt.Errorf("start cluster node: %w", lastErr)
}

// Addrs returns every node's address, the seed list a client is given.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// Client returns a cluster client, closed when the test ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// WaitHealthy waits until every running node reports cluster_state:ok and
// agrees that all 16384 slots are served.
func (c *Cluster) WaitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ok := true
		for _, n := range c.Nodes {
			if !n.running() {
				continue
			}
			info, err := nodeInfo(n.Addr)
			if err != nil || !strings.Contains(info, "cluster_state:ok") ||
				!strings.Contains(info, "cluster_slots_ok:16384") {
				ok, last = false, fmt.Sprintf("%s: %v %s", n.Addr, err, info)
				break
			}
		}
		if ok {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("cluster not healthy within %v: %s", timeout, last)
}

func nodeInfo(addr string) (string, error) {
	cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return cl.ClusterInfo(ctx).Result()
}

// MasterFor returns the node that currently serves key as master in the
// cluster's own view (it may have just died: see WaitNewMaster).
func (c *Cluster) MasterFor(key string) (*Redis, error) {
	for _, n := range c.Nodes {
		if !n.running() {
			continue
		}
		if addr, err := masterOf(n.Addr, key); err == nil {
			return c.node(addr)
		}
	}
	return nil, fmt.Errorf("no running node knows the master of %q", key)
}

// masterOf asks the node at addr which node is master of key's slot.
func masterOf(addr, key string) (string, error) {
	cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	slot, err := cl.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return "", err
	}
	shards, err := cl.ClusterShards(ctx).Result()
	if err != nil {
		return "", err
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if slot < r.Start || slot > r.End {
				continue
			}
			for _, n := range sh.Nodes {
				if n.Role == "master" {
					return n.IP + ":" + strconv.FormatInt(n.Port, 10), nil
				}
			}
		}
	}
	return "", fmt.Errorf("%s knows no master of slot %d", addr, slot)
}

func (c *Cluster) node(addr string) (*Redis, error) {
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n, nil
		}
	}
	return nil, fmt.Errorf("unknown node %s", addr)
}

// Stop ends every node.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Stop()
	}
}

// WaitNewMaster waits until a running node other than old serves key as
// master (Redis promoted a replica) and the cluster is healthy again, and
// returns the new master.
func (c *Cluster) WaitNewMaster(key string, old *Redis, timeout time.Duration) (*Redis, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m, err := c.MasterFor(key); err == nil && m != old && m.running() {
			return m, c.WaitHealthy(time.Until(deadline))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("no replica took over %q from %s within %v", key, old.Addr, timeout)
}
