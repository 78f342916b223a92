// Package identity is kratos-orgs' adapter over the Kratos admin API
// (github.com/ory/client-go, pinned to the generation of Kratos v1.3).
// Kratos is the source of truth for people: identities are only created and
// changed here.
package identity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	ory "github.com/ory/client-go"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/redact"
)

// MarkerKey is the metadata_admin key under which kratos-orgs marks the
// identities it created.
const MarkerKey = "kratos_orgs"

// Identity is the part of a Kratos identity kratos-orgs uses.
type Identity struct {
	ID       string
	Email    string
	Name     string
	State    string // active or inactive
	Verified bool   // the email address is verified
	// CreatedByUs is true when kratos-orgs created the identity for an
	// invitation (its metadata_admin marker).
	CreatedByUs    bool
	MetadataPublic map[string]any
	// MetadataAdmin and SchemaID are what a full update must carry back
	// (Activate with a password).
	MetadataAdmin map[string]any
	SchemaID      string
	Traits        map[string]any
	// VerifiedAddresses are the verifiable addresses Kratos shows verified,
	// lower-cased: what the webhooks trust instead of their bodies.
	VerifiedAddresses []string
	// Addresses are the verifiable addresses in Kratos' order (their
	// indexes are JSON Patch paths).
	Addresses []Address
	// CreatedAt is when Kratos created the identity.
	CreatedAt time.Time
}

// Address is one verifiable address of an identity.
type Address struct {
	Value    string
	Verified bool
}

// Config locates Kratos and describes its identity schema.
type Config struct {
	AdminURL   string
	PublicURL  string
	SchemaID   string
	EmailTrait string // dotted path
	NameTrait  string // dotted path
	Timeout    time.Duration
	// SessionCookie is the name of Kratos' session cookie, the only
	// cookie forwarded to Kratos (default ory_kratos_session).
	SessionCookie string
}

// Kratos talks to the Kratos admin API.
type Kratos struct {
	api    *ory.APIClient // admin API
	public *ory.APIClient // public API (sessions)
	cfg    Config
	hc     *http.Client
	// adminURL is cfg.AdminURL without a trailing slash.
	adminURL string
}

// Observer is told about every call to Kratos (metrics).
type Observer interface {
	KratosCall(operation, outcome string, d time.Duration)
}

// New returns an adapter for the admin API at cfg.AdminURL; obs may be nil.
func New(cfg Config, obs Observer) *Kratos {
	var rt http.RoundTripper = newTransport()
	if obs != nil {
		rt = observed{base: rt, obs: obs}
	}
	hc := &http.Client{Timeout: cfg.Timeout, Transport: rt}
	c := ory.NewConfiguration()
	c.Servers = ory.ServerConfigurations{{URL: strings.TrimRight(cfg.AdminURL, "/")}}
	c.HTTPClient = hc
	c.UserAgent = "kratos-orgs"
	p := ory.NewConfiguration()
	p.Servers = ory.ServerConfigurations{{URL: strings.TrimRight(cfg.PublicURL, "/")}}
	p.HTTPClient = hc
	p.UserAgent = "kratos-orgs"
	return &Kratos{api: ory.NewAPIClient(c), public: ory.NewAPIClient(p), cfg: cfg, hc: hc, adminURL: strings.TrimRight(cfg.AdminURL, "/")}
}

// idleConnsPerHost keeps a warm connection for every request in flight:
// Go's default keeps 2 per host, so under load most calls to Kratos paid
// for a new TCP connection (and left thousands in TIME_WAIT).
const idleConnsPerHost = 256

func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 2 * idleConnsPerHost // admin and public API
	t.MaxIdleConnsPerHost = idleConnsPerHost
	return t
}

// Ready checks that the Kratos admin API answers.
func (k *Kratos) Ready(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(k.cfg.AdminURL, "/")+"/admin/health/ready", nil)
	if err != nil {
		return err
	}
	resp, err := k.hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("kratos admin: /admin/health/ready answered %d", resp.StatusCode)
	}
	return nil
}

