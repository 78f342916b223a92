// Command benchkratos (make bench-kratos) measures kratos-orgs against the
// Kratos it stands in front of, side by side in one run: Kratos' own rate
// for the call an operation needs, and kratos-orgs' rate for the
// operation, with the ratio. It starts everything it needs: a PostgreSQL
// database (KRATOS_DB=postgres, the default; a server started from
// Debian's binaries when none answers at KRATOS_PG_URL) or SQLite
// (KRATOS_DB=sqlite, with BENCH_IDENTITIES identities present, 10,000 by
// default), a migrated Kratos, redis-server, and kratos-orgs in process.
//
// It is a benchmark: the machine it runs on and what else runs there set
// the figures. Nothing here is asserted.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
)

type options struct {
	db          string // sqlite or postgres
	pgURL       string
	seed        int // identities created in Kratos before measuring
	concurrency int
	duration    time.Duration
	cpuProfile  string // file for a CPU profile of the bench process (kratos-orgs and the load generator)
	// The bulk phase: rows invited in bulk (0: no bulk phase), and the
	// call sizes of Kratos' own batch create measured beside it.
	bulkRows      int
	kratosBatches []int
}

func parseOptions(args []string) (options, error) {
	o := options{db: os.Getenv("KRATOS_DB"), pgURL: testenv.PostgresURL(), bulkRows: 10000}
	switch o.db {
	case "", "postgres", "postgresql":
		o.db = "postgres"
	case "sqlite":
		o.seed = 10000
	default:
		return o, fmt.Errorf("KRATOS_DB=%q: want postgres or sqlite", o.db)
	}
	if v := os.Getenv("BENCH_IDENTITIES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return o, fmt.Errorf("BENCH_IDENTITIES=%q: want a count", v)
		}
		o.seed = n
	}
	if v := os.Getenv("BENCH_BULK_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return o, fmt.Errorf("BENCH_BULK_ROWS=%q: want a count", v)
		}
		o.bulkRows = n
	}
	fs := flag.NewFlagSet("benchkratos", flag.ContinueOnError)
	fs.IntVar(&o.concurrency, "c", 8, "requests in flight")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "duration of each measurement")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of kratos-orgs (and the load generator) over the measured phases to this file")
	fs.IntVar(&o.seed, "identities", o.seed, "identities created in Kratos before measuring (BENCH_IDENTITIES)")
	fs.IntVar(&o.bulkRows, "rows", o.bulkRows, "rows of the bulk phase, 0 to skip it (BENCH_BULK_ROWS)")
	batches := fs.String("kratos-batches", "100,1000", "call sizes of Kratos' own batch create measured beside the bulk phase (comma-separated; empty: none)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.concurrency < 1 || o.duration <= 0 {
		return o, fmt.Errorf("-c and -d must be positive")
	}
	var err error
	o.kratosBatches, err = parseSizes(*batches)
	return o, err
}

func main() {
	o, err := parseOptions(os.Args[1:])
	if err == nil {
		err = bench(context.Background(), o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-kratos:", err)
		os.Exit(1)
	}
}

func bench(ctx context.Context, o options) error {
	env, err := startStack(ctx, o)
	defer env.stop()
	if err != nil {
		return err
	}
	fmt.Printf("Kratos %s on %s (%d identities seeded), c=%d, %s each; started %s\n",
		"v1.3.1", o.db, o.seed, o.concurrency, o.duration, time.Now().UTC().Format(time.RFC3339))
	if o.cpuProfile != "" {
		stop, err := startProfile(o.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	m, err := measure(ctx, env, o)
	if err != nil {
		return err
	}
	rows := m.rows()
	writeTable(os.Stdout, rows)
	fmt.Println()
	writeCosts(os.Stdout, rows)
	if len(m.bulk) > 0 {
		fmt.Println()
		writeBulk(os.Stdout, m.bulk, &m.create)
	}
	return nil
}

// parseSizes reads -kratos-batches: call sizes within what Kratos takes.
func parseSizes(v string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > identity.MaxBatchCreate {
			return nil, fmt.Errorf("-kratos-batches: %q is not a call size from 1 to %d", f, identity.MaxBatchCreate)
		}
		out = append(out, n)
	}
	return out, nil
}

// startProfile writes a CPU profile of this process until stop is called.
func startProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
