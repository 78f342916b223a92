package orgs

import (
	"context"
	"encoding/json"
	"reflect"
	"sort"

	ory "github.com/ory/client-go"

	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/outbox"
)

// ClaimsKey is the metadata_public key that mirrors memberships, so an
// application reads them from the Kratos session.
const ClaimsKey = "organizations"

// Claim is one membership as applications see it in metadata_public.
type Claim struct {
	ID   string `json:"id"`
	Slug string `json:"slug"`
	Role string `json:"role"`
}

// IdentityPatcher changes identities in Kratos.
type IdentityPatcher interface {
	Get(ctx context.Context, id string) (*identity.Identity, error)
	Patch(ctx context.Context, id string, ops []ory.JsonPatch) (*identity.Identity, error)
}

// Claims writes an identity's memberships to metadata_public.organizations.
// It runs from outbox jobs, so when Kratos is down it is retried, and it
// only writes when the claims differ: repeating it changes nothing.
type Claims struct {
	index *IdentityIndex
	store *Store
	ids   IdentityPatcher
}

// NewClaims returns the claims mirror.
func NewClaims(index *IdentityIndex, store *Store, ids IdentityPatcher) *Claims {
	return &Claims{index: index, store: store, ids: ids}
}

// Register runs the mirror after every membership change and for
// claims.sync jobs (login and settings hooks enqueue them).
func (c *Claims) Register(w *outbox.Worker) {
	c.index.OnChange = c.Sync
	w.Handle("claims.sync", func(ctx context.Context, job outbox.Job) error { return c.Sync(ctx, job.Subject) }, nil)
}

// Of computes an identity's claims from the index, each checked against
// its organization's own record.
func (c *Claims) Of(ctx context.Context, identityID string) ([]Claim, error) {
	roles, err := c.index.Organizations(ctx, identityID)
	if err != nil {
		return nil, err
	}
	out := []Claim{}
	for org := range roles {
		o, err := c.store.Get(ctx, org)
		if err != nil {
			continue // deleted meanwhile: its member.sync job follows
		}
		m, err := c.store.Member(ctx, org, identityID)
		if err != nil {
			continue
		}
		out = append(out, Claim{ID: o.ID, Slug: o.Slug, Role: m.Role})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Sync brings an identity's metadata_public.organizations up to date.
func (c *Claims) Sync(ctx context.Context, identityID string) error {
	claims, err := c.Of(ctx, identityID)
	if err != nil {
		return err
	}
	who, err := c.ids.Get(ctx, identityID)
	if err != nil || who == nil {
		return err // gone: nothing to mirror
	}
	meta := map[string]any{}
	for k, v := range who.MetadataPublic {
		meta[k] = v
	}
	var want any
	b, _ := json.Marshal(claims)
	_ = json.Unmarshal(b, &want)
	if reflect.DeepEqual(meta[ClaimsKey], want) {
		return nil
	}
	meta[ClaimsKey] = want
	_, err = c.ids.Patch(ctx, identityID, []ory.JsonPatch{{Op: "add", Path: "/metadata_public", Value: meta}})
	return err
}
