// Package tokens makes and checks the one-time tokens in invitation links.
//
// A token is one hex digit naming the Redis shard of its invitation, then
// 256 random bits in unpadded URL-safe base64 (43 characters). Redis only
// ever stores the SHA-256 of the whole string. While a link waits in the mail
// outbox it is sealed with AES-256-GCM (see Sealer), so a Redis dump never
// holds a usable link.
package tokens

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// Len is the length of a token string.
const Len = 1 + 43

const hexDigits = "0123456789abcdef"

// New returns a fresh token for shard s and its hash.
func New(shard int) (token, hash string) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("tokens: crypto/rand failed: " + err.Error())
	}
	token = string(hexDigits[shard&0xf]) + base64.RawURLEncoding.EncodeToString(b[:])
	return token, Hash(token)
}

// Hash is the hex SHA-256 of a token, the only form Redis sees.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Parse checks a token's shape and returns its shard and hash. A forged
// token of the right shape parses; it just matches nothing in Redis.
func Parse(token string) (shard int, hash string, ok bool) {
	if len(token) != Len {
		return 0, "", false
	}
	shard = strings.IndexByte(hexDigits, token[0])
	if shard < 0 {
		return 0, "", false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token[1:])
	if err != nil || len(raw) != 32 {
		return 0, "", false
	}
	return shard, Hash(token), true
}
