package redisx

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// sampleKeyArgs names a sample value for every template parameter.
func sampleKeyArgs(s int) map[string]string {
	return map[string]string{
		"org": NewID("org", s, testNow), "inv": NewID("inv", s, testNow), "hash": "0a1b2c",
		"status": "pending", "email": "we{ird}@example.com", "identity": "8f1c-identity",
	}
}

// goKeys is what Keyspace builds for each Lua key function, from the
// sample values: the two sides of one layout.
var goKeys = map[string]func(k Keyspace, s int, a map[string]string) string{
	"k_org":             func(k Keyspace, _ int, a map[string]string) string { return k.Org(a["org"]) },
	"k_org_members":     func(k Keyspace, _ int, a map[string]string) string { return k.OrgMembers(a["org"]) },
	"k_org_member_ids":  func(k Keyspace, _ int, a map[string]string) string { return k.OrgMemberIDs(a["org"]) },
	"k_org_owners":      func(k Keyspace, _ int, a map[string]string) string { return k.OrgOwners(a["org"]) },
	"k_org_inv_ids":     func(k Keyspace, _ int, a map[string]string) string { return k.OrgInvitations(a["org"]) },
	"k_org_inv_pending": func(k Keyspace, _ int, a map[string]string) string { return k.OrgPending(a["org"]) },
	"k_org_inv_email":   func(k Keyspace, _ int, a map[string]string) string { return k.OrgPendingByEmail(a["org"]) },
	"k_org_inv_status": func(k Keyspace, _ int, a map[string]string) string {
		return k.OrgInvitationsByStatus(a["org"], a["status"])
	},
	"k_org_inv_addr": func(k Keyspace, _ int, a map[string]string) string {
		return k.OrgAddressInvitations(a["org"], a["email"])
	},
	"k_inv":            func(k Keyspace, _ int, a map[string]string) string { return k.Invitation(a["inv"]) },
	"k_tok":            func(k Keyspace, s int, a map[string]string) string { return k.Token(s, a["hash"]) },
	"k_tokinfo":        func(k Keyspace, s int, a map[string]string) string { return k.TokenInfo(s, a["hash"]) },
	"k_due":            func(k Keyspace, s int, _ map[string]string) string { return k.Due(s) },
	"k_purge":          func(k Keyspace, s int, _ map[string]string) string { return k.Purge(s) },
	"k_claims":         func(k Keyspace, s int, _ map[string]string) string { return k.Claims(s) },
	"k_outbox":         func(k Keyspace, s int, _ map[string]string) string { return k.Outbox(s) },
	"k_outbox_delayed": func(k Keyspace, s int, _ map[string]string) string { return k.OutboxDelayed(s) },
	"k_outbox_dead":    func(k Keyspace, s int, _ map[string]string) string { return k.OutboxDead(s) },
	"k_stats":          func(k Keyspace, s int, _ map[string]string) string { return k.Stats(s) },
	"k_moved":          func(k Keyspace, s int, a map[string]string) string { return k.Moved(s, a["identity"]) },
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
	for _, k := range shardLayout {
		if goKeys[k.lua] == nil {
			t.Fatalf("%s has no Go counterpart in this test", k.lua)
		}
		args := make([]string, len(k.params))
		for i, p := range k.params {
			args[i] = "A.sample." + p
		}
		body.WriteString(k.lua + "(" + strings.Join(args, ", ") + "), ")
	}
	body.WriteString("}")
	script := redis.NewScript(OnShard.source() + body.String())
	for _, prefix := range []string{"", "kratos-orgs:", "tenant-a:orgs:"} {
		ks := Keyspace{Prefix: prefix}
		for s := 0; s < Shards; s++ {
			sample := sampleKeyArgs(s)
			arg := struct {
				Env
				Sample map[string]string `json:"sample"`
			}{ks.Env(s, testNow, 0), sample}
			got, err := (&Script{name: "test", lua: script}).Eval(ctx, rdb, []string{ks.Shard(s)}, arg).StringSlice()
			if err != nil {
				t.Fatal(err)
			}
			for i, k := range shardLayout {
				if want := goKeys[k.lua](ks, s, sample); got[i] != want {
					t.Errorf("prefix %q shard %d: Lua %s = %q, Go builds %q", prefix, s, k.lua, got[i], want)
				}
			}
		}
	}
}

func TestScriptArguments(t *testing.T) {
	t.Parallel()
	rdb := testenv.SharedRedis(t).Client(t)
	ctx := context.Background()
	echo := NewScript("redisx.test.echo", Standalone, `
if A.missing ~= nil then return {'unexpected'} end
return {'ok', A.text or '', tostring(A.flag), tostring(A.n)}
`)
	rep, err := echo.Run(ctx, rdb, []string{"k"}, map[string]any{"text": `x "<&>" ü`, "flag": true, "n": 1_700_000_000_123})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Outcome != "ok" || Str(rep.Values[0]) != `x "<&>" ü` || Str(rep.Values[1]) != "true" {
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
	for _, s := range Scripts() {
		found = found || s == echo
	}
	if !found {
		t.Error("Scripts() lacks a script built by NewScript")
	}
	defer func() {
		if recover() == nil {
			t.Error("a second script with the same name did not panic")
		}
	}()
	NewScript("redisx.test.echo", Standalone, "return 1")
}

// NewScript is the one constructor: no other package builds a script
// itself, so every script gets the calling convention, a name, and a
// place in Scripts.
func TestScriptsAreBuiltByNewScript(t *testing.T) {
	t.Parallel()
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != ".." || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(src), "redis.NewScript(") && path != filepath.Join("..", "redisx", "lua.go") {
			t.Errorf("%s builds a script with redis.NewScript; use redisx.NewScript", path)
		}
		for _, raw := range []string{".Eval(ctx, \"", ".Eval(ctx, `", ".EvalSha(", ".EvalRO("} {
			if strings.Contains(string(src), raw) {
				t.Errorf("%s evaluates Lua without redisx.NewScript (%s)", path, raw)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
