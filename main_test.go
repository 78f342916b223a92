package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
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

func TestOrgsAndInviteCommands(t *testing.T) {
	r := testenv.SharedRedis(t)
	k := testenv.SharedKratos(t)
	env := map[string]string{
		"KRATOS_ORGS_REDIS_URL":        "redis://" + r.Addr + "/0",
		"KRATOS_ORGS_REDIS_KEY_PREFIX": testenv.UniquePrefix(t),
		"KRATOS_ORGS_KRATOS_ADMIN_URL": k.AdminURL,
		"KRATOS_ORGS_LOG_LEVEL":        "error",
	}
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
