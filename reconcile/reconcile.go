// Package reconcile repairs what a crash between two writes leaves behind.
//
// kratos-orgs writes across systems and hash slots in steps: a Kratos
// identity before the invitation that references it, an invitation before
// the per-address index its outbox job updates, a slug claim before the
// organization that owns it. Every step is idempotent and the outbox
// retries, so a crash normally heals itself; what it cannot heal (a
// placeholder whose invitation was never written, a job that was lost or
// dead-lettered) the reconciler finds by comparing the indexes with the
// records they are built from:
//
//   - pending: every pending invitation (the shards' due sets) is in its
//     address' index with its expiry;
//   - orgs: every listed organization exists (or is dropped from the
//     listing), owns its slug, its members are in their identity's index,
//     and a pending (registration) organization without a pending
//     invitation is deleted;
//   - slugs: every slug belongs to an organization that still has it;
//   - identities: paging through Kratos, each identity's organization and
//     address indexes hold nothing that the records do not, and a
//     placeholder kratos-orgs created that is still inactive and that
//     nothing references any more is deleted.
//
// Each phase keeps a cursor; one Step does at most Batch items of each
// phase, so a periodic run costs a bounded amount of work. Placeholders are
// judged only against indexes whose forward repair has completed a full pass
// since the placeholder's grace period ended.
package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/outbox"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// Kinds of fixes, the label of kratos_orgs_reconciler_fixes_total.
const (
	FixAddressMissing = "address_index_missing" // a pending invitation missing from its address' index
	FixAddressStale   = "address_index_stale"   // an address index entry without a pending invitation
	FixMemberMissing  = "member_index_missing"  // a membership missing from (or wrong in) its identity's index
	FixMemberStale    = "member_index_stale"    // an identity index entry without a membership
	FixSlugMissing    = "slug_missing"          // an organization whose slug is not in the slug index
	FixSlugStale      = "slug_stale"            // a slug of an organization that is gone or renamed
	FixListingStale   = "org_listing_stale"     // a listed organization that does not exist
	FixPendingOrg     = "pending_org"           // a registration's organization without its invitation
	FixPlaceholder    = "placeholder"           // an unreferenced placeholder identity, deleted
)

// IdentityLister pages through Kratos' identities (identity.Kratos).
type IdentityLister interface {
	ListPage(ctx context.Context, token string, size int) ([]identity.Listed, string, error)
}

// AddressIndex compares the per-address index with the invitations
// (invites.AddressIndex). RepairInvitation returns the address whose index
// lacked the invitation, "" when it was in step.
type AddressIndex interface {
	RepairInvitation(ctx context.Context, id string, apply bool) (string, error)
	RepairAddress(ctx context.Context, email string, apply bool) (int, error)
}

// MemberSyncer mirrors one membership into its identity's index, as the
// member.sync outbox job does (orgs.IdentityIndex).
type MemberSyncer interface {
	Handle(ctx context.Context, job outbox.Job) error
}

// PendingOrgs deletes an organization that was never activated.
type PendingOrgs interface {
	DeleteIfPending(ctx context.Context, id string) error
}

// PlaceholderReleaser deletes the placeholder identity kratos-orgs created
// for an address, but only if nothing references it any more; deleted is
// false when it kept it. The decision and the delete are its own, so that
// they cannot race with a new invitation for the address.
type PlaceholderReleaser interface {
	ReleasePlaceholder(ctx context.Context, email, identityID string) (deleted bool, err error)
}

// AccountRememberer makes an account's address known to the invitation
// path, so inviting it costs Kratos no call (invites.Service).
type AccountRememberer interface {
	RememberAccount(ctx context.Context, email, identityID string) error
}

// Observer counts fixes (metrics).
type Observer interface {
	ReconcilerFixed(kind string, n int)
}

// Options are the reconciler's dependencies and policy.
type Options struct {
	Redis      redis.UniversalClient
	Keyspace   redisx.Keyspace
	Identities IdentityLister
	Addresses  AddressIndex
	Members    MemberSyncer
	Orgs       PendingOrgs
	Releaser   PlaceholderReleaser
	// Accounts learns the address of every active account the identities
	// phase lists (applying only); nil: none.
	Accounts AccountRememberer
	Observer Observer // may be nil
	Log      *slog.Logger
	// Grace is how old a placeholder, a pending organization or a dangling
	// slug must be before it counts as left behind rather than in flight.
	Grace time.Duration
	// Batch bounds the items each phase handles in one Step.
	Batch int
	Now   func() time.Time
}

// Reconciler finds and repairs what crashes left behind.
type Reconciler struct {
	o Options
}

