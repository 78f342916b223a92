package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// tally is what a forged or replayed webhook must not change.
type tally struct {
	Orgs, Members, Pending int
}

// count reads every organization, its members and its pending invitations.
func (st *stack) count() tally {
	st.t.Helper()
	ctx := context.Background()
	var t tally
	page, err := st.srv.Orgs.Store().List(ctx, "", 1000)
	if err != nil {
		st.t.Fatal(err)
	}
	for _, o := range page.Items {
		t.Orgs++
		m, err := st.srv.Orgs.Store().Members(ctx, o.ID, "", 1000)
		if err != nil {
			st.t.Fatal(err)
		}
		t.Members += len(m.Items)
		inv, err := st.srv.Invites.List(ctx, o.ID, invites.Filter{Status: "pending", Limit: 1000})
		if err != nil {
			st.t.Fatal(err)
		}
		t.Pending += len(inv.Items)
	}
	return t
}

func hookBody(fields map[string]any) string {
	b, _ := json.Marshal(fields)
	return string(b)
}

func addrs(email string, verified bool) []map[string]any {
	return []map[string]any{{"value": email, "via": "email", "verified": verified, "status": map[bool]string{true: "completed", false: "pending"}[verified]}}
}

// Webhook bodies are claims: with the shared secret, a caller can still
// not make kratos-orgs grant a membership that Kratos' own records do not
// support. Every forged body below is answered as Kratos would be, and
// afterwards the organizations, memberships and pending invitations are
// exactly what they were.
func TestForgedHookBodiesGrantNothing(t *testing.T) {
	st := startStack(t, "kratos_settings", func(c *config.Config) { c.Register.Enabled = true })
	ctx := context.Background()
	org := st.org("Forgery Target")
	victim, _, err := st.srv.Invites.Invite(ctx, org.ID, invites.InviteRequest{Email: "victim@example.com", Role: "admin", SendEmail: ptr(false)})
	if err != nil {
		t.Fatal(err)
	}
	token := victim.AcceptURL[strings.LastIndexByte(victim.AcceptURL, '/')+1:]
	// An account whose address is invited but was never verified: someone
	// signed up with an address they do not own.
	unproven := st.createPerson("unproven@example.com", "unproven password 123", false)
	st.invite(org, "unproven@example.com", "member")
	attacker := st.createPerson("attacker@example.com", "attacker password 123", true)
	missing := "6f1b3c1e-0000-4000-8000-000000000000"
	before := st.count()
	t.Logf("before: %+v", before)

	cases := []struct {
		name, path string
		body       map[string]any
	}{
		{"token for another address, body claims the invited address", "/hooks/registration/post", map[string]any{
			"identity_id": attacker, "traits": map[string]any{"email": "victim@example.com"},
			"verifiable_addresses": addrs("victim@example.com", true), "invite_token": token, "organization_name": nil}},
		{"token with an identity id Kratos does not know", "/hooks/registration/post", map[string]any{
			"identity_id": missing, "traits": map[string]any{"email": "victim@example.com"},
			"verifiable_addresses": addrs("victim@example.com", true), "invite_token": token, "organization_name": nil}},
		{"sign-up claims a verified invited address", "/hooks/registration/post", map[string]any{
			"identity_id": attacker, "traits": map[string]any{"email": "victim@example.com"},
			"verifiable_addresses": addrs("victim@example.com", true), "invite_token": nil, "organization_name": nil}},
		{"sign-up of an unverified account claims verified", "/hooks/registration/post", map[string]any{
			"identity_id": unproven, "traits": map[string]any{"email": "unproven@example.com"},
			"verifiable_addresses": addrs("unproven@example.com", true), "invite_token": nil, "organization_name": nil}},
		{"verification claims another person's address", "/hooks/verification/after", map[string]any{
			"identity_id": attacker, "verifiable_addresses": addrs("victim@example.com", true)}},
		{"verification of an unverified account claims verified", "/hooks/verification/after", map[string]any{
			"identity_id": unproven, "verifiable_addresses": addrs("unproven@example.com", true)}},
		{"verification for an identity Kratos does not know", "/hooks/verification/after", map[string]any{
			"identity_id": missing, "verifiable_addresses": addrs("victim@example.com", true)}},
		{"organization for an identity Kratos does not know", "/hooks/registration/post", map[string]any{
			"identity_id": missing, "traits": map[string]any{"email": "ghost@example.com"},
			"verifiable_addresses": addrs("ghost@example.com", true), "invite_token": nil, "organization_name": "Ghost Org"}},
		{"claims refresh for an identity Kratos does not know", "/hooks/login/after", map[string]any{"identity_id": missing}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.body["flow_id"] = fmt.Sprintf("forged-flow-%d", i)
			status, out := st.hook(c.path, hookBody(c.body), testenv.HooksSecret)
			if status != http.StatusOK {
				t.Fatalf("%d %v, want 200 (Kratos is answered; nothing is granted)", status, out)
			}
			if after := st.count(); after != before {
				t.Fatalf("a forged body changed the state: %+v → %+v", before, after)
			}
		})
	}
	for _, id := range []string{attacker, unproven} {
		if _, err := st.srv.Orgs.Store().Member(ctx, org.ID, id); err == nil {
			t.Fatalf("identity %s became a member", id)
		}
	}
	if got, _ := st.srv.Invites.Get(ctx, victim.ID); got.Status != invites.Pending {
		t.Fatalf("the victim's invitation is %s", got.Status)
	}
	// The invitation still works for the person it was sent to.
	status, out := st.signUp("Victim@Example.com", map[string]any{"invite_token": token})
	if status != http.StatusOK {
		t.Fatalf("the invited person's own sign-up: %d %v", status, out)
	}
	st.proveMember(org, out["identity"].(map[string]any)["id"].(string), "admin")
	after := st.count()
	t.Logf("%d forged bodies: %+v → %+v; then the invited person's sign-up: %+v", len(cases), before, before, after)
	if after.Members != before.Members+1 || after.Pending != before.Pending-1 || after.Orgs != before.Orgs {
		t.Fatalf("after the real sign-up: %+v, want exactly one more member and one fewer pending invitation", after)
	}
}

