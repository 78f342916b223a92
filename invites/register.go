package invites

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/outbox"
	"github.com/kratos-orgs/kratos-orgs/redisx"
	"github.com/kratos-orgs/kratos-orgs/tokens"
)

// OrgRegistry is what registration needs to create organizations.
type OrgRegistry interface {
	Create(ctx context.Context, o orgs.Organization, explicitSlug bool, owner *orgs.Member) (orgs.Organization, error)
	SlugTaken(ctx context.Context, slug string) (bool, error)
	DeleteIfPending(ctx context.Context, id string) error
}

// Enqueuer adds a job to the outbox.
type Enqueuer interface {
	Enqueue(ctx context.Context, shard int, job outbox.Job) error
}

// Registrar is the registration backend: a new person signs up with a new
// organization and activates both from a mailed link.
type Registrar struct {
	svc      *Service
	orgs     OrgRegistry
	outbox   Enqueuer
	rdb      redis.UniversalClient
	ks       redisx.Keyspace
	cooldown time.Duration
	opt      RegistrarOptions
}

// RegistrarOptions are registration's dependencies and its own policy.
type RegistrarOptions struct {
	Service *Service
	Orgs    OrgRegistry
	Outbox  Enqueuer
	Redis   redis.UniversalClient // the per-address sign-up cooldown
	Keys    redisx.Keyspace

	// PendingTTL is the life of an activation link; an organization never
	// activated is deleted with its placeholder identity when it ends.
	// Zero: the invitation TTL.
	PendingTTL time.Duration
	// CheckAddress is asked before anything is done for an address (the
	// per-address sign-up quota); its error refuses the sign-up.
	CheckAddress func(ctx context.Context, email string) error
}

func (r *Registrar) pendingTTL() time.Duration {
	if r.opt.PendingTTL > 0 {
		return r.opt.PendingTTL
	}
	return r.svc.cfg.TTL
}

// NewRegistrar wires registration.
func NewRegistrar(o RegistrarOptions) *Registrar {
	return &Registrar{svc: o.Service, orgs: o.Orgs, outbox: o.Outbox, rdb: o.Redis, ks: o.Keys, cooldown: time.Minute, opt: o}
}

// RegisterRequest is the sign-up form.
type RegisterRequest struct {
	OrganizationName string
	Slug             string
	Email            string
	// Locale is the sign-up page's locale, the activation mail's.
	Locale string
}

// Register signs up a new organization. It answers the same way whether or
// not the address has an account: a person new to Kratos gets an activation
// link; an existing one gets a mail telling them to log in and create the
// organization from there. Repeats for an address within a minute are
// ignored, so the form cannot be used to flood a mailbox.
func (r *Registrar) Register(ctx context.Context, req RegisterRequest) error {
	name, email, slug, err := r.check(ctx, req)
	if err != nil {
		return err
	}
	explicit := req.Slug != ""
	first, err := r.rdb.SetNX(ctx, r.ks.AddressSignupCooldown(email), "1", r.cooldown).Result()
	if err != nil {
		return storeErr(err)
	}
	if !first {
		return nil
	}
	if r.opt.CheckAddress != nil {
		if err := r.opt.CheckAddress(ctx, email); err != nil {
			return err
		}
	}
	// A provisional reference holds the address' placeholder from the
	// look-up on (see placeholders.go); the invitation's own replaces it.
	provisional := "reg_" + nonce()
	takeover, referenced, err := r.svc.reference(ctx, email, "", provisional)
	if err != nil {
		return err
	}
	defer r.svc.forget(ctx, email, provisional)
	person, err := r.svc.ids.FindByEmail(ctx, email)
	if err != nil {
		return err
	}
	placeholder := person != nil && person.CreatedByUs && person.State == "inactive"
	if (person != nil && !placeholder) || takeover {
		// An account, or one being created through Kratos right now.
		return r.outbox.Enqueue(ctx, redisx.RandomShard(), outbox.Job{Kind: "notice", Ref: email, Template: "activation", Name: name})
	}
	createdNow := false
	if person == nil {
		person, err = r.svc.ids.CreateInvited(ctx, email, map[string]any{"created": true, "registration": true, "created_at": r.svc.now().UTC().Format(time.RFC3339)})
		if err != nil {
			return err
		}
		createdNow = true
	}
	undo := func(cause error) error {
		if createdNow {
			r.svc.forget(ctx, email, provisional)
			r.svc.releaseQuietly(ctx, email, person.ID)
		}
		return cause
	}
	if err := r.svc.crash(CrashRegisterIdentity); err != nil {
		return err
	}
	return r.write(ctx, registration{name: name, slug: slug, explicit: explicit, email: email,
		person: person, referenced: referenced, undo: undo, locale: req.Locale})
}

