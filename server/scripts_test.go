package server

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// keyFragment matches what a script body would write if it built a key
// name itself: a quoted piece of the layout, or the shard prefix.
var keyFragment = regexp.MustCompile(`'[a-z_]*:[a-z_:]*'|\bP \.\.|\.\. ':`)

// The server links every package that has scripts, so Scripts lists them
// all: each compiles in a real Redis, has a name, and builds no key name of
// its own (keys come from Go, in KEYS or as the prelude's k_* functions).
func TestEveryScript(t *testing.T) {
	t.Parallel()
	rdb := testenv.SharedRedis(t).Client(t)
	ctx := context.Background()
	scripts := redisx.Scripts()
	if len(scripts) < 30 {
		t.Fatalf("only %d scripts registered", len(scripts))
	}
	prefixes := map[string]bool{}
	for _, s := range scripts {
		pkg, _, ok := strings.Cut(s.Name(), ".")
		if !ok {
			t.Errorf("script %q: name is not package.what", s.Name())
		}
		prefixes[pkg] = true
		if err := s.Load(ctx, rdb); err != nil {
			t.Errorf("script %s does not compile: %v", s.Name(), err)
		}
		if strings.Contains(s.Body(), "ARGV") {
			t.Errorf("script %s reads ARGV; its arguments are the table A", s.Name())
		}
		if m := keyFragment.FindString(s.Body()); m != "" {
			t.Errorf("script %s builds a key name (%s); use KEYS or a k_* function", s.Name(), m)
		}
	}
	for _, pkg := range []string{"invites", "orgs", "outbox", "ratelimit", "hooks", "reconcile"} {
		if !prefixes[pkg] {
			t.Errorf("no script of package %s registered", pkg)
		}
	}
}
