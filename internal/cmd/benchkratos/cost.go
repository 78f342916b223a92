package main

// What an operation costs, beyond its rate: the Kratos calls kratos-orgs
// made for it (its own metrics, so the outbox jobs an invitation queues
// count too) and the CPU time every process of the stack spent on it. All
// of them share the machine's cores, so CPU that kratos-orgs spends on an
// invitation is CPU Kratos cannot spend on its part.

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// snapshot is the stack's counters at one moment.
type snapshot struct {
	self, kratos, postgres, redis time.Duration // CPU time
	calls                         map[string]float64
	redisCommands                 int64 // processed since Redis started
}

// cost is what one phase spent per successful operation.
type cost struct {
	ops                           int
	self, kratos, postgres, redis time.Duration // CPU per operation
	calls                         map[string]float64
	redisCommands                 float64 // per operation (a script counts its calls too)
}

// clockTick is the unit of /proc/<pid>/stat times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// procCPU is a process' user+system CPU time (0 when it is gone).
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count from after it.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * clockTick
}

// pgCPU follows the CPU of the PostgreSQL server processes serving one
// database (their titles name it). Backends come and go with Kratos'
// connection pool, and an exited one takes its CPU time with it: a
// sampler reads them every 100 ms and keeps the last figure of each, so
// at most the last 100 ms of an exited backend are lost. It reads only
// the server's children, and each one's title once: scanning all of
// /proc that often cost more CPU than some of the rows it measured.
type pgCPU struct {
	db         string
	mu         sync.Mutex
	postmaster int
	ours       map[int]bool // pid → serves db (read once per pid)
	last       map[int]time.Duration
}

func newPgCPU(db string) *pgCPU {
	return &pgCPU{db: db, ours: map[int]bool{}, last: map[int]time.Duration{}}
}

// serves reports whether process pid is a backend of the database.
func (p *pgCPU) serves(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.HasPrefix(string(b), "postgres: ") && strings.Contains(string(b), " "+p.db+" ")
}

// findPostmaster finds the server through one of the database's backends
// (its parent). Only done until found.
func (p *pgCPU) findPostmaster() int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, _ := strconv.Atoi(filepath.Base(d))
		if !p.serves(pid) {
			continue
		}
		b, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 1 {
			ppid, _ := strconv.Atoi(f[1])
			return ppid
		}
	}
	return 0
}

// sample reads every backend of the database once.
func (p *pgCPU) sample() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.db == "" {
		return
	}
	if p.postmaster == 0 {
		if p.postmaster = p.findPostmaster(); p.postmaster == 0 {
			return
		}
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p.postmaster, p.postmaster))
	for _, f := range strings.Fields(string(b)) {
		pid, _ := strconv.Atoi(f)
		ours, seen := p.ours[pid]
		if !seen {
			ours = p.serves(pid)
			p.ours[pid] = ours
		}
		if t := procCPU(pid); ours && t > 0 {
			p.last[pid] = max(p.last[pid], t)
		}
	}
}

