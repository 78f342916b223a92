package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/server"
)

// inviteCSV uploads a CSV file of any length (the bulk API's columns) in
// chunks of at most invites.MaxBulkRows rows. Each chunk runs under an
// idempotency key made of the file's digest and the chunk's number (or
// --idempotency-key and the number), so running the same file again within
// invites.BulkIdempotencyTTL answers the stored results and sends nothing
// twice; a run cut short resumes where it stopped. The command's flags
// fill the columns a row leaves empty.
func (c *cli) inviteCSV(ctx context.Context, s *server.Server, f inviteFlags) error {
	data, err := os.ReadFile(f.csv)
	if err != nil {
		return err
	}
	rows, err := invites.ParseCSV(data, math.MaxInt)
	if err != nil {
		return fmt.Errorf("%s: %w", f.csv, err)
	}
	applyDefaults(rows, f)
	prefix := f.idemKey
	if prefix == "" {
		sum := sha256.Sum256(data)
		prefix = "csv-" + hex.EncodeToString(sum[:12])
	}
	summary := map[string]int{}
	failed := 0
	chunks := (len(rows) + invites.MaxBulkRows - 1) / invites.MaxBulkRows
	for n := 0; n < chunks; n++ {
		chunk := rows[n*invites.MaxBulkRows : min((n+1)*invites.MaxBulkRows, len(rows))]
		body, _ := json.Marshal(chunk)
		idem := invites.Idempotent{Key: fmt.Sprintf("%s-%d", prefix, n), Scope: "admin",
			Digest: invites.BulkDigest("cli", body, false)}
		resp, _, err := s.Invites.RunBulk(ctx, f.org, idem, func(ctx context.Context) (invites.BulkResponse, error) {
			return s.Invites.BulkInvite(ctx, f.org, chunk, invites.BulkOptions{})
		})
		if err != nil {
			fmt.Fprintln(c.stderr)
			return fmt.Errorf("chunk %d of %d (rows %d-%d): %w", n+1, chunks, n*invites.MaxBulkRows+1, n*invites.MaxBulkRows+len(chunk), err)
		}
		for _, r := range resp.Results {
			summary[r.Result]++
			if r.Error != nil {
				failed++
				fmt.Fprintf(c.stderr, "\rrow %d\t%s\t%s\t%s\n", n*invites.MaxBulkRows+r.Row+1, r.Email, r.Result, r.Error.Message)
			}
		}
		fmt.Fprintf(c.stderr, "\r%d of %d rows sent (chunk %d of %d)", n*invites.MaxBulkRows+len(chunk), len(rows), n+1, chunks)
	}
	fmt.Fprintln(c.stderr)
	printSummary(c, summary)
	if failed > 0 {
		return fmt.Errorf("%d of %d rows were not invited", failed, len(rows))
	}
	return nil
}

// applyDefaults fills, from the command's flags, what rows leave empty.
func applyDefaults(rows []invites.BulkRow, f inviteFlags) {
	send := !f.noEmail
	for i := range rows {
		r := &rows[i]
		if r.Role == "" {
			r.Role = f.role
		}
		if r.Locale == "" {
			r.Locale = f.locale
		}
		if r.TTL == nil && f.ttl > 0 {
			d := invites.Duration(f.ttl)
			r.TTL = &d
		}
		if f.inviterName != "" {
			r.Inviter = &invites.Inviter{Name: f.inviterName}
		}
		r.SendEmail = &send
	}
}

// printSummary prints rows per result, most first.
func printSummary(c *cli, summary map[string]int) {
	keys := make([]string, 0, len(summary))
	for k := range summary {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if summary[a] != summary[b] {
			return summary[b] - summary[a]
		}
		return strings.Compare(a, b)
	})
	for _, k := range keys {
		fmt.Fprintf(c.stdout, "%s\t%d\n", k, summary[k])
	}
}
