package orgs

import (
	"context"

	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// A sign-up through Kratos that asks for an organization gets it once per
// Kratos flow, however often the registration webhook is delivered or its
// queued retry runs. The claim is the "org" field of the flow's webhook
// record (redisx.Keyspace.SignupOrganization): it lives and expires with
// that record, so a retry that comes after the record expired cannot tell
// whether the organization was created and creates nothing.

// The outcomes of ClaimSignupOrganization.
const (
	SignupFirst   = "first"   // this caller creates the organization
	SignupDone    = "done"    // it exists (or is being created)
	SignupExpired = "expired" // the flow's record is gone: too old to act on
)

// signupScript claims the right to create a sign-up's organization, once
// per flow; it reports the organization when one was created already, and
// refuses when the record has expired. KEYS: the record.
var signupScript = redisx.NewScript("orgs.claim_signup", redisx.Standalone, `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'expired'} end
if redis.call('HSETNX', KEYS[1], 'org', 'creating') == 1 then return {'first'} end
return {'done', redis.call('HGET', KEYS[1], 'org')}
`)

// ClaimSignupOrganization reports whether the caller creates the
// organization of a sign-up's flow: SignupFirst, SignupDone (orgID: the
// organization, or "creating") or SignupExpired.
func (s *Store) ClaimSignupOrganization(ctx context.Context, flowID string) (outcome, orgID string, err error) {
	res, err := signupScript.Eval(ctx, s.rdb, []string{s.ks.SignupOrganization(flowID)}, nil).StringSlice()
	if err != nil {
		return "", "", storeErr(err)
	}
	if len(res) > 1 {
		orgID = res[1]
	}
	return res[0], orgID, nil
}

// SetSignupOrganization records the organization a sign-up's flow created.
func (s *Store) SetSignupOrganization(ctx context.Context, flowID, orgID string) error {
	return storeErr(s.rdb.HSet(ctx, s.ks.SignupOrganization(flowID), "org", orgID).Err())
}

// ReleaseSignupOrganization gives a claim back when creating failed, so
// that the retry creates the organization.
func (s *Store) ReleaseSignupOrganization(ctx context.Context, flowID string) error {
	return storeErr(s.rdb.HDel(ctx, s.ks.SignupOrganization(flowID), "org").Err())
}
