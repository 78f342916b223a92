package testenv

import (
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
			if n > 0 {
				rel, _ := filepath.Rel(root, path)
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