// FindByEmail returns the identity whose login identifier is email, or nil.
func (k *Kratos) FindByEmail(ctx context.Context, email string) (*Identity, error) {
	var list []wireIdentity
	resp, err := k.call(ctx, http.MethodGet, "/admin/identities", url.Values{"credentials_identifier": {email}}, nil, &list)
	if err != nil {
		return nil, kratosErr("look up identity", resp, err)
	}
	for i := range list {
		id := k.fromWire(&list[i])
		if strings.EqualFold(id.Email, email) {
			return id, nil
		}
	}
	return nil, nil
}

// Get reads an identity; nil when it does not exist.
func (k *Kratos) Get(ctx context.Context, id string) (*Identity, error) {
	var got wireIdentity
	resp, err := k.call(ctx, http.MethodGet, identityPath(id), nil, nil, &got)
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, kratosErr("read identity", resp, err)
	}
	return k.fromWire(&got), nil
}

// ErrExists means another identity already has the address.
var ErrExists = errors.New("identity: an identity with this address exists")

// CreateInvited creates an inactive identity with only the email trait and
// kratos-orgs' marker. It cannot log in or recover until it is activated.
func (k *Kratos) CreateInvited(ctx context.Context, email string, marker map[string]any) (*Identity, error) {
	traits := map[string]any{}
	SetTrait(traits, k.cfg.EmailTrait, email)
	body := struct {
		SchemaID      string         `json:"schema_id"`
		Traits        map[string]any `json:"traits"`
		State         string         `json:"state"`
		MetadataAdmin map[string]any `json:"metadata_admin"`
	}{k.cfg.SchemaID, traits, "inactive", map[string]any{MarkerKey: marker}}
	var got wireIdentity
	resp, err := k.call(ctx, http.MethodPost, "/admin/identities", nil, body, &got)
	if resp != nil && resp.StatusCode == http.StatusConflict {
		return nil, ErrExists
	}
	if err != nil {
		return nil, kratosErr("create identity", resp, err)
	}
	return k.fromWire(&got), nil
}

// Delete removes an identity; deleting a missing one is not an error.
func (k *Kratos) Delete(ctx context.Context, id string) error {
	resp, err := k.api.IdentityAPI.DeleteIdentity(ctx, id).Execute()
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return nil
	}
	if err != nil {
		return kratosErr("delete identity", resp, err)
	}
	return nil
}

// Patch applies a JSON Patch to an identity.
func (k *Kratos) Patch(ctx context.Context, id string, ops []ory.JsonPatch) (*Identity, error) {
	var got wireIdentity
	resp, err := k.call(ctx, http.MethodPatch, identityPath(id), nil, ops, &got)
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return nil, apperr.NotFoundf("identity_not_found", "identity %s does not exist", id)
	}
	if err != nil {
		return nil, kratosErr("patch identity", resp, err)
	}
	return k.fromWire(&got), nil
}

// kratosErr maps a client-go failure to an *Error: no answer or a 5xx means
// Kratos is unavailable (503, temporary); anything else is a bug or a
// schema mismatch (not temporary).
func kratosErr(what string, resp *http.Response, err error) error {
	if resp == nil || temporaryStatus(resp.StatusCode) {
		return outage(fmt.Errorf("kratos: %s: %w", what, err), "the identity service (Kratos) is unavailable; try again", retryAfter(resp))
	}
	var body string
	var oerr *ory.GenericOpenAPIError
	var aerr *apiError
	switch {
	case errors.As(err, &aerr):
		body = string(aerr.body)
	case errors.As(err, &oerr):
		body = string(oerr.Body())
	}
	// Kratos reports some database conflicts (SQLite locks, serialization
	// failures) as 400: they are transient, so retry rather than refuse.
	if resp.StatusCode == http.StatusBadRequest && transientDB(body) {
		return outage(fmt.Errorf("kratos: %s: %s", what, redact.Text(body)), "the identity service (Kratos) is busy; try again", 0)
	}
	if resp.StatusCode == http.StatusBadRequest {
		return refused(apperr.Invalidf("identity_rejected", "Kratos rejected the identity: %s", redact.Text(kratosMessage(body))).
			Wrap(fmt.Errorf("kratos: %s: %d %s", what, resp.StatusCode, redact.Text(body))))
	}
	// Kratos' error bodies may quote the identifier (an address): errors
	// end up in logs, so they carry the body masked and cut.
	return refused(fmt.Errorf("kratos: %s: %d %s: %w", what, resp.StatusCode, redact.Text(body), errors.New(redact.Text(err.Error()))))
}

