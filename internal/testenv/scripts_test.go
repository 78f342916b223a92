package testenv

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// scriptPackages says, for every package that defines Lua scripts, which
// test runs each of them on a real Redis Cluster (where a script touching
// more than one hash slot fails with CROSSSLOT). The packages with a
// TestCluster check their own list of scripts (RunOnCluster); hooks'
// two scripts touch one key (KEYS[1]) and run on the cluster through the
// end-to-end webhook tests.
var scriptPackages = map[string]string{
	"orgs":      "orgs/cluster_test.go",
	"invites":   "invites/cluster_test.go",
	"outbox":    "outbox/cluster_test.go",
	"ratelimit": "ratelimit/cluster_test.go",
	"reconcile": "reconcile/cluster_test.go",
	"hooks":     "e2e/cluster_test.go",
	"domains":   "domains/cluster_test.go",
	"events":    "events/cluster_test.go",
}

// TestEveryScriptPackageRunsOnTheCluster fails when a package starts
// defining Lua scripts without a cluster test that runs them.
func TestEveryScriptPackageRunsOnTheCluster(t *testing.T) {
	root := filepath.Join("..", "..")
	found := map[string]int{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() {
			n, err := countNewScript(path)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			// redisx holds the one constructor (redisx.NewScript), no script.
			if n > 0 && filepath.ToSlash(rel) != "redisx" {
				found[filepath.ToSlash(rel)] = n
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []string
	for p := range found {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	t.Logf("packages defining scripts: %v", found)
	for _, p := range pkgs {
		test, ok := scriptPackages[p]
		if !ok {
			t.Errorf("package %s defines %d Lua scripts but no test runs them on the cluster: add a TestCluster (testenv.RunOnCluster) and list it in scriptPackages", p, found[p])
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, test))
		if err != nil {
			t.Errorf("package %s: its cluster test %s: %v", p, test, err)
			continue
		}
		if strings.HasSuffix(test, "/cluster_test.go") && strings.HasPrefix(test, p+"/") && !strings.Contains(string(b), "RunOnCluster(") {
			t.Errorf("%s does not call testenv.RunOnCluster", test)
		}
	}
}

func TestKeySlot(t *testing.T) {
	for key, want := range map[string]int{"foo": 12182, "P{0}:org:x": 13907, "kratos-orgs:{g}:slugs": 7233, "{15}": 4178, "a{}b": keySlot("a{}b")} {
		if got := keySlot(key); got != want {
			t.Errorf("keySlot(%q) = %d, want %d", key, got, want)
		}
	}
	args, source := parseMonitorLine(`+1700000000.000001 [0 lua] "HSET" "P{3}:inv:\"x\\y" "a\x00b"` + "\r\n")
	if source != "lua" || len(args) != 3 || args[1] != `P{3}:inv:"x\y` || args[2] != "a\x00b" {
		t.Fatalf("parsed %q from %q", args, source)
	}
}

func TestSlotWatchFindsAScriptTouchingTwoSlots(t *testing.T) {
	stream := strings.Join([]string{
		`+1.0 [0 127.0.0.1:1] "EVALSHA" "aaaaaaaaaaaaaaaa" "1" "P{3}:org:x"`,
		`+1.1 [0 lua] "HGET" "P{3}:org:x" "f"`,
		`+1.2 [0 lua] "DEL" "P{3}:tok:a" "P{3}:tokinfo:a"`,
		`+2.0 [0 127.0.0.1:1] "EVALSHA" "bbbbbbbbbbbbbbbb" "1" "P{3}:org:x"`,
		`+2.1 [0 lua] "HGET" "P{3}:org:x" "f"`,
		`+2.2 [0 lua] "HSET" "P{4}:org:y" "f" "v"`,
		`+3.0 [0 127.0.0.1:1] "GET" "k"`,
	}, "\r\n") + "\r\n"
	w := &slotWatch{}
	w.wg.Add(1)
	w.follow(bufio.NewReader(strings.NewReader(stream)))
	if w.executions != 2 || len(w.violations) != 1 || !strings.Contains(w.violations[0], "bbbbbbbbbbbb") {
		t.Fatalf("%d executions, violations %q; want 2 and script bbbb…", w.executions, w.violations)
	}
}
