package invites

// Bulk invitations
//
// POST .../invitations/bulk invites up to MaxBulkRows addresses in one
// request and answers one result per row, in the request's order. Each
// row goes through the single invitation's rules (validation, role
// ceiling, seat limit, pending invitation re-issued, member refused) and
// one bad row never fails the others. What changes is the cost:
//
//   - every row's address reference (placeholders.go: written before any
//     Kratos call, as for a single invitation) goes to Redis in one pipeline;
//   - the identities of addresses new to kratos-orgs are created in one
//     Kratos call (PATCH /admin/identities); an item Kratos refuses (the
//     address has an account) falls back to the look-up a single invite
//     makes after a 409;
//   - every row's invitation is written in one pipeline on the
//     organization's slot, by the same script as a single invitation, so
//     seats are counted atomically row after row (no overshoot).

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/redisx"
	"github.com/kratos-orgs/kratos-orgs/tokens"
)

// Results of a bulk row. A row refused for any other reason has the
// error's code as its result (invalid_ttl, invalid_role, ...).
const (
	BulkCreated       = "created"
	BulkReinvited     = "reinvited"
	BulkAlreadyMember = "already_member"
	BulkInvalidEmail  = "invalid_email"
	BulkRoleTooHigh   = "role_too_high"
	BulkSeatLimit     = "seat_limit"
	BulkDuplicate     = "duplicate_in_request"
	BulkRateLimited   = "rate_limited"
	BulkError         = "error" // an unexpected failure (logged)
)

// RowError is a refused row's error, as the API's error body.
type RowError struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

// BulkResult is one row's outcome.
type BulkResult struct {
	Row          int          `json:"row"` // index in the request, from 0
	Email        string       `json:"email"`
	Result       string       `json:"result"`
	InvitationID string       `json:"invitation_id,omitempty"`
	Error        *RowError    `json:"error,omitempty"`
	Mail         *PreviewMail `json:"mail,omitempty"` // dry run
}

// BulkResponse answers a bulk request.
type BulkResponse struct {
	DryRun  bool           `json:"dry_run"`
	Summary map[string]int `json:"summary"` // result → rows
	Results []BulkResult   `json:"results"`
}

// RowQuota spends one row of the caller's quotas (a rate_limited error when
// none is left).
type RowQuota func(ctx context.Context) error

// BulkOptions say who sends a bulk request.
type BulkOptions struct {
	Actor *Actor   // the member on the org admins' API; nil for the operator
	Quota RowQuota // nil: no quota
}

// bulkItem is a row on its way through the steps.
type bulkItem struct {
	row        int
	req        InviteRequest
	email      string
	ttl        time.Duration
	grant      grant
	id         string
	ref        addressRef
	person     *identity.Identity
	createdNow bool
	err        error
}

// BulkInvite invites every row to an organization. The request fails as a
// whole only when the organization does not exist (or Redis does not
// answer before anything was written); every other refusal is a row's.
func (s *Service) BulkInvite(ctx context.Context, orgRef string, rows []BulkRow, o BulkOptions) (BulkResponse, error) {
	org, err := s.orgs.ResolveID(ctx, orgRef)
	if err != nil {
		return BulkResponse{}, err
	}
	if err := s.checkOrganization(ctx, org); err != nil {
		return BulkResponse{}, err
	}
	res := make([]BulkResult, len(rows))
	items := s.checkRows(ctx, rows, o, res)
	items = spendQuota(ctx, items, o.Quota, res)
	s.bulkReference(ctx, org, items)
	s.bulkIdentities(ctx, org, live(items), o.Actor != nil)
	s.bulkWrite(ctx, org, live(items), res)
	for _, it := range items {
		if it.err != nil {
			res[it.row] = s.rowResult(it.row, it.email, it.err)
		}
	}
	s.wake()
	return BulkResponse{Summary: summarize(res), Results: res}, nil
}

// checkRows validates every row as a single invitation would and refuses
// repeated addresses; it returns the rows that go on.
func (s *Service) checkRows(ctx context.Context, rows []BulkRow, o BulkOptions, res []BulkResult) []*bulkItem {
	seen := make(map[string]int, len(rows))
	inviters := map[string]error{} // inviter.id → its check, asked once
	var items []*bulkItem
	for i, row := range rows {
		it := &bulkItem{row: i, email: row.Email}
		row, err := row.checkNames()
		it.req = row.Request()
		switch {
		case err != nil:
		case o.Actor != nil:
			it.req.UniformKratosWork = true
			it.grant, it.email, it.ttl, err = s.checkAs(*o.Actor, &it.req)
			if err == nil {
				err = checkContextText(it.req.Context)
			}
		default:
			it.email, it.ttl, err = s.validate(&it.req)
			if err == nil {
				err = s.inviterOnce(ctx, it.req.Inviter, inviters)
			}
		}
		if err == nil {
			if first, dup := seen[it.email]; dup {
				err = apperr.Conflictf(BulkDuplicate, "%s is also in row %d of this request", it.email, first).
					WithDetails("row", first)
			} else {
				seen[it.email] = i
			}
		}
		if err != nil {
			email := it.email
			if email == "" {
				email = strings.TrimSpace(row.Email)
			}
			res[i] = s.rowResult(i, email, err)
			continue
		}
		items = append(items, it)
	}
	return items
}

