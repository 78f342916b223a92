// Package testenv starts the real components tests run against: throwaway
// redis-server processes and a Kratos binary. A missing component fails the
// test with instructions; nothing is skipped silently.
package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is one redis-server process in its own temporary directory.
type Redis struct {
	Addr string
	dir  string
	port int
	// durable servers append every write to disk before answering, so a
	// kill -9 loses nothing acknowledged (restart tests); the shared one
	// keeps nothing on disk, like a cache, and is much faster.
	durable bool
	// extra holds further redis-server arguments (cluster nodes).
	extra []string
	cmd   *exec.Cmd
	mu    sync.Mutex
}

func redisBinary() (string, error) {
	if p := os.Getenv("REDIS_SERVER_BIN"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("redis-server is not on PATH: install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_SERVER_BIN")
	}
	return p, nil
}

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartRedis starts a private, durable redis-server for one test (fault
// tests kill and restart it) and stops it when the test ends.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	r, err := startRedis(t.TempDir(), true)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(r.Stop)
	return r
}

// NewRedis starts a redis-server that keeps nothing on disk, outside a
// test (benchmarks); dir holds its log. The caller stops it.
func NewRedis(dir string) (*Redis, error) { return startRedis(dir, false) }

func startRedis(dir string, durable bool) (*Redis, error) {
	bin, err := redisBinary()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		r := &Redis{dir: dir, port: port, durable: durable, Addr: "127.0.0.1:" + strconv.Itoa(port)}
		if err := r.start(bin); err != nil {
			lastErr = err
			continue
		}
		return r, nil
	}
	return nil, fmt.Errorf("start redis-server: %w", lastErr)
}

func (r *Redis) start(bin string) error {
	persistence := []string{"--appendonly", "no"}
	if r.durable {
		persistence = []string{"--appendonly", "yes", "--appendfsync", "always"}
	}
	args := append([]string{
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--dir", r.dir, "--save", "", "--protected-mode", "no", "--loglevel", "warning",
		"--logfile", filepath.Join(r.dir, "redis.log"),
	}, persistence...)
	args = append(args, r.extra...)
	client := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1})
	defer client.Close()
	cmd, err := startAnswering(exec.Command(bin, args...), filepath.Join(r.dir, "redis.log"), "redis-server on "+r.Addr,
		func(ctx context.Context) error { return client.Ping(ctx).Err() })
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.cmd = cmd
	r.mu.Unlock()
	return nil
}

// startAnswering starts cmd and waits up to 10 s until ping succeeds (a
// server's or a sentinel's PING); it reports the process' log if it exits
// first.
func startAnswering(cmd *exec.Cmd, logPath, what string, ping func(context.Context) error) (*exec.Cmd, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("%s exited: %v: %s", what, err, log)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := ping(ctx)
		cancel()
		if err == nil {
			return cmd, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return nil, fmt.Errorf("%s did not answer within 10s", what)
}

// Kill stops the server abruptly (SIGKILL), as a crash would.
func (r *Redis) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		_ = r.cmd.Process.Kill()
		_, _ = r.cmd.Process.Wait()
		r.cmd = nil
	}
}

// running reports whether the server process is up (not killed).
func (r *Redis) running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cmd != nil
}

// Restart starts the server again on the same port with the same data directory.
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	bin, err := redisBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.start(bin); err != nil {
		t.Fatalf("testenv: restart redis: %v", err)
	}
}

// Stop ends the server.
func (r *Redis) Stop() { r.Kill() }

// PID is the server's process id, 0 when it is not running (benchmarks
// read its CPU time).
func (r *Redis) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || r.cmd.Process == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// Client returns a new client for the server, closed when the test ends.
func (r *Redis) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

var (
	shared     *Redis
	sharedErr  error
	sharedOnce sync.Once
	prefixSeq  atomic.Int64
)

// SharedRedis returns the package's redis-server, started on first use and
// stopped by Main. Tests isolate themselves with UniquePrefix.
func SharedRedis(t testing.TB) *Redis {
	t.Helper()
	sharedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kratos-orgs-redis-")
		if err != nil {
			sharedErr = err
			return
		}
		shared, sharedErr = startRedis(dir, false)
	})
	if sharedErr != nil {
		t.Fatalf("testenv: %v", sharedErr)
	}
	return shared
}

// UniquePrefix returns a key prefix no other test in this process uses.
func UniquePrefix(t testing.TB) string {
	return fmt.Sprintf("t%d-%d:", os.Getpid(), prefixSeq.Add(1))
}

// Main runs the package's tests and stops the shared servers afterwards.
// Use it from TestMain: func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.Stop()
		_ = os.RemoveAll(shared.dir)
	}
	if sharedCluster != nil {
		sharedCluster.Stop()
		_ = os.RemoveAll(sharedClusterDir)
	}
	stopKratos()
	return code
}