// run samples until ctx ends.
func (p *pgCPU) run(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		p.sample()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// total is the CPU time of every backend seen so far.
func (p *pgCPU) total() time.Duration {
	p.sample()
	p.mu.Lock()
	defer p.mu.Unlock()
	var sum time.Duration
	for _, t := range p.last {
		sum += t
	}
	return sum
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// metrics scrapes kratos-orgs' /metrics: Kratos calls by operation and the
// outbox jobs not done yet.
func (s *stack) metrics(ctx context.Context) (calls map[string]float64, outstanding float64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.orgsURL+"/metrics", nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	calls = map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, _ := strconv.ParseFloat(line[sp+1:], 64)
		switch {
		case strings.HasPrefix(line, "kratos_orgs_kratos_request_duration_seconds_count{"):
			calls[label(line, "operation")] += v
		case strings.HasPrefix(line, `kratos_orgs_outbox_jobs{state="ready"}`),
			strings.HasPrefix(line, `kratos_orgs_outbox_jobs{state="delayed"}`):
			outstanding += v
		}
	}
	return calls, outstanding, sc.Err()
}

// label reads one label's value from a metric line.
func label(line, name string) string {
	_, rest, ok := strings.Cut(line, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// drain waits until the outbox has run every job the phase queued, so that
// their cost is the phase's (giving up after 2 minutes without progress).
func (s *stack) drain(ctx context.Context) error {
	const patience = 2 * time.Minute
	deadline := time.Now().Add(patience)
	last := -1.0
	for {
		_, n, err := s.metrics(ctx)
		if err != nil || n == 0 {
			return err
		}
		if n != last { // progress: a bulk phase queues tens of thousands
			last, deadline = n, time.Now().Add(patience)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the outbox still holds %.0f jobs after 2 minutes without progress", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *stack) snapshot(ctx context.Context) (snapshot, error) {
	calls, _, err := s.metrics(ctx)
	if err != nil {
		return snapshot{}, err
	}
	info, err := s.orgs.Redis().Info(ctx, "stats").Result()
	if err != nil {
		return snapshot{}, err
	}
	_, v, _ := strings.Cut(info, "total_commands_processed:")
	v, _, _ = strings.Cut(v, "\r\n")
	n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return snapshot{redisCommands: n,
		self: selfCPU(), kratos: procCPU(s.kratos.PID()), postgres: s.pgCPU.total(),
		redis: procCPU(s.redis.PID()), calls: calls,
	}, err
}

// measured runs a phase and works out what it cost: the window of run,
// then the outbox jobs it queued. A cost it cannot read is nil (said on
// stderr); the rate stands anyway.
func (s *stack) measured(ctx context.Context, name string, c int, d time.Duration, op func(ctx context.Context, n int) error) (result, *cost) {
	return s.costOf(ctx, name, func() result { return run(ctx, c, d, op) })
}

// costOf runs one phase and works out what it cost per operation (its
// result's OK), the outbox jobs it queued included.
func (s *stack) costOf(ctx context.Context, name string, phase func() result) (result, *cost) {
	fmt.Fprintf(os.Stderr, "measuring %s...\n", name)
	before, err := s.snapshot(ctx)
	res := phase()
	if err == nil {
		t0 := time.Now()
		err = s.drain(ctx)
		res.drained = time.Since(t0)
	}
	var after snapshot
	if err == nil {
		after, err = s.snapshot(ctx)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: cost not measured: %v\n", name, err)
		return res, nil
	}
	return res, diff(before, after, res.OK)
}

// diff is the cost per operation between two snapshots; nil when no
// operation succeeded (there is nothing to divide by).
func diff(a, b snapshot, ops int) *cost {
	if ops == 0 {
		return nil
	}
	n := time.Duration(ops)
	c := &cost{ops: ops, self: (b.self - a.self) / n, kratos: (b.kratos - a.kratos) / n,
		postgres: (b.postgres - a.postgres) / n, redis: (b.redis - a.redis) / n, calls: map[string]float64{},
		redisCommands: float64(b.redisCommands-a.redisCommands) / float64(ops)}
	for op, v := range b.calls {
		if d := v - a.calls[op]; d > 0 {
			c.calls[op] = d / float64(ops)
		}
	}
	return c
}

// callsText lists Kratos calls per operation, most frequent first.
func (c *cost) callsText() string {
	if c == nil {
		return "-"
	}
	ops := make([]string, 0, len(c.calls))
	total := 0.0
	for op, v := range c.calls {
		ops = append(ops, op)
		total += v
	}
	if total == 0 {
		return "0"
	}
	sort.Slice(ops, func(i, j int) bool { return c.calls[ops[i]] > c.calls[ops[j]] })
	parts := make([]string, len(ops))
	for i, op := range ops {
		parts[i] = fmt.Sprintf("%.2f %s", c.calls[op], op)
	}
	return fmt.Sprintf("%.2f (%s)", total, strings.Join(parts, ", "))
}
