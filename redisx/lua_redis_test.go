package redisx_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// These tests need a real Redis; testenv imports redisx, so they live in
// the external test package.

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// sampleKeyArgs names a sample value for every template parameter.
func sampleKeyArgs(s int) map[string]string {
	return map[string]string{
		"org": redisx.NewID("org", s, redisx.TestNow), "inv": redisx.NewID("inv", s, redisx.TestNow), "hash": "0a1b2c",
		"status": "pending", "email": "we{ird}@example.com", "identity": "8f1c-identity", "endpoint": "crm",
	}
}

// goKeys is what redisx.Keyspace builds for each Lua key function, from the
// sample values: the two sides of one layout.
var goKeys = map[string]func(k redisx.Keyspace, s int, a map[string]string) string{
	"k_org":             func(k redisx.Keyspace, _ int, a map[string]string) string { return k.Org(a["org"]) },
	"k_org_members":     func(k redisx.Keyspace, _ int, a map[string]string) string { return k.OrgMembers(a["org"]) },
	"k_org_member_ids":  func(k redisx.Keyspace, _ int, a map[string]string) string { return k.OrgMemberIDs(a["org"]) },
	"k_org_owners":      func(k redisx.Keyspace, _ int, a map[string]string) string { return k.OrgOwners(a["org"]) },
	"k_org_domains":     func(k redisx.Keyspace, _ int, a map[string]string) string { return k.OrgDomains(a["org"]) },
	"k_org_inv_ids":     func(k redisx.Keyspace, _ int, a map[string]string) string { return k.OrgInvitations(a["org"]) },
	"k_org_inv_pending": func(k redisx.Keyspace, _ int, a map[string]string) string { return k.OrgPending(a["org"]) },
	"k_org_inv_email":   func(k redisx.Keyspace, _ int, a map[string]string) string { return k.OrgPendingByEmail(a["org"]) },
	"k_org_inv_status": func(k redisx.Keyspace, _ int, a map[string]string) string {
		return k.OrgInvitationsByStatus(a["org"], a["status"])
	},
	"k_org_inv_addr": func(k redisx.Keyspace, _ int, a map[string]string) string {
		return k.OrgAddressInvitations(a["org"], a["email"])
	},
	"k_org_inv_ended":  func(k redisx.Keyspace, _ int, a map[string]string) string { return k.OrgEndedByAddress(a["org"]) },
	"k_tokens":         func(k redisx.Keyspace, s int, _ map[string]string) string { return k.Tokens(s) },
	"k_inv":            func(k redisx.Keyspace, _ int, a map[string]string) string { return k.Invitation(a["inv"]) },
	"k_tok":            func(k redisx.Keyspace, s int, a map[string]string) string { return k.Token(s, a["hash"]) },
	"k_tokinfo":        func(k redisx.Keyspace, s int, a map[string]string) string { return k.TokenInfo(s, a["hash"]) },
	"k_due":            func(k redisx.Keyspace, s int, _ map[string]string) string { return k.Due(s) },
	"k_purge":          func(k redisx.Keyspace, s int, _ map[string]string) string { return k.Purge(s) },
	"k_remind":         func(k redisx.Keyspace, s int, _ map[string]string) string { return k.Remind(s) },
	"k_claims":         func(k redisx.Keyspace, s int, _ map[string]string) string { return k.Claims(s) },
	"k_outbox":         func(k redisx.Keyspace, s int, _ map[string]string) string { return k.Outbox(s) },
	"k_outbox_delayed": func(k redisx.Keyspace, s int, _ map[string]string) string { return k.OutboxDelayed(s) },
	"k_outbox_dead":    func(k redisx.Keyspace, s int, _ map[string]string) string { return k.OutboxDead(s) },
	"k_stats":          func(k redisx.Keyspace, s int, _ map[string]string) string { return k.Stats(s) },
	"k_moved":          func(k redisx.Keyspace, s int, a map[string]string) string { return k.Moved(s, a["identity"]) },
	"k_org_audit":      func(k redisx.Keyspace, _ int, a map[string]string) string { return k.OrgAudit(a["org"]) },
	"k_events":         func(k redisx.Keyspace, s int, _ map[string]string) string { return k.Events(s) },
	"k_event_ep": func(k redisx.Keyspace, s int, a map[string]string) string {
		return k.EventEndpoint(s, a["endpoint"])
	},
	"k_event_lease": func(k redisx.Keyspace, s int, a map[string]string) string { return k.EventLease(s, a["endpoint"]) },
	"k_event_log":   func(k redisx.Keyspace, s int, _ map[string]string) string { return k.EventLog(s) },
}

