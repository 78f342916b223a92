package main

// The bulk phase (issue 11): kratos-orgs' bulk invitation of new
// addresses, in requests of invites.MaxBulkRows rows sent one after the
// other (as `kratos-orgs invite --csv` sends a file), against Kratos' own
// single-create rate measured earlier in the same run; and, for reference,
// Kratos' own batch create (PATCH /admin/identities) of as many
// identities, at each call size of -kratos-batches.

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/kratos-orgs/kratos-orgs/invites"
)

// bulkRun is what one bulk phase (ours or Kratos' batch create) did.
type bulkRun struct {
	What string // e.g. "Kratos: batch create, 100 per call"
	Res  result // OK: rows done; latencies: per request
	Cost *cost  // per row
	// PerCall is the rows of one Kratos call when the bench itself calls
	// Kratos (0: kratos-orgs does, and its metrics count the calls).
	PerCall int
}

// chunks splits n rows into requests of at most size rows: the row
// numbers [from, to) of each.
func chunks(n, size int) [][2]int {
	var out [][2]int
	for from := 0; from < n; from += size {
		out = append(out, [2]int{from, min(n, from+size)})
	}
	return out
}

// sequential sends the chunks of rows one after the other through send
// (which answers how many of its rows were done) and counts rows, not
// requests: OK is the rows done, Failed the rows not done.
func sequential(ctx context.Context, rows, size int, send func(ctx context.Context, from, to int) (int, error)) result {
	var res result
	start := time.Now()
	for _, c := range chunks(rows, size) {
		t0 := time.Now()
		ok, err := send(ctx, c[0], c[1])
		res.latencies = append(res.latencies, time.Since(t0))
		res.OK += ok
		res.Failed += c[1] - c[0] - ok
		if err != nil && res.firstErr == nil {
			res.firstErr = err
		}
	}
	res.Elapsed = time.Since(start)
	return res
}

// measureBulk runs Kratos' batch creates, then kratos-orgs' bulk
// invitation of o.bulkRows new addresses to org.
func (s *stack) measureBulk(ctx context.Context, o options, org string, stamp int64) []bulkRun {
	var out []bulkRun
	for _, size := range o.kratosBatches {
		name := fmt.Sprintf("Kratos: batch create, %d per call", size)
		res, c := s.costOf(ctx, name, func() result {
			return sequential(ctx, o.bulkRows, size, func(ctx context.Context, from, to int) (int, error) {
				return s.kratosBatchCreate(ctx, fmt.Sprintf("batch%d-%d", size, stamp), from, to)
			})
		})
		out = append(out, bulkRun{What: name, Res: res, Cost: c, PerCall: size})
	}
	name := fmt.Sprintf("kratos-orgs: bulk invite, %d rows per request", invites.MaxBulkRows)
	res, c := s.costOf(ctx, name, func() result {
		return sequential(ctx, o.bulkRows, invites.MaxBulkRows, func(ctx context.Context, from, to int) (int, error) {
			return s.bulkInvite(ctx, org, fmt.Sprintf("bulk-%d", stamp), from, to)
		})
	})
	return append(out, bulkRun{What: name, Res: res, Cost: c})
}

// kratosBatchCreate creates the identities prefix-from … prefix-(to-1) in
// one PATCH /admin/identities and answers how many Kratos created.
func (s *stack) kratosBatchCreate(ctx context.Context, prefix string, from, to int) (int, error) {
	list := make([]map[string]any, 0, to-from)
	for i := from; i < to; i++ {
		list = append(list, map[string]any{"create": map[string]any{
			"schema_id": "default", "traits": map[string]any{"email": fmt.Sprintf("%s-%d@bench.example", prefix, i)}}})
	}
	var got struct {
		Identities []struct {
			Action string `json:"action"`
		} `json:"identities"`
	}
	err := s.call(ctx, http.MethodPatch, s.kratos.AdminURL+"/admin/identities", map[string]any{"identities": list}, &got, http.StatusOK)
	n := 0
	for _, it := range got.Identities {
		if it.Action == "create" {
			n++
		}
	}
	return n, err
}

// bulkInvite invites prefix-from … prefix-(to-1) in one bulk request and
// answers how many rows were created.
func (s *stack) bulkInvite(ctx context.Context, org, prefix string, from, to int) (int, error) {
	rows := make([]map[string]any, 0, to-from)
	for i := from; i < to; i++ {
		rows = append(rows, map[string]any{"email": fmt.Sprintf("%s-%d@bench.example", prefix, i)})
	}
	var got invites.BulkResponse
	err := s.call(ctx, http.MethodPost, s.orgsURL+"/admin/organizations/"+org+"/invitations/bulk",
		map[string]any{"invitations": rows}, &got, http.StatusOK, "Authorization", "Bearer "+adminKey)
	if err == nil && got.Summary[invites.BulkCreated] != to-from {
		err = fmt.Errorf("bulk rows %d-%d: %v", from, to-1, got.Summary)
	}
	return got.Summary[invites.BulkCreated], err
}
