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
	// What each operation cost (nil: not measured).
	OursCost, KratosCost *cost
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

// writeCosts prints, per row, what one operation cost: the Kratos calls
// kratos-orgs made (background jobs included) and the CPU time of each
// process. The bench process is kratos-orgs and the load generator.
func writeCosts(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| operation | Kratos calls per operation | Redis commands | CPU per operation: bench process / Kratos / PostgreSQL / Redis |")
	fmt.Fprintln(w, "|---|---|---|---|")
	seen := map[*cost]bool{}
	for _, r := range rows {
		if r.Ours != nil {
			fmt.Fprintf(w, "| kratos-orgs: %s | %s | %s | %s |\n", r.What, r.OursCost.callsText(), r.OursCost.commandsText(), r.OursCost.cpuText())
		}
		if r.KratosCost != nil && !seen[r.KratosCost] {
			seen[r.KratosCost] = true
			fmt.Fprintf(w, "| Kratos: %s | 1 (the bench's own) | - | %s |\n", r.KratosOp, r.KratosCost.cpuText())
		}
	}
}

func (c *cost) commandsText() string {
	if c == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", c.redisCommands)
}

func (c *cost) cpuText() string {
	if c == nil {
		return "-"
	}
	return fmt.Sprintf("%s / %s / %s / %s", ms(c.self), ms(c.kratos), ms(c.postgres), ms(c.redis))
}

// writeBulk prints the bulk phase: each run's rows per second and its
// ratio to Kratos' own single-create rate of the same run (create), what
// a row cost, and how long the outbox took afterwards to send the mails
// and run the other jobs the rows queued (not in the rate).
func writeBulk(w io.Writer, runs []bulkRun, create *result) {
	fmt.Fprintf(w, "| bulk phase | rows/s | per request p50 / p99 | ratio to Kratos' single create (%s) | outbox after it | Kratos calls per row | Redis commands per row | CPU per row: bench process / Kratos / PostgreSQL / Redis | notes |\n", rate(create))
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, r := range runs {
		res := r.Res
		calls, commands := r.Cost.callsText(), r.Cost.commandsText()
		if r.PerCall > 0 { // the bench's own calls; Redis only idles meanwhile
			calls, commands = fmt.Sprintf("%.3f (the bench's own)", 1/float64(r.PerCall)), "-"
		}
		fmt.Fprintf(w, "| %s (%d rows) | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.What, res.OK+res.Failed, rate(&res), latency(&res), ratio(&res, create),
			res.drained.Round(100*time.Millisecond), calls, commands, r.Cost.cpuText(), failures(&res))
	}
}
