package orgs

import (
	"context"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/identity/identitytest"
	"github.com/kratos-orgs/kratos-orgs/outbox"
)

// A member.sync job that carries the digest of the claims an acceptance
// wrote with its activation asks Kratos nothing when the claims computed
// now are those; when they differ (another membership meanwhile) the
// mirror reads and writes Kratos as before, and a job without a digest
// always reads.
func TestClaimsMirrorSkipsKratosForWrittenClaims(t *testing.T) {
	s, rdb, ks := newTestStore(t, "redis-server")
	ctx := context.Background()
	ids := identitytest.New()
	who := ids.Add("claims@example.com", "Claims")
	index := NewIdentityIndex(rdb, ks, nil)
	mirror := NewClaims(index, s, ids)
	index.OnChange = mirror.syncAfter
	a, err := s.Create(ctx, Organization{Name: "A", Slug: "a", State: StateActive}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AddMember(ctx, a.ID, Member{IdentityID: who.ID, Email: who.Email, Role: "admin"}); err != nil {
		t.Fatal(err)
	}
	written, err := mirror.Joining(ctx, who.ID, Claim{ID: a.ID, Slug: a.Slug, Role: "admin"})
	if err != nil || len(written) != 1 {
		t.Fatalf("Joining = %v %v", written, err)
	}
	job := outbox.Job{Kind: "member.sync", Ref: a.ID, Subject: who.ID, Claims: ClaimsDigest(written)}
	if err := index.Handle(ctx, job); err != nil {
		t.Fatal(err)
	}
	if ids.Calls["Get"]+ids.Calls["Patch"] != 0 {
		t.Fatalf("Kratos asked for claims it holds: %v", ids.Calls)
	}
	b, err := s.Create(ctx, Organization{Name: "B", Slug: "b", State: StateActive}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AddMember(ctx, b.ID, Member{IdentityID: who.ID, Email: who.Email, Role: "member"}); err != nil {
		t.Fatal(err)
	}
	if err := index.Apply(ctx, b.ID, who.ID); err != nil {
		t.Fatal(err)
	}
	if err := index.Handle(ctx, job); err != nil { // the digest no longer matches
		t.Fatal(err)
	}
	got, _ := ids.Get(ctx, who.ID)
	claims, _ := got.MetadataPublic[ClaimsKey].([]any)
	if ids.Calls["Patch"] != 1 || len(claims) != 2 {
		t.Fatalf("after another membership: calls %v, claims %v", ids.Calls, got.MetadataPublic)
	}
	job.Claims = ""
	if err := index.Handle(ctx, job); err != nil {
		t.Fatal(err)
	}
	if ids.Calls["Get"] != 3 || ids.Calls["Patch"] != 1 {
		t.Fatalf("a job without a digest: calls %v, want a read and no write", ids.Calls)
	}
}
