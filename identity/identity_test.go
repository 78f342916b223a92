package identity_test

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	ory "github.com/ory/client-go"

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

// Activating a placeholder that was read moments before is one PATCH that
// also writes metadata_public (the acceptance's claims) and keeps its other
// keys. Kratos v1.3's PATCH refuses a JSON Patch "test" operation, so a
// PATCH cannot guard itself against a concurrent change: the acceptance
// keeps its read of the placeholder as the guard.
func TestActivationWritesClaimsAndKratosRefusesTestOps(t *testing.T) {
	k := testenv.SharedKratos(t)
	ids := identity.New(identity.Config{AdminURL: k.AdminURL, PublicURL: k.PublicURL, SchemaID: "default",
		EmailTrait: "email", NameTrait: "name", Timeout: 10 * time.Second}, nil)
	ctx := context.Background()
	created, err := ids.CreateInvited(ctx, "claims-in-patch@example.com", map[string]any{"created": true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ids.Patch(ctx, created.ID, []ory.JsonPatch{{Op: "test", Path: "/state", Value: "inactive"}})
	if err == nil || !strings.Contains(err.Error(), "unsupported operation: test") {
		t.Fatalf("PATCH with a test operation: %v, want Kratos' refusal", err)
	}
	read, err := ids.Patch(ctx, created.ID, []ory.JsonPatch{{Op: "add", Path: "/metadata_public", Value: map[string]any{"theme": "dark"}}})
	if err != nil {
		t.Fatal(err)
	}
	claims := []any{map[string]any{"id": "org_1", "slug": "acme", "role": "admin"}}
	got, err := ids.Activate(ctx, created.ID, identity.Activation{Email: "claims-in-patch@example.com", Read: read,
		Traits: map[string]any{"name.first": "Ada"}, MetadataPublic: map[string]any{"theme": "dark", "organizations": claims}})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != "active" || !got.Verified || got.Name != "Ada" {
		t.Fatalf("activated: state %q verified %v name %q", got.State, got.Verified, got.Name)
	}
	if !reflect.DeepEqual(got.MetadataPublic, map[string]any{"theme": "dark", "organizations": claims}) {
		t.Fatalf("metadata_public %v", got.MetadataPublic)
	}
}
