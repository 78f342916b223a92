package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
)

// `kratos-orgs domains`: claim (printing the TXT record), list, verify by
// DNS against a local resolver and as the operator, release; bad input is
// an error that changes nothing.
func TestDomainsCommand(t *testing.T) {
	dns := testenv.StartTXTServer(t)
	env := cliEnv(t, testenv.UniquePrefix(t), testenv.SharedKratos(t))
	path := writeConfig(t, minimal+"domains: {dns_server: \""+dns.Addr+"\", dns_timeout: 2s}\n")
	run := func(args ...string) (string, error) {
		t.Helper()
		out, _, err := runCLI(t, env, append(args, "-c", path)...)
		return out, err
	}
	for _, name := range []string{"Domain Corp", "Other Corp"} {
		if _, err := run("orgs", "create", name); err != nil {
			t.Fatal(err)
		}
	}
	out, err := run("domains", "domain-corp", "add", "DNS.Example", "auto_join")
	token := regexp.MustCompile(`_kratos-orgs\.dns\.example\. TXT "([^"]+)"`).FindStringSubmatch(out)
	if err != nil || !strings.HasPrefix(out, "dns.example\tauto_join\tmember\tunverified\n") || token == nil {
		t.Fatalf("add: %q %v", out, err)
	}
	if out, err := run("domains", "domain-corp", "add", "operator.example", "suggest", "admin"); err != nil || !strings.Contains(out, "operator.example\tsuggest\tadmin\tunverified") {
		t.Fatalf("add with a role: %q %v", out, err)
	}
	if _, err := run("domains", "domain-corp", "verify", "dns.example"); err == nil || !strings.Contains(err.Error(), "domain_unverified") {
		t.Fatalf("verify without the record: %v", err)
	}
	dns.Set("_kratos-orgs.dns.example", token[1])
	if out, err := run("domains", "domain-corp", "verify", "dns.example"); err != nil || out != "dns.example\tauto_join\tmember\tverified (dns)\n" {
		t.Fatalf("verify by DNS: %q %v", out, err)
	}
	if out, err := run("domains", "domain-corp", "verify", "operator.example", "--operator"); err != nil || out != "operator.example\tsuggest\tadmin\tverified (operator)\n" {
		t.Fatalf("verify as the operator: %q %v", out, err)
	}
	if n := dns.Count("_kratos-orgs.operator.example"); n != 0 {
		t.Fatalf("--operator asked the resolver %d times", n)
	}
	for _, bad := range [][]string{
		{"domains", "other-corp", "add", "dns.example"},       // domain_taken
		{"domains", "domain-corp", "add", "co.uk"},            // public suffix
		{"domains", "domain-corp", "add", "x.example", "all"}, // policy
		{"domains", "domain-corp", "add", "x.example", "suggest", "owner"},
		{"domains", "domain-corp", "rm", "never.example"}, // not held
		{"domains", "domain-corp", "frob", "x.example"},   // unknown command
		{"domains", "domain-corp", "add"},                 // no domain
		{"domains", "no-such-org"},
	} {
		if out, err := run(bad...); err == nil {
			t.Errorf("%v: no error: %q", bad, out)
		}
	}
	want := "dns.example\tauto_join\tmember\tverified (dns)\noperator.example\tsuggest\tadmin\tverified (operator)\n"
	if out, err := run("domains", "domain-corp"); err != nil || out != want {
		t.Fatalf("list: %q %v; want %q", out, err, want)
	}
	if out, err := run("domains", "domain-corp", "rm", "dns.example"); err != nil || out != "released dns.example\n" {
		t.Fatalf("rm: %q %v", out, err)
	}
	if out, err := run("domains", "domain-corp"); err != nil || out != "operator.example\tsuggest\tadmin\tverified (operator)\n" {
		t.Fatalf("list after rm: %q %v", out, err)
	}
	if out, err := run("domains", "other-corp", "add", "dns.example"); err != nil || !strings.HasPrefix(out, "dns.example\tsuggest\tmember\tunverified") {
		t.Fatalf("another organization claims the released domain: %q %v", out, err)
	}
}
