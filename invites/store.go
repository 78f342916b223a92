package invites

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// Store keeps invitations in Redis. Every write is one script on the
// organization's shard: one round trip, atomic, Cluster-safe.
type Store struct {
	rdb       redis.UniversalClient
	ks        redisx.Keyspace
	retention time.Duration
	now       func() time.Time
	wait      redisx.Wait // for the writes a person is answered about
	plan      orgs.ReminderPlan
}

// NewStore returns a store; retention is how long ended invitations stay
// listable; now is the clock (nil: time.Now).
func NewStore(rdb redis.UniversalClient, ks redisx.Keyspace, retention time.Duration, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{rdb: rdb, ks: ks, retention: retention, now: now}
}

func storeErr(err error) error { return redisx.StoreError(err, "invitation store") }

// SetWait makes the writes people are answered about (an invitation
// created or re-issued, accepted, revoked) wait for w.Replicas replicas
// (redis.wait_replicas; README "Redis failover"). Call it before use.
func (s *Store) SetWait(w redisx.Wait) { s.wait = w }

// NewInvitation is what Create writes.
type NewInvitation struct {
	ID               string    // of a new invitation; generated when empty
	WriteBy          time.Time // deadline of its address reference; zero for none
	OrganizationID   string
	Email            string
	Role             string
	TTL              time.Duration
	TokenHash        string
	SealedToken      string // for the mail job; empty when no mail is sent
	Inviter          *Inviter
	Context          map[string]any
	RedirectTo       string
	IdentityID       string
	ExistingIdentity bool
	IdentityCreated  bool
	SendEmail        bool
	Template         string // mail set: invitation or activation
	Kind             string // invitation or registration
	// GrantedBy is the member who issued the invitation through the org
	// admins' API ("" for the operator); Within the roles they may grant
	// (nil: any). A pending invitation with a role outside Within is not
	// re-issued (role_ceiling).
	GrantedBy string
	Within    []string
	// Locale is the mail's locale (canonical BCP 47; "" for the
	// organization's or the configured default).
	Locale string
}

// Create writes an invitation, or rotates the token of the pending
// invitation for the same organization and address (rotated=true).
func (s *Store) Create(ctx context.Context, n NewInvitation) (inv Invitation, rotated bool, err error) {
	now := s.now()
	keys, args := s.createCall(n, now)
	rep, err := createScript.RunWaiting(ctx, s.rdb, s.wait, keys, args)
	if err != nil {
		return inv, false, storeErr(err)
	}
	return s.settleCreate(rep, n, args, now)
}

// settleCreate turns the create script's reply for n into its outcome.
func (s *Store) settleCreate(rep redisx.Reply, n NewInvitation, args *createArgs, now time.Time) (inv Invitation, rotated bool, err error) {
	switch rep.Outcome {
	case "org_not_found":
		return inv, false, apperr.NotFoundf("organization_not_found", "no organization %q", n.OrganizationID).
			WithDetails("organization", n.OrganizationID)
	case "org_inactive":
		return inv, false, apperr.Conflictf("organization_inactive", "the organization is not active yet")
	case "already_member":
		return inv, false, apperr.Conflictf("already_member", "%s is already a member of the organization", n.Email).
			WithDetails("email", n.Email, "identity_id", n.IdentityID)
	case "role_ceiling":
		return inv, false, apperr.New(apperr.Forbidden, "role_ceiling",
			"a pending invitation for %s grants the %s role, which is above yours", n.Email, redisx.Str(rep.Values[0])).
			WithDetails("role", redisx.Str(rep.Values[0]))
	case "accepting":
		return inv, false, apperr.Conflictf("invitation_accepting", "the pending invitation for %s is being accepted right now", n.Email)
	case "too_late":
		return inv, false, apperr.Unavailablef(errors.New("invites: invitation written after its reference's deadline"),
			"invitation_too_slow", "writing the invitation took too long; try again")
	case "seat_limit":
		return inv, false, seatLimitReply(rep, false)
	case "created":
		if len(rep.Values) != 4 {
			return inv, false, unexpected(rep)
		}
		return createdRecord(args, rep.Values, now), false, nil
	case "rotated":
		return parseInvitation(redisx.Hash(rep.Values[0]), now), true, nil
	}
	return inv, false, unexpected(rep)
}