// New returns a reconciler.
func New(o Options) *Reconciler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Batch <= 0 {
		o.Batch = 100
	}
	return &Reconciler{o: o}
}

// Fix is one thing found out of step. Ref names records by id only (an
// organization, invitation or identity id, or a slug): never an address.
type Fix struct {
	Kind string
	Ref  string
}

// Report is what a run found (dry run) or fixed (apply).
type Report struct {
	Fixes  []Fix
	Counts map[string]int
}

func (r *Report) add(kind, ref string) {
	if r.Counts == nil {
		r.Counts = map[string]int{}
	}
	r.Counts[kind]++
	r.Fixes = append(r.Fixes, Fix{Kind: kind, Ref: ref})
}

// Total is the number of fixes.
func (r Report) Total() int { return len(r.Fixes) }

// state is where each phase stands. Start/Done times are unix ms: Done is
// the start of the last complete pass, so everything that existed then has
// been looked at.
type state struct {
	PendingShard  int    `json:"pending_shard"`
	PendingCursor uint64 `json:"pending_cursor"`
	PendingStart  int64  `json:"pending_start"`
	PendingDone   int64  `json:"pending_done"`
	OrgsAfter     string `json:"orgs_after"`
	OrgsStart     int64  `json:"orgs_start"`
	OrgsDone      int64  `json:"orgs_done"`
	SlugsCursor   uint64 `json:"slugs_cursor"`
	IDsToken      string `json:"identities_token"`

	// dry runs only: addresses and identities whose index would have
	// gained an entry, so a placeholder they keep is not reported
	wouldIndex  map[string]bool
	wouldMember map[string]bool
}

// Pass runs every phase from the start to the end of a full pass, batch by
// batch: the forward index repairs first, then the identities. With apply
// false nothing is written and the report says what would be fixed.
func (r *Reconciler) Pass(ctx context.Context, apply bool) (rep Report, err error) {
	defer func() { r.observe(rep, apply) }() // what was fixed counts, even if a later step failed
	st := &state{wouldIndex: map[string]bool{}, wouldMember: map[string]bool{}}
	for _, phase := range r.phases() {
		for done := false; !done; {
			if done, err = phase(ctx, st, apply, &rep); err != nil {
				return rep, err
			}
		}
	}
	return rep, nil
}

type phase func(ctx context.Context, st *state, apply bool, rep *Report) (done bool, err error)

// phases run in this order: forward repairs first, so that the identities
// phase judges placeholders against complete indexes.
func (r *Reconciler) phases() []phase { return []phase{r.pending, r.orgs, r.slugs, r.identities} }

// Step runs one bounded batch of every phase, continuing from the cursors
// the previous Step (on any replica) left in Redis, and saves them. It
// always applies: it is what serve runs periodically under the lease.
func (r *Reconciler) Step(ctx context.Context) (rep Report, err error) {
	defer func() { r.observe(rep, true) }()
	st, err := r.load(ctx)
	if err != nil {
		return rep, err
	}
	for _, phase := range r.phases() {
		if _, err := phase(ctx, st, true, &rep); err != nil {
			// Keep the progress made: every repair is idempotent anyway.
			return rep, errors.Join(err, r.save(context.WithoutCancel(ctx), st))
		}
	}
	return rep, r.save(ctx, st)
}

func (r *Reconciler) observe(rep Report, apply bool) {
	if !apply {
		return
	}
	for kind, n := range rep.Counts {
		if r.o.Observer != nil {
			r.o.Observer.ReconcilerFixed(kind, n)
		}
		r.o.Log.Info("reconciler fixed records", "kind", kind, "count", n)
	}
}

func (r *Reconciler) load(ctx context.Context) (*state, error) {
	st := &state{}
	raw, err := r.o.Redis.HGet(ctx, r.o.Keyspace.Reconcile(), "state").Result()
	if errors.Is(err, redis.Nil) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reconcile: read state: %w", err)
	}
	if err := json.Unmarshal([]byte(raw), st); err != nil {
		// A state we cannot read only costs a pass from the start.
		r.o.Log.Warn("reconciler state unreadable; starting over", "err", err)
		return &state{}, nil
	}
	return st, nil
}

func (r *Reconciler) save(ctx context.Context, st *state) error {
	b, _ := json.Marshal(st)
	if err := r.o.Redis.HSet(ctx, r.o.Keyspace.Reconcile(), "state", string(b)).Err(); err != nil {
		return fmt.Errorf("reconcile: save state: %w", err)
	}
	return nil
}

// old reports whether t is older than the grace period.
func (r *Reconciler) old(t time.Time) bool {
	return !t.IsZero() && t.Before(r.o.Now().Add(-r.o.Grace))
}
