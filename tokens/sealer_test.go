package tokens

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

const (
	keyA = "cipher-key-A-0123456789abcdef0123456789"
	keyB = "cipher-key-B-0123456789abcdef0123456789"
)

func mustSealer(t *testing.T, keys ...string) *Sealer {
	t.Helper()
	s, err := NewSealer(keys)
	if err != nil {
		t.Fatalf("NewSealer: %v", err)
	}
	return s
}

func TestSealerRoundTrip(t *testing.T) {
	t.Parallel()
	s := mustSealer(t, keyA)
	for _, plain := range []string{"", "x", "https://orgs.example.com/invitations/accept/0abc", strings.Repeat("é", 500)} {
		sealed := s.Seal(plain, "inv_1")
		if len(plain) > 8 && strings.Contains(sealed, plain) {
			t.Errorf("sealed value %q contains the plaintext", sealed)
		}
		if _, err := base64.RawURLEncoding.DecodeString(sealed); err != nil {
			t.Errorf("sealed value %q is not unpadded URL-safe base64: %v", sealed, err)
		}
		got, err := s.Open(sealed, "inv_1")
		if err != nil || got != plain {
			t.Errorf("Open(Seal(%q)) = %q, %v", plain, got, err)
		}
	}
}

func TestSealerNonceIsFresh(t *testing.T) {
	t.Parallel()
	s := mustSealer(t, keyA)
	if a, b := s.Seal("same", "ctx"), s.Seal("same", "ctx"); a == b {
		t.Errorf("two seals of the same value are identical: %q", a)
	}
}

func TestSealerRotation(t *testing.T) {
	t.Parallel()
	old := mustSealer(t, keyA)
	rotated := mustSealer(t, keyB, keyA)
	onlyB := mustSealer(t, keyB)

	sealedByA := old.Seal("secret link", "inv_1")
	if got, err := rotated.Open(sealedByA, "inv_1"); err != nil || got != "secret link" {
		t.Errorf("[B, A] could not open a value sealed with A: %q, %v", got, err)
	}
	if _, err := onlyB.Open(sealedByA, "inv_1"); !errors.Is(err, ErrUnsealable) {
		t.Errorf("[B] opened a value sealed with A: err = %v", err)
	}
	// New values are sealed with the first key, so old deployments with
	// only A cannot read them and B-only deployments can.
	sealedByRotated := rotated.Seal("new link", "inv_2")
	if got, err := onlyB.Open(sealedByRotated, "inv_2"); err != nil || got != "new link" {
		t.Errorf("[B] could not open a value sealed by [B, A]: %q, %v", got, err)
	}
	if _, err := old.Open(sealedByRotated, "inv_2"); !errors.Is(err, ErrUnsealable) {
		t.Errorf("[A] opened a value sealed by [B, A]: err = %v", err)
	}
}

func TestSealerTamperingFails(t *testing.T) {
	t.Parallel()
	s := mustSealer(t, keyA)
	sealed := s.Seal("https://orgs.example.com/accept/0abc", "inv_1")
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		for _, bit := range []byte{0x01, 0x80} {
			tampered := append([]byte(nil), raw...)
			tampered[i] ^= bit
			if got, err := s.Open(base64.RawURLEncoding.EncodeToString(tampered), "inv_1"); !errors.Is(err, ErrUnsealable) {
				t.Errorf("flipping bit %#x of byte %d: Open = %q, %v; want ErrUnsealable", bit, i, got, err)
			}
		}
	}
	for name, bad := range map[string]string{
		"truncated":       sealed[:len(sealed)-1],
		"nonce only":      base64.RawURLEncoding.EncodeToString(raw[:12]),
		"shorter than IV": base64.RawURLEncoding.EncodeToString(raw[:5]),
		"empty":           "",
		"not base64":      "!!!" + sealed,
		"extra byte":      base64.RawURLEncoding.EncodeToString(append(append([]byte(nil), raw...), 0)),
	} {
		if got, err := s.Open(bad, "inv_1"); !errors.Is(err, ErrUnsealable) {
			t.Errorf("%s: Open = %q, %v; want ErrUnsealable", name, got, err)
		}
	}
}

func TestSealerWrongContextFails(t *testing.T) {
	t.Parallel()
	s := mustSealer(t, keyA)
	sealed := s.Seal("link", "inv_1")
	for _, ctx := range []string{"inv_2", "", "inv_1 ", "INV_1"} {
		if got, err := s.Open(sealed, ctx); !errors.Is(err, ErrUnsealable) {
			t.Errorf("Open with context %q = %q, %v; want ErrUnsealable", ctx, got, err)
		}
	}
	if got, err := s.Open(sealed, "inv_1"); err != nil || got != "link" {
		t.Errorf("Open with the right context = %q, %v", got, err)
	}
}

func TestNewSealerNeedsASecret(t *testing.T) {
	t.Parallel()
	for _, secrets := range [][]string{nil, {}} {
		if s, err := NewSealer(secrets); err == nil || s != nil {
			t.Errorf("NewSealer(%#v) = %v, %v; want an error", secrets, s, err)
		}
	}
}
