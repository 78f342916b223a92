package redisx

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
