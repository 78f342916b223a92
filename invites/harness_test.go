package invites

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/identity/identitytest"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/mail"
	"github.com/kratos-orgs/kratos-orgs/mail/resendtest"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/outbox"
	"github.com/kratos-orgs/kratos-orgs/redisx"
	"github.com/kratos-orgs/kratos-orgs/templates"
	"github.com/kratos-orgs/kratos-orgs/tokens"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// clock is a settable time source shared by stores and worker.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// roundTrips counts commands and pipelines sent to Redis.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { r.n.Add(1); return next(ctx, cmd) }
}
func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { r.n.Add(1); return next(ctx, cmds) }
}

type harness struct {
	t      *testing.T
	ctx    context.Context
	rdb    redis.UniversalClient
	ks     redisx.Keyspace
	clock  *clock
	ids    *identitytest.Fake
	orgs   *orgs.Store
	svc    *Service
	worker *outbox.Worker
	resend *resendtest.Server
	index  *AddressIndex
	mailer *Mailer
	deliv  *Deliveries
	trips  *roundTrips
	org    orgs.Organization
}

const testAcceptURL = "https://orgs.example.com/invitations/accept/"

// newHarness runs on the package's redis-server, or on the shared Redis
// Cluster under TestCluster (cluster_test.go).
func newHarness(t *testing.T) *harness {
	t.Helper()
	if testenv.OnCluster(t) {
		return newHarnessOn(t, testenv.SharedCluster(t).Open(t))
	}
	r := testenv.SharedRedis(t)
	return newHarnessOn(t, r.Client(t))
}

func newHarnessOn(t *testing.T, rdb redis.UniversalClient) *harness {
	t.Helper()
	return newHarnessRecording(t, rdb, redisx.RecordOptions{})
}

// newHarnessRecording is newHarnessOn with the audit and event streams
// configured by rec.
func newHarnessRecording(t *testing.T, rdb redis.UniversalClient, rec redisx.RecordOptions) *harness {
	t.Helper()
	h := &harness{t: t, ctx: context.Background(), rdb: rdb, ks: redisx.Keyspace{Prefix: testenv.UniquePrefix(t), Record: rec},
		clock: &clock{now: time.Now().Truncate(time.Millisecond)}, ids: identitytest.New(), trips: &roundTrips{}}
	h.rdb.AddHook(h.trips)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	h.orgs = orgs.NewStore(h.rdb, h.ks, 24*time.Hour, h.clock.Now)
	store := NewStore(h.rdb, h.ks, 24*time.Hour, h.clock.Now)
	sealer, err := tokens.NewSealer([]string{"test-cipher-secret-0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	h.deliv = NewDeliveries(DeliveriesOptions{Invitations: store, Redis: h.rdb, Keys: h.ks, Now: h.clock.Now})
	h.worker = outbox.NewWorker(h.rdb, h.ks, outbox.Config{
		Concurrency: 4, PollInterval: 10 * time.Millisecond, MaxAttempts: 4,
		BaseBackoff: time.Second, MaxBackoff: time.Minute, ClaimAfter: time.Hour, Now: h.clock.Now,
		Batch: 2 * mail.MaxBatch, // as the server reads
	}, log)
	h.svc = NewService(ServiceOptions{
		Store: store, Orgs: h.orgs, Identities: h.ids, Sealer: sealer,
		Config: Config{
			TTL: 7 * 24 * time.Hour, MaxTTL: 30 * 24 * time.Hour, RemindInterval: time.Hour,
			AcceptURL: testAcceptURL, AllowedRedirectHosts: []string{"app.example.com"},
			Roles: orgs.Roles{"owner", "admin", "billing", "member"},
		},
		Log: log, Wake: h.worker.Wake, Now: h.clock.Now, Suppressions: h.deliv,
	})
	render, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	h.resend = resendtest.New(t, "re_test_key")
	sender, err := mail.NewResendSender(mail.ResendConfig{APIKey: "re_test_key", BaseURL: h.resend.URL(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h.index = NewAddressIndex(AddressIndexOptions{
		Invitations: store, Orgs: h.orgs, Placeholders: h.svc, Redis: h.rdb, Keys: h.ks, Now: h.clock.Now,
	})
	h.mailer = NewMailer(MailerOptions{
		Invitations: store, Tokens: h.svc, Links: h.svc, Identities: h.ids, Sender: sender, Templates: render,
		FromAddress: "invites@example.com", FromName: "Example", Now: h.clock.Now, Deliveries: h.deliv,
		Batches: NewMailBatches(h.rdb, h.ks, sealer),
	})
	h.mailer.Register(h.worker, h.index)
	h.org = h.newOrg("Acme & Co")
	return h
}

func (h *harness) newOrg(name string) orgs.Organization {
	h.t.Helper()
	o, err := h.orgs.Create(h.ctx, orgs.Organization{Name: name, Slug: orgs.Slugify(name), State: orgs.StateActive}, false, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return o
}

func (h *harness) invite(email string, mod ...func(*InviteRequest)) (Invitation, bool, error) {
	r := InviteRequest{Email: email, Role: "admin", Inviter: &Inviter{Name: "Ada Lovelace"}}
	for _, m := range mod {
		m(&r)
	}
	return h.svc.Invite(h.ctx, h.org.ID, r)
}

func (h *harness) mustInvite(email string, mod ...func(*InviteRequest)) Invitation {
	h.t.Helper()
	inv, _, err := h.invite(email, mod...)
	if err != nil {
		h.t.Fatalf("invite %s: %v", email, err)
	}
	return inv
}

// drain runs the worker until no job is left.
func (h *harness) drain() {
	h.t.Helper()
	for i := 0; i < 50; i++ {
		n, err := h.worker.RunOnce(h.ctx)
		if err != nil {
			h.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	h.t.Fatal("the outbox did not drain")
}

// keys counts the keys of this test's prefix.
func (h *harness) keys() []string {
	h.t.Helper()
	keys, err := testenv.Keys(h.ctx, h.rdb, h.ks.Prefix+"*")
	if err != nil {
		h.t.Fatal(err)
	}
	return keys
}

func (h *harness) tokenAlive(hash string, shard int) bool {
	id, err := h.svc.store.TokenInvitation(h.ctx, shard, hash)
	if err != nil {
		h.t.Fatal(err)
	}
	return id != ""
}

func mustCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := apperr.CodeOf(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

func sendEmail(b bool) func(*InviteRequest) { return func(r *InviteRequest) { r.SendEmail = &b } }