// Every key function the prelude offers Lua must build the key Go builds,
// in real Redis, for every shard and a few prefixes: the layout is written
// once, and this is where a drift would show.
func TestLuaKeyFunctionsMatchKeyspace(t *testing.T) {
	t.Parallel()
	rdb := testenv.SharedRedis(t).Client(t)
	ctx := context.Background()
	var body strings.Builder
	body.WriteString("return {")
	for _, k := range redisx.ShardLayout() {
		if goKeys[k.Lua] == nil {
			t.Fatalf("%s has no Go counterpart in this test", k.Lua)
		}
		args := make([]string, len(k.Params))
		for i, p := range k.Params {
			args[i] = "A.sample." + p
		}
		body.WriteString(k.Lua + "(" + strings.Join(args, ", ") + "), ")
	}
	body.WriteString("}")
	script := redis.NewScript(redisx.OnShardSource() + body.String())
	for _, prefix := range []string{"", "kratos-orgs:", "tenant-a:orgs:"} {
		ks := redisx.Keyspace{Prefix: prefix}
		for s := 0; s < redisx.Shards; s++ {
			sample := sampleKeyArgs(s)
			arg := struct {
				redisx.Env
				Sample map[string]string `json:"sample"`
			}{ks.Env(s, redisx.TestNow, 0), sample}
			got, err := redisx.ScriptOf("test", script).Eval(ctx, rdb, []string{ks.Shard(s)}, arg).StringSlice()
			if err != nil {
				t.Fatal(err)
			}
			for i, k := range redisx.ShardLayout() {
				if want := goKeys[k.Lua](ks, s, sample); got[i] != want {
					t.Errorf("prefix %q shard %d: Lua %s = %q, Go builds %q", prefix, s, k.Lua, got[i], want)
				}
			}
		}
	}
}

func TestScriptArguments(t *testing.T) {
	t.Parallel()
	rdb := testenv.SharedRedis(t).Client(t)
	ctx := context.Background()
	echo := redisx.NewScript("redisx.test.echo", redisx.Standalone, `
if A.missing ~= nil then return {'unexpected'} end
return {'ok', A.text or '', tostring(A.flag), tostring(A.n)}
`)
	rep, err := echo.Run(ctx, rdb, []string{"k"}, map[string]any{"text": `x "<&>" ü`, "flag": true, "n": 1_700_000_000_123})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Outcome != "ok" || redisx.Str(rep.Values[0]) != `x "<&>" ü` || redisx.Str(rep.Values[1]) != "true" {
		t.Errorf("reply %#v", rep)
	}
	if rep, err := echo.Run(ctx, rdb, []string{"k"}, nil); err != nil || rep.Outcome != "ok" {
		t.Errorf("nil arguments: %#v, %v", rep, err)
	}
	if err := echo.Eval(ctx, rdb, []string{"k"}, map[string]any{"bad": func() {}}).Err(); err == nil ||
		!strings.Contains(err.Error(), "redisx.test.echo") {
		t.Errorf("unencodable arguments: %v", err)
	}
	found := false
	for _, s := range redisx.Scripts() {
		found = found || s == echo
	}
	if !found {
		t.Error("redisx.Scripts() lacks a script built by redisx.NewScript")
	}
	defer func() {
		if recover() == nil {
			t.Error("a second script with the same name did not panic")
		}
	}()
	redisx.NewScript("redisx.test.echo", redisx.Standalone, "return 1")
}
