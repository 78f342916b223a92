package orgs

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// backends are the Redis implementations the store must work on: a real
// redis-server, and the embedded one `make dev` falls back to.
var backends = map[string]func(t *testing.T) redis.UniversalClient{
	"redis-server": func(t *testing.T) redis.UniversalClient { return testenv.SharedRedis(t).Client(t) },
	"embedded": func(t *testing.T) redis.UniversalClient {
		m := miniredis.RunT(t)
		c := redis.NewClient(&redis.Options{Addr: m.Addr()})
		t.Cleanup(func() { _ = c.Close() })
		return c
	},
}

func newTestStore(t *testing.T, backend string) (*Store, redis.UniversalClient, redisx.Keyspace) {
	t.Helper()
	rdb := backends[backend](t)
	ks := redisx.Keyspace{Prefix: testenv.UniquePrefix(t)}
	return NewStore(rdb, ks, time.Hour, nil), rdb, ks
}

func forEachBackend(t *testing.T, f func(t *testing.T, backend string)) {
	names := []string{"redis-server", "embedded"}
	if testenv.OnCluster(t) {
		names = []string{"cluster"} // TestCluster (cluster_test.go)
	}
	for _, b := range names {
		t.Run(b, func(t *testing.T) { t.Parallel(); f(t, b) })
	}
}

func mustCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := apperr.CodeOf(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

func TestStoreCreateGetAndSlugs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s, _, _ := newTestStore(t, backend)
		ctx := context.Background()
		a, err := s.Create(ctx, Organization{Name: "Acme", Slug: "acme", State: StateActive, Metadata: map[string]any{"plan": "pro"}}, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a.Slug != "acme" || a.State != StateActive || a.Metadata["plan"] != "pro" || a.CreatedAt.IsZero() {
			t.Fatalf("created %+v", a)
		}
		b, err := s.Create(ctx, Organization{Name: "Acme", Slug: "acme", State: StateActive}, false, nil)
		if err != nil || b.Slug != "acme-2" {
			t.Fatalf("second derived slug = %q, %v; want acme-2", b.Slug, err)
		}
		_, err = s.Create(ctx, Organization{Name: "Other", Slug: "acme", State: StateActive}, true, nil)
		mustCode(t, err, "slug_taken")

		for _, ref := range []string{a.ID, "acme"} {
			got, err := s.Resolve(ctx, ref)
			if err != nil || got.ID != a.ID {
				t.Fatalf("Resolve(%q) = %v, %v", ref, got.ID, err)
			}
		}
		for _, ref := range []string{"nope", "org_00000000000000000000000000", "NOT A SLUG", ""} {
			_, err := s.Resolve(ctx, ref)
			mustCode(t, err, "organization_not_found")
		}
	})
}

func TestStoreConcurrentSlugsAreUnique(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s, _, _ := newTestStore(t, backend)
		const n = 20
		slugs := make(chan string, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o, err := s.Create(context.Background(), Organization{Name: "Same", Slug: "same", State: StateActive}, false, nil)
				if err != nil {
					t.Error(err)
					return
				}
				slugs <- o.Slug
			}()
		}
		wg.Wait()
		close(slugs)
		seen := map[string]bool{}
		for sl := range slugs {
			if seen[sl] {
				t.Fatalf("slug %q handed out twice", sl)
			}
			seen[sl] = true
		}
		if len(seen) != n || !seen["same"] || !seen["same-5"] || seen["same-6"] {
			t.Fatalf("slugs = %v", seen)
		}
		random := 0
		for sl := range seen {
			if regexp.MustCompile(`^same-[a-z0-9]{5}$`).MatchString(sl) {
				random++
			}
		}
		if random != n-numberedSlugTries {
			t.Fatalf("%d random-suffix slugs, want %d: %v", random, n-numberedSlugTries, seen)
		}
	})
}

