package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

// seatsOf reads seats {limit, members, pending} from an organization's JSON.
func seatsOf(t *testing.T, r apiResp) (limit any, members, pending float64) {
	t.Helper()
	s, ok := r.body["seats"].(map[string]any)
	if !ok {
		t.Fatalf("no seats in %v", r.body)
	}
	return s["limit"], s["members"].(float64), s["pending"].(float64)
}

// A seat-limited organization over HTTP with a real Kratos: the admin API
// sets max_members, an invitation past it is 409 seat_limit, and once the
// limit is lowered below what is used the accept page refuses (a page, or
// the structured error as JSON) and the invitation stays pending, until a
// seat is free.
func TestSeatLimitedAcceptanceHTTP(t *testing.T) {
	st := startStack(t, "kratos_settings")
	r := st.adminCall(http.MethodPost, "/organizations", []byte(`{"name":"Seat Corp","max_members":2}`))
	if limit, m, p := seatsOf(t, r); r.status != http.StatusCreated || limit != 2.0 || m != 0 || p != 0 {
		t.Fatalf("create: %d %v", r.status, r.body)
	}
	org := r.body["id"].(string)
	r = st.adminCall(http.MethodPost, "/organizations/"+org+"/invitations", []byte(`{"email":"seat.new@example.com","role":"member"}`))
	if r.status != http.StatusCreated {
		t.Fatalf("invite: %d %v", r.status, r.body)
	}
	inv, identityID := r.body["id"].(string), r.body["identity_id"].(string)
	link := st.link(1)
	member := st.createPerson("seat.member@example.com", "seat member password", true)
	body, _ := json.Marshal(map[string]string{"identity_id": member})
	if r = st.adminCall(http.MethodPost, "/organizations/"+org+"/members", body); r.status != http.StatusCreated {
		t.Fatalf("add member: %d %v", r.status, r.body)
	}
	r = st.adminCall(http.MethodPost, "/organizations/"+org+"/invitations", []byte(`{"email":"seat.third@example.com"}`))
	details, _ := r.body["error"].(map[string]any)["details"].(map[string]any)
	if r.status != http.StatusConflict || r.code() != "seat_limit" || details["limit"] != 2.0 || details["used"] != 2.0 {
		t.Fatalf("invite past the limit: %d %v", r.status, r.body)
	}

	c := client(t)
	_, page := get(t, c, link)
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no accept form:\n%s", page)
	}
	form := url.Values{"csrf_token": {m[1]}, "name.first": {"Seated"}}
	r = st.adminCall(http.MethodPatch, "/organizations/"+org, []byte(`{"max_members":1}`))
	if limit, members, pending := seatsOf(t, r); r.status != http.StatusOK || limit != 1.0 || members != 1 || pending != 1 {
		t.Fatalf("lower the limit: %d %v", r.status, r.body)
	}

	resp, page := post(t, c, link, form)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(page, "This organization is full") {
		t.Fatalf("accept past the limit: %d\n%s", resp.StatusCode, page)
	}
	req, _ := http.NewRequest(http.MethodPost, link, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var apiErr apiResp
	_ = json.NewDecoder(resp.Body).Decode(&apiErr.body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || apiErr.code() != "seat_limit" {
		t.Fatalf("accept past the limit, as JSON: %d %v", resp.StatusCode, apiErr.body)
	}
	if r = st.adminCall(http.MethodGet, "/invitations/"+inv, nil); r.body["status"] != "pending" {
		t.Fatalf("the refused invitation: %v", r.body)
	}
	if resp, page = get(t, c, link); resp.StatusCode != http.StatusConflict || !strings.Contains(page, "This organization is full") {
		t.Fatalf("the page before the form: %d\n%s", resp.StatusCode, page)
	}

	if r = st.adminCall(http.MethodDelete, "/organizations/"+org+"/members/"+member, nil); r.status != http.StatusNoContent {
		t.Fatalf("remove member: %d %v", r.status, r.body)
	}
	resp, page = post(t, c, link, form)
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "recovery") {
		t.Fatalf("accept with a free seat: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
	}
	st.proveMember(orgs.Organization{ID: org, Name: "Seat Corp"}, identityID, "member")
	if r = st.adminCall(http.MethodGet, "/organizations/"+org, nil); r.status != http.StatusOK {
		t.Fatalf("get: %d", r.status)
	} else if limit, members, pending := seatsOf(t, r); limit != 1.0 || members != 1 || pending != 0 {
		t.Fatalf("seats after: %v", r.body["seats"])
	}
}

// In Chromium: a full organization's link says so instead of showing the
// form; once the limit is raised the same link accepts as usual.
func TestSeatLimitedAcceptanceBrowser(t *testing.T) {
	st := startStack(t, "kratos_settings")
	ctx := context.Background()
	org := st.org("Full House")
	inv := st.invite(org, "seat.browser@example.com", "member")
	link := st.link(1)
	member := st.createPerson("seat.browser.member@example.com", "seat browser password", true)
	if _, _, err := st.srv.Orgs.Store().AddMember(ctx, org.ID, orgs.Member{IdentityID: member, Email: "seat.browser.member@example.com", Role: "member"}); err != nil {
		t.Fatal(err)
	}
	one, two := int64(1), int64(2)
	if _, err := st.srv.Orgs.Store().Update(ctx, org.ID, orgs.Update{MaxMembers: &one}); err != nil {
		t.Fatal(err)
	}

	b := testenv.NewBrowser(t)
	b.Do(chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("h1")))
	b.Shot("organization-full")
	if h := b.Text("h1"); h != "This organization is full" {
		t.Fatalf("heading %q\n%s", h, b.Text("main"))
	}
	if main := b.Text("main"); !strings.Contains(main, "limit of 1 member,") || !strings.Contains(main, "still open") {
		t.Fatalf("full page: %s", main)
	}

	if _, err := st.srv.Orgs.Store().Update(ctx, org.ID, orgs.Update{MaxMembers: &two}); err != nil {
		t.Fatal(err)
	}
	b.Do(chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("form#accept")),
		chromedp.SendKeys(chromedp.CSS(`input[name="name.first"]`), "Seated"),
		chromedp.Click(chromedp.CSS(`form#accept button[type="submit"]`)),
	)
	b.WaitURL(`/kratos/settings\?flow=`)
	b.Shot("kratos-settings")
	st.proveMember(org, inv.IdentityID, "member")
}
