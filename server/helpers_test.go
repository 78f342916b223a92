package server

import (
	"strings"
	"sync"

	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/orgs"
)

func organization(name string) orgs.Organization {
	return orgs.Organization{Name: name, Slug: orgs.Slugify(name), State: orgs.StateActive}
}

type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func invitationFor(email string) invites.InviteRequest {
	return invites.InviteRequest{Email: email, Role: "member"}
}

func listAll() invites.Filter { return invites.Filter{Status: "all", Limit: 10} }
