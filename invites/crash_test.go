package invites_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/outbox"
	"github.com/kratos-orgs/kratos-orgs/reconcile"
	"github.com/kratos-orgs/kratos-orgs/redisx"
	"github.com/kratos-orgs/kratos-orgs/tokens"
)

// crashWorld is kratos-orgs' invitation and registration backends over a
// real Redis and a real Kratos, with a reconciler, and what a test wrote.
type crashWorld struct {
	t      *testing.T
	ctx    context.Context
	rdb    redis.UniversalClient
	ks     redisx.Keyspace
	kratos *identity.Kratos
	orgs   *orgs.Store
	svc    *invites.Service
	reg    *invites.Registrar
	worker *outbox.Worker
	rec    *reconcile.Reconciler
	skew   atomic.Int64 // how far the invitation backend's clock is ahead (later)
	org    orgs.Organization

	emails []string // every address the test used
}

var errCrash = errors.New("crash injected")

func newCrashWorld(t *testing.T, k *testenv.Kratos, grace time.Duration) *crashWorld {
	t.Helper()
	w := &crashWorld{t: t, ctx: context.Background(), rdb: testenv.SharedRedis(t).Client(t),
		ks: redisx.Keyspace{Prefix: testenv.UniquePrefix(t)}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w.kratos = identity.New(identity.Config{AdminURL: k.AdminURL, PublicURL: k.PublicURL, SchemaID: "default",
		EmailTrait: "email", NameTrait: "name", Timeout: 10 * time.Second}, nil)
	w.orgs = orgs.NewStore(w.rdb, w.ks, 24*time.Hour, nil)
	sealer, err := tokens.NewSealer([]string{"test-cipher-secret-0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	w.worker = outbox.NewWorker(w.rdb, w.ks, outbox.Config{Concurrency: 2, PollInterval: 10 * time.Millisecond,
		MaxAttempts: 3, BaseBackoff: time.Second, MaxBackoff: time.Minute, ClaimAfter: time.Hour}, log)
	w.svc = invites.NewService(invites.ServiceOptions{
		Store: invites.NewStore(w.rdb, w.ks, 24*time.Hour, nil), Orgs: w.orgs, Identities: w.kratos, Sealer: sealer,
		Config: invites.Config{
			TTL: 24 * time.Hour, MaxTTL: 30 * 24 * time.Hour, RemindInterval: time.Hour,
			AcceptURL: "https://orgs.example.com/invitations/accept/", Roles: orgs.Roles{"owner", "admin", "member"},
		},
		Log: log, Now: func() time.Time { return time.Now().Add(time.Duration(w.skew.Load())) },
	})
	w.reg = invites.NewRegistrar(invites.RegistrarOptions{
		Service: w.svc, Orgs: w.orgs, Outbox: w.worker, Redis: w.rdb, Keys: w.ks,
	})
	addresses := invites.NewAddressIndex(invites.AddressIndexOptions{
		Invitations: w.svc.Store(), Orgs: w.orgs, Placeholders: w.svc, Redis: w.rdb, Keys: w.ks,
	})
	members := orgs.NewIdentityIndex(w.rdb, w.ks, nil)
	members.Register(w.worker)
	w.worker.Handle("invitation.sync", addresses.Handle, nil)
	w.worker.Handle("mail", func(context.Context, outbox.Job) error { return nil }, nil)
	w.rec = reconcile.New(reconcile.Options{
		Redis: w.rdb, Keyspace: w.ks, Identities: w.kratos, Addresses: addresses, Members: members, Orgs: w.orgs,
		Releaser: w.svc, // the atomic claim of invites/placeholders.go, as serve wires it
		Log:      log, Grace: grace, Batch: 2,
	})
	w.org, err = w.orgs.Create(w.ctx, orgs.Organization{Name: "Acme", Slug: "acme", State: orgs.StateActive}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *crashWorld) email(label string) string {
	e := fmt.Sprintf("%s-%d@example.com", label, len(w.emails))
	w.emails = append(w.emails, e)
	return e
}

// drain runs the outbox jobs queued so far, as a live worker would.
func (w *crashWorld) drain() {
	w.t.Helper()
	for range 50 {
		n, err := w.worker.RunOnce(w.ctx)
		if err != nil {
			w.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	w.t.Fatal("the outbox did not drain")
}

// later moves the invitation backend's clock past the deadline by which a
// crashed operation's invitation reference counts as dead (the reconciler
// runs long after a crash; its own grace period is 0 in these tests).
func (w *crashWorld) later() {
	w.skew.Store(int64(2 * time.Hour))
}

// dropJobs loses every queued job, as a dead-lettered or lost job would.
func (w *crashWorld) dropJobs() {
	for s := range redisx.Shards {
		if err := w.rdb.Del(w.ctx, w.ks.Outbox(s), w.ks.OutboxDelayed(s)).Err(); err != nil {
			w.t.Fatal(err)
		}
	}
}

// validState writes what the reconciler must never touch: a pending
// invitation for a new address (a placeholder), an inactive placeholder
// that is a member, and an existing person's pending invitation.
type validState struct {
	invitation invites.Invitation
	member     string // identity id
	existing   invites.Invitation
}

func (w *crashWorld) valid() validState {
	w.t.Helper()
	var v validState
	var err error
	if v.invitation, _, err = w.svc.Invite(w.ctx, w.org.ID, invites.InviteRequest{Email: w.email("valid")}); err != nil {
		w.t.Fatal(err)
	}
	memberEmail := w.email("member")
	m, err := w.kratos.CreateInvited(w.ctx, memberEmail, map[string]any{"created": true})
	if err != nil {
		w.t.Fatal(err)
	}
	if _, _, err := w.orgs.AddMember(w.ctx, w.org.ID, orgs.Member{IdentityID: m.ID, Email: memberEmail, Role: "member"}); err != nil {
		w.t.Fatal(err)
	}
	v.member = m.ID
	existingEmail := w.email("existing")
	if _, err := w.kratos.CreateInvited(w.ctx, existingEmail, map[string]any{"created": false}); err != nil {
		w.t.Fatal(err)
	}
	if v.existing, _, err = w.svc.Invite(w.ctx, w.org.ID, invites.InviteRequest{Email: existingEmail}); err != nil {
		w.t.Fatal(err)
	}
	w.drain()
	return v
}

// crashAt runs op with a crash injected at step and checks it crashed.
func (w *crashWorld) crashAt(step string, op func() error) {
	w.t.Helper()
	invites.SetCrashHook(w.svc, func(s string) error {
		if s == step {
			return errCrash
		}
		return nil
	})
	defer invites.SetCrashHook(w.svc, nil)
	if err := op(); !errors.Is(err, errCrash) {
		w.t.Fatalf("%s: the operation did not reach its crash point: %v", step, err)
	}
}

// orgIDs lists every organization record by walking the slug index and the
// listing (test-sized data: both are complete here).
func (w *crashWorld) orgIDs() []string {
	ids, err := w.rdb.ZRange(w.ctx, w.ks.Orgs(), 0, -1).Result()
	if err != nil {
		w.t.Fatal(err)
	}
	var out []string
	for _, id := range ids {
		if n, _ := w.rdb.Exists(w.ctx, w.ks.Org(id)).Result(); n == 1 {
			out = append(out, id)
		}
	}
	return out
}

// violations checks the invariants: every placeholder is referenced, every
// pending invitation's identity exists, the indexes equal the records.
func (w *crashWorld) violations() []string {
	w.t.Helper()
	ctx, now := w.ctx, time.Now()
	var bad []string
	orgIDs := w.orgIDs()
	pendingFor := map[string]map[string]string{} // email → org → identity id
	memberOf := map[string]map[string]string{}   // identity → org → role
	for _, org := range orgIDs {
		byEmail, _ := w.rdb.HGetAll(ctx, w.ks.Org(org)+":inv:email").Result()
		for email, id := range byEmail {
			inv, err := w.svc.Get(ctx, id)
			if err != nil || inv.Status != invites.Pending {
				continue
			}
			if pendingFor[email] == nil {
				pendingFor[email] = map[string]string{}
			}
			pendingFor[email][org] = inv.IdentityID
			if who, err := w.kratos.Get(ctx, inv.IdentityID); err != nil || who == nil {
				bad = append(bad, "pending invitation "+id+" points at a missing identity")
			}
		}
		if o, err := w.orgs.Get(ctx, org); err == nil && o.State == orgs.StatePending && !hasPending(pendingFor, org) {
			bad = append(bad, "pending organization "+org+" has no pending invitation: nobody can activate it")
		}
		members, _ := w.rdb.HGetAll(ctx, w.ks.Org(org)+":members").Result()
		for who, raw := range members {
			if memberOf[who] == nil {
				memberOf[who] = map[string]string{}
			}
			memberOf[who][org] = roleOf(raw)
		}
	}
	for _, email := range w.emails {
		idx, _ := w.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: w.ks.AddressPending(email), ByScore: true,
			Start: "(" + strconv.FormatInt(now.UnixMilli(), 10), Stop: "+inf"}).Result()
		want := slices.Sorted(maps.Keys(pendingFor[email]))
		if slices.Sort(idx); !slices.Equal(idx, want) {
			bad = append(bad, fmt.Sprintf("address index of %s is %v, records say %v", email, idx, want))
		}
	}
	token := ""
	for {
		page, next, err := w.kratos.ListPage(ctx, token, 50)
		if err != nil {
			w.t.Fatal(err)
		}
		for _, l := range page {
			idx, _ := w.rdb.HGetAll(ctx, w.ks.IdentityOrgs(l.ID)).Result()
			if !maps.Equal(idx, memberOf[l.ID]) && len(idx)+len(memberOf[l.ID]) > 0 {
				bad = append(bad, fmt.Sprintf("identity index of %s is %v, records say %v", l.ID, idx, memberOf[l.ID]))
			}
			if l.CreatedByUs && l.State == "inactive" && len(pendingFor[l.Email]) == 0 && len(memberOf[l.ID]) == 0 {
				bad = append(bad, "placeholder "+l.ID+" is referenced by nothing")
			}
		}
		if next == "" || len(page) == 0 {
			break
		}
		token = next
	}
	slugs, _ := w.rdb.HGetAll(ctx, w.ks.Slugs()).Result()
	for _, org := range orgIDs {
		o, err := w.orgs.Get(ctx, org)
		if err != nil {
			w.t.Fatal(err)
		}
		if slugs[o.Slug] != org {
			bad = append(bad, "slug "+o.Slug+" does not lead to its organization")
		}
	}
	for slug, org := range slugs {
		if o, err := w.orgs.Get(ctx, org); err != nil || o.Slug != slug {
			bad = append(bad, "slug "+slug+" leads to no organization with it")
		}
	}
	return bad
}

func hasPending(pendingFor map[string]map[string]string, org string) bool {
	for _, byOrg := range pendingFor {
		if _, ok := byOrg[org]; ok {
			return true
		}
	}
	return false
}

func roleOf(raw string) string {
	var m struct {
		Role string `json:"role"`
	}
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return "?"
	}
	return m.Role
}

// checkValid fails when the reconciler touched valid state.
func (w *crashWorld) checkValid(v validState) {
	w.t.Helper()
	for _, inv := range []invites.Invitation{v.invitation, v.existing} {
		got, err := w.svc.Get(w.ctx, inv.ID)
		if err != nil || got.Status != invites.Pending {
			w.t.Errorf("valid invitation %s is no longer pending: %v %v", inv.ID, got.Status, err)
		}
		if who, err := w.kratos.Get(w.ctx, inv.IdentityID); err != nil || who == nil {
			w.t.Errorf("the identity of valid invitation %s was deleted", inv.ID)
		}
	}
	if who, err := w.kratos.Get(w.ctx, v.member); err != nil || who == nil {
		w.t.Errorf("member %s was deleted", v.member)
	}
	if ok, _ := w.rdb.HExists(w.ctx, w.ks.Org(w.org.ID)+":members", v.member).Result(); !ok {
		w.t.Errorf("member %s lost its membership", v.member)
	}
}

// TestCrashAtEachStepThenReconcile stops invite and register at each step
// between their writes (as a process dying there would, with no undo and
// with the outbox jobs the step queued lost), then runs the reconciler
// against the real Redis and Kratos: nothing is left orphaned, the indexes
// equal the records, nothing valid is touched, a second run finds nothing,
// and a dry run before it found exactly what the run then fixed.
func TestCrashAtEachStepThenReconcile(t *testing.T) {
	steps := []struct {
		step   string
		op     func(w *crashWorld) error
		placed bool // the crash leaves a placeholder nobody references
	}{
		{invites.CrashInviteIdentity, func(w *crashWorld) error {
			_, _, err := w.svc.Invite(w.ctx, w.org.ID, invites.InviteRequest{Email: w.email("invite")})
			return err
		}, true},
		{invites.CrashInviteWritten, func(w *crashWorld) error {
			_, _, err := w.svc.Invite(w.ctx, w.org.ID, invites.InviteRequest{Email: w.email("invite")})
			return err
		}, false},
		{invites.CrashRegisterIdentity, func(w *crashWorld) error {
			return w.reg.Register(w.ctx, invites.RegisterRequest{OrganizationName: "Crash Co", Email: w.email("register")})
		}, true},
		{invites.CrashRegisterOrg, func(w *crashWorld) error {
			return w.reg.Register(w.ctx, invites.RegisterRequest{OrganizationName: "Crash Co", Email: w.email("register")})
		}, true},
		{invites.CrashRegisterWritten, func(w *crashWorld) error {
			return w.reg.Register(w.ctx, invites.RegisterRequest{OrganizationName: "Crash Co", Email: w.email("register")})
		}, false},
	}
	const trials = 5
	var total, deleted int
	for _, tc := range steps {
		t.Run(tc.step, func(t *testing.T) {
			// Its own Kratos: the reconciler owns every identity it lists.
			w := newCrashWorld(t, testenv.StartKratos(t, nil), 0)
			v := w.valid()
			for range trials {
				w.crashAt(tc.step, func() error { return tc.op(w) })
				total++
			}
			w.dropJobs()
			w.later()
			dry, err := w.rec.Pass(w.ctx, false)
			if err != nil {
				t.Fatal(err)
			}
			applied, err := w.rec.Pass(w.ctx, true)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(dry.Counts, applied.Counts) {
				t.Errorf("the dry run reported %v, the run fixed %v", dry.Counts, applied.Counts)
			}
			want := 0
			if tc.placed {
				want = trials
			}
			if got := applied.Counts[reconcile.FixPlaceholder]; got != want {
				t.Errorf("deleted %d placeholders, want %d (fixes: %v)", got, want, applied.Counts)
			}
			deleted += applied.Counts[reconcile.FixPlaceholder]
			for _, v := range w.violations() {
				t.Error(v)
			}
			w.checkValid(v)
			again, err := w.rec.Pass(w.ctx, true)
			if err != nil {
				t.Fatal(err)
			}
			if again.Total() != 0 {
				t.Errorf("a second run still fixed %v: not idempotent", again.Counts)
			}
			t.Logf("%s: %d crashes, fixes %v", tc.step, trials, applied.Counts)
		})
	}
	t.Logf("crash trials: %d over %d steps; placeholders deleted: %d", total, len(steps), deleted)
}

// TestReconcilerSparesYoungPlaceholders: within the grace period a
// placeholder may belong to an invitation being written right now.
func TestReconcilerSparesYoungPlaceholders(t *testing.T) {
	k := testenv.StartKratos(t, nil)
	w := newCrashWorld(t, k, time.Hour)
	w.crashAt(invites.CrashInviteIdentity, func() error {
		_, _, err := w.svc.Invite(w.ctx, w.org.ID, invites.InviteRequest{Email: w.email("young")})
		return err
	})
	rep, err := w.rec.Pass(w.ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if n := rep.Counts[reconcile.FixPlaceholder]; n != 0 {
		t.Fatalf("deleted %d placeholders younger than the grace period", n)
	}
	found, err := w.kratos.FindByEmail(w.ctx, w.emails[0])
	if err != nil || found == nil {
		t.Fatalf("the young placeholder is gone: %v", err)
	}
}

// TestReconcilerDropsStaleIndexEntries: index entries the records do not
// back (a lost removal job, a rename that crashed before releasing the old
// slug) are dropped, missing ones restored, wrong ones corrected; a
// placeholder kept alive only by a stale entry is deleted in the same pass.
func TestReconcilerDropsStaleIndexEntries(t *testing.T) {
	w := newCrashWorld(t, testenv.StartKratos(t, nil), 0)
	v := w.valid()
	ctx := w.ctx
	ghost := redisx.NewID("org", 5, time.Now().Add(-2*time.Hour))
	far := float64(time.Now().Add(time.Hour).UnixMilli())
	w.crashAt(invites.CrashInviteIdentity, func() error {
		_, _, err := w.svc.Invite(ctx, w.org.ID, invites.InviteRequest{Email: w.email("orphan")})
		return err
	})
	orphan := w.emails[len(w.emails)-1]
	memberEmail := w.emails[1]
	for _, email := range []string{w.emails[0], orphan, memberEmail} {
		w.rdb.ZAdd(ctx, w.ks.AddressPending(email), redis.Z{Score: far, Member: ghost})
	}
	w.rdb.HSet(ctx, w.ks.IdentityOrgs(v.member), ghost, "admin", w.org.ID, "owner") // stale, and the wrong role
	w.rdb.HSet(ctx, w.ks.Slugs(), "acme-old", w.org.ID)                             // a rename that crashed
	w.rdb.HDel(ctx, w.ks.Slugs(), "acme")                                           // a lost claim

	w.later()
	rep, err := w.rec.Pass(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		reconcile.FixAddressStale: 3, reconcile.FixMemberStale: 1, reconcile.FixMemberMissing: 1,
		reconcile.FixSlugStale: 1, reconcile.FixSlugMissing: 1, reconcile.FixPlaceholder: 1,
	}
	if !maps.Equal(rep.Counts, want) {
		t.Errorf("fixed %v, want %v", rep.Counts, want)
	}
	for _, v := range w.violations() {
		t.Error(v)
	}
	w.checkValid(v)
	if role, _ := w.rdb.HGet(ctx, w.ks.IdentityOrgs(v.member), w.org.ID).Result(); role != "member" {
		t.Errorf("the member's indexed role is %q", role)
	}
	if again, err := w.rec.Pass(ctx, true); err != nil || again.Total() != 0 {
		t.Errorf("a second run: %v %v", again.Counts, err)
	}
}