// check validates a sign-up form: the organization name, the address and
// an explicit slug, which must be free.
func (r *Registrar) check(ctx context.Context, req RegisterRequest) (name, email, slug string, err error) {
	if name, err = orgs.CheckName(req.OrganizationName); err != nil {
		return "", "", "", err
	}
	if email, err = NormalizeEmail(req.Email); err != nil {
		return "", "", "", err
	}
	slug = orgs.Slugify(name)
	if req.Slug == "" {
		return name, email, slug, nil
	}
	if err := orgs.CheckSlug(req.Slug); err != nil {
		return "", "", "", err
	}
	// Checked before anything depends on the address, so the answer does
	// not reveal whether it has an account.
	taken, err := r.orgs.SlugTaken(ctx, req.Slug)
	if err != nil {
		return "", "", "", err
	}
	if taken {
		return "", "", "", apperr.Conflictf("slug_taken", "the address %q is taken", req.Slug).WithDetails("field", "slug")
	}
	return name, email, req.Slug, nil
}

// registration is a sign-up whose owner identity exists.
type registration struct {
	name, slug, email string
	explicit          bool
	person            *identity.Identity
	referenced        time.Time         // when the address reference was taken
	undo              func(error) error // releases a placeholder created for it
	locale            string            // the activation mail's
}

// write creates the pending organization, references its activation
// invitation and writes it with its mail.
func (r *Registrar) write(ctx context.Context, g registration) error {
	name, slug, explicit, email, person, referenced, undo := g.name, g.slug, g.explicit, g.email, g.person, g.referenced, g.undo
	org, err := r.orgs.Create(ctx, orgs.Organization{Name: name, Slug: slug, State: orgs.StatePending}, explicit,
		&orgs.Member{IdentityID: person.ID, Email: email, Role: "owner"})
	if err != nil {
		return undo(err)
	}
	id := redisx.NewID("inv", redisx.ShardOf(org.ID), r.svc.now())
	if _, _, err := r.svc.reference(ctx, email, org.ID, id); err != nil {
		_ = r.orgs.DeleteIfPending(context.WithoutCancel(ctx), org.ID)
		return undo(err)
	}
	if err := r.svc.crash(CrashRegisterOrg); err != nil {
		return err
	}
	token, hash := tokens.New(redisx.ShardOf(org.ID))
	_, _, err = r.svc.store.Create(ctx, NewInvitation{
		ID: id, WriteBy: referenced.Add(refGrace),
		OrganizationID: org.ID, Email: email, Role: "owner", TTL: r.pendingTTL(), TokenHash: hash,
		SealedToken: r.svc.sealer.Seal(token, sealContext), IdentityID: person.ID, IdentityCreated: true,
		SendEmail: true, Template: "activation", Kind: "registration", Locale: g.locale,
	})
	if err != nil {
		_ = r.orgs.DeleteIfPending(context.WithoutCancel(ctx), org.ID)
		if scriptRefused(err) {
			r.svc.forget(ctx, email, id)
		}
		return undo(err)
	}
	if err := r.svc.crash(CrashRegisterWritten); err != nil {
		return err
	}
	r.svc.wake()
	return nil
}
