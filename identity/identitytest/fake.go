// Package identitytest is an in-memory stand-in for the Kratos admin API,
// for unit tests and benchmarks. End-to-end tests use a real Kratos.
package identitytest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	ory "github.com/ory/client-go"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/identity"
)

// Fake keeps identities in memory. Set Down to make every call fail as if
// Kratos were unreachable.
type Fake struct {
	mu      sync.Mutex
	byID    map[string]*identity.Identity
	byEmail map[string]string
	Down    bool
	Calls   map[string]int
	Deleted []string
	used    map[string]bool // identities given a credential or a session
}

// New returns an empty fake.
func New() *Fake {
	return &Fake{byID: map[string]*identity.Identity{}, byEmail: map[string]string{}, Calls: map[string]int{}, used: map[string]bool{}}
}

func (f *Fake) call(name string) error {
	f.Calls[name]++
	if f.Down {
		return identity.Unavailable(fmt.Errorf("fake kratos is down"))
	}
	return nil
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// SetDown switches the outage on or off.
func (f *Fake) SetDown(down bool) { f.mu.Lock(); f.Down = down; f.mu.Unlock() }

// Add stores an identity as an existing person (active, not ours, with a
// verified address).
func (f *Fake) Add(email, name string) *identity.Identity {
	return f.AddWith(email, name, true)
}

// AddWith is Add with the address verified or not.
func (f *Fake) AddWith(email, name string, verified bool) *identity.Identity {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := &identity.Identity{ID: newUUID(), Email: strings.ToLower(email), Name: name, State: "active", Verified: verified, CreatedAt: time.Now()}
	f.byID[id.ID] = id
	f.byEmail[id.Email] = id.ID
	return clone(id)
}

// clone copies an identity; its verified addresses follow Verified, as
// Kratos' verifiable_addresses would (unless a test set them itself).
func clone(i *identity.Identity) *identity.Identity {
	c := *i
	if c.VerifiedAddresses == nil && c.Verified {
		c.VerifiedAddresses = []string{c.Email}
	}
	return &c
}

// Ready implements the readiness check.
func (f *Fake) Ready(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.call("Ready")
}

// FindByEmail looks an address up.
func (f *Fake) FindByEmail(_ context.Context, email string) (*identity.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("FindByEmail"); err != nil {
		return nil, err
	}
	if id, ok := f.byEmail[strings.ToLower(email)]; ok {
		return clone(f.byID[id]), nil
	}
	return nil, nil
}

// Get reads an identity.
func (f *Fake) Get(_ context.Context, id string) (*identity.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Get"); err != nil {
		return nil, err
	}
	if i, ok := f.byID[id]; ok {
		return clone(i), nil
	}
	return nil, nil
}

// CreateInvited creates an inactive identity marked as ours.
func (f *Fake) CreateInvited(_ context.Context, email string, _ map[string]any) (*identity.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("CreateInvited"); err != nil {
		return nil, err
	}
	if _, ok := f.byEmail[strings.ToLower(email)]; ok {
		return nil, identity.ErrExists
	}
	i := &identity.Identity{ID: newUUID(), Email: strings.ToLower(email), State: "inactive", CreatedByUs: true, CreatedAt: time.Now()}
	f.byID[i.ID] = i
	f.byEmail[i.Email] = i.ID
	return clone(i), nil
}

// Delete removes an identity.
func (f *Fake) Delete(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Delete"); err != nil {
		return err
	}
	if i, ok := f.byID[id]; ok {
		delete(f.byEmail, i.Email)
	}
	delete(f.byID, id)
	f.Deleted = append(f.Deleted, id)
	return nil
}

// Count is the number of identities stored.
func (f *Fake) Count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.byID)
}

// MarkUsed records that an identity got a credential or a session.
func (f *Fake) MarkUsed(id string) { f.mu.Lock(); f.used[id] = true; f.mu.Unlock() }

// Untouched is true for an existing identity that never got a credential
// or a session (MarkUsed, or a password set by Activate).
func (f *Fake) Untouched(_ context.Context, id string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Untouched"); err != nil {
		return false, err
	}
	_, ok := f.byID[id]
	return ok && !f.used[id], nil
}

// MarkActive marks an identity active directly.
func (f *Fake) MarkActive(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i, ok := f.byID[id]; ok {
		i.State = "active"
	}
}

// Activate marks the identity active and its address verified.
func (f *Fake) Activate(_ context.Context, id string, a identity.Activation) (*identity.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Activate"); err != nil {
		return nil, err
	}
	i, ok := f.byID[id]
	if !ok {
		return nil, apperr.NotFoundf("identity_not_found", "identity %s does not exist", id)
	}
	i.State, i.Verified = "active", true
	if a.Password != "" {
		f.used[id] = true
	}
	return clone(i), nil
}

// RecoveryLink returns a fake link.
func (f *Fake) RecoveryLink(_ context.Context, id, returnTo string, _ time.Duration) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("RecoveryLink"); err != nil {
		return "", err
	}
	return "http://kratos.invalid/self-service/recovery?identity=" + id + "&return_to=" + returnTo, nil
}

// Whoami knows no sessions.
func (f *Fake) Whoami(context.Context, string, string) (*identity.Session, error) { return nil, nil }

// LogoutURL knows no sessions either.
func (f *Fake) LogoutURL(context.Context, string, string) (string, error) { return "", nil }

// Flow knows no self-service flows: every one is unknown (404).
func (f *Fake) Flow(context.Context, string, string, string, any) (int, error) {
	return http.StatusNotFound, nil
}

// FlowError knows no errors either.
func (f *Fake) FlowError(context.Context, string, string, any) (int, error) {
	return http.StatusNotFound, nil
}

// BrowserFlowURL points at a Kratos that is not there.
func (f *Fake) BrowserFlowURL(kind, returnTo string) string {
	return "http://kratos.invalid/self-service/" + kind + "/browser?return_to=" + url.QueryEscape(returnTo)
}

// Schema accepts any traits.
func (f *Fake) Schema(context.Context) (map[string]any, error) {
	return map[string]any{"type": "object"}, nil
}

// Patch applies add/replace of /metadata_public (what kratos-orgs patches).
func (f *Fake) Patch(_ context.Context, id string, ops []ory.JsonPatch) (*identity.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Patch"); err != nil {
		return nil, err
	}
	i, ok := f.byID[id]
	if !ok {
		return nil, apperr.NotFoundf("identity_not_found", "identity %s does not exist", id)
	}
	for _, op := range ops {
		if op.Path == "/metadata_public" {
			i.MetadataPublic, _ = op.Value.(map[string]any)
		}
	}
	return clone(i), nil
}
