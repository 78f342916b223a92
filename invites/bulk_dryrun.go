package invites

import (
	"context"
)

// Bulk is the dry run of Service.BulkInvite: every row is checked as the
// real call would check it, and each row that would be invited answers
// created or reinvited with the mail it would send. Nothing is written to
// Redis and no Kratos write API is called; the operator's dry run reads
// Kratos (the mail's wording, members), the org admins' does not (see
// dryrun.go). Seat limits are counted on the side, row after row, against
// the organization's free seats now.
func (p *Previewer) Bulk(ctx context.Context, orgRef string, rows []BulkRow, o BulkOptions) (BulkResponse, error) {
	org, err := p.svc.orgs.ResolveID(ctx, orgRef)
	if err != nil {
		return BulkResponse{}, err
	}
	if err := p.svc.checkOrganization(ctx, org); err != nil {
		return BulkResponse{}, err
	}
	res := make([]BulkResult, len(rows))
	items := p.svc.checkRows(ctx, rows, o, res)
	seats, err := p.svc.store.freeSeats(ctx, org)
	if err != nil {
		return BulkResponse{}, err
	}
	dry := make([]DryRun, len(items))
	forEach(len(items), kratosWorkers, func(i int) {
		it := items[i]
		dry[i], it.err = p.run(ctx, org, it.req, it.email, it.ttl, it.grant)
	})
	for i, it := range items {
		if it.err == nil && dry[i].Created {
			it.err = seats.take()
		}
		if it.err != nil {
			res[it.row] = p.svc.rowResult(it.row, it.email, it.err)
			continue
		}
		r := BulkResult{Row: it.row, Email: it.email, Result: BulkCreated, Mail: dry[i].Mail}
		if !dry[i].Created {
			r.Result, r.InvitationID = BulkReinvited, dry[i].ID
		}
		res[it.row] = r
	}
	return BulkResponse{DryRun: true, Summary: summarize(res), Results: res}, nil
}