// createdRecord is the record createScript wrote for a new invitation: its
// arguments, and the identity fields (ki, ke, kc) the script may have
// changed and the next reminder it scheduled (rn), in reply. Reading it back would give the same
// (TestCreatedRecordIsWhatIsStored).
func createdRecord(a *createArgs, identity []any, now time.Time) Invitation {
	delivery := DeliverySkipped
	if a.SendMail {
		delivery = DeliveryQueued
	}
	kind := a.Kind
	if kind == "invitation" {
		kind = ""
	}
	th := a.TokenHash
	if len(th) > 32 {
		th = th[:32] // tok_field
	}
	return parseInvitation(map[string]string{
		"id": a.ID, "o": a.Org, "e": a.Email, "s": string(Pending), "c": strconv.FormatInt(a.Now, 10),
		"r": a.Role, "x": strconv.FormatInt(a.ExpiresAt, 10), "l": strconv.FormatInt(a.TTL, 10), "t": th,
		"ii": a.InviterID, "in": a.InviterName, "cx": a.Context, "rt": a.RedirectTo,
		"ki": redisx.Str(identity[0]), "ke": redisx.Str(identity[1]), "kc": redisx.Str(identity[2]),
		"d": delivery, "g": a.GrantedBy, "lc": a.Locale, "v": "1", "k": kind,
		"rn": redisx.Str(identity[3]),
	}, now)
}

// createCall is createScript's keys and arguments for n at now (the
// benchmarks pipeline it to fill Redis with real invitations).
func (s *Store) createCall(n NewInvitation, now time.Time) ([]string, *createArgs) {
	shard := redisx.ShardOf(n.OrganizationID)
	var inviterID, inviterName string
	if n.Inviter != nil {
		inviterID, inviterName = n.Inviter.ID, n.Inviter.Name
	}
	ctxJSON := ""
	if len(n.Context) > 0 {
		b, _ := json.Marshal(n.Context)
		ctxJSON = string(b)
	}
	exp := now.Add(n.TTL)
	id := n.ID
	if id == "" {
		id = redisx.NewID("inv", shard, now)
	}
	var writeBy int64
	if !n.WriteBy.IsZero() {
		writeBy = n.WriteBy.UnixMilli()
	}
	return []string{s.ks.Org(n.OrganizationID)}, &createArgs{
		Env: s.env(shard, now), Org: n.OrganizationID, ID: id, Email: n.Email, Role: n.Role,
		ExpiresAt: exp.UnixMilli(), TTL: n.TTL.Milliseconds(), TokenHash: n.TokenHash,
		InviterID: inviterID, InviterName: inviterName, Context: ctxJSON, RedirectTo: n.RedirectTo,
		IdentityID: n.IdentityID, IdentityExisting: b2s(n.ExistingIdentity), IdentityCreated: b2s(n.IdentityCreated),
		SendMail: n.SendEmail, Sealed: n.SealedToken, Template: n.Template, Kind: n.Kind,
		Within: strings.Join(n.Within, ","), GrantedBy: n.GrantedBy, WriteBy: writeBy, Locale: n.Locale,
		Rem: s.reminderPlan(),
	}
}

// env is the prelude's part of a script's arguments.
func (s *Store) env(shard int, now time.Time) redisx.Env { return s.ks.Env(shard, now, s.retention) }

func b2s(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func errNotFound(id string) error {
	return apperr.NotFoundf("invitation_not_found", "no invitation %q", id).WithDetails("invitation", id)
}

// notPending explains why an ended invitation cannot change.
func notPending(inv Invitation) error {
	kind := apperr.Conflict
	if inv.Status == Expired || inv.Status == Revoked {
		kind = apperr.Gone
	}
	return apperr.New(kind, "invitation_"+string(inv.Status), "the invitation is %s", inv.Status).
		WithDetails("status", string(inv.Status))
}

// Get reads an invitation by id.
func (s *Store) Get(ctx context.Context, id string) (Invitation, error) {
	if _, ok := redisx.ParseID("inv", id); !ok {
		return Invitation{}, errNotFound(id)
	}
	h, err := s.rdb.HGetAll(ctx, s.ks.Invitation(id)).Result()
	if err != nil {
		return Invitation{}, storeErr(err)
	}
	if len(h) == 0 {
		return Invitation{}, errNotFound(id)
	}
	h = redisx.UpgradeInvitationFields(h)
	h["id"] = id
	return parseInvitation(h, s.now()), nil
}

// readFields reads fields of an invitation's record by their names in
// today's layout, from a record of the first layout too ("" for absent).
func (s *Store) readFields(ctx context.Context, id string, names ...string) ([]string, error) {
	all := append(append(make([]string, 0, 2*len(names)+1), names...), "status")
	for _, n := range names {
		all = append(all, redisx.LegacyInvitationField(n))
	}
	f, err := s.rdb.HMGet(ctx, s.ks.Invitation(id), all...).Result()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(names))
	old := f[len(names)] != nil
	for i := range names {
		v := f[i]
		if old {
			v = f[len(names)+1+i]
		}
		out[i], _ = v.(string)
	}
	return out, nil
}

