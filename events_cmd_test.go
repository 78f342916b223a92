package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/events"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// `kratos-orgs audit` prints the trail of the changes the CLI made;
// `events redeliver` sends an event with its webhook-id and `events list`
// shows the attempt.
func TestAuditAndEventsCommands(t *testing.T) {
	var mu sync.Mutex
	var ids []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		ids = append(ids, r.Header.Get("webhook-id"))
		mu.Unlock()
	}))
	defer recv.Close()
	prefix := testenv.UniquePrefix(t)
	env := cliEnv(t, prefix, testenv.SharedKratos(t))
	path := writeConfig(t, minimal+`
events: {endpoints: [{name: crm, url: "`+recv.URL+`", secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]}]}
`)
	if _, _, err := runCLI(t, env, "orgs", "create", "Audit Corp", "-c", path); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, env, "invite", "--org", "audit-corp", "--no-email", "audited@example.com", "-c", path); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, env, "audit", "audit-corp", "-c", path)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || len(lines) != 2 || !strings.Contains(lines[0], "invitation.created") || !strings.Contains(lines[1], "organization.created") ||
		!strings.Contains(lines[0], "audited@example.com") || !strings.Contains(lines[0], "system:") {
		t.Fatalf("audit: %q %v", out, err)
	}
	rdb := testenv.SharedRedis(t).Client(t)
	ks := redisx.Keyspace{Prefix: prefix}
	var wid string
	for s := 0; s < redisx.Shards && wid == ""; s++ {
		msgs, _ := rdb.XRangeN(context.Background(), ks.Events(s), "-", "+", 1).Result()
		if len(msgs) > 0 {
			wid = events.WebhookID(s, msgs[0].ID)
		}
	}
	if wid == "" {
		t.Fatal("no event stream was written with an endpoint configured")
	}
	if out, _, err := runCLI(t, env, "events", "redeliver", wid, "-c", path); err != nil || !strings.Contains(out, "redelivered\t200") {
		t.Fatalf("redeliver: %q %v", out, err)
	}
	mu.Lock()
	if len(ids) != 1 || ids[0] != wid {
		t.Fatalf("the receiver got %v, want %s", ids, wid)
	}
	mu.Unlock()
	out, _, err = runCLI(t, env, "events", "list", "-c", path)
	if err != nil || !strings.Contains(out, wid) || !strings.Contains(out, "redelivered") {
		t.Fatalf("events list: %q %v", out, err)
	}
	if _, _, err := runCLI(t, env, "events", "redeliver", "evt_nope", "-c", path); err == nil {
		t.Fatal("redelivered a malformed webhook-id")
	}
}
