package tokens

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
)

// Sealer encrypts short secrets with the first of its keys and opens them
// with any, so keys can be rotated: add the new key first, keep the old one
// until the outbox has drained.
type Sealer struct {
	aeads []cipher.AEAD
}

// NewSealer derives one AES-256-GCM key from each secret (SHA-256 of it).
func NewSealer(secrets []string) (*Sealer, error) {
	if len(secrets) == 0 {
		return nil, errors.New("tokens: no cipher secret")
	}
	s := &Sealer{}
	for _, secret := range secrets {
		key := sha256.Sum256([]byte(secret))
		block, err := aes.NewCipher(key[:])
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		s.aeads = append(s.aeads, aead)
	}
	return s, nil
}

// Seal encrypts plaintext, binding it to context (e.g. the invitation id),
// and returns URL-safe base64.
func (s *Sealer) Seal(plaintext, context string) string {
	aead := s.aeads[0]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("tokens: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, []byte(plaintext), []byte(context)))
}

// ErrUnsealable means no key opens the value (wrong key, or tampered).
var ErrUnsealable = errors.New("tokens: sealed value cannot be opened with any configured cipher secret")

// Open decrypts a value made by Seal with the same context.
func (s *Sealer) Open(sealed, context string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return "", ErrUnsealable
	}
	for _, aead := range s.aeads {
		n := aead.NonceSize()
		if len(raw) < n {
			return "", ErrUnsealable
		}
		if out, err := aead.Open(nil, raw[:n], raw[n:], []byte(context)); err == nil {
			return string(out), nil
		}
	}
	return "", ErrUnsealable
}