// Slug probing is bounded: after a handful of numbered tries a random
// suffix, so a popular name costs the same as a new one, and every
// derived slug resolves.
func TestStoreSlugProbingIsBounded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s, _, _ := newTestStore(t, backend)
		ctx := context.Background()
		const n = 200
		seen := map[string]bool{}
		for i := 0; i < n; i++ {
			o, err := s.Create(ctx, Organization{Name: "Popular", Slug: "popular", State: StateActive}, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			if seen[o.Slug] || len(o.Slug) > 64 {
				t.Fatalf("slug %q (duplicate or too long)", o.Slug)
			}
			seen[o.Slug] = true
			if got, err := s.Resolve(ctx, o.Slug); err != nil || got.ID != o.ID {
				t.Fatalf("Resolve(%q) = %v, %v", o.Slug, got.ID, err)
			}
		}
		numbered := 0
		for i := 2; i <= n; i++ {
			if seen[fmt.Sprintf("popular-%d", i)] {
				numbered++
			}
		}
		t.Logf("%d organizations named alike: %d numbered slugs, %d random suffixes", n, numbered+1, n-numbered-1)
		if numbered != numberedSlugTries-1 {
			t.Fatalf("%d numbered slugs beyond the base, want %d", numbered, numberedSlugTries-1)
		}
	})
}

func TestStoreListPaginates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s, _, _ := newTestStore(t, backend)
		ctx := context.Background()
		var want []string
		for i := 0; i < 7; i++ {
			o, err := s.Create(ctx, Organization{Name: fmt.Sprintf("Org %d", i), Slug: fmt.Sprintf("org-%d", i), State: StateActive}, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, o.ID)
			time.Sleep(2 * time.Millisecond) // ids order by millisecond
		}
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			p, err := s.List(ctx, cursor, 3)
			if err != nil {
				t.Fatal(err)
			}
			if p.Total != 7 {
				t.Fatalf("total = %d", p.Total)
			}
			for _, o := range p.Items {
				got = append(got, o.ID)
			}
			if p.NextCursor == "" {
				if pages != 2 {
					t.Fatalf("pages = %d, want 3", pages+1)
				}
				break
			}
			cursor = p.NextCursor
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("listed %v, want creation order %v", got, want)
		}
	})
}

func TestStoreUpdate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s, _, _ := newTestStore(t, backend)
		ctx := context.Background()
		a, _ := s.Create(ctx, Organization{Name: "A", Slug: "a", State: StateActive}, true, nil)
		b, _ := s.Create(ctx, Organization{Name: "B", Slug: "b", State: StateActive}, true, nil)
		name, slug := "A renamed", "a-new"
		got, err := s.Update(ctx, a.ID, Update{Name: &name, Slug: &slug, Metadata: map[string]any{"k": "v"}})
		if err != nil || got.Name != name || got.Slug != slug || got.Metadata["k"] != "v" {
			t.Fatalf("update = %+v, %v", got, err)
		}
		if _, err := s.Resolve(ctx, "a"); apperr.CodeOf(err) != "organization_not_found" {
			t.Fatalf("old slug still resolves: %v", err)
		}
		taken := "b"
		_, err = s.Update(ctx, a.ID, Update{Slug: &taken})
		mustCode(t, err, "slug_taken")
		if again, _ := s.Resolve(ctx, "b"); again.ID != b.ID {
			t.Fatal("a failed slug change moved another organization's slug")
		}
		_, err = s.Update(ctx, "org_0000000000000000000000000g", Update{Name: &name})
		mustCode(t, err, "organization_not_found")
	})
}

