package invites

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/httpx"
	"github.com/kratos-orgs/kratos-orgs/mail"
	"github.com/kratos-orgs/kratos-orgs/mail/resendtest"
)

// hookServer serves the Resend webhook route of h over HTTP, verified
// with a fresh secret and h's clock.
type hookServer struct {
	url, secret string
}

func (h *harness) hookServer() hookServer {
	h.t.Helper()
	secret := resendtest.NewWebhookSecret()
	v, err := mail.NewWebhookVerifier([]string{secret}, h.clock.Now)
	if err != nil {
		h.t.Fatal(err)
	}
	e := gin.New()
	e.Use(httpx.Common("public", slog.New(slog.NewTextHandler(io.Discard, nil)), 1<<20, nil))
	NewDeliveryHook(v, h.deliv).Register(e)
	srv := httptest.NewServer(e)
	h.t.Cleanup(srv.Close)
	h.resend.SetClock(h.clock.Now)
	return hookServer{url: srv.URL + ResendHookPath, secret: secret}
}

// sentInvitation invites addr and runs the mail job: the invitation and
// its email's id at the fake Resend.
func (h *harness) sentInvitation(addr string) (Invitation, string) {
	h.t.Helper()
	inv := h.mustInvite(addr)
	h.drain()
	got, err := h.svc.Get(h.ctx, inv.ID)
	if err != nil {
		h.t.Fatal(err)
	}
	if got.Delivery.Status != DeliverySent || got.Delivery.MessageID == "" {
		h.t.Fatalf("after the mail job: delivery %+v, want sent with an id", got.Delivery)
	}
	return got, got.Delivery.MessageID
}