// inviterOnce checks an inviter.id once per request.
func (s *Service) inviterOnce(ctx context.Context, in *Inviter, done map[string]error) error {
	if in == nil || in.ID == "" {
		return nil
	}
	if err, ok := done[in.ID]; ok {
		return err
	}
	err := s.checkInviterExists(ctx, in)
	done[in.ID] = err
	return err
}

// spendQuota counts each row that goes on against the caller's quotas;
// rows past them are rate_limited and go no further.
func spendQuota(ctx context.Context, items []*bulkItem, q RowQuota, res []BulkResult) []*bulkItem {
	if q == nil {
		return items
	}
	for _, it := range items {
		if err := q(ctx); err != nil {
			it.err = err
		}
	}
	return items
}

// live is the items no step has refused yet.
func live(items []*bulkItem) []*bulkItem {
	out := make([]*bulkItem, 0, len(items))
	for _, it := range items {
		if it.err == nil {
			out = append(out, it)
		}
	}
	return out
}

// bulkReference registers every row's address reference (pipelined), each
// before its row's Kratos call, as a single invitation does. A row whose
// address is being cleaned up waits for it alone; a row whose address is
// on the suppression list is refused (address_suppressed) unless it sends
// no mail.
func (s *Service) bulkReference(ctx context.Context, org string, items []*bulkItem) {
	items = live(items)
	emails, ids := make([]string, len(items)), make([]string, len(items))
	for i, it := range items {
		it.id = redisx.NewID("inv", redisx.ShardOf(org), s.now())
		emails[i], ids[i] = it.email, it.id
	}
	at := s.now()
	for i, r := range s.store.referenceMany(ctx, org, emails, ids, at) {
		it := items[i]
		switch {
		case r.err != nil:
			it.err = r.err
		case r.outcome == "wait":
			it.ref, it.err = s.referenceAddress(ctx, it.email, org, it.id)
		default:
			it.ref = addressRef{takeover: r.outcome == "takeover", at: at, known: r.known, suppressed: r.suppressed}
		}
		// As a single invitation: a suppressed address is not mailed.
		if it.err == nil {
			if it.err = s.checkMailable(ctx, it.req.SendEmail, it.email, it.ref); it.err != nil {
				s.forget(ctx, it.email, it.id)
			}
		}
	}
}

// bulkWrite writes every row's invitation in one pipeline and undoes, per
// row, what a refused write leaves (the reference, a placeholder created
// for it), as a single invitation does.
func (s *Service) bulkWrite(ctx context.Context, org string, items []*bulkItem, res []BulkResult) {
	ns := make([]NewInvitation, len(items))
	for i, it := range items {
		ns[i] = s.newInvitation(org, it)
	}
	for i, r := range s.store.createMany(ctx, ns) {
		it := items[i]
		if r.err != nil {
			it.err = r.err
			if scriptRefused(r.err) {
				s.forget(ctx, it.email, it.id)
				if it.createdNow {
					s.releaseQuietly(ctx, it.email, it.person.ID)
				}
			}
			continue
		}
		if r.rotated {
			s.forget(ctx, it.email, it.id)
		}
		result := BulkCreated
		if r.rotated {
			result = BulkReinvited
		}
		res[it.row] = BulkResult{Row: it.row, Email: it.email, Result: result, InvitationID: r.inv.ID}
	}
}

// newInvitation is a row's record (as Service.invite). A row without mail
// (send_email false) gets no link in a bulk answer: resend it to get one.
func (s *Service) newInvitation(org string, it *bulkItem) NewInvitation {
	r := it.req
	send := r.SendEmail == nil || *r.SendEmail
	token, hash := tokens.New(redisx.ShardOf(org))
	n := NewInvitation{
		ID: it.id, WriteBy: it.ref.at.Add(refGrace),
		OrganizationID: org, Email: it.email, Role: r.Role, TTL: it.ttl, TokenHash: hash,
		Inviter: r.Inviter, Context: r.Context, RedirectTo: r.RedirectTo,
		ExistingIdentity: true, SendEmail: send, Template: "invitation", Kind: "invitation",
		GrantedBy: it.grant.by, Within: it.grant.within, Locale: r.Locale,
	}
	if it.person != nil {
		n.IdentityID, n.ExistingIdentity, n.IdentityCreated = it.person.ID, !it.person.CreatedByUs, it.person.CreatedByUs
	}
	if send {
		n.SealedToken = s.sealer.Seal(token, sealContext)
	}
	return n
}

// rowResult is a refused row's result.
func (s *Service) rowResult(row int, email string, err error) BulkResult {
	e, ok := apperr.As(err)
	if !ok || e.Kind == apperr.Internal {
		s.log.Error("bulk invitation row failed", "row", row, "err", err)
		return BulkResult{Row: row, Email: email, Result: BulkError, Error: &RowError{Code: "internal", Message: "internal error"}}
	}
	result := e.Code
	switch e.Code {
	case "role_ceiling":
		result = BulkRoleTooHigh
	case "invalid_email", "already_member", "seat_limit", "rate_limited", BulkDuplicate:
	}
	return BulkResult{Row: row, Email: email, Result: result, Error: &RowError{Code: e.Code, Message: e.Message, Details: e.Details}}
}

func summarize(res []BulkResult) map[string]int {
	out := map[string]int{}
	for _, r := range res {
		out[r.Result]++
	}
	return out
}

// forEach runs fn for 0..n-1 on up to workers goroutines.
func forEach(n, workers int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < min(workers, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}
