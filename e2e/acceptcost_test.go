package e2e

import (
	"bufio"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A new person's acceptance costs Kratos three calls, counted by
// kratos-orgs' own metrics against the real Kratos, background jobs
// included: opening the link none (Redis holds what the page shows), the
// form's submit the placeholder's read, one PATCH that activates it and
// writes its organizations claims, and the recovery link; the claims
// mirror's member.sync job then finds the claims written and asks Kratos
// nothing. The identity schema's read (cached for five minutes) is left
// out of the count.
func TestAcceptanceKratosCalls(t *testing.T) {
	st := startStack(t, "kratos_settings")
	org := st.org("Counted Corp")
	inv := st.invite(org, "counted@example.com", "admin")
	link := st.link(1)
	before := st.settledKratosCalls()

	c := client(t)
	resp, page := get(t, c, link)
	m := csrfRE.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("GET %d, no accept form:\n%s", resp.StatusCode, page)
	}
	if got := diffCalls(before, st.kratosCalls()); len(got) != 0 {
		t.Fatalf("opening the link called Kratos: %v", got)
	}
	resp, page = post(t, c, link, url.Values{"csrf_token": {m[1]}, "name.first": {"Counted"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), st.kratos.PublicURL+"/self-service/recovery") {
		t.Fatalf("POST %d to %q:\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
	}
	st.waitJobDone("member.sync")
	got := diffCalls(before, st.settledKratosCalls())
	want := map[string]int{"GET /admin/identities/{id}": 1, "PATCH /admin/identities/{id}": 1, "POST /admin/recovery/link": 1}
	if !equalCalls(got, want) {
		t.Fatalf("Kratos calls for one acceptance: %v, want %v", got, want)
	}
	id := st.proveVerifiedActive("counted@example.com")
	claims, _ := id["metadata_public"].(map[string]any)["organizations"].([]any)
	if len(claims) != 1 || claims[0].(map[string]any)["id"] != org.ID || claims[0].(map[string]any)["role"] != "admin" {
		t.Fatalf("claims in Kratos: %v", id["metadata_public"])
	}
	st.proveMember(org, inv.IdentityID, "admin")
}

// In password mode the password is set before the membership exists, so
// the claims are not folded in: the submit's read, the full update with the
// password, the PATCH that marks the address verified, then the claims
// mirror's read and PATCH. Five calls, where the page's read made six.
func TestAcceptanceKratosCallsPasswordMode(t *testing.T) {
	st := startStack(t, "password")
	org := st.org("Counted Passwords")
	inv := st.invite(org, "counted.password@example.com", "member")
	link := st.link(1)
	before := st.settledKratosCalls()

	c := client(t)
	_, page := get(t, c, link)
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no accept form:\n%s", page)
	}
	pw := "correct horse battery staple"
	resp, page := post(t, c, link, url.Values{"csrf_token": {m[1]}, "name.first": {"Counted"}, "password": {pw}, "password2": {pw}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST %d:\n%s", resp.StatusCode, page)
	}
	st.waitJobDone("member.sync")
	got := diffCalls(before, st.settledKratosCalls())
	want := map[string]int{"GET /admin/identities/{id}": 2, "PUT /admin/identities/{id}": 1, "PATCH /admin/identities/{id}": 2}
	if !equalCalls(got, want) {
		t.Fatalf("Kratos calls for one acceptance: %v, want %v", got, want)
	}
	st.proveVerifiedActive("counted.password@example.com")
	st.proveMember(org, inv.IdentityID, "member")
}

var kratosCallRE = regexp.MustCompile(`^kratos_orgs_kratos_request_duration_seconds_count\{operation="([^"]+)",outcome="([^"]+)"\} (\d+)`)

// kratosCalls reads kratos-orgs' Kratos calls by operation from /metrics,
// leaving out the identity schema's cached read.
func (st *stack) kratosCalls() map[string]int {
	st.t.Helper()
	resp, err := http.Get(st.admin + "/metrics")
	if err != nil {
		st.t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := kratosCallRE.FindStringSubmatch(sc.Text())
		if m == nil || strings.Contains(m[1], "/schemas/") {
			continue
		}
		n, _ := strconv.Atoi(m[3])
		out[m[1]] += n
	}
	return out
}

// settledKratosCalls is kratosCalls once it has not changed for half a
// second: the background jobs of what came before are done.
func (st *stack) settledKratosCalls() map[string]int {
	st.t.Helper()
	last := st.kratosCalls()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		now := st.kratosCalls()
		if equalCalls(now, last) {
			return now
		}
		last = now
	}
	st.t.Fatal("the Kratos calls did not settle")
	return nil
}

// waitJobDone waits until an outbox job of kind has been done.
func (st *stack) waitJobDone(kind string) {
	st.t.Helper()
	want := `kratos_orgs_outbox_job_duration_seconds_count{kind="` + kind + `",outcome="done"}`
	eventuallyTrue(st.t, kind+" done", func() bool {
		resp, err := http.Get(st.admin + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), want) {
				return true
			}
		}
		return false
	})
}

func diffCalls(before, after map[string]int) map[string]int {
	out := map[string]int{}
	for op, n := range after {
		if d := n - before[op]; d != 0 {
			out[op] = d
		}
	}
	return out
}

func equalCalls(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
