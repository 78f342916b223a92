package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/outbox"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// Each phase handles at most one batch and reports whether it finished a
// full pass (its cursor is back at the start).

// pending puts every pending invitation into its address' index.
func (r *Reconciler) pending(ctx context.Context, st *state, apply bool, rep *Report) (bool, error) {
	if st.PendingShard == 0 && st.PendingCursor == 0 {
		st.PendingStart = r.o.Now().UnixMilli()
	}
	for budget := r.o.Batch; budget > 0; {
		kv, cur, err := r.o.Redis.ZScan(ctx, r.o.Keyspace.Due(st.PendingShard), st.PendingCursor, "", int64(budget)).Result()
		if err != nil {
			return false, fmt.Errorf("reconcile: scan due invitations: %w", err)
		}
		for i := 0; i < len(kv); i += 2 { // member, score, member, score...
			email, err := r.o.Addresses.RepairInvitation(ctx, kv[i], apply)
			if err != nil {
				return false, fmt.Errorf("reconcile: invitation %s: %w", kv[i], err)
			}
			if email != "" {
				rep.add(FixAddressMissing, kv[i])
				if st.wouldIndex != nil && !apply {
					st.wouldIndex[email] = true
				}
			}
		}
		budget -= max(1, len(kv)/2)
		st.PendingCursor = cur
		if cur != 0 {
			continue
		}
		if st.PendingShard++; st.PendingShard == redisx.Shards {
			st.PendingShard, st.PendingDone = 0, st.PendingStart
			return true, nil
		}
	}
	return false, nil
}

// orgs walks the organization listing in id order.
func (r *Reconciler) orgs(ctx context.Context, st *state, apply bool, rep *Report) (bool, error) {
	start := "-"
	if st.OrgsAfter == "" {
		st.OrgsStart = r.o.Now().UnixMilli()
	} else {
		start = "(" + st.OrgsAfter
	}
	ids, err := r.o.Redis.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: r.o.Keyspace.Orgs(), Start: start, Stop: "+", ByLex: true, Count: int64(r.o.Batch),
	}).Result()
	if err != nil {
		return false, fmt.Errorf("reconcile: list organizations: %w", err)
	}
	for _, id := range ids {
		if err := r.org(ctx, st, id, apply, rep); err != nil {
			return false, fmt.Errorf("reconcile: organization %s: %w", id, err)
		}
	}
	if len(ids) < r.o.Batch {
		st.OrgsAfter, st.OrgsDone = "", st.OrgsStart
		return true, nil
	}
	st.OrgsAfter = ids[len(ids)-1]
	return false, nil
}

// org checks one listed organization: it exists, owns its slug, is not an
// abandoned registration, and its members are in their identities' index.
func (r *Reconciler) org(ctx context.Context, st *state, id string, apply bool, rep *Report) error {
	ks, rdb := r.o.Keyspace, r.o.Redis
	f, err := rdb.HMGet(ctx, ks.Org(id), "slug", "state", "created_at").Result()
	if err != nil {
		return err
	}
	if f[0] == nil {
		// Slugs are claimed before the record is written: only an old id
		// is a leftover rather than a creation under way.
		if r.old(redisx.IDTime(id)) {
			rep.add(FixListingStale, id)
			if apply {
				return rdb.ZRem(ctx, ks.Orgs(), id).Err()
			}
		}
		return nil
	}
	slug, orgState, created := str(f[0]), str(f[1]), str(f[2])
	holder, err := rdb.HGet(ctx, ks.Slugs(), slug).Result()
	switch {
	case errors.Is(err, redis.Nil):
		rep.add(FixSlugMissing, slug)
		if apply {
			if err := rdb.HSetNX(ctx, ks.Slugs(), slug, id).Err(); err != nil {
				return err
			}
		}
	case err != nil:
		return err
	case holder != id:
		r.o.Log.Warn("reconciler: an organization's slug is held by another organization; rename one of them",
			"organization", id, "slug", slug, "holder", holder)
	}
	if orgState == "pending" && r.old(redisx.MsTime(created)) {
		n, err := livePending(ctx, rdb, ks, id, r.o.Now().UnixMilli())
		if err != nil {
			return err
		}
		if n == 0 {
			rep.add(FixPendingOrg, id)
			if apply {
				return r.o.Orgs.DeleteIfPending(ctx, id)
			}
			return nil
		}
	}
	return r.members(ctx, st, id, apply, rep)
}

