package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/reconcile"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func runCLI(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRoot(&out, &errOut, func(k string) string { return env[k] })
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

// cliEnv points the CLI at a shared redis-server (under prefix) and at k.
func cliEnv(t *testing.T, prefix string, k *testenv.Kratos) map[string]string {
	return map[string]string{
		"KRATOS_ORGS_REDIS_URL":        "redis://" + testenv.SharedRedis(t).Addr + "/0",
		"KRATOS_ORGS_REDIS_KEY_PREFIX": prefix,
		"KRATOS_ORGS_KRATOS_ADMIN_URL": k.AdminURL,
		"KRATOS_ORGS_LOG_LEVEL":        "error",
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const minimal = `
admin: {api_keys: ["cli-test-admin-key-0123"]}
mail: {from_address: invites@example.com}
secrets: {cipher: ["cli-test-cipher-secret-0123456789abc"]}
`

func TestCheckConfigMasksSecrets(t *testing.T) {
	path := writeConfig(t, minimal)
	out, _, err := runCLI(t, map[string]string{"KRATOS_ORGS_MAIL_RESEND_API_KEY": "re_live_secret"}, "check-config", "-c", path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "# configuration is valid") || !strings.Contains(out, "from_address: invites@example.com") {
		t.Fatalf("output:\n%s", out)
	}
	for _, secret := range []string{"cli-test-admin-key-0123", "cli-test-cipher-secret", "re_live_secret"} {
		if strings.Contains(out, secret) {
			t.Fatalf("check-config printed the secret %q", secret)
		}
	}
}

func TestCheckConfigReportsEveryProblem(t *testing.T) {
	path := writeConfig(t, "redis: {mode: galaxy}\ninvitations: {ttl: 1000h}\n")
	_, _, err := runCLI(t, nil, "check-config", "-c", path)
	if err == nil {
		t.Fatal("an invalid configuration passed")
	}
	for _, key := range []string{"redis.mode", "invitations.ttl", "admin.api_keys", "secrets.cipher", "mail.from_address"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("the error does not name %s:\n%v", key, err)
		}
	}
	_, _, err = runCLI(t, nil, "check-config", "-c", writeConfig(t, "serve: {publik: {}}\n"))
	if err == nil || !strings.Contains(err.Error(), "publik") || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("an unknown key must be reported with its line: %v", err)
	}
}

