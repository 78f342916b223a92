package main

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRatioAndTable(t *testing.T) {
	ours := &result{OK: 400, Elapsed: 10 * time.Second, latencies: []time.Duration{time.Millisecond, 3 * time.Millisecond}}
	kratos := &result{OK: 500, Elapsed: 10 * time.Second, latencies: []time.Duration{2 * time.Millisecond}}
	if got := ratio(ours, kratos); got != "0.80" {
		t.Fatalf("ratio = %s, want 0.80", got)
	}
	if got := ratio(nil, kratos); got != "-" {
		t.Fatalf("ratio without ours = %s", got)
	}
	if got := ratio(ours, &result{}); got != "-" {
		t.Fatalf("ratio against nothing = %s", got)
	}
	var b bytes.Buffer
	writeTable(&b, []row{
		{What: "invite, new address", Ours: ours, Kratos: kratos, KratosOp: "POST /admin/identities"},
		{What: "accept", KratosOp: "POST /admin/recovery/link", Kratos: kratos, Note: "not measured"},
	})
	want := "| invite, new address | 40/s | 1.0 ms / 3.0 ms | POST /admin/identities | 50/s | 2.0 ms / 2.0 ms | 0.80 |  |\n" +
		"| accept | - | - | POST /admin/recovery/link | 50/s | 2.0 ms / 2.0 ms | - | not measured |\n"
	if !strings.HasSuffix(b.String(), want) {
		t.Fatalf("table:\n%s\nwant rows:\n%s", b.String(), want)
	}
}

func TestOptionsFromEnvironment(t *testing.T) {
	t.Setenv("KRATOS_DB", "sqlite")
	t.Setenv("BENCH_IDENTITIES", "")
	o, err := parseOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.db != "sqlite" || o.seed != 10000 || o.concurrency != 8 || o.duration != 10*time.Second {
		t.Fatalf("sqlite defaults %+v", o)
	}
	t.Setenv("KRATOS_DB", "postgres")
	t.Setenv("BENCH_IDENTITIES", "2000")
	if o, err = parseOptions([]string{"-c", "4", "-d", "3s"}); err != nil {
		t.Fatal(err)
	}
	if o.db != "postgres" || o.seed != 2000 || o.concurrency != 4 || o.duration != 3*time.Second {
		t.Fatalf("options %+v", o)
	}
	t.Setenv("KRATOS_DB", "oracle")
	if _, err := parseOptions(nil); err == nil {
		t.Fatal("KRATOS_DB=oracle accepted")
	}
}

func TestRunStopsWhenInputsRunOut(t *testing.T) {
	r := run(t.Context(), 4, 5*time.Second, func(_ context.Context, n int) error {
		if n >= 100 {
			return errExhausted
		}
		return nil
	})
	if r.OK != 100 || r.Failed != 0 || r.Elapsed > time.Second {
		t.Fatalf("result %+v", r)
	}
}

func TestCostTable(t *testing.T) {
	ours := &result{OK: 10, Elapsed: time.Second}
	c := diff(snapshot{self: time.Second, redisCommands: 100, calls: map[string]float64{"POST /admin/identities": 5}},
		snapshot{self: time.Second + 20*time.Millisecond, redisCommands: 400, calls: map[string]float64{"POST /admin/identities": 15, "GET /admin/identities/{id}": 5}}, 10)
	var b bytes.Buffer
	writeCosts(&b, []row{
		{What: "invite", Ours: ours, OursCost: c, KratosOp: "create", KratosCost: c},
		{What: "accept", Ours: &result{Failed: 3}, OursCost: diff(snapshot{}, snapshot{}, 0)},
	})
	for _, want := range []string{
		"| kratos-orgs: invite | 1.50 (1.00 POST /admin/identities, 0.50 GET /admin/identities/{id}) | 30.0 | 2.0 ms / 0.0 ms / 0.0 ms / 0.0 ms |",
		"| Kratos: create | 1 (the bench's own) | - | 2.0 ms / 0.0 ms / 0.0 ms / 0.0 ms |",
		"| kratos-orgs: accept | - | - | - |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("cost table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestBulkPhaseCountsRows(t *testing.T) {
	if got := chunks(2500, 1000); len(got) != 3 || got[2] != [2]int{2000, 2500} {
		t.Fatalf("chunks(2500, 1000) = %v", got)
	}
	var sent [][2]int
	res := sequential(t.Context(), 2500, 1000, func(_ context.Context, from, to int) (int, error) {
		sent = append(sent, [2]int{from, to})
		if from == 1000 {
			return to - from - 2, errors.New("2 rows refused")
		}
		return to - from, nil
	})
	if len(sent) != 3 || res.OK != 2498 || res.Failed != 2 || len(res.latencies) != 3 || res.firstErr == nil {
		t.Fatalf("sent %v, result %+v", sent, res)
	}
	res.Elapsed = time.Second
	create := &result{OK: 2000, Elapsed: 10 * time.Second}
	c := diff(snapshot{redisCommands: 0, calls: map[string]float64{}},
		snapshot{redisCommands: 49960, calls: map[string]float64{"PATCH /admin/identities": 25}}, res.OK)
	var b bytes.Buffer
	writeBulk(&b, []bulkRun{
		{What: "Kratos: batch create, 100 per call", Res: res, Cost: c, PerCall: 100},
		{What: "kratos-orgs: bulk invite", Res: res, Cost: c},
	}, create)
	for _, want := range []string{
		"ratio to Kratos' single create (200/s)",
		"| Kratos: batch create, 100 per call (2500 rows) | 2498/s |",
		"| 12.49 | 0s | 0.010 (the bench's own) | - |",
		"| 0s | 0.01 (0.01 PATCH /admin/identities) | 20.0 |",
		"2 failed (2 rows refused)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("bulk table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestBulkOptions(t *testing.T) {
	t.Setenv("KRATOS_DB", "")
	t.Setenv("BENCH_BULK_ROWS", "")
	o, err := parseOptions(nil)
	if err != nil || o.bulkRows != 10000 || !slices.Equal(o.kratosBatches, []int{100, 1000}) {
		t.Fatalf("defaults %+v, %v", o, err)
	}
	t.Setenv("BENCH_BULK_ROWS", "2000")
	if o, err = parseOptions([]string{"-kratos-batches", "500"}); err != nil || o.bulkRows != 2000 || !slices.Equal(o.kratosBatches, []int{500}) {
		t.Fatalf("options %+v, %v", o, err)
	}
	if o, err = parseOptions([]string{"-rows", "0", "-kratos-batches", ""}); err != nil || o.bulkRows != 0 || len(o.kratosBatches) != 0 {
		t.Fatalf("options %+v, %v", o, err)
	}
	for _, bad := range []string{"0", "2001", "ten"} {
		if _, err := parseOptions([]string{"-kratos-batches", bad}); err == nil {
			t.Errorf("-kratos-batches %s accepted", bad)
		}
	}
	t.Setenv("BENCH_BULK_ROWS", "-1")
	if _, err := parseOptions(nil); err == nil {
		t.Fatal("BENCH_BULK_ROWS=-1 accepted")
	}
}
