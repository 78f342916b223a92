package main

import (
	"bytes"
	"context"
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
