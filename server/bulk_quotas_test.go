package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/invites"
)

// A bulk request on /api counts each row that would be invited against
// the org admin's and the organization's invitation quotas, as that many
// single invitations: rows past them answer rate_limited, nothing is sent
// for them, and a second request finds the quota spent.
func TestAPIBulkRowsCountAgainstQuotas(t *testing.T) {
	st := startQuotaStack(t, func(c *config.Config) {
		c.Limits.APIInvitesPerIdentity = config.Rate{Requests: 100, Period: 3600e9}
		c.Limits.APIInvitesPerOrganization = config.Rate{Requests: 3, Period: 86400e9}
	})
	a, tok := st.ids.signIn("a@example.com")
	org := st.orgOwnedBy("Bulk Quota", a)
	bulk := func(emails ...string) []string {
		t.Helper()
		rows := make([]map[string]string, len(emails))
		for i, e := range emails {
			rows[i] = map[string]string{"email": e}
		}
		body, _ := json.Marshal(map[string]any{"invitations": rows})
		r := st.do(http.MethodPost, st.public+"/api/organizations/"+org.ID+"/invitations/bulk", string(body),
			map[string]string{"X-Session-Token": tok, "Content-Type": "application/json"})
		var resp struct {
			Results []struct{ Result string } `json:"results"`
		}
		if err := json.Unmarshal([]byte(r.body), &resp); err != nil || r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
		out := make([]string, len(resp.Results))
		for i, x := range resp.Results {
			out[i] = x.Result
		}
		return out
	}
	got := bulk("b1@example.com", "not an address", "b2@example.com", "b3@example.com", "b4@example.com", "b5@example.com")
	if fmt.Sprint(got) != "[created invalid_email created created rate_limited rate_limited]" {
		t.Fatalf("first request: %v", got)
	}
	if got := bulk("b6@example.com"); fmt.Sprint(got) != "[rate_limited]" {
		t.Fatalf("second request: %v", got)
	}
	st.drain()
	if st.mail.count() != 3 {
		t.Errorf("%d mails, want 3", st.mail.count())
	}
	if st.refusals("api_invites_per_organization") != 3 {
		t.Errorf("%d refusals counted, want 3", st.refusals("api_invites_per_organization"))
	}
	if page, err := st.srv.Invites.List(context.Background(), org.ID, invites.Filter{Status: "all", Limit: 10}); err != nil || page.Total != 3 {
		t.Errorf("%d invitations (%v), want 3", page.Total, err)
	}
}