func TestStoreMembersAndLastOwner(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s, rdb, ks := newTestStore(t, backend)
		ctx := context.Background()
		o, err := s.Create(ctx, Organization{Name: "M", Slug: "m", State: StateActive}, true, &Member{IdentityID: "id-owner", Email: "o@x.io"})
		if err != nil {
			t.Fatal(err)
		}
		m, added, err := s.AddMember(ctx, o.ID, Member{IdentityID: "id-b", Email: "b@x.io", Role: "member"})
		if err != nil || !added || m.Role != "member" || m.Email != "b@x.io" {
			t.Fatalf("add = %+v %v %v", m, added, err)
		}
		if _, added, _ := s.AddMember(ctx, o.ID, Member{IdentityID: "id-b", Role: "admin"}); added {
			t.Fatal("adding an existing member must not add it again")
		}
		_, err = s.RemoveMember(ctx, o.ID, "id-owner")
		mustCode(t, err, "last_owner")
		_, err = s.SetRole(ctx, o.ID, "id-owner", "admin")
		mustCode(t, err, "last_owner")
		if m, err := s.SetRole(ctx, o.ID, "id-b", "owner"); err != nil || m.Role != "owner" {
			t.Fatalf("promote = %+v %v", m, err)
		}
		if m, err := s.SetRole(ctx, o.ID, "id-owner", "member"); err != nil || m.Role != "member" {
			t.Fatalf("demote now that another owner exists = %+v %v", m, err)
		}
		_, err = s.SetRole(ctx, o.ID, "nobody", "admin")
		mustCode(t, err, "member_not_found")

		// Pagination over members.
		for i := 0; i < 5; i++ {
			if _, _, err := s.AddMember(ctx, o.ID, Member{IdentityID: fmt.Sprintf("id-c%d", i), Role: "member"}); err != nil {
				t.Fatal(err)
			}
		}
		seen := 0
		cursor := ""
		for {
			p, err := s.Members(ctx, o.ID, cursor, 2)
			if err != nil {
				t.Fatal(err)
			}
			if p.Total != 7 {
				t.Fatalf("total = %d", p.Total)
			}
			seen += len(p.Items)
			if p.NextCursor == "" {
				break
			}
			cursor = p.NextCursor
		}
		if seen != 7 {
			t.Fatalf("paged %d members, want 7", seen)
		}
		if _, err := s.RemoveMember(ctx, o.ID, "id-c0"); err != nil {
			t.Fatal(err)
		}
		_, err = s.Member(ctx, o.ID, "id-c0")
		mustCode(t, err, "member_not_found")

		// Every change queued a member.sync job in the organization's shard.
		n, err := rdb.XLen(ctx, ks.Outbox(redisx.ShardOf(o.ID))).Result()
		if err != nil || n < 8 {
			t.Fatalf("outbox holds %d jobs (%v), want one per membership change", n, err)
		}
	})
}

func TestStoreDeleteRemovesEverything(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s, rdb, ks := newTestStore(t, backend)
		ctx := context.Background()
		o, _ := s.Create(ctx, Organization{Name: "D", Slug: "d", State: StateActive}, true, &Member{IdentityID: "id-1"})
		if _, err := s.Delete(ctx, o.ID); err != nil {
			t.Fatal(err)
		}
		_, err := s.Get(ctx, o.ID)
		mustCode(t, err, "organization_not_found")
		_, err = s.Resolve(ctx, "d")
		mustCode(t, err, "organization_not_found")
		if ok, _ := s.Exists(ctx, o.ID); ok {
			t.Fatal("Exists after delete")
		}
		if n, _ := rdb.Exists(ctx, ks.Org(o.ID)+":members", ks.Org(o.ID)+":owners").Result(); n != 0 {
			t.Fatal("membership keys survived the delete")
		}
		p, _ := s.List(ctx, "", 10)
		if p.Total != 0 {
			t.Fatalf("deleted organization still listed: %+v", p)
		}
		// The slug is free again.
		if again, err := s.Create(ctx, Organization{Name: "D", Slug: "d", State: StateActive}, true, nil); err != nil || again.Slug != "d" {
			t.Fatalf("recreate = %v %v", again.Slug, err)
		}
		_, err = s.Delete(ctx, o.ID)
		mustCode(t, err, "organization_not_found")
	})
}

func TestStoreUnavailable(t *testing.T) {
	// A Redis that is not there maps to 503 redis_unavailable, not 500.
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	s := NewStore(c, redisx.Keyspace{Prefix: "x:"}, time.Hour, nil)
	_, err := s.Create(context.Background(), Organization{Name: "X", Slug: "x", State: StateActive}, false, nil)
	if apperr.KindOf(err) != apperr.Unavailable {
		t.Fatalf("err = %v, want unavailable", err)
	}
}
