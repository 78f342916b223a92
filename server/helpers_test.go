package server

import "github.com/kratos-orgs/kratos-orgs/orgs"

func organization(name string) orgs.Organization {
	return orgs.Organization{Name: name, Slug: orgs.Slugify(name), State: orgs.StateActive}
}
