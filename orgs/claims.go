package orgs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
// claims.sync jobs (login and settings hooks enqueue them, and so does
// every release of a new person's acceptance claim).
func (c *Claims) Register(w *outbox.Worker) {
	c.index.OnChange = c.syncAfter
	w.Handle("claims.sync", func(ctx context.Context, job outbox.Job) error { return c.Sync(ctx, job.Subject) }, nil)
}

// ClaimsDigest names a list of claims (sorted by id, as Of and Joining
// return them) in a member.sync job: the first 64 bits of the SHA-256 of
// their JSON.
func ClaimsDigest(claims []Claim) string {
	b, _ := json.Marshal(claims)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Joining is what an identity's claims become once it joins org with
// role: Of, plus that organization (a membership it holds already keeps
// its role, as the acceptance's finalize step keeps it).
func (c *Claims) Joining(ctx context.Context, identityID string, org Claim) ([]Claim, error) {
	claims, err := c.Of(ctx, identityID)
	if err != nil {
		return nil, err
	}
	for _, cl := range claims {
		if cl.ID == org.ID {
			return claims, nil
		}
	}
	claims = append(claims, org)
	sort.Slice(claims, func(i, j int) bool { return claims[i].ID < claims[j].ID })
	return claims, nil
}

// Index mirrors a membership into the identity index at once, before its
// member.sync job does (IdentityIndex.Apply): an acceptance that wrote the
// claims itself calls it, so that a claims refresh running before that
// job (the new person's first sign-in) computes them with the new
// organization instead of writing them back without it.
func (c *Claims) Index(ctx context.Context, org, identityID string) error {
	return c.index.Apply(ctx, org, identityID)
}

// syncAfter is Sync for a member.sync job. written is the digest of the
// claims an acceptance wrote to Kratos in its activation PATCH (the job's
// Claims): when the claims computed now are those, Kratos holds them
// already and is not asked at all (no read, no PATCH).
//
// What that trusts: that nothing wrote the identity's claims between that
// PATCH and now. The identity was an inactive placeholder until the PATCH,
// with no credential and no session, and the acceptance indexed the
// membership (Index) before handing the browser its recovery link, so
// the refreshes its person triggers see it. A write in between (a
// reconciler pass or a claims.sync job queued by a released earlier
// attempt, computed before the index had the new organization) leaves the
// claims as that write computed them, without the new organization: an
// omission, not a claim the index does not hold, and the next sign-in or
// settings change (claims.sync) repairs it. Any other membership change of
// the identity since the PATCH makes the computed claims differ from the
// written ones, and Sync runs as it always did.
func (c *Claims) syncAfter(ctx context.Context, identityID, written string) error {
	if written != "" {
		claims, err := c.Of(ctx, identityID)
		if err != nil {
			return err
		}
		if ClaimsDigest(claims) == written {
			return nil
		}
	}
	return c.Sync(ctx, identityID)
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