// members puts an organization's members into their identities' index.
func (r *Reconciler) members(ctx context.Context, st *state, org string, apply bool, rep *Report) error {
	ks, rdb := r.o.Keyspace, r.o.Redis
	members, err := rdb.HGetAll(ctx, ks.OrgMembers(org)).Result()
	if err != nil || len(members) == 0 {
		return err
	}
	pipe := rdb.Pipeline()
	indexed := make(map[string]*redis.StringCmd, len(members))
	for who := range members {
		indexed[who] = pipe.HGet(ctx, ks.IdentityOrgs(who), org)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	for who, raw := range members {
		var m struct {
			Role string `json:"role"`
		}
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			return fmt.Errorf("member %s: %w", who, err)
		}
		if indexed[who].Val() == m.Role {
			continue
		}
		rep.add(FixMemberMissing, org+"/"+who)
		if !apply && st.wouldMember != nil {
			st.wouldMember[who] = true
		}
		if apply {
			if err := r.o.Members.Handle(ctx, outbox.Job{Kind: "member.sync", Ref: org, Subject: who}); err != nil {
				return err
			}
		}
	}
	return nil
}

// releaseSlugScript deletes a slug only if it still names the organization
// it was found for. KEYS: slugs. Arguments: slug, id (the organization).
var releaseSlugScript = redisx.NewScript("reconcile.release_slug", redisx.Standalone, `
if redis.call('HGET', KEYS[1], A.slug) == A.id then return redis.call('HDEL', KEYS[1], A.slug) end
return 0
`)

