package testenv

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// Open returns kratos-orgs' own client for the cluster, built by
// redisx.Open from `redis.mode: cluster` exactly as `serve` builds it (same
// options), and closed when the test ends. Every Lua script it runs is
// recorded in ScriptsRun.
func (c *Cluster) Open(t testing.TB) redis.UniversalClient {
	t.Helper()
	rdb, closeFn, err := redisx.Open(context.Background(), config.Redis{Mode: "cluster", Addrs: c.Addrs()})
	if err != nil {
		t.Fatalf("testenv: open the cluster as kratos-orgs does: %v", err)
	}
	rdb.AddHook(ScriptsRun)
	t.Cleanup(func() { _ = closeFn() })
	return rdb
}

// OnCluster reports whether t runs under a package's TestCluster, the test
// that runs a package's store contract tests again on SharedCluster: test
// helpers that build a Redis client ask it to pick the backend, so the
// contract tests themselves stay as they are.
func OnCluster(t testing.TB) bool {
	return t.Name() == "TestCluster" || strings.HasPrefix(t.Name(), "TestCluster/")
}

// ClusterCase is one test function TestCluster runs on the cluster.
type ClusterCase struct {
	Name string
	Test func(t *testing.T)
}

// RunOnCluster runs cases in parallel under t (a package's TestCluster, so
// that OnCluster holds in them; TestCluster itself runs in parallel with
// the package's other parallel tests), then checks that every Lua script of the
// package ran on the cluster: scripts maps each script variable of the
// package to its SHA1. A script that touches keys of more than one hash
// slot fails there with a CROSSSLOT error, which fails its case, or is
// caught by MONITOR on the masters (see slotWatch); a script
// no case ran fails the check, and so does a script added to the package
// (a NewScript assignment in its non-test files) without being listed.
func RunOnCluster(t *testing.T, scripts map[string]string, cases ...ClusterCase) {
	t.Helper()
	if !OnCluster(t) {
		t.Fatalf("RunOnCluster must be called from a test named TestCluster, not %s", t.Name())
	}
	t.Parallel() // alongside the package's other parallel tests
	watch, err := watchSlots(SharedCluster(t))
	if err != nil {
		t.Fatalf("testenv: MONITOR the cluster: %v", err)
	}
	t.Run("contract", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.Name, func(t *testing.T) { t.Parallel(); c.Test(t) })
		}
	})
	time.Sleep(200 * time.Millisecond) // the end of the MONITOR streams
	watch.stop()
	t.Run("every script touches one slot", func(t *testing.T) {
		t.Logf("%d script executions watched", watch.executions)
		for _, v := range watch.violations {
			t.Error(v)
		}
	})
	t.Run("every script ran", func(t *testing.T) {
		n, err := countNewScript(".")
		if err != nil {
			t.Fatal(err)
		}
		if n != len(scripts) {
			t.Errorf("the package defines %d scripts (NewScript calls in its non-test files) but TestCluster lists %d: list every script and run it on the cluster", n, len(scripts))
		}
		var missing []string
		for name, sha := range scripts {
			if !ScriptsRun.Ran(sha) {
				missing = append(missing, name)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("scripts never run on the cluster by TestCluster's cases: %s", strings.Join(missing, ", "))
		}
	})
}

var newScriptCall = regexp.MustCompile(`[=:]\s*(?:\w+\.)?NewScript\(`)

// countNewScript counts the script definitions (a variable or a map entry
// set from redis.NewScript or redisx.NewScript) in the non-test Go files
// of dir.
func countNewScript(dir string) (int, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, err
		}
		n += len(newScriptCall.FindAll(b, -1))
	}
	return n, nil
}

// ScriptLog is a go-redis hook that records the SHA1 of every Lua script
// sent (EVAL, EVALSHA and their read-only forms) that Redis ran without
// an error.
type ScriptLog struct {
	mu   sync.Mutex
	seen map[string]bool
}

// ScriptsRun records the scripts run through clients built by Cluster.Open.
var ScriptsRun = &ScriptLog{}

// Ran reports whether the script with this SHA1 ran.
func (l *ScriptLog) Ran(sha string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[sha]
}

func (l *ScriptLog) record(cmd redis.Cmder) {
	args := cmd.Args()
	if len(args) < 2 || cmd.Err() != nil && cmd.Err() != redis.Nil {
		return
	}
	body, _ := args[1].(string)
	sha := ""
	switch strings.ToLower(cmd.Name()) {
	case "evalsha", "evalsha_ro":
		sha = body
	case "eval", "eval_ro":
		sum := sha1.Sum([]byte(body))
		sha = hex.EncodeToString(sum[:])
	default:
		return
	}
	l.mu.Lock()
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	l.seen[sha] = true
	l.mu.Unlock()
}

// DialHook implements redis.Hook.
func (l *ScriptLog) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (l *ScriptLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		l.record(cmd)
		return err
	}
}

// ProcessPipelineHook implements redis.Hook.
func (l *ScriptLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			l.record(cmd)
		}
		return err
	}
}

// Keys returns the keys matching pattern, from every master of a cluster
// (KEYS on a cluster client asks one node only).
func Keys(ctx context.Context, rdb redis.UniversalClient, pattern string) ([]string, error) {
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return rdb.Keys(ctx, pattern).Result()
	}
	var mu sync.Mutex
	var all []string
	err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		keys, err := node.Keys(ctx, pattern).Result()
		mu.Lock()
		all = append(all, keys...)
		mu.Unlock()
		return err
	})
	return all, err
}