// PendingFor reads, writing nothing (a dry run), the pending invitation of
// an organization for an address, the one the create script would re-issue;
// ok is false when there is none.
func (s *Store) PendingFor(ctx context.Context, org, email string) (inv Invitation, ok bool, err error) {
	id, err := s.rdb.HGet(ctx, s.ks.OrgPendingByEmail(org), email).Result()
	if errors.Is(err, redis.Nil) {
		return inv, false, nil
	}
	if err != nil {
		return inv, false, storeErr(err)
	}
	inv, err = s.Get(ctx, id)
	if apperr.KindOf(err) == apperr.NotFound {
		return inv, false, nil
	}
	return inv, err == nil && inv.Status == Pending, err
}

// GetWithOrg reads an invitation and its organization in one round trip.
func (s *Store) GetWithOrg(ctx context.Context, id string) (Invitation, map[string]string, error) {
	if _, ok := redisx.ParseID("inv", id); !ok {
		return Invitation{}, nil, errNotFound(id)
	}
	rep, err := readWithOrgScript.Run(ctx, s.rdb, []string{s.ks.Invitation(id)},
		invitationArgs{Env: s.env(redisx.ShardOf(id), s.now()), ID: id})
	if err != nil {
		return Invitation{}, nil, storeErr(err)
	}
	if rep.Outcome == "not_found" {
		return Invitation{}, nil, errNotFound(id)
	}
	return parseInvitation(redisx.Hash(rep.Values[0]), s.now()), redisx.Hash(rep.Values[1]), nil
}

// Revoke ends a pending invitation.
func (s *Store) Revoke(ctx context.Context, id string) (Invitation, error) {
	if _, ok := redisx.ParseID("inv", id); !ok {
		return Invitation{}, errNotFound(id)
	}
	rep, err := revokeScript.RunWaiting(ctx, s.rdb, s.wait, []string{s.ks.Invitation(id)}, invitationArgs{Env: s.env(redisx.ShardOf(id), s.now()), ID: id})
	if err != nil {
		return Invitation{}, storeErr(err)
	}
	return s.settle(rep, id)
}

func (s *Store) settle(rep redisx.Reply, id string) (Invitation, error) {
	switch rep.Outcome {
	case "not_found":
		return Invitation{}, errNotFound(id)
	case "not_pending":
		return Invitation{}, notPending(parseInvitation(redisx.Hash(rep.Values[0]), s.now()))
	case "ok":
		return parseInvitation(redisx.Hash(rep.Values[0]), s.now()), nil
	}
	return Invitation{}, unexpected(rep)
}

func unexpected(rep redisx.Reply) error {
	return fmt.Errorf("invites: unexpected script outcome %q", rep.Outcome)
}

// Rotation asks for a new token.
type Rotation struct {
	Remind         bool // a reminder: keeps the expiry, rate limited
	RemindInterval time.Duration
	TokenHash      string
	SealedToken    string
	SendEmail      bool
	Template       string
}

// Rotate replaces an invitation's token (resend or remind).
func (s *Store) Rotate(ctx context.Context, id string, r Rotation) (Invitation, error) {
	if _, ok := redisx.ParseID("inv", id); !ok {
		return Invitation{}, errNotFound(id)
	}
	mode := "resend"
	if r.Remind {
		mode = "remind"
	}
	rep, err := rotateScript.Run(ctx, s.rdb, []string{s.ks.Invitation(id)}, &rotateArgs{
		Env: s.env(redisx.ShardOf(id), s.now()), ID: id, TokenHash: r.TokenHash, Sealed: r.SealedToken, Mode: mode,
		RemindInterval: r.RemindInterval.Milliseconds(), SendMail: r.SendEmail, Template: r.Template,
		Rem: s.reminderPlan(),
	})
	if err != nil {
		return Invitation{}, storeErr(err)
	}
	if rep.Outcome == "too_soon" {
		return Invitation{}, errRemindTooSoon(time.Duration(redisx.Int(rep.Values[0])) * time.Millisecond)
	}
	return s.settle(rep, id)
}

// SetDelivery records a mail outcome for a token version; it reports false
// when the token has been rotated since.
func (s *Store) SetDelivery(ctx context.Context, id string, version int, d Delivery) (bool, error) {
	rep, err := deliveryScript.Run(ctx, s.rdb, []string{s.ks.Invitation(id)}, &deliveryArgs{
		Env: s.env(redisx.ShardOf(id), s.now()), ID: id, Version: strconv.Itoa(version), Status: d.Status,
		Attempts: d.Attempts, Error: d.LastError, MessageID: d.MessageID, Reason: d.Reason,
	})
	if err != nil {
		return false, storeErr(err)
	}
	return rep.Outcome == "ok", nil
}

// deliveryEvent is what the mail provider reported about one mail of an
// invitation (delivery.go).
type deliveryEvent struct {
	Invitation string
	Version    int
	EmailID    string
	Status     string
	At         time.Time
	Reason     string
	Error      string
}

