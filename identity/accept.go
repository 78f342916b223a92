package identity

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	ory "github.com/ory/client-go"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// Activation is what accepting an invitation changes on an identity.
type Activation struct {
	Email    string         // the invited address, marked verified
	Traits   map[string]any // merged into the identity's traits (dotted paths)
	Password string         // set when not empty
	// Read is the identity as the caller read it moments ago (the page's
	// read of the placeholder); nil: Activate reads it. Without a password
	// it saves Kratos a read: activating is then one PATCH.
	Read *Identity
	// MetadataPublic, when not nil, replaces metadata_public in the same
	// PATCH: the acceptance folds the organizations claims in (the claims
	// mirror then has nothing left to write). Only with Read and without a
	// password: see invites.Acceptor.AcceptNew for why.
	MetadataPublic map[string]any
}

// Activate writes the submitted traits, marks the invited address verified
// (the link proved the mailbox), sets the password when given and makes the
// identity active. It is idempotent, so a retried acceptance is safe.
//
// With a.Read it does not read the identity again: without a password,
// activating is one PATCH; with one, the full update that sets the
// password and then the PATCH (the update cannot mark an address
// verified).
func (k *Kratos) Activate(ctx context.Context, id string, a Activation) (*Identity, error) {
	cur := a.Read
	if cur == nil || cur.ID != id || (a.Password != "" && cur.SchemaID == "") {
		var err error
		if cur, err = k.Get(ctx, id); err != nil {
			return nil, err
		}
		if cur == nil {
			return nil, apperr.NotFoundf("identity_not_found", "identity %s does not exist", id)
		}
	}
	traits := cloneTraits(cur.Traits)
	if a.Password != "" {
		for path, v := range a.Traits {
			SetTrait(traits, path, v)
		}
		if err := k.setPassword(ctx, cur, traits, a.Password); err != nil {
			return nil, err
		}
	}
	return k.Patch(ctx, id, activationPatch(traits, cur.Addresses, a))
}

// setPassword makes the identity active with traits and a password: the
// password is a credential, and only a full update can set it, so it
// carries the identity's schema and metadata as read.
func (k *Kratos) setPassword(ctx context.Context, cur *Identity, traits map[string]any, password string) error {
	body := ory.UpdateIdentityBody{
		SchemaId: cur.SchemaID, State: "active", Traits: traits,
		Credentials: &ory.IdentityWithCredentials{Password: &ory.IdentityWithCredentialsPassword{
			Config: &ory.IdentityWithCredentialsPasswordConfig{Password: &password},
		}},
	}
	if cur.MetadataPublic != nil {
		body.MetadataPublic = cur.MetadataPublic
	}
	if cur.MetadataAdmin != nil {
		body.MetadataAdmin = cur.MetadataAdmin
	}
	if _, resp, err := k.api.IdentityAPI.UpdateIdentity(ctx, cur.ID).UpdateIdentityBody(body).Execute(); err != nil {
		return kratosErr("set password", resp, err)
	}
	return nil
}

// activationPatch is the JSON Patch that activates an identity: the merged
// traits, state active, the invited address verified and, when given, the
// new metadata_public.
//
// Kratos v1.3's PATCH takes only add, remove and replace (ory/x jsonx
// ApplyJSONPatch refuses "test" with 400 "unsupported operation: test"), so
// a PATCH cannot be guarded against a concurrent change: the read that
// precedes it (the form's submit) is the guard, as it always was.
func activationPatch(traits map[string]any, addrs []Address, a Activation) []ory.JsonPatch {
	for path, v := range a.Traits {
		SetTrait(traits, path, v)
	}
	ops := []ory.JsonPatch{
		{Op: "replace", Path: "/traits", Value: traits},
		{Op: "replace", Path: "/state", Value: "active"},
	}
	if a.MetadataPublic != nil {
		ops = append(ops, ory.JsonPatch{Op: "add", Path: "/metadata_public", Value: a.MetadataPublic})
	}
	for i, addr := range addrs {
		if strings.EqualFold(addr.Value, a.Email) && !addr.Verified {
			ops = append(ops,
				ory.JsonPatch{Op: "replace", Path: fmt.Sprintf("/verifiable_addresses/%d/verified", i), Value: true},
				ory.JsonPatch{Op: "replace", Path: fmt.Sprintf("/verifiable_addresses/%d/status", i), Value: "completed"},
			)
		}
	}
	return ops
}

