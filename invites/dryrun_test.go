package invites

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// commandLog records the name of every command the client sends.
type commandLog struct {
	mu    sync.Mutex
	names map[string]int
}

func (l *commandLog) add(cmds ...redis.Cmder) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range cmds {
		l.names[strings.ToUpper(c.Name())]++
	}
}
func (l *commandLog) DialHook(next redis.DialHook) redis.DialHook { return next }
func (l *commandLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { l.add(cmd); return next(ctx, cmd) }
}
func (l *commandLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { l.add(cmds...); return next(ctx, cmds) }
}

// writes lists the commands seen that are not plain reads.
func (l *commandLog) writes() []string {
	reads := map[string]bool{"GET": true, "MGET": true, "HGET": true, "HGETALL": true, "HMGET": true, "HEXISTS": true,
		"EXISTS": true, "ZRANGE": true, "ZCARD": true, "ZSCORE": true, "ZCOUNT": true, "SMEMBERS": true, "SISMEMBER": true,
		"SCARD": true, "TYPE": true, "TTL": true, "PTTL": true, "PING": true, "HLEN": true}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for name := range l.names {
		if !reads[name] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// kratosWrites are the fake's write calls.
var kratosWrites = []string{"CreateInvited", "Delete", "Update", "Patch", "Activate", "SetState"}

// dryRunHarness counts the Redis commands and Kratos calls of dry runs
// only: everything before (the organization, a pending invitation) is set
// up first.
func dryRunHarness(t *testing.T) (*harness, *Previewer, *commandLog) {
	h := newHarness(t)
	p := NewPreviewer(h.svc, h.orgs, h.mailer)
	log := &commandLog{names: map[string]int{}}
	h.rdb.AddHook(log)
	return h, p, log
}

func (h *harness) callsSnapshot() map[string]int {
	return maps.Clone(h.ids.Calls)
}

// An operator's dry run validates, renders the mail with a placeholder
// link and writes nothing: no Redis write (every command a read), the
// same keys, no Kratos write, no mail.
func TestDryRunWritesNothing(t *testing.T) {
	h, p, log := dryRunHarness(t)
	h.ids.Add("known@example.com", "Known Person")
	before := h.keys()
	calls := h.callsSnapshot()
	log.names = map[string]int{}

	d, err := p.Invite(h.ctx, h.org.Slug, InviteRequest{Email: " New@Example.com ", Role: "admin", Inviter: &Inviter{Name: "Ada Lovelace"}})
	if err != nil {
		t.Fatal(err)
	}
	if !d.DryRun || !d.Created || d.ID != "" || d.Email != "new@example.com" || d.ExistingIdentity || d.Mail == nil {
		t.Fatalf("dry run = %+v", d)
	}
	m := d.Mail
	if m.To != "new@example.com" || m.Subject != "Ada Lovelace invited you to join Acme & Co" {
		t.Errorf("mail to %q, subject %q", m.To, m.Subject)
	}
	link := testAcceptURL + DryRunToken
	if !strings.Contains(m.Text, link) || !strings.Contains(m.HTML, link) || !strings.Contains(m.Text, "You will choose how to sign in") {
		t.Errorf("mail lacks the placeholder link or the new-person wording:\n%s", m.Text)
	}
	known, err := p.Invite(h.ctx, h.org.ID, InviteRequest{Email: "known@example.com"})
	if err != nil || !known.ExistingIdentity || !strings.Contains(known.Mail.Text, "You will be asked to sign in with known@example.com") {
		t.Fatalf("known address: %+v %v", known, err)
	}
	noMail := false
	skipped, err := p.Invite(h.ctx, h.org.ID, InviteRequest{Email: "link@example.com", SendEmail: &noMail})
	if err != nil || skipped.Mail != nil || skipped.AcceptURL != link || skipped.Delivery.Status != DeliverySkipped {
		t.Fatalf("send_email false: %+v %v", skipped, err)
	}

	if w := log.writes(); len(w) > 0 {
		t.Errorf("dry runs sent commands that are not reads: %v (all: %v)", w, log.names)
	}
	if after := h.keys(); !slices.Equal(before, after) {
		t.Errorf("keys changed:\nbefore %v\nafter  %v", before, after)
	}
	for _, name := range kratosWrites {
		if n := h.ids.Calls[name] - calls[name]; n != 0 {
			t.Errorf("Kratos %s called %d times", name, n)
		}
	}
	h.drain()
	if n := len(h.resend.Emails()); n != 0 {
		t.Errorf("%d mails sent", n)
	}
}

// Bad input gets the real call's structured errors.
func TestDryRunErrorsAreTheRealOnes(t *testing.T) {
	h, p, _ := dryRunHarness(t)
	for _, tc := range []struct {
		name string
		r    InviteRequest
		org  string
	}{
		{"bad address", InviteRequest{Email: "not-an-address"}, h.org.ID},
		{"bad role", InviteRequest{Email: "a@example.com", Role: "emperor"}, h.org.ID},
		{"bad locale", InviteRequest{Email: "a@example.com", Locale: "klingon!"}, h.org.ID},
		{"bad redirect", InviteRequest{Email: "a@example.com", RedirectTo: "https://evil.example/"}, h.org.ID},
		{"unknown organization", InviteRequest{Email: "a@example.com"}, "no-such-org"},
		{"unknown inviter", InviteRequest{Email: "a@example.com", Inviter: &Inviter{ID: "7f1b8f0e-0000-4000-8000-000000000000"}}, h.org.ID},
	} {
		_, _, real := h.svc.Invite(h.ctx, tc.org, tc.r)
		_, dry := p.Invite(h.ctx, tc.org, tc.r)
		if real == nil || dry == nil || real.Error() != dry.Error() {
			t.Errorf("%s: real %v, dry run %v; want the same error", tc.name, real, dry)
		}
	}
	// A member of the organization: already_member, as the real call says.
	who := h.ids.Add("member@example.com", "Member")
	if _, _, err := h.orgs.AddMember(h.ctx, h.org.ID, orgs.Member{IdentityID: who.ID, Email: who.Email, Role: "member"}); err != nil {
		t.Fatal(err)
	}
	_, err := p.Invite(h.ctx, h.org.ID, InviteRequest{Email: "member@example.com"})
	mustCode(t, err, "already_member")
}

// A pending invitation for the address would be re-issued: the dry run
// names it (created false) and leaves it as it was.
func TestDryRunOfAPendingInvitation(t *testing.T) {
	h, p, _ := dryRunHarness(t)
	inv := h.mustInvite("pending@example.com")
	stored, _ := h.svc.Get(h.ctx, inv.ID)
	d, err := p.Invite(h.ctx, h.org.ID, InviteRequest{Email: "pending@example.com", Role: "member", Locale: "de"})
	if err != nil || d.Created || d.ID != inv.ID {
		t.Fatalf("dry run over a pending invitation: %+v %v", d, err)
	}
	if d.Mail.Subject != "Sie sind zu Acme & Co eingeladen" && !strings.Contains(d.Mail.Subject, "Acme & Co") {
		t.Errorf("subject %q", d.Mail.Subject)
	}
	if !strings.Contains(d.Mail.Text, "Einladung annehmen") {
		t.Errorf("the dry run's de locale was not used:\n%s", d.Mail.Text)
	}
	after, _ := h.svc.Get(h.ctx, inv.ID)
	if after.Role != stored.Role || after.Locale != stored.Locale || !after.UpdatedAt.Equal(stored.UpdatedAt) {
		t.Errorf("the pending invitation changed: %+v → %+v", stored, after)
	}
}

// The org admins' dry run: the role ceiling as the real call, and no
// look-up of the address in Kratos at all (its answer would tell whether
// the address has an account).
func TestOrgAdminDryRun(t *testing.T) {
	h, p, log := dryRunHarness(t)
	h.ids.Add("someone@example.com", "Someone")
	admin := Actor{IdentityID: "7f1b8f0e-0000-4000-8000-00000000000a", Name: "Grace Admin", Role: "admin"}
	_, err := p.InviteAs(h.ctx, h.org.ID, admin, InviteRequest{Email: "x@example.com", Role: "owner"})
	mustCode(t, err, "role_ceiling")

	owners := h.mustInvite("boss@example.com", func(r *InviteRequest) { r.Role = "owner" })
	_, err = p.InviteAs(h.ctx, h.org.ID, admin, InviteRequest{Email: owners.Email, Role: "member"})
	mustCode(t, err, "role_ceiling")

	calls := h.callsSnapshot()
	before := h.keys()
	log.names = map[string]int{}
	d, err := p.InviteAs(h.ctx, h.org.ID, admin, InviteRequest{Email: "someone@example.com", Role: "member"})
	if err != nil {
		t.Fatal(err)
	}
	view := ForOrgAdminDryRun(d)
	if view.Mail == nil || !strings.Contains(view.Mail.Subject, "Grace Admin") || !strings.Contains(view.Mail.Text, "You will choose how to sign in") {
		t.Errorf("org admin dry run mail: %+v", view.Mail)
	}
	if n := h.ids.Calls["FindByEmail"] - calls["FindByEmail"]; n != 0 {
		t.Errorf("the org admins' dry run looked the address up in Kratos %d times", n)
	}
	for _, name := range kratosWrites {
		if n := h.ids.Calls[name] - calls[name]; n != 0 {
			t.Errorf("Kratos %s called %d times", name, n)
		}
	}
	if w := log.writes(); len(w) > 0 {
		t.Errorf("commands that are not reads: %v", w)
	}
	if after := h.keys(); !slices.Equal(before, after) {
		t.Errorf("keys changed")
	}
}

// Dry runs of resend and remind render the mail the real call would send
// (the invitation's, or the reminder's), write nothing, spend nothing (the
// real reminder is still allowed after), and refuse what the real call
// refuses (a reminder too soon, an ended invitation).
func TestDryRunResendAndRemindWriteNothing(t *testing.T) {
	h, p, log := dryRunHarness(t)
	inv := h.mustInvite("rotate.dry@example.com")
	h.drain()
	mailsBefore := len(h.resend.Emails())
	before := h.keys()
	log.names = map[string]int{}
	h.clock.Add(time.Hour)

	resend, err := p.Rotation(h.ctx, inv.ID, false, true)
	if err != nil || resend.ID != inv.ID || resend.Mail == nil || !strings.HasPrefix(resend.Mail.Subject, "Ada Lovelace invited you") ||
		!resend.ExpiresAt.Equal(h.clock.Now().Add(7*24*time.Hour)) || !strings.Contains(resend.Mail.Text, testAcceptURL+DryRunToken) {
		t.Fatalf("resend dry run: %+v %v", resend, err)
	}
	remind, err := p.Rotation(h.ctx, inv.ID, true, true)
	if err != nil || remind.Mail == nil || !strings.HasPrefix(remind.Mail.Subject, "Reminder:") || !remind.ExpiresAt.Equal(inv.ExpiresAt) ||
		remind.RemindersSent != 1 {
		t.Fatalf("remind dry run: %+v %v", remind, err)
	}
	link, err := p.Rotation(h.ctx, inv.ID, false, false)
	if err != nil || link.Mail != nil || link.AcceptURL != testAcceptURL+DryRunToken {
		t.Fatalf("resend dry run without mail: %+v %v", link, err)
	}
	if w := log.writes(); len(w) > 0 {
		t.Errorf("dry runs sent commands that are not reads: %v", w)
	}
	if after := h.keys(); !slices.Equal(before, after) {
		t.Errorf("keys changed:\nbefore %v\nafter  %v", before, after)
	}
	if got := h.mustGet(inv.ID); got.RemindersSent != 0 || got.RemindedAt != nil || !got.ExpiresAt.Equal(inv.ExpiresAt) {
		t.Errorf("the invitation changed: %+v", got)
	}
	h.drain()
	if n := len(h.resend.Emails()); n != mailsBefore {
		t.Errorf("%d mails sent by dry runs", n-mailsBefore)
	}
	// The real reminder is allowed; then the dry run is refused as it is.
	if _, err := h.svc.Remind(h.ctx, inv.ID); err != nil {
		t.Fatalf("real remind after dry runs: %v", err)
	}
	_, err = p.Rotation(h.ctx, inv.ID, true, true)
	mustCode(t, err, "remind_too_soon")
	if _, err := h.svc.Revoke(h.ctx, inv.ID); err != nil {
		t.Fatal(err)
	}
	_, real := h.svc.Resend(h.ctx, inv.ID, true)
	_, dry := p.Rotation(h.ctx, inv.ID, false, true)
	if apperr.CodeOf(dry) != apperr.CodeOf(real) || apperr.CodeOf(real) == "" {
		t.Fatalf("revoked: dry run %v, real %v", dry, real)
	}
}
