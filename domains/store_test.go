package domains

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// backends are the Redis implementations the store must work on: a real
// redis-server, the embedded one `make dev` falls back to, and (in
// TestCluster) a Redis Cluster.
var backends = map[string]func(t *testing.T) redis.UniversalClient{
	"redis-server": func(t *testing.T) redis.UniversalClient { return testenv.SharedRedis(t).Client(t) },
	"embedded": func(t *testing.T) redis.UniversalClient {
		m := miniredis.RunT(t)
		c := redis.NewClient(&redis.Options{Addr: m.Addr()})
		t.Cleanup(func() { _ = c.Close() })
		return c
	},
}

func forEachBackend(t *testing.T, f func(t *testing.T, backend string)) {
	if testenv.OnCluster(t) {
		f(t, "cluster")
		return
	}
	for name := range backends {
		t.Run(name, func(t *testing.T) { f(t, name) })
	}
}

// fakeIdentities is Kratos' admin API as the service sees it.
type fakeIdentities struct {
	mu   sync.Mutex
	byID map[string]*identity.Identity
}

func (f *fakeIdentities) Get(_ context.Context, id string) (*identity.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byID[id], nil
}

func (f *fakeIdentities) put(id, state string, verified ...string) *identity.Identity {
	f.mu.Lock()
	defer f.mu.Unlock()
	who := &identity.Identity{ID: id, State: state, VerifiedAddresses: verified}
	f.byID[id] = who
	return who
}

type harness struct {
	svc   *Service
	store *Store
	orgs  *orgs.Store
	ids   *fakeIdentities
	rdb   redis.UniversalClient
	ks    redisx.Keyspace
	org   func(name string) orgs.Organization
}

