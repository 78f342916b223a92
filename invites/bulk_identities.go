package invites

import (
	"context"
	"errors"
	"slices"

	"github.com/kratos-orgs/kratos-orgs/identity"
)

// batchCreator creates many inactive identities in one Kratos call
// (identity.Kratos; a test fake without it gets one call per address).
type batchCreator interface {
	CreateInvitedBatch(ctx context.Context, emails []string, marker map[string]any) ([]identity.Created, error)
}

// kratosWorkers bounds the Kratos calls a bulk request makes at once.
const kratosWorkers = 8

// bulkIdentities finds or creates every row's identity, as identityFor
// does for one, with the creates batched:
//
//   - the operator's API: a row whose address kratos-orgs knows (known.go)
//     costs nothing; the others are created in one batch, and an item
//     Kratos refuses (the address has an account) is looked up;
//   - the org admins' API (uniform) makes, per row, the calls a single
//     invitation makes there (look-up, then create whatever the answer),
//     kratosWorkers at a time: a batch would answer sooner when no address
//     has an account, which would tell an org admin that one has;
//   - a row whose address is being taken over, or whose hint has no kind,
//     goes through identityFor alone.
func (s *Service) bulkIdentities(ctx context.Context, org string, items []*bulkItem, uniform bool) {
	var batch, alone []*bulkItem
	for _, it := range items {
		switch {
		case uniform || it.ref.takeover:
			alone = append(alone, it)
		case it.ref.known == "":
			batch = append(batch, it)
		default:
			if who := knownIdentity(it.ref.known, it.email); who != nil {
				it.person = who
			} else {
				alone = append(alone, it)
			}
		}
	}
	forEach(len(alone), kratosWorkers, func(i int) {
		it := alone[i]
		it.person, it.createdNow, it.err = s.identityFor(ctx, org, it.email, it.ref, uniform)
	})
	s.createBatch(ctx, org, batch)
	for _, it := range items {
		if it.err != nil {
			s.forget(ctx, it.email, it.id)
		}
	}
}

// createBatch creates the identities of items in one batch; an item Kratos
// refuses is looked up, as after a single create's 409.
func (s *Service) createBatch(ctx context.Context, org string, items []*bulkItem) {
	if len(items) == 0 {
		return
	}
	emails := make([]string, len(items))
	for i, it := range items {
		emails[i] = it.email
	}
	created, err := s.createInvited(ctx, emails, s.marker(org))
	if err != nil {
		for _, it := range items {
			it.err = err
		}
		return
	}
	var lookUp []*bulkItem
	for i, it := range items {
		switch c := created[i]; {
		case c.Identity != nil:
			it.person, it.createdNow = c.Identity, true
		case errors.Is(c.Err, identity.ErrExists):
			lookUp = append(lookUp, it)
		default:
			it.err = c.Err
		}
	}
	forEach(len(lookUp), kratosWorkers, func(i int) {
		it := lookUp[i]
		it.person, it.err = s.ids.FindByEmail(ctx, it.email)
		if it.err == nil && it.person == nil {
			// Kratos refused the item for another reason: a single
			// create says which.
			it.person, it.createdNow, it.err = s.createFirst(ctx, org, it.email)
		}
	})
}

// kratosBatch is the most identities asked of Kratos in one call. Kratos
// takes up to identity.MaxBatchCreate, but a call must finish within
// kratos.timeout (10s by default), and on a busy Kratos (SQLite, shared
// cores) a thousand creates in one call did not.
const kratosBatch = 100

// kratosBatchCalls is how many batch calls a request keeps in flight.
// Kratos writes one call's identities one after another, so a single call
// at a time leaves a core idle; two kept `make bench-kratos`' bulk phase
// ahead of Kratos' own single-create rate (README "Performance against
// Kratos").
const kratosBatchCalls = 2

// createInvited creates identities in batches, or one by one when the
// adapter has no batch call.
func (s *Service) createInvited(ctx context.Context, emails []string, marker map[string]any) ([]identity.Created, error) {
	if b, ok := s.ids.(batchCreator); ok {
		calls := (len(emails) + kratosBatch - 1) / kratosBatch
		parts, errs := make([][]identity.Created, calls), make([]error, calls)
		forEach(calls, kratosBatchCalls, func(i int) {
			start := i * kratosBatch
			parts[i], errs[i] = b.CreateInvitedBatch(ctx, emails[start:min(start+kratosBatch, len(emails))], marker)
		})
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		return slices.Concat(parts...), nil
	}
	out := make([]identity.Created, len(emails))
	forEach(len(emails), kratosWorkers, func(i int) {
		out[i].Identity, out[i].Err = s.ids.CreateInvited(ctx, emails[i], marker)
	})
	return out, nil
}
