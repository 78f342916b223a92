package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/events"
	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

var eventSecrets = []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"}

// eventSink is a webhook receiver that verifies every delivery with the
// Standard Webhooks package's Verify, for each of the endpoint's secrets.
type eventSink struct {
	mu  sync.Mutex
	got []sunk
}

type sunk struct {
	id, typ, body string
	data          map[string]any
}

func newEventSink(t *testing.T) (*eventSink, string) {
	s := &eventSink{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		for i, sec := range eventSecrets {
			wh, _ := standardwebhooks.NewWebhook(sec)
			if err := wh.Verify(body, r.Header); err != nil {
				t.Errorf("secret %d: %s does not verify: %v", i, r.Header.Get("webhook-id"), err)
			}
		}
		var p struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		_ = json.Unmarshal(body, &p)
		s.mu.Lock()
		s.got = append(s.got, sunk{id: r.Header.Get("webhook-id"), typ: p.Type, body: string(body), data: p.Data})
		s.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func (s *eventSink) types() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, g := range s.got {
		out[g.typ]++
	}
	return out
}

func eventsConfig(url string) func(*config.Config) {
	return func(c *config.Config) {
		c.Events.Endpoints = []config.EventEndpoint{{Name: "crm", URL: url, Secrets: eventSecrets}}
		c.Events.PollInterval = 10 * time.Millisecond
		c.Events.BaseBackoff = 20 * time.Millisecond
		c.Events.MaxBackoff = 100 * time.Millisecond
	}
}

// Every lifecycle event, made through the admin API, the org admins' API
// and the services, reaches the endpoint signed (verified with the
// specification's package, with both rotation secrets), once per
// webhook-id, without a token or a link; the audit trail names each
// change's actor and client address; a plain member may not read it.
func TestEveryEventSignedAndAudited(t *testing.T) {
	sink, url := newEventSink(t)
	st := startQuotaStack(t, eventsConfig(url))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { st.srv.Events.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	bg := context.Background()

	a, tokA := st.ids.signIn("owner@example.com")
	m, tokM := st.ids.signIn("member@example.com")
	org := st.orgOwnedBy("Events Co", a)
	admin := map[string]string{"Authorization": "Bearer " + st.srv.cfg.Admin.APIKeys[0], "Content-Type": "application/json"}
	r := st.do(http.MethodPost, st.admin+"/admin/organizations/"+org.ID+"/invitations", `{"email":"member@example.com","role":"member"}`, admin)
	if r.status != http.StatusCreated && r.status != http.StatusOK {
		t.Fatalf("admin invite: %d %s", r.status, r.body)
	}
	var inv invites.Invitation
	_ = json.Unmarshal([]byte(r.body), &inv)
	session := map[string]string{"X-Session-Token": tokA, "Content-Type": "application/json"}
	if r := st.do(http.MethodPost, st.public+"/api/organizations/"+org.ID+"/invitations/"+inv.ID+"/resend", "{}", session); r.status != http.StatusOK {
		t.Fatalf("api resend: %d %s", r.status, r.body)
	}
	mustNil(t, errOf(st.srv.Invites.Remind(bg, inv.ID)))
	if _, err := st.srv.Invites.AcceptVerifiedAddress(bg, "member@example.com", m.ID); err != nil {
		t.Fatal(err)
	}
	if r := st.do(http.MethodPatch, st.public+"/api/organizations/"+org.ID+"/members/"+m.ID, `{"role":"admin"}`, session); r.status != http.StatusOK {
		t.Fatalf("api set role: %d %s", r.status, r.body)
	}
	if r := st.do(http.MethodPatch, st.public+"/api/organizations/"+org.ID+"/members/"+m.ID, `{"role":"member"}`, session); r.status != http.StatusOK {
		t.Fatalf("api set role: %d %s", r.status, r.body)
	}
	// A plain member may not read the trail; the owner may.
	if r := st.do(http.MethodGet, st.public+"/api/organizations/"+org.ID+"/audit", "", map[string]string{"X-Session-Token": tokM}); r.status != http.StatusForbidden {
		t.Fatalf("a plain member read the audit trail: %d %s", r.status, r.body)
	}
	if r := st.do(http.MethodDelete, st.public+"/api/organizations/"+org.ID+"/members/"+m.ID, "", session); r.status != http.StatusNoContent {
		t.Fatalf("api remove: %d %s", r.status, r.body)
	}
	revoked, _, err := st.srv.Invites.Invite(bg, org.ID, invites.InviteRequest{Email: "gone@example.com", Role: "member"})
	mustNil(t, err)
	// invitation.delivery_failed: the mail job gave up (Resend refused the mail for good).
	failing, _, err := st.srv.Invites.Invite(bg, org.ID, invites.InviteRequest{Email: "fails@example.com", Role: "member"})
	mustNil(t, err)
	if ok, err := st.srv.Invites.Store().SetDelivery(bg, failing.ID, 1, invites.Delivery{Status: invites.DeliveryFailed, Reason: "rejected"}); err != nil || !ok {
		t.Fatalf("failed delivery not recorded: %v %v", ok, err)
	}
	report(t, st, revoked.ID, "em_bounced", invites.DeliveryBounced) // invitation.bounced, from Resend's webhook
	mustNil(t, errOf(st.srv.Invites.Revoke(bg, revoked.ID)))
	expiring, _, err := st.srv.Invites.Invite(bg, org.ID, invites.InviteRequest{Email: "late@example.com", Role: "member"})
	mustNil(t, err)
	report(t, st, expiring.ID, "em_complained", invites.DeliveryComplained) // invitation.complained
	// Its expiry moved to the past: the sweeper ends it as the system.
	ks := st.srv.ks
	st.srv.rdb.HSet(bg, ks.Invitation(expiring.ID), "x", time.Now().Add(-time.Minute).UnixMilli())
	st.srv.rdb.ZAdd(bg, ks.Due(redisx.ShardOf(expiring.ID)), redis.Z{Score: float64(time.Now().Add(-time.Minute).UnixMilli()), Member: expiring.ID})
	if _, _, err := st.srv.Invites.Store().Sweep(bg, 100); err != nil {
		t.Fatal(err)
	}
	pending := organization("Pending Co")
	pending.State = "pending"
	p, err := st.srv.Orgs.Store().Create(bg, pending, false, nil)
	mustNil(t, err)
	active := "active"
	mustNil(t, errOf(st.srv.Orgs.Store().Update(bg, p.ID, orgs.Update{State: &active})))
	if r := st.do(http.MethodDelete, st.admin+"/admin/organizations/"+p.ID, "", admin); r.status != http.StatusOK && r.status != http.StatusNoContent {
		t.Fatalf("admin delete: %d %s", r.status, r.body)
	}

	// domain.verified: the operator verifies a claimed domain.
	if r := st.do(http.MethodPost, st.admin+"/admin/organizations/"+org.ID+"/domains", `{"domain":"events.example","policy":"suggest"}`, admin); r.status != http.StatusCreated {
		t.Fatalf("claim domain: %d %s", r.status, r.body)
	}
	if r := st.do(http.MethodPatch, st.admin+"/admin/organizations/"+org.ID+"/domains/events.example", `{"verified":true}`, admin); r.status != http.StatusOK {
		t.Fatalf("verify domain: %d %s", r.status, r.body)
	}

	checkAllEventTypes(t, sink)
	checkAudit(t, st, org.ID, tokA, a.ID)
}

// report applies a delivery report about the first mail of invitation id,
// as the Resend webhook does once its signature is checked.
func report(t *testing.T, st *quotaStack, id, emailID, status string) {
	t.Helper()
	ctx := context.Background()
	mustNil(t, st.srv.Deliveries.MailSent(ctx, emailID, id, 1))
	res, err := st.srv.Deliveries.Record(ctx, invites.Outcome{EmailID: emailID, Status: status, At: time.Now(), Reason: "permanent"})
	mustNil(t, err)
	if res.Result != invites.RecordApplied {
		t.Fatalf("%s report on %s: %+v", status, id, res)
	}
}

// errOf is a call's error, to check calls whose result is not needed.
func errOf[T any](_ T, err error) error { return err }

func mustNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func checkAllEventTypes(t *testing.T, sink *eventSink) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := sink.types()
		missing := []string{}
		for _, typ := range events.Types {
			if got[typ] == 0 {
				missing = append(missing, typ)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("event types never delivered: %v (got %v)", missing, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	seen := map[string]bool{}
	for _, g := range sink.got {
		if seen[g.id] {
			t.Errorf("webhook-id %s delivered twice", g.id)
		}
		seen[g.id] = true
		if strings.Contains(g.body, "http") || strings.Contains(g.body, "token") {
			t.Errorf("%s carries a link or a token: %s", g.typ, g.body)
		}
		if g.data["organization_id"] == nil {
			t.Errorf("%s has no organization_id: %s", g.typ, g.body)
		}
	}
}

func checkAudit(t *testing.T, st *quotaStack, org, tokA, ownerID string) {
	t.Helper()
	admin := map[string]string{"Authorization": "Bearer " + st.srv.cfg.Admin.APIKeys[0]}
	r := st.do(http.MethodGet, st.admin+"/admin/organizations/"+org+"/audit?limit=100", "", admin)
	var page orgs.Page[orgs.AuditEntry]
	if err := json.Unmarshal([]byte(r.body), &page); err != nil || r.status != http.StatusOK {
		t.Fatalf("admin audit: %d %s", r.status, r.body)
	}
	byType := map[string]orgs.AuditEntry{}
	for i := len(page.Items) - 1; i >= 0; i-- { // oldest first: the first of each type
		if _, ok := byType[page.Items[i].Type]; !ok {
			byType[page.Items[i].Type] = page.Items[i]
		}
	}
	for typ, want := range map[string]redisx.Actor{
		"organization.created":    {Type: "system"},
		"invitation.created":      {Type: "admin", Addr: "127.0.0.1"},
		"invitation.resent":       {Type: "identity", ID: ownerID, Addr: "127.0.0.1"},
		"membership.role_changed": {Type: "identity", ID: ownerID, Addr: "127.0.0.1"},
		"membership.deleted":      {Type: "identity", ID: ownerID, Addr: "127.0.0.1"},
		"invitation.expired":      {Type: "system"},
	} {
		got, ok := byType[typ]
		if !ok {
			t.Errorf("no %s in the audit trail", typ)
			continue
		}
		if got.Actor.Type != want.Type || (want.ID != "" && got.Actor.ID != want.ID) || got.Actor.Addr != want.Addr {
			t.Errorf("%s: actor %+v, want %+v", typ, got.Actor, want)
		}
	}
	if id := byType["invitation.created"].Actor.ID; !strings.HasPrefix(id, "key:") || len(id) != 16 {
		t.Errorf("admin actor id %q: want the key's fingerprint", id)
	}
	if len(page.Items) < 2 || page.Items[0].ID <= page.Items[len(page.Items)-1].ID {
		t.Errorf("the audit page is not newest first")
	}
	r = st.do(http.MethodGet, st.public+"/api/organizations/"+org+"/audit?limit=2", "", map[string]string{"X-Session-Token": tokA})
	if err := json.Unmarshal([]byte(r.body), &page); err != nil || r.status != http.StatusOK || len(page.Items) != 2 || page.NextCursor == "" {
		t.Fatalf("owner audit page: %d %s", r.status, r.body)
	}
}
