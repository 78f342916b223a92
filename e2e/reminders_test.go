package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/config"
)

// Automatic reminders over HTTP (traffic validated against the OpenAPI
// document): the configured plan schedules an invitation's next reminder,
// an organization's own plan (PATCH reminders) wins, a bad plan is 400
// invalid_reminders and changes nothing, null gives the configured plan
// back. Sending them is invites' tests' business (they move the clock).
func TestAutomaticRemindersHTTP(t *testing.T) {
	st := startStack(t, "kratos_settings", func(c *config.Config) {
		c.Invitations.Reminders = config.Reminders{AfterSent: []time.Duration{48 * time.Hour}, BeforeExpiry: []time.Duration{24 * time.Hour}}
	})
	r := st.adminCall(http.MethodPost, "/organizations", []byte(`{"name":"Reminder Corp"}`))
	if r.status != http.StatusCreated || r.body["reminders"] != nil {
		t.Fatalf("create: %d %v", r.status, r.body)
	}
	org := r.body["id"].(string)
	nextAfter := func(email string) time.Duration {
		t.Helper()
		r := st.adminCall(http.MethodPost, "/organizations/"+org+"/invitations", []byte(`{"email":"`+email+`"}`))
		if r.status != http.StatusCreated || r.body["reminders_sent"] != 0.0 {
			t.Fatalf("invite %s: %d %v", email, r.status, r.body)
		}
		next, _ := r.body["next_reminder_at"].(string)
		if next == "" {
			return 0
		}
		n, _ := time.Parse(time.RFC3339Nano, next)
		c, _ := time.Parse(time.RFC3339Nano, r.body["created_at"].(string))
		return n.Sub(c)
	}
	if d := nextAfter("configured@example.com"); d != 48*time.Hour {
		t.Fatalf("configured plan: next reminder %s after creation, want 48h", d)
	}

	r = st.adminCall(http.MethodPatch, "/organizations/"+org, []byte(`{"reminders":{"after_sent":["1h"],"before_expiry":[]}}`))
	own, _ := r.body["reminders"].(map[string]any)
	if r.status != http.StatusOK || own == nil || len(own["after_sent"].([]any)) != 1 || own["after_sent"].([]any)[0] != "1h" {
		t.Fatalf("set the organization's plan: %d %v", r.status, r.body)
	}
	for _, bad := range []string{`{"reminders":{"after_sent":["1s"]}}`, `{"reminders":{"before_expiry":["1h","1h"]}}`, `{"reminders":{"after_sent":["soon"]}}`} {
		r = st.adminCall(http.MethodPatch, "/organizations/"+org, []byte(bad))
		if r.status != http.StatusBadRequest {
			t.Fatalf("%s: %d %v, want 400", bad, r.status, r.body)
		}
	}
	r = st.adminCall(http.MethodGet, "/organizations/"+org, nil)
	if own, _ := r.body["reminders"].(map[string]any); own == nil || own["after_sent"].([]any)[0] != "1h" {
		t.Fatalf("a refused plan changed the organization: %v", r.body)
	}
	if d := nextAfter("own-plan@example.com"); d != time.Hour {
		t.Fatalf("organization's plan: next reminder %s after creation, want 1h", d)
	}
	// Dry runs of remind and resend: the mail that would go, nothing written.
	r = st.adminCall(http.MethodGet, "/organizations/"+org+"/invitations?email=own-plan@example.com", nil)
	inv := r.body["items"].([]any)[0].(map[string]any)["id"].(string)
	for _, op := range []string{"remind", "resend"} {
		r = st.adminCall(http.MethodPost, "/invitations/"+inv+"/"+op+"?dry_run=true", nil)
		mail, _ := r.body["mail"].(map[string]any)
		if r.status != http.StatusOK || r.body["dry_run"] != true || mail == nil || mail["to"] != "own-plan@example.com" {
			t.Fatalf("%s?dry_run=true: %d %v", op, r.status, r.body)
		}
	}
	if r = st.adminCall(http.MethodPost, "/invitations/"+inv+"/remind?dry_run=maybe", nil); r.code() != "invalid_dry_run" {
		t.Fatalf("remind?dry_run=maybe: %d %v", r.status, r.body)
	}
	r = st.adminCall(http.MethodPost, "/invitations/"+inv+"/remind", nil)
	if r.status != http.StatusOK || r.body["reminders_sent"] != 1.0 {
		t.Fatalf("the real reminder after dry runs: %d %v", r.status, r.body)
	}

	r = st.adminCall(http.MethodPatch, "/organizations/"+org, []byte(`{"reminders":null}`))
	if r.status != http.StatusOK || r.body["reminders"] != nil {
		t.Fatalf("remove the organization's plan: %d %v", r.status, r.body)
	}
	if d := nextAfter("back@example.com"); d != 48*time.Hour {
		t.Fatalf("after removing the organization's plan: next reminder %s, want 48h", d)
	}
}