func transientDB(body string) bool {
	b := strings.ToLower(body)
	return strings.Contains(b, "serialize access") || strings.Contains(b, "database is locked") || strings.Contains(b, "table is locked")
}

func kratosMessage(body string) string {
	// Kratos errors look like {"error":{"reason":"...","message":"..."}}.
	if i := strings.Index(body, `"reason":"`); i >= 0 {
		rest := body[i+10:]
		if j := strings.Index(rest, `"`); j >= 0 {
			return rest[:j]
		}
	}
	if body == "" {
		return "no details"
	}
	return body
}

// convert is fromWire for client-go's Identity (the calls still made
// through it).
func (k *Kratos) convert(in *ory.Identity) *Identity {
	w := wireIdentity{ID: in.Id, SchemaID: in.SchemaId, Traits: in.Traits, MetadataPublic: in.MetadataPublic,
		MetadataAdmin: in.MetadataAdmin, CreatedAt: in.CreatedAt}
	if in.State != nil {
		w.State = *in.State
	}
	for _, a := range in.VerifiableAddresses {
		w.VerifiableAddresses = append(w.VerifiableAddresses, wireAddress{Value: a.Value, Verified: a.Verified})
	}
	return k.fromWire(&w)
}

func displayName(v any) string {
	switch n := v.(type) {
	case string:
		return strings.TrimSpace(n)
	case map[string]any:
		var parts []string
		for _, k := range []string{"first", "last"} {
			if s, ok := n[k].(string); ok && strings.TrimSpace(s) != "" {
				parts = append(parts, strings.TrimSpace(s))
			}
		}
		return strings.Join(parts, " ")
	}
	return ""
}

// Trait reads a dotted trait path ("name.first") from a traits object.
func Trait(m map[string]any, path string) any {
	if path == "" {
		return nil
	}
	var cur any = m
	for _, p := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

// SetTrait writes a dotted trait path, creating the objects on the way.
func SetTrait(m map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}

// observed times each call to Kratos. The operation is the method and the
// path with ids replaced, so label values stay few.
type observed struct {
	base http.RoundTripper
	obs  Observer
}

var idSegment = regexp.MustCompile(`/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

func (o observed) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := o.base.RoundTrip(req)
	outcome := "ok"
	switch {
	case err != nil:
		outcome = "network"
	case resp.StatusCode >= 500:
		outcome = "server_error"
	case resp.StatusCode >= 400 && resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusUnauthorized:
		outcome = "client_error"
	}
	o.obs.KratosCall(req.Method+" "+idSegment.ReplaceAllString(req.URL.Path, "/{id}"), outcome, time.Since(start))
	return resp, err
}

// Untouched reports whether an identity has never been used: no secret in
// any credential and no session, ever. Kratos gives every identity created
// through the admin API "password" and "code" entries that only list its
// identifiers; a password is a hashed_password in the password entry's
// config (read with include_credential), and any other type (oidc,
// webauthn, passkey, totp, lookup_secret) is a credential by itself.
func (k *Kratos) Untouched(ctx context.Context, id string) (bool, error) {
	got, resp, err := k.api.IdentityAPI.GetIdentity(ctx, id).IncludeCredential([]string{"password"}).Execute()
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, kratosErr("read identity credentials", resp, err)
	}
	for kind, c := range got.GetCredentials() {
		switch kind {
		case "code":
			continue
		case "password":
			if _, ok := c.Config["hashed_password"]; !ok {
				continue
			}
		}
		return false, nil
	}
	sessions, resp, err := k.api.IdentityAPI.ListIdentitySessions(ctx, id).PageSize(1).Execute()
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, kratosErr("list identity sessions", resp, err)
	}
	return len(sessions) == 0, nil
}
