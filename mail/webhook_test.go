package mail_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/mail"
	"github.com/kratos-orgs/kratos-orgs/mail/resendtest"
)

// svixHeaders are the headers Resend's webhooks carry.
func svixHeaders(id string, ts int64, sig string) http.Header {
	h := http.Header{}
	h.Set("svix-id", id)
	h.Set("svix-timestamp", strconv.FormatInt(ts, 10))
	h.Set("svix-signature", sig)
	return h
}

// The verifier accepts Svix' published example (secret, id, timestamp,
// body and signature from Svix' and the Standard Webhooks documentation)
// under svix-* headers, and the specification's webhook-* names too.
func TestVerifierAcceptsTheSpecExample(t *testing.T) {
	t.Parallel()
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		ts     = 1614265330
		sig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	body := []byte(`{"test": 2432232314}`)
	at := func() time.Time { return time.Unix(ts, 0).Add(time.Minute) }
	v, err := mail.NewWebhookVerifier([]string{resendtest.NewWebhookSecret(), secret}, at) // the second key matches: rotation
	if err != nil {
		t.Fatal(err)
	}
	if got, err := v.Verify(svixHeaders(id, ts, "v1,bm90IHRoaXMgb25l "+sig), body); err != nil || got != id {
		t.Fatalf("Verify(svix headers) = %q, %v", got, err)
	}
	spec := http.Header{}
	spec.Set("webhook-id", id)
	spec.Set("webhook-timestamp", strconv.Itoa(ts))
	spec.Set("webhook-signature", sig)
	if _, err := v.Verify(spec, body); err != nil {
		t.Fatalf("Verify(webhook-* headers) = %v", err)
	}
	if got := resendtest.Sign(secret, id, time.Unix(ts, 0), body); got != sig {
		t.Fatalf("resendtest.Sign = %q, want the spec's %q", got, sig)
	}
	for name, h := range map[string]http.Header{
		"other body":  svixHeaders(id, ts, sig),
		"other id":    svixHeaders("msg_other", ts, sig),
		"other time":  svixHeaders(id, ts+1, sig),
		"v2":          svixHeaders(id, ts, "v2,"+sig[3:]),
		"not base64":  svixHeaders(id, ts, "v1,???"),
		"no id":       svixHeaders("", ts, sig),
		"bad time":    {"Svix-Id": {id}, "Svix-Timestamp": {"soon"}, "Svix-Signature": {sig}},
		"stale (6m)":  svixHeaders(id, ts-5*60, sig),
		"early (6m+)": svixHeaders(id, ts+7*60, sig),
	} {
		b := body
		if name == "other body" {
			b = []byte(`{"test": 2432232315}`)
		}
		if _, err := v.Verify(h, b); apperr.KindOf(err) != apperr.Unauthorized {
			t.Errorf("%s: Verify = %v, want 401", name, err)
		}
	}
}

// Secrets are checked when the verifier is built.
func TestVerifierRefusesBadSecrets(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_not base64!", "whsec_c2hvcnQ="} {
		if _, err := mail.NewWebhookVerifier([]string{s}, nil); err == nil {
			t.Errorf("secret %q accepted", s)
		}
	}
	if _, err := mail.NewWebhookVerifier(nil, nil); err == nil {
		t.Error("no secret accepted")
	}
}

// ParseResendEvent reads Resend's documented payloads.
func TestParseResendEvent(t *testing.T) {
	t.Parallel()
	e, err := mail.ParseResendEvent([]byte(`{"type":"email.bounced","created_at":"2024-11-22T23:41:12.126Z","data":{
		"created_at":"2024-11-22 23:41:11.894719+00","email_id":"56761188-7520-42d8-8898-ff6fc54ce618",
		"from":"Acme <onboarding@resend.dev>","to":["bounced@resend.dev"],"subject":"Hi",
		"bounce":{"message":"rejected","subType":"Suppressed","type":"Permanent"},"tags":{"kind":"invitation"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2024, 11, 22, 23, 41, 12, 126e6, time.UTC)
	if e.Type != mail.EventBounced || !e.CreatedAt.Equal(want) || e.EmailID != "56761188-7520-42d8-8898-ff6fc54ce618" ||
		len(e.To) != 1 || e.To[0] != "bounced@resend.dev" || e.Bounce == nil || e.Bounce.Type != "Permanent" || !e.Known() {
		t.Fatalf("parsed %+v", e)
	}
	e, err = mail.ParseResendEvent([]byte(`{"type":"domain.updated","data":{"id":"d1"}}`))
	if err != nil || e.Known() {
		t.Fatalf("an event type not recorded: %+v, %v; want parsed, not known", e, err)
	}
}

// FuzzParseResendEvent: any body parses or is refused with a structured
// 400/413, never a panic; what parses as a known event names an email and
// a time.
func FuzzParseResendEvent(f *testing.F) {
	f.Add([]byte(`{"type":"email.sent","created_at":"2024-11-22T23:41:12Z","data":{"email_id":"e1","to":["a@b.c"]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := mail.ParseResendEvent(body)
		if err != nil {
			if k := apperr.KindOf(err); k != apperr.Invalid && k != apperr.TooLarge {
				t.Fatalf("error %v of kind %v, want invalid or too large", err, k)
			}
			return
		}
		if e.Type == "" {
			t.Fatal("parsed an event without a type")
		}
		if e.Known() && (e.EmailID == "" || e.CreatedAt.IsZero()) {
			t.Fatalf("known event without an email id or time: %+v", e)
		}
		if !json.Valid(body) {
			t.Fatalf("parsed invalid JSON %q", body)
		}
	})
}