// A repeated webhook — Kratos retrying, or a captured body replayed — is
// answered as the first delivery was and changes nothing, including when
// the repeat carries a different body under the same flow id.
func TestReplayedHookBodiesChangeNothing(t *testing.T) {
	st := startStack(t, "kratos_settings", func(c *config.Config) { c.Register.Enabled = true })
	ctx := context.Background()

	// A real sign-up through Kratos creates its organization once.
	flowID, action := st.kratosFlow("registration", "")
	status, out := st.submit(action, map[string]any{"method": "password", "password": "Correct-Horse-Battery-9",
		"traits":            map[string]any{"email": "replay.founder@example.com", "name": map[string]any{"first": "R"}},
		"transient_payload": map[string]any{"organization_name": "Replayed Ltd"}}, "")
	if status != http.StatusOK {
		t.Fatalf("sign-up: %d %v", status, out)
	}
	founder := out["identity"].(map[string]any)["id"].(string)
	first := st.count()
	if first.Orgs != 1 || first.Members != 1 {
		t.Fatalf("after the sign-up: %+v, want one organization with its owner", first)
	}
	// Replays of what Kratos sent for that flow, and of variants: another
	// organization name, a token, other addresses.
	org := st.org("Invited Elsewhere")
	inv, _, err := st.srv.Invites.Invite(ctx, org.ID, invites.InviteRequest{Email: "replay.founder@example.com", SendEmail: ptr(false)})
	if err != nil {
		t.Fatal(err)
	}
	token := inv.AcceptURL[strings.LastIndexByte(inv.AcceptURL, '/')+1:]
	before := st.count()
	variants := []map[string]any{
		{"organization_name": "Replayed Ltd"},
		{"organization_name": "Replayed Again"},
		{"organization_name": nil, "invite_token": token},
	}
	replays := 0
	for _, v := range variants {
		body := map[string]any{"flow_id": flowID, "identity_id": founder,
			"traits":               map[string]any{"email": "replay.founder@example.com", "name": map[string]any{"first": "R"}},
			"verifiable_addresses": addrs("replay.founder@example.com", true), "invite_token": nil}
		for k, x := range v {
			body[k] = x
		}
		for i := 0; i < 3; i++ {
			replays++
			if code, got := st.hook("/hooks/registration/post", hookBody(body), testenv.HooksSecret); code != http.StatusOK || len(got) != 0 {
				t.Fatalf("replay %d: %d %v, want Kratos' first answer (200 {})", replays, code, got)
			}
		}
	}
	if after := st.count(); after != before {
		t.Fatalf("%d replays of a sign-up's hook changed the state: %+v → %+v", replays, before, after)
	}

	// A body delivered for a new flow acts once; its repeats are answered
	// from the record. The same holds for verification.
	body := hookBody(map[string]any{"flow_id": "fresh-flow", "identity_id": founder,
		"traits": map[string]any{"email": "replay.founder@example.com"}, "verifiable_addresses": []any{},
		"invite_token": nil, "organization_name": "Second Org"})
	verify := hookBody(map[string]any{"flow_id": "verify-flow", "identity_id": founder, "verifiable_addresses": []any{}})
	var answers []string
	for i := 0; i < 5; i++ {
		code, got := st.hook("/hooks/registration/post", body, testenv.HooksSecret)
		vcode, vgot := st.hook("/hooks/verification/after", verify, testenv.HooksSecret)
		answers = append(answers, fmt.Sprint(code, got, vcode, vgot))
	}
	for _, a := range answers[1:] {
		if a != answers[0] {
			t.Fatalf("repeats answered differently: %q", answers)
		}
	}
	after := st.count()
	// One organization more, with its owner. The verification deliveries
	// change nothing: Kratos shows the password sign-up's address
	// unverified, whatever a body says.
	t.Logf("sign-up %+v; %d replays of its hook: %+v → %+v; 5 deliveries of a new flow: %+v", first, replays, before, before, after)
	if after.Orgs != before.Orgs+1 || after.Members != before.Members+1 || after.Pending != before.Pending {
		t.Fatalf("5 deliveries of one new flow: %+v → %+v, want exactly one organization and one member more", before, after)
	}
	// The record expires by itself.
	rdb := st.redis()
	key := redisx.Keyspace{Prefix: st.cfg.Redis.KeyPrefix}.HookCall("registration.post", "fresh-flow")
	ttl, err := rdb.PTTL(ctx, key).Result()
	if err != nil || ttl <= 0 || ttl > st.cfg.Hooks.ReplayWindow {
		t.Fatalf("the replay record's TTL is %v (%v), want (0, %s]", ttl, err, st.cfg.Hooks.ReplayWindow)
	}
	if n, _ := orgsNamed(st, "Replayed Again"); n != 0 {
		t.Fatal("a replay with another organization name created it")
	}
}

func orgsNamed(st *stack, name string) (int, error) {
	page, err := st.srv.Orgs.Store().List(context.Background(), "", 1000)
	n := 0
	for _, o := range page.Items {
		if o.Name == name {
			n++
		}
	}
	return n, err
}
