package identity

import (
	"context"
	"fmt"

	ory "github.com/ory/client-go"
)

// MaxBatchCreate is the most identities Kratos creates in one call of
// PATCH /admin/identities (its BatchPatchIdentitiesLimit).
const MaxBatchCreate = 2000

// Created is the outcome of one address of a batch create: the identity,
// or ErrExists when Kratos refused the item (an identity has the address,
// or the item did not validate: the caller looks the address up either
// way, as after a single create's 409).
type Created struct {
	Identity *Identity
	Err      error
}

// CreateInvitedBatch creates inactive identities as CreateInvited does,
// up to MaxBatchCreate per Kratos call (PATCH /admin/identities). The
// result is in the order of emails. An error is returned only when Kratos
// did not answer a call as a whole; then nothing of that call is known.
func (k *Kratos) CreateInvitedBatch(ctx context.Context, emails []string, marker map[string]any) ([]Created, error) {
	out := make([]Created, 0, len(emails))
	for start := 0; start < len(emails); start += MaxBatchCreate {
		part, err := k.createBatch(ctx, emails[start:min(start+MaxBatchCreate, len(emails))], marker)
		if err != nil {
			return nil, err
		}
		out = append(out, part...)
	}
	return out, nil
}

// createBatch creates one call's identities. Kratos v1.3 has a flaw here:
// when some items of a batch conflict, it reports the others created but
// rolls the whole transaction back (the refusal is returned from inside
// it). So after a batch with refused items, one identity reported created
// is read back; if it is not there, the batch is sent again without the
// refused items (up to three times: new conflicts may come meanwhile).
// With a Kratos that keeps partial successes, the read finds it and one
// call was enough.
func (k *Kratos) createBatch(ctx context.Context, emails []string, marker map[string]any) ([]Created, error) {
	out := make([]Created, len(emails))
	todo := make([]int, len(emails))
	for i := range todo {
		todo[i] = i
	}
	for round := 0; len(todo) > 0; round++ {
		part := make([]string, len(todo))
		for j, i := range todo {
			part[j] = emails[i]
		}
		got, err := k.createOnce(ctx, part, marker)
		if err != nil {
			return nil, err
		}
		var ok []int
		for j, i := range todo {
			out[i] = got[j]
			if got[j].Identity != nil {
				ok = append(ok, i)
			}
		}
		if len(ok) == len(todo) || len(ok) == 0 {
			return out, nil
		}
		kept, err := k.Get(ctx, out[ok[0]].Identity.ID)
		if err != nil {
			return nil, err
		}
		if kept != nil {
			return out, nil
		}
		if round == 2 {
			return nil, outage(fmt.Errorf("kratos: create identities: the batch keeps conflicting"), "the identity service (Kratos) is busy; try again", 0)
		}
		todo = ok
	}
	return out, nil
}

func (k *Kratos) createOnce(ctx context.Context, emails []string, marker map[string]any) ([]Created, error) {
	state := "inactive"
	patches := make([]ory.IdentityPatch, len(emails))
	for i, email := range emails {
		traits := map[string]any{}
		SetTrait(traits, k.cfg.EmailTrait, email)
		patchID := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		patches[i] = ory.IdentityPatch{PatchId: &patchID, Create: &ory.CreateIdentityBody{
			SchemaId: k.cfg.SchemaID, Traits: traits, State: &state,
			MetadataAdmin: map[string]any{MarkerKey: marker},
		}}
	}
	res, resp, err := k.api.IdentityAPI.BatchPatchIdentities(ctx).
		PatchIdentitiesBody(ory.PatchIdentitiesBody{Identities: patches}).Execute()
	if err != nil {
		return nil, kratosErr("create identities", resp, err)
	}
	if len(res.Identities) != len(emails) {
		return nil, kratosErr("create identities", resp,
			fmt.Errorf("kratos answered %d items for %d", len(res.Identities), len(emails)))
	}
	out := make([]Created, len(emails))
	for i, item := range res.Identities {
		if item.GetAction() != "create" || item.GetIdentity() == "" {
			out[i].Err = ErrExists
			continue
		}
		out[i].Identity = &Identity{ID: item.GetIdentity(), Email: emails[i], State: state, CreatedByUs: true}
	}
	return out, nil
}