func TestTemplatesRender(t *testing.T) {
	out, _, err := runCLI(t, nil, "templates", "render", "invitation_subject.txt")
	if err != nil || strings.TrimSpace(out) != "Ada Lovelace invited you to join Acme & Co" {
		t.Fatalf("render subject: %q %v", out, err)
	}
	out, _, err = runCLI(t, nil, "templates", "render", "invitation_body.html")
	if err != nil || !strings.Contains(out, "Acme &amp; Co") {
		t.Fatalf("render html: %v\n%s", err, out)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "invitation_subject.txt"), []byte("Welcome to {{.Organization.Name}}!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, minimal+"templates: {dir: "+dir+"}\n")
	out, _, err = runCLI(t, nil, "templates", "render", "invitation_subject.txt", "-c", path)
	if err != nil || strings.TrimSpace(out) != "Welcome to Acme & Co!" {
		t.Fatalf("render override: %q %v", out, err)
	}
	if _, _, err := runCLI(t, nil, "templates", "render", "nope.txt"); err == nil || !strings.Contains(err.Error(), "known:") {
		t.Fatalf("unknown template: %v", err)
	}
}

// templates check: the shipped locales are complete (exit 0); a locale an
// override directory adds in part is listed with each gap (exit non-zero).
func TestTemplatesCheck(t *testing.T) {
	out, _, err := runCLI(t, nil, "templates", "check")
	if err != nil || !strings.Contains(out, "de: complete") {
		t.Fatalf("templates check: %v\n%s", err, out)
	}
	dir := t.TempDir()
	for name, content := range map[string]string{
		"invitation_subject.fr.txt": "Rejoignez {{.Organization.Name}}\n",
		"messages.fr.json":          `{"join.title": "Rejoindre %s"}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := writeConfig(t, minimal+"templates: {dir: "+dir+", default_locale: fr}\n")
	out, _, err = runCLI(t, nil, "templates", "check", "-c", path)
	if err == nil || !strings.Contains(err.Error(), "missing in fr") {
		t.Fatalf("templates check with a partial fr: err = %v", err)
	}
	for _, want := range []string{"de: complete", "fr: ", "  invitation_body.fr.txt", "  messages.fr.json: welcome.title"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "invitation_subject.fr.txt") || strings.Contains(out, "messages.fr.json: join.title") {
		t.Errorf("output lists what fr has:\n%s", out)
	}
	out, _, err = runCLI(t, nil, "templates", "render", "invitation_subject.de.txt")
	if err != nil || strings.TrimSpace(out) != "Ada Lovelace hat Sie zu Acme & Co eingeladen" {
		t.Fatalf("render German subject: %q %v", out, err)
	}
}

func TestOrgsAndInviteCommands(t *testing.T) {
	env := cliEnv(t, testenv.UniquePrefix(t), testenv.SharedKratos(t))
	path := writeConfig(t, minimal)
	out, _, err := runCLI(t, env, "orgs", "create", "CLI Corp", "-c", path)
	if err != nil || !strings.Contains(out, "\tcli-corp\tCLI Corp") {
		t.Fatalf("orgs create: %q %v", out, err)
	}
	out, _, err = runCLI(t, env, "orgs", "list", "-c", path)
	if err != nil || !strings.Contains(out, "cli-corp\tactive\tCLI Corp") {
		t.Fatalf("orgs list: %q %v", out, err)
	}
	out, errOut, err := runCLI(t, env, "invite", "--org", "cli-corp", "--no-email", "--role", "admin", "cli.one@example.com", "bad-address", "-c", path)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 invitations failed") || !strings.Contains(errOut, "bad-address") {
		t.Fatalf("invite with one bad address: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "cli.one@example.com\tadmin\tpending\thttp://127.0.0.1:4480/invitations/accept/") {
		t.Fatalf("invite output %q", out)
	}
	if _, _, err := runCLI(t, env, "invite", "x@example.com", "-c", path); err == nil || !strings.Contains(err.Error(), "--org") {
		t.Fatalf("invite without --org: %v", err)
	}
	out, _, err = runCLI(t, env, "orgs", "set-locale", "cli-corp", "de-at", "-c", path)
	if err != nil || !strings.HasSuffix(strings.TrimSpace(out), "\tcli-corp\tde-AT") {
		t.Fatalf("orgs set-locale: %q %v", out, err)
	}
	if _, _, err := runCLI(t, env, "orgs", "set-locale", "cli-corp", "Deutsch!", "-c", path); err == nil || !strings.Contains(err.Error(), "BCP 47") {
		t.Fatalf("orgs set-locale with a bad locale: %v", err)
	}
	out, _, err = runCLI(t, env, "invite", "--org", "cli-corp", "--no-email", "--locale", "klingon!", "cli.two@example.com", "-c", path)
	if err == nil || !strings.Contains(out+err.Error(), "1 of 1") {
		t.Fatalf("invite with a bad locale: %q %v", out, err)
	}
}

// kratos-config takes the addresses and the webhook secret from the
// configuration (the secret from the environment, as in production), and
// flags override the addresses.
func TestKratosConfigCommand(t *testing.T) {
	path := writeConfig(t, minimal+"serve: {public: {base_url: https://app.example.com}, admin: {port: 5481}}\nkratos: {public_url: https://auth.example.com}\n")
	env := map[string]string{"KRATOS_ORGS_HOOKS_SECRET": "secret-from-the-environment-42"}
	out, _, err := runCLI(t, env, "kratos-config", "-c", path, "--kratos-admin-url", "http://kratos-admin:4434")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"url: http://127.0.0.1:5481/hooks/registration/pre",
		"ui_url: https://app.example.com/kratos/login",
		"base_url: https://auth.example.com/",
		"base_url: http://kratos-admin:4434/",
		"value: secret-from-the-environment-42",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if _, _, err := runCLI(t, nil, "kratos-config", "-c", path); err == nil {
		t.Error("generated a configuration without a webhook secret")
	}
}

// TestReconcileCommand: a dry run reports and changes nothing, --apply
// repairs, a second dry run finds nothing, and --apply refuses to run while
// another process holds the lease.
func TestReconcileCommand(t *testing.T) {
	r := testenv.SharedRedis(t)
	k := testenv.StartKratos(t, nil)
	prefix := testenv.UniquePrefix(t)
	env := cliEnv(t, prefix, k)
	path := writeConfig(t, minimal)
	if _, _, err := runCLI(t, env, "orgs", "create", "Fix Corp", "-c", path); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, env, "invite", "--org", "fix-corp", "--no-email", "fix.one@example.com", "-c", path); err != nil {
		t.Fatal(err)
	}
	// Lose the invitation's index job, and leave a slug behind for an
	// organization that was never written (a crash two hours ago).
	rdb := r.Client(t)
	ks := redisx.Keyspace{Prefix: prefix}
	for s := range redisx.Shards {
		rdb.Del(t.Context(), ks.Outbox(s))
	}
	ghost := redisx.NewID("org", 3, time.Now().Add(-2*time.Hour))
	rdb.HSet(t.Context(), ks.Slugs(), "ghost-corp", ghost)
	rdb.ZAdd(t.Context(), ks.Orgs(), redis.Z{Member: ghost})

	for range 2 {
		out, _, err := runCLI(t, env, "reconcile", "-c", path)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"address_index_missing\tinv_", "slug_stale\tghost-corp", "org_listing_stale\t" + ghost,
			"# dry run, nothing changed; --apply would fix 3: address_index_missing=1 org_listing_stale=1 slug_stale=1"} {
			if !strings.Contains(out, want) {
				t.Fatalf("dry run output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "fix.one") {
			t.Fatalf("the report names an address:\n%s", out)
		}
	}
	out, _, err := runCLI(t, env, "reconcile", "--apply", "-c", path)
	if err != nil || !strings.Contains(out, "# fixed 3:") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if out, _, err = runCLI(t, env, "reconcile", "-c", path); err != nil || !strings.HasSuffix(out, "# nothing to fix\n") {
		t.Fatalf("after apply: %v\n%s", err, out)
	}
	rdb.Set(t.Context(), ks.ReconcileLease(), "someone-else", time.Minute)
	if _, _, err = runCLI(t, env, "reconcile", "--apply", "-c", path); !errors.Is(err, reconcile.ErrLeaseHeld) {
		t.Fatalf("apply under another's lease: %v", err)
	}
}

// config-docs prints what the README's table is checked against, without
// a configuration file.
func TestConfigDocsCommand(t *testing.T) {
	out, _, err := runCLI(t, nil, "config-docs")
	if err != nil {
		t.Fatal(err)
	}
	if out != config.Docs() {
		t.Fatalf("config-docs printed something other than config.Docs():\n%s", out)
	}
	if !strings.Contains(out, "| `outbox.claim_after` | `2m` | `KRATOS_ORGS_OUTBOX_CLAIM_AFTER` |") {
		t.Fatalf("config-docs lacks the outbox.claim_after row:\n%s", out)
	}
}

// orgs create --max-members and orgs seats: an operator sets, reads and
// removes an organization's seat limit; an invitation past it fails.
func TestOrgsSeatsCommand(t *testing.T) {
	env := cliEnv(t, testenv.UniquePrefix(t), testenv.SharedKratos(t))
	path := writeConfig(t, minimal)
	if out, _, err := runCLI(t, env, "orgs", "create", "Seat CLI", "--max-members", "1", "-c", path); err != nil {
		t.Fatalf("orgs create --max-members: %q %v", out, err)
	}
	out, _, err := runCLI(t, env, "orgs", "seats", "seat-cli", "-c", path)
	if err != nil || !strings.Contains(out, "\tlimit 1\tmembers 0\tpending 0") {
		t.Fatalf("orgs seats: %q %v", out, err)
	}
	if _, _, err := runCLI(t, env, "invite", "--org", "seat-cli", "--no-email", "seat.one@example.com", "-c", path); err != nil {
		t.Fatal(err)
	}
	_, errOut, err := runCLI(t, env, "invite", "--org", "seat-cli", "--no-email", "seat.two@example.com", "-c", path)
	if err == nil || !strings.Contains(errOut, "seat_limit") {
		t.Fatalf("invite past the limit: %v\n%s", err, errOut)
	}
	out, _, err = runCLI(t, env, "orgs", "seats", "seat-cli", "3", "-c", path)
	if err != nil || !strings.Contains(out, "\tlimit 3\tmembers 0\tpending 1") {
		t.Fatalf("orgs seats 3: %q %v", out, err)
	}
	out, _, err = runCLI(t, env, "orgs", "seats", "seat-cli", "unlimited", "-c", path)
	if err != nil || !strings.Contains(out, "\tlimit unlimited\t") {
		t.Fatalf("orgs seats unlimited: %q %v", out, err)
	}
	for _, bad := range []string{"0", "lots"} {
		if _, _, err := runCLI(t, env, "orgs", "seats", "seat-cli", bad, "-c", path); err == nil {
			t.Fatalf("orgs seats %s: no error", bad)
		}
	}
}

// orgs reminders: an operator reads the plan an organization's invitations
// follow (the configured one), sets the organization's own, and removes it.
func TestOrgsRemindersCommand(t *testing.T) {
	env := cliEnv(t, testenv.UniquePrefix(t), testenv.SharedKratos(t))
	env["KRATOS_ORGS_INVITATIONS_REMINDERS_AFTER_SENT"] = "48h"
	path := writeConfig(t, minimal)
	if out, _, err := runCLI(t, env, "orgs", "create", "Reminder CLI", "-c", path); err != nil {
		t.Fatalf("orgs create: %q %v", out, err)
	}
	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"reminders", "reminder-cli"}, "\tconfigured\tafter_sent 48h\tbefore_expiry none\n"},
		{[]string{"reminders", "reminder-cli", "--after-sent", "1h,72h", "--before-expiry", "24h"}, "\torganization\tafter_sent 1h,72h\tbefore_expiry 24h\n"},
		{[]string{"reminders", "reminder-cli"}, "\torganization\tafter_sent 1h,72h\tbefore_expiry 24h\n"},
		{[]string{"reminders", "reminder-cli", "--default"}, "\tconfigured\tafter_sent 48h\tbefore_expiry none\n"},
	} {
		out, _, err := runCLI(t, env, append(append([]string{"orgs"}, step.args...), "-c", path)...)
		if err != nil || !strings.HasSuffix(out, step.want) {
			t.Fatalf("orgs %v: %q %v; want …%q", step.args, out, err, step.want)
		}
	}
	for _, bad := range [][]string{{"--after-sent", "1s"}, {"--default", "--after-sent", "1h"}} {
		if _, _, err := runCLI(t, env, append([]string{"orgs", "reminders", "reminder-cli", "-c", path}, bad...)...); err == nil {
			t.Fatalf("orgs reminders %v: no error", bad)
		}
	}
}

// `suppressions list` shows a bounced address and `clear` lets it be
// mailed again; clearing an address that is not suppressed fails.
func TestSuppressionsCommand(t *testing.T) {
	prefix := testenv.UniquePrefix(t)
	env := cliEnv(t, prefix, testenv.SharedKratos(t))
	path := writeConfig(t, minimal)
	rdb := testenv.SharedRedis(t).Client(t)
	ks := redisx.Keyspace{Prefix: prefix}
	rdb.ZAdd(t.Context(), ks.Suppressed(), redis.Z{Member: "gone@example.com"})
	rdb.HSet(t.Context(), ks.AddressSuppression("gone@example.com"), "e", "gone@example.com", "r", "bounced", "at", "1767225600000")
	out, _, err := runCLI(t, env, "suppressions", "list", "-c", path)
	if err != nil || !strings.Contains(out, "gone@example.com\tbounced\t2026-01-01T00:00:00Z") || !strings.Contains(out, "# 1 suppressed") {
		t.Fatalf("list: %q, %v", out, err)
	}
	if out, _, err := runCLI(t, env, "suppressions", "clear", "Gone@Example.com", "-c", path); err != nil || !strings.Contains(out, "cleared") {
		t.Fatalf("clear: %q, %v", out, err)
	}
	if out, _, _ := runCLI(t, env, "suppressions", "list", "-c", path); !strings.Contains(out, "# 0 suppressed") {
		t.Fatalf("after clear: %q", out)
	}
	if _, _, err := runCLI(t, env, "suppressions", "clear", "gone@example.com", "-c", path); err == nil {
		t.Fatal("clearing an address that is not suppressed succeeded")
	}
}
