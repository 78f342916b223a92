package server

import (
	"context"

	"github.com/gin-gonic/gin"

	"github.com/kratos-orgs/kratos-orgs/domains"
	"github.com/kratos-orgs/kratos-orgs/httpx"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/ratelimit"
)

// newDomains wires verified-domain auto-join (package domains).
func (s *Server) newDomains(orgStore *orgs.Store) *domains.Service {
	c := s.cfg.Domains
	s.domainQuotas = &domainQuotas{
		l: s.Limiter, render: s.Templates,
		perDomain:   limitOf("domains_verify_per_domain", c.VerifyPerDomain),
		perOrg:      limitOf("domains_claims_per_organization", c.ClaimsPerOrganization),
		apiPerID:    limitOf("domains_api_per_identity", c.APIPerIdentity),
		perIdentity: limitOf("domains_join_per_identity", c.JoinPerIdentity),
		pages:       s.quotas,
	}
	return domains.NewService(domains.Options{
		Store: domains.NewStore(s.rdb, s.ks), Orgs: orgStore, Identities: s.ids,
		Resolver: domains.NewResolver(c.DNSServer, c.DNSTimeout), Roles: orgs.Roles(s.cfg.Roles),
		Wake: s.Worker.Wake, Events: s.Recorder, Access: s.Orgs, UnverifiedTTL: c.UnverifiedTTL,
		VerifyQuota: s.domainQuotas.check(s.domainQuotas.perDomain),
		ClaimQuota:  s.domainQuotas.check(s.domainQuotas.perOrg),
		Log:         s.log.With("component", "domains"), Now: s.now,
	})
}

// domainQuotas guard package domains: the DNS check per domain (it costs
// a resolver round trip; spent by the service once the domain is known to
// be claimed, whoever asks), claims per organization on /api (spent once
// the caller is known to be its owner), every /api domain request per
// signed-in identity, and the one-click join per client address (before
// the session is known) and per signed-in identity (it asks Kratos twice).
type domainQuotas struct {
	l                                        *ratelimit.Limiter
	render                                   httpx.PageRenderer
	perDomain, perOrg, apiPerID, perIdentity ratelimit.Limit
	pages                                    *quotas
}

// check binds a limit for the service.
func (q *domainQuotas) check(l ratelimit.Limit) domains.Quota {
	return func(ctx context.Context, key string) error { return q.l.Check(ctx, l, key) }
}

// api counts every /api domain request against the caller's identity.
func (q *domainQuotas) api() gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := q.l.Check(c.Request.Context(), q.apiPerID, httpx.CallerOf(c).IdentityID); err != nil {
			httpx.WriteError(c, err)
		}
	}
}

// join counts a join POST against the client address' form submits
// (limits.link_submits_per_client), before anything else runs.
func (q *domainQuotas) join() gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := q.l.Check(c.Request.Context(), q.pages.linkSubmits, clientKey(c)); err != nil {
			q.pages.page(c, err)
		}
	}
}

// joinPerIdentity is checked by the join page once the session is known.
func (q *domainQuotas) joinPerIdentity(ctx context.Context, identityID string) error {
	return q.l.Check(ctx, q.perIdentity, identityID)
}
