package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// row compares kratos-orgs' operation with the Kratos call it stands on.
type row struct {
	What     string
	Ours     *result // nil: not measured
	Kratos   *result // nil: not measured
	KratosOp string
	Note     string
}

// ratio is ours / Kratos' rate, or "-" when either is missing.
func ratio(ours, kratos *result) string {
	if ours == nil || kratos == nil || kratos.Rate() == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", ours.Rate()/kratos.Rate())
}

func rate(r *result) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f/s", r.Rate())
}

func latency(r *result) string {
	if r == nil || r.OK == 0 {
		return "-"
	}
	return fmt.Sprintf("%s / %s", ms(r.Quantile(0.5)), ms(r.Quantile(0.99)))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func failures(rs ...*result) string {
	var parts []string
	for _, r := range rs {
		if r != nil && r.Failed > 0 {
			parts = append(parts, fmt.Sprintf("%d failed (%v)", r.Failed, r.firstErr))
		}
	}
	return strings.Join(parts, "; ")
}

// writeTable prints the rows as a Markdown table (it goes into the README).
func writeTable(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| operation | kratos-orgs | p50 / p99 | Kratos' own | rate | p50 / p99 | ratio | notes |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for i, r := range rows {
		note := r.Note
		kratos := r.Kratos
		if i > 0 && rows[i-1].Kratos == r.Kratos {
			kratos = nil // its failures are in the row above
		}
		if f := failures(r.Ours, kratos); f != "" {
			note = strings.TrimPrefix(note+"; "+f, "; ")
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.What, rate(r.Ours), latency(r.Ours), r.KratosOp, rate(r.Kratos), latency(r.Kratos), ratio(r.Ours, r.Kratos), note)
	}
}
