package orgs

import (
	"context"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/identity/identitytest"
)

// An organization's default mail locale: validated, stored canonical,
// changed or removed by PATCH, left alone by a PATCH without it.
func TestOrganizationLocale(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s, _, _ := newTestStore(t, backend)
		svc := NewService(s, identitytest.New(), Roles{"owner", "admin", "member"}, nil)
		ctx := context.Background()
		_, err := svc.Create(ctx, CreateRequest{Name: "Bad", Locale: "Deutsch!"}, StateActive)
		mustCode(t, err, "invalid_locale")
		o, err := svc.Create(ctx, CreateRequest{Name: "Firma", Locale: "de-at"}, StateActive)
		if err != nil || o.Locale != "de-AT" {
			t.Fatalf("create: %+v %v; want locale de-AT", o, err)
		}
		name := "Firma GmbH"
		if o, err = svc.Update(ctx, o.ID, UpdateRequest{Name: &name}); err != nil || o.Locale != "de-AT" {
			t.Fatalf("a PATCH without locale changed it: %+v %v", o, err)
		}
		bad := "??"
		_, err = svc.Update(ctx, o.ID, UpdateRequest{Locale: &bad})
		mustCode(t, err, "invalid_locale")
		de := "de"
		if o, err = svc.Update(ctx, o.ID, UpdateRequest{Locale: &de}); err != nil || o.Locale != "de" {
			t.Fatalf("set de: %+v %v", o, err)
		}
		none := ""
		if o, err = svc.Update(ctx, o.ID, UpdateRequest{Locale: &none}); err != nil || o.Locale != "" {
			t.Fatalf("remove: %+v %v", o, err)
		}
		if got, err := s.Get(ctx, o.ID); err != nil || got.Locale != "" {
			t.Fatalf("read back: %+v %v", got, err)
		}
	})
}