// cloneTraits copies a traits document deeply enough for SetTrait: its
// nested objects are copied, so the caller's stays as it was.
func cloneTraits(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			v = cloneTraits(sub)
		}
		out[k] = v
	}
	return out
}

// RecoveryLink returns an admin recovery link: following it gives the
// browser a Kratos session and the settings page, then return_to.
func (k *Kratos) RecoveryLink(ctx context.Context, id, returnTo string, expiresIn time.Duration) (string, error) {
	exp := fmt.Sprintf("%ds", int(expiresIn.Seconds()))
	link, resp, err := k.api.IdentityAPI.CreateRecoveryLinkForIdentity(ctx).ReturnTo(returnTo).
		CreateRecoveryLinkForIdentityBody(ory.CreateRecoveryLinkForIdentityBody{IdentityId: id, ExpiresIn: &exp}).Execute()
	if err != nil {
		return "", kratosErr("create recovery link", resp, err)
	}
	return link.RecoveryLink, nil
}

// Session is the part of a Kratos session kratos-orgs uses.
type Session struct {
	ID       string
	Identity *Identity
	// Addresses are the identity's verifiable addresses (lower-cased) and
	// whether each is verified.
	Addresses map[string]bool
}

// Whoami asks Kratos whose session a browser cookie header or a session
// token belongs to; nil when there is none (or it is not active).
func (k *Kratos) Whoami(ctx context.Context, cookie, sessionToken string) (*Session, error) {
	if cookie == "" && sessionToken == "" {
		return nil, nil
	}
	req := k.public.FrontendAPI.ToSession(ctx)
	if cookie = SessionCookie(cookie, k.cfg.SessionCookie); cookie != "" {
		req = req.Cookie(cookie)
	} else if sessionToken == "" {
		return nil, nil
	}
	if sessionToken != "" {
		req = req.XSessionToken(sessionToken)
	}
	s, resp, err := req.Execute()
	if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
		return nil, nil
	}
	if err != nil {
		return nil, kratosErr("whoami", resp, err)
	}
	if s.Identity == nil || (s.Active != nil && !*s.Active) {
		return nil, nil
	}
	out := &Session{ID: s.Id, Identity: k.convert(s.Identity), Addresses: map[string]bool{}}
	for _, a := range s.Identity.VerifiableAddresses {
		v := strings.ToLower(a.Value)
		out.Addresses[v] = out.Addresses[v] || a.Verified
	}
	return out, nil
}

// LogoutURL starts Kratos' browser logout flow for the session a cookie
// header carries and returns the URL that ends it and then sends the
// browser to returnTo (which must be one of Kratos' allowed return URLs).
// It returns "" when the cookie carries no session.
func (k *Kratos) LogoutURL(ctx context.Context, cookie, returnTo string) (string, error) {
	if cookie == "" {
		return "", nil
	}
	flow, resp, err := k.public.FrontendAPI.CreateBrowserLogoutFlow(ctx).Cookie(cookie).ReturnTo(returnTo).Execute()
	if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
		return "", nil
	}
	if err != nil {
		return "", kratosErr("create logout flow", resp, err)
	}
	return flow.LogoutUrl, nil
}

// Schema returns the identity schema kratos-orgs creates identities with.
func (k *Kratos) Schema(ctx context.Context) (map[string]any, error) {
	schema, resp, err := k.api.IdentityAPI.GetIdentitySchema(ctx, k.cfg.SchemaID).Execute()
	if err != nil {
		return nil, kratosErr("read identity schema", resp, err)
	}
	return schema, nil
}

// EmailTrait is the dotted path of the email trait.
func (k *Kratos) EmailTrait() string { return k.cfg.EmailTrait }
