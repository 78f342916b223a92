package invites

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/identity/identitytest"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/outbox"
)

// flakyLink is the fake Kratos whose recovery link fails while failLink is
// set, after the activation went through.
type flakyLink struct {
	*identitytest.Fake
	mu       sync.Mutex
	failLink bool
	acts     []identity.Activation
}

func (f *flakyLink) Activate(ctx context.Context, id string, a identity.Activation) (*identity.Identity, error) {
	f.mu.Lock()
	f.acts = append(f.acts, a)
	f.mu.Unlock()
	return f.Fake.Activate(ctx, id, a)
}

func (f *flakyLink) RecoveryLink(ctx context.Context, id, returnTo string, d time.Duration) (string, error) {
	f.mu.Lock()
	fail := f.failLink
	f.mu.Unlock()
	if fail {
		return "", identity.Unavailable(errors.New("fake kratos: recovery link down"))
	}
	return f.Fake.RecoveryLink(ctx, id, returnTo, d)
}

// mirrorStub is the claims mirror: the claims an identity gets are the
// organization it joins; Index records its calls.
type mirrorStub struct{ indexed []string }

func (m *mirrorStub) Joining(_ context.Context, _ string, org orgs.Claim) ([]orgs.Claim, error) {
	return []orgs.Claim{org}, nil
}

func (m *mirrorStub) Index(_ context.Context, org, identityID string) error {
	m.indexed = append(m.indexed, org+" "+identityID)
	return nil
}

// A new person's claims go with the activation PATCH. When the acceptance
// fails after it (the recovery link), the release queues a claims.sync job
// for the placeholder, which takes back the claim of a membership that was
// never written; the retry writes them again, and its member.sync job
// carries their digest so the mirror asks Kratos nothing.
func TestFoldedClaimsAreTakenBackWhenTheAcceptanceFails(t *testing.T) {
	h := newHarness(t)
	accounts := &flakyLink{Fake: h.ids, failLink: true}
	acc := NewAcceptor(h.svc, accounts, traitsOK{}, newAcceptor(h, "kratos_settings").Config())
	mirror := &mirrorStub{}
	acc.SetClaims(mirror)
	var jobs []outbox.Job
	keep := func(_ context.Context, job outbox.Job) error { jobs = append(jobs, job); return nil }
	h.worker.Handle("claims.sync", keep, nil)
	h.worker.Handle("member.sync", keep, nil)
	inv := h.mustInvite("new@example.com", sendEmail(false))
	h.drain()
	token := tokenOf(t, inv)
	submit := func() (Handoff, error) {
		read, err := h.ids.Get(h.ctx, inv.IdentityID)
		if err != nil {
			t.Fatal(err)
		}
		return acceptNew(h, acc, token, Form{Values: map[string]string{"name.first": "Grace"}, placeholder: read})
	}
	if _, err := submit(); err == nil {
		t.Fatal("the acceptance succeeded without a recovery link")
	}
	claims, _ := accounts.acts[0].MetadataPublic[orgs.ClaimsKey].([]orgs.Claim)
	if len(claims) != 1 || claims[0].ID != h.org.ID || claims[0].Role != "admin" {
		t.Fatalf("the activation wrote claims %v", accounts.acts[0].MetadataPublic)
	}
	h.drain()
	if len(jobs) != 1 || jobs[0].Kind != "claims.sync" || jobs[0].Subject != inv.IdentityID {
		t.Fatalf("jobs after the failure: %+v, want one claims.sync for the placeholder", jobs)
	}
	accounts.failLink = false
	jobs = nil
	if h2, err := submit(); err != nil || !strings.Contains(h2.RedirectTo, "recovery") {
		t.Fatalf("the retry: %+v %v", h2, err)
	}
	h.drain()
	want := orgs.ClaimsDigest([]orgs.Claim{{ID: h.org.ID, Slug: h.org.Slug, Role: "admin"}})
	if len(jobs) != 1 || jobs[0].Kind != "member.sync" || jobs[0].Claims != want {
		t.Fatalf("jobs after the retry: %+v, want member.sync with claims %s", jobs, want)
	}
	if len(mirror.indexed) != 1 || mirror.indexed[0] != h.org.ID+" "+inv.IdentityID {
		t.Fatalf("indexed at once: %v", mirror.indexed)
	}
}