func newHarness(t *testing.T, backend string, resolver TXTResolver) *harness {
	t.Helper()
	rdb := backends[backend](t)
	ks := redisx.Keyspace{Prefix: testenv.UniquePrefix(t)}
	h := &harness{rdb: rdb, ks: ks, store: NewStore(rdb, ks), orgs: orgs.NewStore(rdb, ks, time.Hour, nil),
		ids: &fakeIdentities{byID: map[string]*identity.Identity{}}}
	h.svc = NewService(Options{Store: h.store, Orgs: h.orgs, Identities: h.ids, Resolver: resolver,
		Roles: orgs.Roles{"owner", "admin", "member"}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h.org = func(name string) orgs.Organization {
		t.Helper()
		o, err := h.orgs.Create(context.Background(), orgs.Organization{Name: name, State: orgs.StateActive}, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	return h
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"Example.COM", "example.com"},
		{" example.com. ", "example.com"},
		{"Bücher.example", "xn--bcher-kva.example"},
		{"mail.acme.co.uk", "mail.acme.co.uk"},
		{"acme.co.uk", "acme.co.uk"},
		{"com", ""},
		{"co.uk", ""},
		{"", ""},
		{"a@example.com", ""},
		{"https://example.com", ""},
		{"127.0.0.1", ""},
		{"-bad.example.com", ""},
		{"exa_mple.com", ""},
		{"a..b.com", ""},
		{"\xff.com", ""},
	} {
		got, err := Normalize(tc.in)
		if tc.want == "" {
			if err == nil || apperr.CodeOf(err) != "invalid_domain" {
				t.Errorf("Normalize(%q) = %q, %v; want invalid_domain", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestStoreClaimIsExclusive: a domain belongs to one organization; the
// organization holding it may claim it again (idempotent), another gets
// domain_taken, and a release lets the other one in.
func TestStoreClaimIsExclusive(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		ctx := context.Background()
		a, b := h.org("A"), h.org("B")
		d, created, err := h.svc.Claim(ctx, a.ID, ClaimRequest{Domain: "Acme.Example", Policy: AutoJoin})
		if err != nil || !created || d.Domain != "acme.example" || d.DNSRecord.Value == "" || d.Role != "member" {
			t.Fatalf("claim: %+v %v %v", d, created, err)
		}
		again, created, err := h.svc.Claim(ctx, a.ID, ClaimRequest{Domain: "acme.example", Policy: AutoJoin})
		if err != nil || created || again.DNSRecord.Value != "" {
			t.Fatalf("claim again: %+v %v %v", again, created, err)
		}
		_, _, err = h.svc.Claim(ctx, b.ID, ClaimRequest{Domain: "acme.example"})
		if apperr.CodeOf(err) != "domain_taken" || apperr.KindOf(err) != apperr.Conflict {
			t.Fatalf("second organization: %v, want domain_taken", err)
		}
		if l, _ := h.svc.List(ctx, b.ID); len(l) != 0 {
			t.Fatalf("the refused claim is listed: %+v", l)
		}
		if n, _ := h.rdb.SCard(ctx, h.ks.OrgDomains(b.ID)).Result(); n != 0 {
			t.Fatalf("the refused claim left %d set entries", n)
		}
		if err := h.svc.Release(ctx, a.ID, "acme.example"); err != nil {
			t.Fatal(err)
		}
		if err := h.svc.Release(ctx, a.ID, "acme.example"); apperr.KindOf(err) != apperr.NotFound {
			t.Fatalf("second release: %v", err)
		}
		if _, created, err := h.svc.Claim(ctx, b.ID, ClaimRequest{Domain: "acme.example"}); err != nil || !created {
			t.Fatalf("claim after release: %v %v", created, err)
		}
		l, err := h.svc.List(ctx, b.ID)
		if err != nil || len(l) != 1 || l[0].OrganizationID != b.ID || l[0].Policy != Suggest {
			t.Fatalf("list: %+v %v", l, err)
		}
	})
}

// TestStoreConcurrentClaims: 20 organizations race for one domain; exactly
// one wins, and every other gets domain_taken.
func TestStoreConcurrentClaims(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		ctx := context.Background()
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, taken := 0, 0
		for i := 0; i < 20; i++ {
			o := h.org(fmt.Sprintf("Racer %d", i))
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, created, err := h.svc.Claim(ctx, o.ID, ClaimRequest{Domain: "race.example"})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && created:
					wins++
				case apperr.CodeOf(err) == "domain_taken":
					taken++
				default:
					t.Errorf("claim: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 || taken != 19 {
			t.Fatalf("%d wins, %d taken; want 1 and 19", wins, taken)
		}
	})
}

// TestStoreUpdateAndBadInput: policy, role and verification change; bad
// input is refused and changes nothing.
func TestStoreUpdateAndBadInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		ctx := context.Background()
		a := h.org("A")
		for _, req := range []ClaimRequest{{Domain: "com"}, {Domain: "x.example", Policy: "always"}, {Domain: "x.example", Role: "owner"}, {Domain: "x.example", Role: "boss"}} {
			if _, _, err := h.svc.Claim(ctx, a.ID, req); apperr.KindOf(err) != apperr.Invalid {
				t.Errorf("claim %+v: %v, want invalid", req, err)
			}
		}
		if l, _ := h.svc.List(ctx, a.ID); len(l) != 0 {
			t.Fatalf("bad claims were stored: %+v", l)
		}
		if _, _, err := h.svc.Claim(ctx, a.ID, ClaimRequest{Domain: "x.example"}); err != nil {
			t.Fatal(err)
		}
		yes, policy, role := true, AutoJoin, "admin"
		d, err := h.svc.Update(ctx, a.ID, "X.example", UpdateRequest{Verified: &yes, Policy: &policy, Role: &role})
		if err != nil || !d.Verified || d.VerifiedBy != VerifiedByOperator || d.Policy != AutoJoin || d.Role != "admin" || d.VerifiedAt == nil {
			t.Fatalf("update: %+v %v", d, err)
		}
		bad := "always"
		if _, err := h.svc.Update(ctx, a.ID, "x.example", UpdateRequest{Policy: &bad}); apperr.CodeOf(err) != "invalid_policy" {
			t.Fatalf("bad policy: %v", err)
		}
		if _, err := h.svc.Update(ctx, h.org("B").ID, "x.example", UpdateRequest{Verified: &yes}); apperr.KindOf(err) != apperr.NotFound {
			t.Fatalf("another organization's update: %v", err)
		}
		no := false
		d, err = h.svc.Update(ctx, a.ID, "x.example", UpdateRequest{Verified: &no})
		if err != nil || d.Verified || d.Policy != AutoJoin {
			t.Fatalf("un-verify: %+v %v", d, err)
		}
	})
}

// TestStoreDeletedOrganizationReleases: deleting an organization deletes
// its set; its global claim is dropped by the first look-up, and another
// organization may then claim the domain.
func TestStoreDeletedOrganizationReleases(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		ctx := context.Background()
		a, b := h.org("A"), h.org("B")
		if _, _, err := h.svc.Claim(ctx, a.ID, ClaimRequest{Domain: "gone.example"}); err != nil {
			t.Fatal(err)
		}
		yes := true
		if _, err := h.svc.Update(ctx, a.ID, "gone.example", UpdateRequest{Verified: &yes}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.orgs.Delete(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		if n, _ := h.rdb.Exists(ctx, h.ks.OrgDomains(a.ID)).Result(); n != 0 {
			t.Fatal("the organization's domain set outlived it")
		}
		if _, _, ok, err := h.svc.Lookup(ctx, "x@gone.example"); ok || err != nil {
			t.Fatalf("look-up of a deleted organization's domain: %v %v", ok, err)
		}
		if n, _ := h.rdb.HExists(ctx, h.ks.Domains(), "gone.example").Result(); n {
			t.Fatal("the look-up did not drop the deleted organization's claim")
		}
		if _, _, err := h.svc.Claim(ctx, b.ID, ClaimRequest{Domain: "gone.example"}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestStoreStaleClaimIsTakenOver: a claim whose organization was deleted
// without anyone looking it up is taken over by the next claim.
func TestStoreStaleClaimIsTakenOver(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		ctx := context.Background()
		a, b := h.org("A"), h.org("B")
		if _, _, err := h.svc.Claim(ctx, a.ID, ClaimRequest{Domain: "stale.example"}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.orgs.Delete(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		d, created, err := h.svc.Claim(ctx, b.ID, ClaimRequest{Domain: "stale.example"})
		if err != nil || !created || d.OrganizationID != b.ID {
			t.Fatalf("take-over: %+v %v %v", d, created, err)
		}
	})
}

// TestAutoJoin: only a verified auto_join domain and a Kratos-verified
// address make a member, with the domain's role, once; a suggest domain
// is offered instead; the seat limit applies.
func TestAutoJoin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		ctx := context.Background()
		a := h.org("A")
		yes := true
		if _, _, err := h.svc.Claim(ctx, a.ID, ClaimRequest{Domain: "auto.example", Policy: AutoJoin, Role: "admin"}); err != nil {
			t.Fatal(err)
		}
		// Not verified yet: nothing.
		who := h.ids.put("id-1", "active", "ada@auto.example")
		if err := h.svc.JoinVerified(ctx, who); err != nil {
			t.Fatal(err)
		}
		if _, err := h.orgs.Member(ctx, a.ID, "id-1"); err == nil {
			t.Fatal("member through an unverified domain")
		}
		if _, err := h.svc.Update(ctx, a.ID, "auto.example", UpdateRequest{Verified: &yes}); err != nil {
			t.Fatal(err)
		}
		// An address Kratos does not show verified: nothing.
		if err := h.svc.JoinVerified(ctx, h.ids.put("id-2", "active")); err != nil {
			t.Fatal(err)
		}
		if _, err := h.orgs.Member(ctx, a.ID, "id-2"); err == nil {
			t.Fatal("member without a verified address")
		}
		// An inactive identity: nothing.
		if err := h.svc.JoinVerified(ctx, h.ids.put("id-3", "inactive", "x@auto.example")); err != nil {
			t.Fatal(err)
		}
		if _, err := h.orgs.Member(ctx, a.ID, "id-3"); err == nil {
			t.Fatal("an inactive identity joined")
		}
		for i := 0; i < 2; i++ {
			if err := h.svc.JoinVerified(ctx, who); err != nil {
				t.Fatal(err)
			}
		}
		m, err := h.orgs.Member(ctx, a.ID, "id-1")
		if err != nil || m.Role != "admin" || m.Email != "ada@auto.example" {
			t.Fatalf("membership: %+v %v", m, err)
		}
		// Seat limit: one seat, taken.
		limit := int64(1)
		if _, err := h.orgs.Update(ctx, a.ID, orgs.Update{MaxMembers: &limit}); err != nil {
			t.Fatal(err)
		}
		if err := h.svc.JoinVerified(ctx, h.ids.put("id-4", "active", "bo@auto.example")); err != nil {
			t.Fatalf("a full organization is skipped, not an error: %v", err)
		}
		if _, err := h.orgs.Member(ctx, a.ID, "id-4"); err == nil {
			t.Fatal("joined past the seat limit")
		}
	})
}

// TestSuggestAndJoin: a suggest domain is offered to a person with a
// verified address in it, not to others nor to members; joining re-reads
// the identity and refuses an unverified address.
func TestSuggestAndJoin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		ctx := context.Background()
		a := h.org("Suggesting")
		yes := true
		if _, _, err := h.svc.Claim(ctx, a.ID, ClaimRequest{Domain: "sg.example", Policy: Suggest}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.svc.Update(ctx, a.ID, "sg.example", UpdateRequest{Verified: &yes}); err != nil {
			t.Fatal(err)
		}
		h.ids.put("id-1", "active", "ada@sg.example")
		if err := h.svc.JoinVerified(ctx, h.ids.byID["id-1"]); err != nil {
			t.Fatal(err)
		}
		if _, err := h.orgs.Member(ctx, a.ID, "id-1"); err == nil {
			t.Fatal("a suggest domain joined without the click")
		}
		got, err := h.svc.Suggestions(ctx, "id-1", []string{"ada@sg.example"})
		if err != nil || len(got) != 1 || got[0].Organization.ID != a.ID || got[0].Domain != "sg.example" {
			t.Fatalf("suggestions: %+v %v", got, err)
		}
		if got, _ := h.svc.Suggestions(ctx, "id-x", []string{"ada@other.example"}); len(got) != 0 {
			t.Fatalf("suggested to an address outside the domain: %+v", got)
		}
		// The session said verified; Kratos, asked again, does not.
		h.ids.put("id-2", "active")
		if _, err := h.svc.Join(ctx, "id-2", "sg.example"); apperr.KindOf(err) != apperr.Forbidden {
			t.Fatalf("join without a verified address: %v", err)
		}
		if _, err := h.svc.Join(ctx, "id-1", "sg.example"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.orgs.Member(ctx, a.ID, "id-1"); err != nil {
			t.Fatalf("not a member after the click: %v", err)
		}
		if got, _ := h.svc.Suggestions(ctx, "id-1", []string{"ada@sg.example"}); len(got) != 0 {
			t.Fatalf("a member is still offered the organization: %+v", got)
		}
		if _, err := h.svc.Join(ctx, "id-1", "sg.example"); err != nil {
			t.Fatalf("joining twice: %v", err)
		}
	})
}
