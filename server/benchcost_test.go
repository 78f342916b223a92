package server

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// costMeter measures what a benchmark's operations cost, so figures taken
// on a busy, shared machine can still be compared: CPU time of this
// process (the server and the benchmark's own client) and of redis-server
// per operation, Redis round trips per operation, and the commands Redis
// ran per operation (INFO commandstats; commands a script runs count under
// their own names, so EVALSHA is the round trips of scripts). The elapsed
// rate depends on what else runs on the machine; these do not.
type costMeter struct {
	rdb   redis.UniversalClient
	trips *tripCounter
	cpu   time.Duration
	rcpu  time.Duration
	cmds  map[string]cmdStat
}

func newCostMeter(b *testing.B, rdb redis.UniversalClient) *costMeter {
	m := &costMeter{rdb: rdb, trips: &tripCounter{}}
	rdb.AddHook(m.trips)
	m.start(b)
	return m
}

// start takes the starting figures (call it right before b.ResetTimer).
func (m *costMeter) start(b *testing.B) {
	b.Helper()
	m.cpu, m.rcpu, m.cmds = processCPU(), redisCPU(b, m.rdb), commandStats(b, m.rdb)
	m.trips.n.Store(0)
}

// report adds the per-operation figures (call it after b.StopTimer).
func (m *costMeter) report(b *testing.B) {
	b.Helper()
	n := float64(b.N)
	trips := float64(m.trips.n.Load()) / n
	goCPU := float64((processCPU() - m.cpu).Microseconds()) / n
	rCPU := float64((redisCPU(b, m.rdb) - m.rcpu).Microseconds()) / n
	b.ReportMetric(trips, "redis-trips/op")
	b.ReportMetric(goCPU, "go-cpu-µs/op")
	b.ReportMetric(rCPU, "redis-cpu-µs/op")
	after := commandStats(b, m.rdb)
	var names []string
	for name := range after {
		if after[name].calls > m.cmds[name].calls && name != "info" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var sb strings.Builder
	var total int64
	for _, name := range names {
		d := after[name].sub(m.cmds[name])
		total += d.calls
		fmt.Fprintf(&sb, " %s=%.2f(%.0fµs)", name, float64(d.calls)/n, float64(d.usec)/n)
	}
	b.ReportMetric(float64(total)/n, "redis-cmds/op")
	b.Logf("N=%d per op: %.0f µs CPU here + %.0f µs in redis-server (a ceiling of %.0f/s for 2 cores doing only this); Redis commands (count and time in redis per op):%s",
		b.N, goCPU, rCPU, 2e6/(goCPU+rCPU), sb.String())
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCPU is redis-server's CPU time so far (INFO cpu).
func redisCPU(b *testing.B, rdb redis.UniversalClient) time.Duration {
	b.Helper()
	var total float64
	for _, kv := range infoFields(b, rdb, "cpu") {
		if kv[0] == "used_cpu_sys" || kv[0] == "used_cpu_user" {
			f, _ := strconv.ParseFloat(kv[1], 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}

type cmdStat struct{ calls, usec int64 }

func (c cmdStat) sub(o cmdStat) cmdStat { return cmdStat{c.calls - o.calls, c.usec - o.usec} }

// commandStats reads INFO commandstats: calls and microseconds per command
// so far.
func commandStats(b *testing.B, rdb redis.UniversalClient) map[string]cmdStat {
	b.Helper()
	out := map[string]cmdStat{}
	for _, kv := range infoFields(b, rdb, "commandstats") {
		var st cmdStat
		for _, f := range strings.Split(kv[1], ",") {
			k, v, _ := strings.Cut(f, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "calls":
				st.calls = n
			case "usec":
				st.usec = n
			}
		}
		out[strings.TrimPrefix(kv[0], "cmdstat_")] = st
	}
	return out
}

func infoFields(b *testing.B, rdb redis.UniversalClient, section string) [][2]string {
	b.Helper()
	info, err := rdb.Info(context.Background(), section).Result()
	if err != nil {
		b.Fatal(err)
	}
	var out [][2]string
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok {
			out = append(out, [2]string{k, v})
		}
	}
	return out
}