func (h *harness) emit(hs hookServer, e resendtest.Event) resendtest.Delivery {
	h.t.Helper()
	d, err := h.resend.Emit(hs.url, hs.secret, e)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

func (h *harness) delivery(id string) Delivery {
	h.t.Helper()
	inv, err := h.svc.Get(h.ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return inv.Delivery
}

func answerOf(t *testing.T, d resendtest.Delivery) WebhookAnswer {
	t.Helper()
	var a WebhookAnswer
	if err := json.Unmarshal(d.Answer, &a); err != nil || d.Status != http.StatusOK {
		t.Fatalf("answer %d %s, want 200 with a result", d.Status, d.Answer)
	}
	return a
}

// Signed webhooks from the fake Resend move the invitation's delivery
// forward (sent, delayed, delivered, bounced), never back: a delivered
// event that arrives after the bounce, or an older one, changes nothing.
func TestDeliveryWebhooksUpdateTheInvitation(t *testing.T) {
	h := newHarness(t)
	hs := h.hookServer()
	inv, emailID := h.sentInvitation("bouncy@example.com")
	t0 := h.clock.Now()

	steps := []struct {
		typ     string
		at      time.Time
		result  string
		status  string
		reason  string
		suppres bool
	}{
		{mail.EventSent, t0, RecordApplied, DeliverySent, "", false},
		{mail.EventDelayed, t0.Add(time.Second), RecordApplied, DeliveryDelayed, "", false},
		{mail.EventDelivered, t0.Add(2 * time.Second), RecordApplied, DeliveryDelivered, "", false},
		{mail.EventDelayed, t0.Add(3 * time.Second), RecordOlder, DeliveryDelivered, "", false},
		{mail.EventBounced, t0.Add(4 * time.Second), RecordApplied, DeliveryBounced, "permanent", true},
		{mail.EventDelivered, t0.Add(5 * time.Second), RecordOlder, DeliveryBounced, "permanent", false},
	}
	for i, st := range steps {
		a := answerOf(t, h.emit(hs, resendtest.Event{Type: st.typ, EmailID: emailID, CreatedAt: st.at}))
		d := h.delivery(inv.ID)
		if a.Result != st.result || a.Suppressed != st.suppres || d.Status != st.status || d.Reason != st.reason {
			t.Fatalf("step %d (%s): answer %+v, delivery %+v; want %s, suppressed %v, status %s reason %q",
				i, st.typ, a, d, st.result, st.suppres, st.status, st.reason)
		}
	}
	d := h.delivery(inv.ID)
	if d.At == nil || !d.At.Equal(t0.Add(4*time.Second)) || d.MessageID != emailID || !strings.Contains(d.LastError, "permanently rejected") {
		t.Fatalf("delivery %+v: want the bounce's time, the email id and the bounce message", d)
	}
	// The list filter finds it by delivery status.
	page, err := h.svc.List(h.ctx, h.org.ID, Filter{Delivery: DeliveryBounced, Limit: 10})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != inv.ID || page.Total != 1 {
		t.Fatalf("List(delivery=bounced) = %+v, %v", page, err)
	}
	if page, err := h.svc.List(h.ctx, h.org.ID, Filter{Delivery: DeliveryDelivered, Limit: 10}); err != nil || len(page.Items) != 0 {
		t.Fatalf("List(delivery=delivered) = %+v, %v; want none", page, err)
	}
	_, err = h.svc.List(h.ctx, h.org.ID, Filter{Delivery: "lost", Limit: 10})
	mustCode(t, err, "invalid_delivery")
}

// A complaint puts the address on the suppression list: the next mail
// job records suppressed and sends nothing, invite and resend answer 409
// address_suppressed, until the address is cleared.
func TestComplaintSuppressesUntilCleared(t *testing.T) {
	h := newHarness(t)
	hs := h.hookServer()
	inv, emailID := h.sentInvitation("grumpy@example.com")
	a := answerOf(t, h.emit(hs, resendtest.Event{Type: mail.EventComplaint, EmailID: emailID}))
	if a.Result != RecordApplied || !a.Suppressed || h.delivery(inv.ID).Status != DeliveryComplained {
		t.Fatalf("complaint: %+v, delivery %+v", a, h.delivery(inv.ID))
	}
	_, err := h.svc.Resend(h.ctx, inv.ID, true)
	mustCode(t, err, "address_suppressed")
	_, err = h.svc.Remind(h.ctx, inv.ID)
	mustCode(t, err, "address_suppressed")
	other := h.newOrg("Other Org")
	_, _, err = h.svc.Invite(h.ctx, other.ID, InviteRequest{Email: "Grumpy@Example.com", Role: "member"})
	mustCode(t, err, "address_suppressed")
	// The caller may still deliver the link itself.
	if _, err := h.svc.Resend(h.ctx, inv.ID, false); err != nil {
		t.Fatalf("resend without mail: %v", err)
	}

	// A mail job already queued before the complaint is not sent.
	sent := len(h.resend.Emails())
	if _, err := h.deliv.ClearSuppression(h.ctx, "grumpy@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Resend(h.ctx, inv.ID, true); err != nil {
		t.Fatalf("resend after clearing: %v", err)
	}
	if err := h.deliv.Suppress(h.ctx, Suppression{Email: "grumpy@example.com", Reason: "complained"}); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if d := h.delivery(inv.ID); d.Status != DeliverySuppressed || d.Reason != "complained" || len(h.resend.Emails()) != sent {
		t.Fatalf("queued job of a suppressed address: delivery %+v, %d emails (was %d)", d, len(h.resend.Emails()), sent)
	}

	page, err := h.deliv.ListSuppressions(h.ctx, "", 10)
	if err != nil || len(page.Items) != 1 || page.Items[0].Email != "grumpy@example.com" || page.Items[0].Reason != "complained" {
		t.Fatalf("ListSuppressions = %+v, %v", page, err)
	}
	if cleared, err := h.deliv.ClearSuppression(h.ctx, "grumpy@example.com"); err != nil || !cleared {
		t.Fatalf("ClearSuppression = %v, %v", cleared, err)
	}
	if _, err := h.svc.Resend(h.ctx, inv.ID, true); err != nil {
		t.Fatalf("resend after clearing: %v", err)
	}
	h.drain()
	if d := h.delivery(inv.ID); d.Status != DeliverySent || len(h.resend.Emails()) != sent+1 {
		t.Fatalf("after clearing: delivery %+v, %d emails, want sent and one more", d, len(h.resend.Emails()))
	}
	if page, _ := h.deliv.ListSuppressions(h.ctx, "", 10); len(page.Items) != 0 || page.Total != 0 {
		t.Fatalf("after clearing the list holds %+v", page)
	}
}

// Forged, stale, replayed and malformed webhooks are refused, or answered
// without effect, and change nothing; an email id kratos-orgs never sent
// is answered 200 so Resend does not retry it.
func TestWebhookRefusals(t *testing.T) {
	h := newHarness(t)
	hs := h.hookServer()
	inv, emailID := h.sentInvitation("careful@example.com")
	bounce := h.resend.Payload(resendtest.Event{Type: mail.EventBounced, EmailID: emailID})
	now := h.clock.Now()
	post := func(id string, ts time.Time, sig string, body []byte) resendtest.Delivery {
		t.Helper()
		d, err := resendtest.PostSigned(hs.url, id, ts, sig, body)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	code := func(d resendtest.Delivery) string {
		var b httpx.ErrorBody
		_ = json.Unmarshal(d.Answer, &b)
		return b.Error.Code
	}
	other := resendtest.NewWebhookSecret()
	for _, tc := range []struct {
		name   string
		d      resendtest.Delivery
		status int
		code   string
	}{
		{"wrong secret", post("msg_1", now, resendtest.Sign(other, "msg_1", now, bounce), bounce), 401, "webhook_signature_invalid"},
		{"no signature", post("msg_2", now, "", bounce), 401, "webhook_signature_missing"},
		{"body changed", post("msg_3", now, resendtest.Sign(hs.secret, "msg_3", now, bounce), append([]byte(" "), bounce...)), 401, "webhook_signature_invalid"},
		{"stale", post("msg_4", now.Add(-6*time.Minute), resendtest.Sign(hs.secret, "msg_4", now.Add(-6*time.Minute), bounce), bounce), 401, "webhook_timestamp_out_of_tolerance"},
		{"future", post("msg_5", now.Add(6*time.Minute), resendtest.Sign(hs.secret, "msg_5", now.Add(6*time.Minute), bounce), bounce), 401, "webhook_timestamp_out_of_tolerance"},
		{"malformed", post("msg_6", now, resendtest.Sign(hs.secret, "msg_6", now, []byte(`{"type":"email.bounced","data":{}}`)), []byte(`{"type":"email.bounced","data":{}}`)), 400, "invalid_webhook_payload"},
		{"oversized", post("msg_7", now, "v1,x", []byte(`{"type":"`+strings.Repeat("a", mail.MaxWebhookBody)+`"}`)), 413, "body_too_large"},
	} {
		if tc.d.Status != tc.status || code(tc.d) != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, tc.d.Status, tc.d.Answer, tc.status, tc.code)
		}
	}
	if d := h.delivery(inv.ID); d.Status != DeliverySent {
		t.Fatalf("refused webhooks changed the delivery: %+v", d)
	}
	if s, _ := h.deliv.Suppressed(h.ctx, "careful@example.com"); s != nil {
		t.Fatalf("refused webhooks suppressed the address: %+v", s)
	}

	// A delivered event, then a replay of it after a newer bounce was
	// recorded by another message: the replay is answered duplicate.
	delivered := h.resend.Payload(resendtest.Event{Type: mail.EventDelivered, EmailID: emailID, CreatedAt: now.Add(2 * time.Second)})
	first, _ := resendtest.Post(hs.url, hs.secret, "msg_d", now, delivered)
	if a := answerOf(t, first); a.Result != RecordApplied {
		t.Fatalf("delivered: %+v", a)
	}
	if err := h.rdb.HDel(h.ctx, h.ks.Invitation(inv.ID), "dt").Err(); err != nil { // so only the replay check can stop it
		t.Fatal(err)
	}
	h.rdb.HSet(h.ctx, h.ks.Invitation(inv.ID), "d", DeliverySent)
	replay, _ := resendtest.Post(hs.url, hs.secret, "msg_d", now.Add(time.Second), delivered)
	if a := answerOf(t, replay); a.Result != "duplicate" || h.delivery(inv.ID).Status != DeliverySent {
		t.Fatalf("replay: %+v, delivery %+v; want duplicate and no change", a, h.delivery(inv.ID))
	}

	unknown := h.emit(hs, resendtest.Event{Type: mail.EventBounced, EmailID: "4ef9a417-02e9-4d39-ad75-9611e0fcc33c"})
	if a := answerOf(t, unknown); a.Result != RecordUnknown || a.Suppressed {
		t.Fatalf("unknown email id: %+v", a)
	}
	opened := h.emit(hs, resendtest.Event{Type: "email.opened", EmailID: emailID})
	if a := answerOf(t, opened); a.Result != "ignored" {
		t.Fatalf("email.opened: %+v", a)
	}
}

// A report about the mail of a link replaced since leaves the new mail's
// status alone, but a bounce still suppresses the address.
func TestWebhookAboutAReplacedLink(t *testing.T) {
	h := newHarness(t)
	hs := h.hookServer()
	inv, oldID := h.sentInvitation("moved@example.com")
	if _, err := h.svc.Resend(h.ctx, inv.ID, true); err != nil {
		t.Fatal(err)
	}
	h.drain()
	newID := h.delivery(inv.ID).MessageID
	if newID == oldID || newID == "" {
		t.Fatalf("resend kept the email id %q", newID)
	}
	a := answerOf(t, h.emit(hs, resendtest.Event{Type: mail.EventBounced, EmailID: oldID}))
	if a.Result != RecordStale || !a.Suppressed || h.delivery(inv.ID).Status != DeliverySent {
		t.Fatalf("bounce of the old mail: %+v, delivery %+v", a, h.delivery(inv.ID))
	}
}

// A bulk row to a suppressed address is refused as a single invitation
// is (address_suppressed, no reference left behind, no mail), unless the
// row sends no mail; the other rows go on.
func TestBulkRefusesSuppressedAddresses(t *testing.T) {
	h := newHarness(t)
	if err := h.deliv.Suppress(h.ctx, Suppression{Email: "bounced@example.com", Reason: "bounced"}); err != nil {
		t.Fatal(err)
	}
	noMail := false
	rows := []BulkRow{{Email: "Bounced@Example.com"}, {Email: "fine@example.com"}, {Email: "bounced@example.com", SendEmail: &noMail}}
	resp, err := h.svc.BulkInvite(h.ctx, h.org.ID, rows[:2], BulkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(resultsOf(resp)); got != "[address_suppressed created]" {
		t.Fatalf("results %s", got)
	}
	if refs, _ := h.rdb.HLen(h.ctx, h.ks.AddressRefs("bounced@example.com")).Result(); refs != 0 {
		t.Fatalf("a refused row left %d address references", refs)
	}
	h.drain()
	if n := len(h.resend.Emails()); n != 1 {
		t.Fatalf("%d mails, want only fine@example.com's", n)
	}
	// The caller who delivers the link itself may still invite it.
	resp, err = h.svc.BulkInvite(h.ctx, h.org.ID, rows[2:], BulkOptions{})
	if err != nil || resp.Results[0].Result != BulkCreated {
		t.Fatalf("a row without mail: %+v %v", resp.Results, err)
	}
}