// slugs drops slugs whose organization is gone or has another slug.
func (r *Reconciler) slugs(ctx context.Context, st *state, apply bool, rep *Report) (bool, error) {
	ks, rdb := r.o.Keyspace, r.o.Redis
	kv, cur, err := rdb.HScan(ctx, ks.Slugs(), st.SlugsCursor, "", int64(r.o.Batch)).Result()
	if err != nil {
		return false, fmt.Errorf("reconcile: scan slugs: %w", err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		slug, id := kv[i], kv[i+1]
		f, err := rdb.HMGet(ctx, ks.Org(id), "slug", "updated_at").Result()
		if err != nil {
			return false, fmt.Errorf("reconcile: slug owner: %w", err)
		}
		var stale bool
		if f[0] == nil {
			born := redisx.IDTime(id)
			stale = born.IsZero() || r.old(born)
		} else {
			// A rename claims the new slug before the record changes.
			stale = str(f[0]) != slug && r.old(redisx.MsTime(str(f[1])))
		}
		if !stale {
			continue
		}
		rep.add(FixSlugStale, slug)
		if apply {
			if err := releaseSlugScript.Eval(ctx, rdb, []string{ks.Slugs()}, map[string]string{"slug": slug, "id": id}).Err(); err != nil {
				return false, fmt.Errorf("reconcile: release slug: %w", err)
			}
		}
	}
	st.SlugsCursor = cur
	return cur == 0, nil
}

// identities pages through Kratos: drops index entries the records do not
// back, remembers each active account's address (so inviting it costs
// Kratos no call), then deletes placeholders nothing references.
func (r *Reconciler) identities(ctx context.Context, st *state, apply bool, rep *Report) (bool, error) {
	page, next, err := r.o.Identities.ListPage(ctx, st.IDsToken, r.o.Batch)
	if err != nil {
		// A page token Kratos no longer accepts must not stop every later
		// round: start the listing over.
		st.IDsToken = ""
		return false, fmt.Errorf("reconcile: list identities: %w", err)
	}
	for _, l := range page {
		if err := r.identity(ctx, st, l, apply, rep); err != nil {
			return false, fmt.Errorf("reconcile: identity %s: %w", l.ID, err)
		}
	}
	if next == "" || len(page) == 0 {
		st.IDsToken = ""
		return true, nil
	}
	st.IDsToken = next
	return false, nil
}

func (r *Reconciler) identity(ctx context.Context, st *state, l identity.Listed, apply bool, rep *Report) error {
	memberships, err := r.staleMemberships(ctx, l.ID, apply, rep)
	if err != nil {
		return err
	}
	pendingLeft := 0
	if l.Email != "" {
		n, err := r.o.Redis.ZCount(ctx, r.o.Keyspace.AddressPending(l.Email), "("+ms(r.o.Now().UnixMilli()), "+inf").Result()
		if err != nil {
			return err
		}
		stale, err := r.o.Addresses.RepairAddress(ctx, l.Email, apply)
		if err != nil {
			return err
		}
		for range stale {
			rep.add(FixAddressStale, l.ID)
		}
		pendingLeft = int(n) - stale
		if apply && r.o.Accounts != nil && !l.CreatedByUs && l.State == "active" {
			if err := r.o.Accounts.RememberAccount(ctx, l.Email, l.ID); err != nil {
				return err
			}
		}
	}
	if !l.CreatedByUs || l.State != "inactive" || l.Email == "" || !r.old(l.CreatedAt) {
		return nil
	}
	// Judge only against indexes whose forward repair has seen everything
	// written up to a grace period after the placeholder was created.
	if safe := min(st.PendingDone, st.OrgsDone) - r.o.Grace.Milliseconds(); l.CreatedAt.UnixMilli() >= safe {
		return nil
	}
	if memberships > 0 || pendingLeft > 0 || st.wouldIndex[l.Email] || st.wouldMember[l.ID] {
		return nil
	}
	if !apply {
		rep.add(FixPlaceholder, l.ID)
		return nil
	}
	deleted, err := r.o.Releaser.ReleasePlaceholder(ctx, l.Email, l.ID)
	if err != nil {
		return err
	}
	if deleted {
		rep.add(FixPlaceholder, l.ID)
	}
	return nil
}

// staleMemberships drops the identity's index entries for organizations
// it is not a member of; it returns how many entries remain.
func (r *Reconciler) staleMemberships(ctx context.Context, id string, apply bool, rep *Report) (int, error) {
	ks, rdb := r.o.Keyspace, r.o.Redis
	indexed, err := rdb.HGetAll(ctx, ks.IdentityOrgs(id)).Result()
	if err != nil || len(indexed) == 0 {
		return 0, err
	}
	left := len(indexed)
	for org := range indexed {
		member, err := rdb.HExists(ctx, ks.OrgMembers(org), id).Result()
		if err != nil {
			return left, err
		}
		if member {
			continue
		}
		left--
		rep.add(FixMemberStale, org+"/"+id)
		if apply {
			if err := r.o.Members.Handle(ctx, outbox.Job{Kind: "member.sync", Ref: org, Subject: id}); err != nil {
				return left, err
			}
		}
	}
	return left, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func ms(v int64) string { return strconv.FormatInt(v, 10) }

// livePending counts a pending organization's pending invitations that
// have not expired (a registration's organization has one or a few; the
// first hundred are enough to tell none from some).
func livePending(ctx context.Context, rdb redis.UniversalClient, ks redisx.Keyspace, org string, now int64) (int, error) {
	ids, err := rdb.ZRange(ctx, ks.OrgInvitationsByStatus(org, "pending"), 0, 99).Result()
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	cmds := make([]*redis.SliceCmd, len(ids))
	_, err = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, inv := range ids {
			// "x" in today's layout, "expires_at" in the first one.
			cmds[i] = p.HMGet(ctx, ks.Invitation(inv), "x", "expires_at")
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range cmds {
		for _, v := range c.Val() {
			if exp := redisx.MsTime(str(v)); !exp.IsZero() && exp.UnixMilli() > now {
				n++
				break
			}
		}
	}
	return n, nil
}