// RecordDeliveryEvent applies a provider's report to the invitation (see
// deliveryEventScript): outcome ok (applied), older (a report as new or
// newer is applied already), stale (about an earlier link's mail) or
// not_found; email is the invitation's address ("" when not found).
func (s *Store) RecordDeliveryEvent(ctx context.Context, e deliveryEvent) (outcome, email string, err error) {
	rep, err := deliveryEventScript.Run(ctx, s.rdb, []string{s.ks.Invitation(e.Invitation)}, &deliveryEventArgs{
		Env: s.env(redisx.ShardOf(e.Invitation), s.now()), ID: e.Invitation, Version: strconv.Itoa(e.Version),
		EmailID: e.EmailID, Status: e.Status, At: e.At.UnixMilli(), Reason: e.Reason, Error: e.Error,
	})
	if err != nil {
		return "", "", storeErr(err)
	}
	if len(rep.Values) > 0 {
		email, _ = rep.Values[0].(string)
	}
	return rep.Outcome, email, nil
}

// Filter selects invitations of an organization.
type Filter struct {
	Status string // pending (default), accepted, revoked, expired or all
	Email  string
	Cursor string
	Limit  int
	// Delivery keeps only the invitations whose mail is in this delivery
	// state (queued, sent, delivered, bounced...); empty: any.
	Delivery string
}

// List pages through an organization's invitations in creation order.
func (s *Store) List(ctx context.Context, org string, f Filter) (orgs.Page[Invitation], error) {
	var page orgs.Page[Invitation]
	if _, ok := redisx.ParseID("org", org); !ok {
		return page, apperr.NotFoundf("organization_not_found", "no organization %q", org)
	}
	if err := orgs.CheckCursor(f.Cursor, orgs.IsID("inv")); err != nil {
		return page, err
	}
	start := "-"
	if f.Cursor != "" {
		start = "(" + f.Cursor
	}
	now := s.now()
	rep, err := listScript.Run(ctx, s.rdb, []string{s.ks.Org(org)}, &listArgs{
		Env: s.env(redisx.ShardOf(org), now), Org: org, Status: f.Status, Email: f.Email, Start: start, Limit: f.Limit + 1,
		Delivery: f.Delivery,
	})
	if err != nil {
		return page, storeErr(err)
	}
	if rep.Outcome == "org_not_found" {
		return page, apperr.NotFoundf("organization_not_found", "no organization %q", org)
	}
	page.Total = redisx.Int(rep.Values[0])
	page.Items = make([]Invitation, 0, f.Limit)
	for _, v := range rep.Values[1:] {
		if len(page.Items) == f.Limit {
			page.NextCursor = page.Items[f.Limit-1].ID
			break
		}
		page.Items = append(page.Items, parseInvitation(redisx.Hash(v), now))
	}
	return page, nil
}

// Sweep ends expired invitations and purges old ones in every shard; it
// returns how many it expired and purged.
func (s *Store) Sweep(ctx context.Context, batch int) (expired, purged int, err error) {
	now := s.now()
	for shard := 0; shard < redisx.Shards; shard++ {
		for {
			e, p, err := s.sweepStep(ctx, shard, batch, now)
			if err != nil {
				return expired, purged, err
			}
			expired += e
			purged += p
			if e < batch && p < batch {
				break
			}
		}
	}
	return expired, purged, nil
}

// sweepStep is one sweep of a shard: up to batch expiries, released
// claims and purges.
func (s *Store) sweepStep(ctx context.Context, shard, batch int, now time.Time) (expired, purged int, err error) {
	rep, err := sweepScript.Run(ctx, s.rdb, []string{s.ks.Due(shard)}, sweepArgs{Env: s.env(shard, now), Batch: batch})
	if err != nil {
		return 0, 0, storeErr(err)
	}
	return int(redisx.Int(rep.Values[0])), int(redisx.Int(rep.Values[1])), nil
}

// TokenInvitation resolves a live token hash (the newest link of a
// pending invitation, not being accepted) to its invitation id; "" for
// any other.
func (s *Store) TokenInvitation(ctx context.Context, shard int, hash string) (string, error) {
	link, err := s.lookupHash(ctx, shard, hash)
	if err != nil || !link.Live {
		return "", err
	}
	return link.Invitation.ID, nil
}

// errRemindTooSoon refuses a reminder within invitations.remind_interval
// of the last one (429 with Retry-After).
func errRemindTooSoon(wait time.Duration) error {
	e := apperr.New(apperr.RateLimited, "remind_too_soon", "a reminder was sent recently; try again in %s", wait.Round(time.Second))
	e.RetryAfter = wait
	return e
}
