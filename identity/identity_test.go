package identity_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// A placeholder created through the admin API is untouched although
// Kratos lists "password" and "code" entries for it (identifiers only);
// once a password is set it is not, whatever its state.
func TestUntouchedAgainstKratos(t *testing.T) {
	k := testenv.SharedKratos(t)
	ids := identity.New(identity.Config{AdminURL: k.AdminURL, PublicURL: k.PublicURL, SchemaID: "default",
		EmailTrait: "email", NameTrait: "name", Timeout: 10 * time.Second}, nil)
	ctx := context.Background()
	created, err := ids.CreateInvited(ctx, "untouched@example.com", map[string]any{"created": true})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := ids.Untouched(ctx, created.ID); err != nil || !ok {
		t.Fatalf("a fresh placeholder: untouched %v (%v), want true", ok, err)
	}
	if _, err := ids.Activate(ctx, created.ID, identity.Activation{Email: "untouched@example.com", Password: "Correct-Horse-Battery-9"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := ids.Untouched(ctx, created.ID); err != nil || ok {
		t.Fatalf("with a password: untouched %v (%v), want false", ok, err)
	}
	if ok, err := ids.Untouched(ctx, "00000000-0000-4000-8000-000000000000"); err != nil || ok {
		t.Fatalf("a missing identity: untouched %v (%v), want false", ok, err)
	}
}
