package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/mail/resendtest"
)

// End to end, with real Redis and Kratos and the fake Resend: an
// invitation's mail bounces, Resend's signed webhook reaches the public
// listener, the invitation shows it (and the delivery filter finds it), the
// address is on the suppression list so a resend is refused, and once the
// operator clears it the resend mails again.
func TestDeliveryStatusAndSuppressionEndToEnd(t *testing.T) {
	secret := resendtest.NewWebhookSecret()
	st := startStack(t, func(c *config.Config) { c.Mail.Resend.WebhookSecrets = []string{secret} })
	org := st.createOrg("Bounce Co")
	slug := org["slug"].(string)
	r := st.api("POST", "/admin/organizations/"+slug+"/invitations", map[string]any{"email": "nobody@example.com", "role": "member"})
	if r.status != http.StatusCreated {
		t.Fatalf("invite: %d %s", r.status, r.body)
	}
	invID := r.json(t)["id"].(string)
	emailID := st.waitMails(1)[0].ID
	delivery := func() map[string]any {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			d := st.api("GET", "/admin/invitations/"+invID, nil).json(t)["delivery"].(map[string]any)
			if d["message_id"] == emailID || time.Now().After(deadline) {
				return d
			}
			time.Sleep(20 * time.Millisecond) // the mail job stores the id just after the send
		}
	}
	if d := delivery(); d["status"] != "sent" {
		t.Fatalf("after the send: %v", d)
	}

	hook := st.public + "/hooks/resend"
	for _, typ := range []string{"email.delivered", "email.bounced"} {
		d, err := st.resend.Emit(hook, secret, resendtest.Event{Type: typ, EmailID: emailID})
		if err != nil || d.Status != http.StatusOK || !strings.Contains(string(d.Answer), `"recorded"`) {
			t.Fatalf("%s: %v %d %s", typ, err, d.Status, d.Answer)
		}
	}
	if d := delivery(); d["status"] != "bounced" || d["reason"] != "permanent" || d["at"] == nil {
		t.Fatalf("after the bounce: %v", d)
	}
	list := st.api("GET", "/admin/organizations/"+slug+"/invitations?delivery=bounced", nil).json(t)
	if items := list["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != invID {
		t.Fatalf("delivery=bounced lists %v", list)
	}
	forged, _ := resendtest.Post(hook, resendtest.NewWebhookSecret(), "msg_forged", time.Now(),
		st.resend.Payload(resendtest.Event{Type: "email.delivered", EmailID: emailID, CreatedAt: time.Now().Add(time.Hour)}))
	if forged.Status != http.StatusUnauthorized {
		t.Fatalf("forged webhook: %d %s", forged.Status, forged.Answer)
	}

	if r := st.api("POST", "/admin/invitations/"+invID+"/resend", nil); r.status != http.StatusConflict || r.code() != "address_suppressed" {
		t.Fatalf("resend to a bounced address: %d %s", r.status, r.body)
	}
	var page struct {
		Items []struct{ Email, Reason string }
	}
	if err := json.Unmarshal(st.api("GET", "/admin/suppressions", nil).body, &page); err != nil ||
		len(page.Items) != 1 || page.Items[0].Email != "nobody@example.com" || page.Items[0].Reason != "bounced" {
		t.Fatalf("suppressions: %+v %v", page, err)
	}
	if r := st.api("DELETE", "/admin/suppressions/Nobody@Example.com", nil); r.status != http.StatusNoContent {
		t.Fatalf("clear: %d %s", r.status, r.body)
	}
	if r := st.api("POST", "/admin/invitations/"+invID+"/resend", nil); r.status != http.StatusOK {
		t.Fatalf("resend after clearing: %d %s", r.status, r.body)
	}
	st.waitMails(2)
}

// POST /hooks/resend has its own quota per client address, counted before
// the signature: of 8 forged calls with a quota of 3, 3 reach the
// signature check (401) and 5 are refused (429), and the quota shows in
// the metrics.
func TestResendWebhookQuota(t *testing.T) {
	secret := resendtest.NewWebhookSecret()
	st := startQuotaStack(t, func(c *config.Config) {
		c.Mail.Resend.WebhookSecrets = []string{secret}
		c.Limits.ResendWebhooksPerClient = config.Rate{Requests: 3, Period: time.Minute}
	})
	counts := map[int]int{}
	for i := range 8 {
		r := st.do(http.MethodPost, st.public+"/hooks/resend", `{"type":"email.delivered"}`, map[string]string{
			"Content-Type": "application/json", "svix-id": "msg_" + string(rune('a'+i)), "svix-timestamp": "1", "svix-signature": "v1,AAAA"})
		counts[r.status]++
		if r.status == http.StatusTooManyRequests {
			assertRetryAfter(t, r)
			if code, limit := r.errorBody(t); code != "rate_limited" || limit != "resend_webhooks_per_client" {
				t.Fatalf("429: %s/%s", code, limit)
			}
		}
	}
	if counts[http.StatusUnauthorized] != 3 || counts[http.StatusTooManyRequests] != 5 {
		t.Fatalf("answers %v, want 3×401 and 5×429", counts)
	}
	if n := st.refusals("resend_webhooks_per_client"); n != 5 {
		t.Errorf("metric counts %d refusals, want 5", n)
	}
	// Off without a secret: the route does not exist.
	off := startQuotaStack(t)
	if r := off.do(http.MethodPost, off.public+"/hooks/resend", `{}`, map[string]string{"Content-Type": "application/json"}); r.status != http.StatusNotFound {
		t.Fatalf("without webhook secrets: %d, want 404", r.status)
	}
}
