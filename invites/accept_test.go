package invites

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/config"
)

func newAcceptor(h *harness, mode string) *Acceptor {
	return NewAcceptor(h.svc, h.ids, traitsOK{}, AcceptConfig{
		LoginMode: mode, Fields: []config.Field{{Trait: "name.first", Label: "First name", Required: true}},
		PasswordMinLength: 8, ClaimTimeout: time.Minute, SuccessURL: "https://app.example.com/welcome",
	})
}

// traitsOK accepts any traits (the identity schema is Kratos' business;
// the browser tests check it against the real one).
type traitsOK struct{}

func (traitsOK) Validate(context.Context, map[string]any) error { return nil }

// acceptNew looks the link up, as the page does, and accepts it.
func acceptNew(h *harness, acc *Acceptor, token string, f Form) (Handoff, error) {
	link, err := acc.Lookup(h.ctx, token)
	if err != nil {
		return Handoff{}, err
	}
	return acc.AcceptNew(h.ctx, token, link, nil, f)
}

func tokenOf(t *testing.T, inv Invitation) string {
	t.Helper()
	tok, ok := strings.CutPrefix(inv.AcceptURL, testAcceptURL)
	if !ok {
		t.Fatalf("no accept URL: %+v", inv)
	}
	return tok
}

// Kratos failing after the token was claimed: the claim is released, the
// link works again, nothing is half accepted.
func TestKratosFailureAfterClaimReleasesTheLink(t *testing.T) {
	h := newHarness(t)
	acc := newAcceptor(h, "kratos_settings")
	inv := h.mustInvite("new@example.com", sendEmail(false))
	token := tokenOf(t, inv)
	h.ids.SetDown(true)
	_, err := acceptNew(h, acc, token, Form{Values: map[string]string{"name.first": "Grace"}})
	if apperr.KindOf(err) != apperr.Unavailable {
		t.Fatalf("err = %v, want unavailable (a retry page)", err)
	}
	link, err := acc.Lookup(h.ctx, token)
	if err != nil || !link.Live || link.Invitation.Status != Pending {
		t.Fatalf("after the failure the link must work again: %+v %v", link, err)
	}
	if page, _ := h.orgs.Members(h.ctx, h.org.ID, "", 10); page.Total != 0 {
		t.Fatal("a membership survived the failed acceptance")
	}
	h.ids.SetDown(false)
	hand, err := acceptNew(h, acc, token, Form{Values: map[string]string{"name.first": "Grace"}})
	if err != nil || !strings.Contains(hand.RedirectTo, "recovery") {
		t.Fatalf("the retry: %+v %v", hand, err)
	}
	if _, err := h.orgs.Member(h.ctx, h.org.ID, inv.IdentityID); err != nil {
		t.Fatalf("no membership after the retry: %v", err)
	}
}

// A process that dies between claim and finalize leaves the invitation
// 'accepting'; the sweeper gives the link back after the claim timeout.
func TestCrashMidAcceptanceIsReleasedBySweeper(t *testing.T) {
	h := newHarness(t)
	acc := newAcceptor(h, "kratos_settings")
	inv := h.mustInvite("new@example.com", sendEmail(false))
	token := tokenOf(t, inv)
	if _, err := h.svc.store.Claim(h.ctx, token, time.Minute); err != nil {
		t.Fatal(err)
	}
	// The process "died" here. Meanwhile the link reads as being accepted.
	if link, _ := acc.Lookup(h.ctx, token); link.Live || !link.Invitation.claimed {
		t.Fatalf("claimed link: %+v", link)
	}
	if _, _, err := h.svc.store.Sweep(h.ctx, 100); err != nil {
		t.Fatal(err)
	}
	if link, _ := acc.Lookup(h.ctx, token); link.Live {
		t.Fatal("released before the claim timed out")
	}
	h.clock.Add(time.Minute + time.Second)
	if _, _, err := h.svc.store.Sweep(h.ctx, 100); err != nil {
		t.Fatal(err)
	}
	if link, err := acc.Lookup(h.ctx, token); err != nil || !link.Live {
		t.Fatalf("the sweeper did not release the claim: %+v %v", link, err)
	}
	if _, err := acceptNew(h, acc, token, Form{Values: map[string]string{"name.first": "Grace"}}); err != nil {
		t.Fatalf("accepting after the release: %v", err)
	}
}

// Of concurrent acceptances of one link exactly one succeeds.
func TestConcurrentAcceptancesOneWins(t *testing.T) {
	h := newHarness(t)
	acc := newAcceptor(h, "password")
	token := tokenOf(t, h.mustInvite("new@example.com", sendEmail(false)))
	const n = 30
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, used := 0, 0
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := acceptNew(h, acc, token, Form{Values: map[string]string{"name.first": "G"}, Password: "long enough pw", Password2: "long enough pw"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case apperr.CodeOf(err) == "link_used":
				used++
			default:
				t.Errorf("unexpected: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || used != n-1 {
		t.Fatalf("%d won, %d told the link was used; want 1 and %d", wins, used, n-1)
	}
	if h.ids.Calls["Activate"] != 1 {
		t.Fatalf("Kratos was asked to activate %d times", h.ids.Calls["Activate"])
	}
}
