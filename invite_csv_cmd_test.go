package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
)

// invite --csv sends a file longer than one bulk request in chunks, shows
// progress and a summary; the same file again sends nothing twice (each
// chunk's idempotency key answers its stored result).
func TestInviteCSVCommand(t *testing.T) {
	env := cliEnv(t, testenv.UniquePrefix(t), testenv.SharedKratos(t))
	path := writeConfig(t, minimal)
	if _, _, err := runCLI(t, env, "orgs", "create", "CSV Corp", "-c", path); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("\uFEFFemail,first_name\n")
	const n = 1003
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "csv.cli%d@example.com,Row %d\n", i, i)
	}
	b.WriteString("not-an-address,Bad\ncsv.cli0@example.com,Again\n")
	file := filepath.Join(t.TempDir(), "people.csv")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runCLI(t, env, "invite", "--org", "csv-corp", "--no-email", "--csv", file, "-c", path)
	if err == nil || !strings.Contains(err.Error(), "1 of 1005 rows were not invited") {
		t.Fatalf("invite --csv: %v\n%s", err, errOut)
	}
	// The repeated address is in another chunk (another request): re-issued.
	want := fmt.Sprintf("created\t%d\ninvalid_email\t1\nreinvited\t1\n", n)
	if out != want {
		t.Fatalf("summary %q, want %q", out, want)
	}
	if !strings.Contains(errOut, "1005 of 1005 rows sent (chunk 2 of 2)") || !strings.Contains(errOut, "row 1004\tnot-an-address\tinvalid_email") {
		t.Fatalf("progress and failures:\n%s", errOut)
	}
	out, _, _ = runCLI(t, env, "invite", "--org", "csv-corp", "--no-email", "--csv", file, "-c", path)
	if out != want {
		t.Fatalf("the same file again: %q, want the stored results %q", out, want)
	}
	out, _, _ = runCLI(t, env, "orgs", "seats", "csv-corp", "-c", path)
	if !strings.Contains(out, fmt.Sprintf("pending %d", n)) {
		t.Fatalf("seats after two runs: %q", out)
	}
	if _, _, err := runCLI(t, env, "invite", "--org", "csv-corp", "--csv", file, "x@example.com", "-c", path); err == nil {
		t.Fatal("addresses and --csv together were accepted")
	}
}
