package tokens

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
)

func TestNewParse(t *testing.T) {
	t.Parallel()
	for shard := 0; shard < 16; shard++ {
		tok, hash := New(shard)
		if len(tok) != Len {
			t.Fatalf("New(%d) = %q: length %d, want %d", shard, tok, len(tok), Len)
		}
		if tok[0] != "0123456789abcdef"[shard] {
			t.Errorf("New(%d) = %q: first character does not name the shard", shard, tok)
		}
		if !regexp.MustCompile(`^[0-9a-f][A-Za-z0-9_-]{43}$`).MatchString(tok) {
			t.Errorf("New(%d) = %q: not URL-safe", shard, tok)
		}
		s, h, ok := Parse(tok)
		if !ok || s != shard || h != hash {
			t.Errorf("Parse(%q) = %d, %q, %v; want %d, %q, true", tok, s, h, ok, shard, hash)
		}
		if hash != Hash(tok) {
			t.Errorf("New's hash %q differs from Hash(token) %q", hash, Hash(tok))
		}
	}
}

func TestNewDiffers(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		tok, _ := New(3)
		if seen[tok] {
			t.Fatalf("New repeated %q", tok)
		}
		seen[tok] = true
	}
}

func TestHash(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte("0abc"))
	if got, want := Hash("0abc"), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("Hash = %q, want %q", got, want)
	}
	// The SHA-256 of the empty string, a known value.
	if got := Hash(""); got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("Hash(\"\") = %q", got)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(Hash("x")) {
		t.Errorf("Hash is not 64 lower-case hex digits: %q", Hash("x"))
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	good, _ := New(10)
	body := good[1:]
	// The last character of 43 base64 characters carries 2 unused bits;
	// "B" sets one of them where "A" does not.
	zeroBody := strings.Repeat("A", 43)
	if _, _, ok := Parse("0" + zeroBody); !ok {
		t.Fatalf("test setup: %q should parse", "0"+zeroBody)
	}
	tests := []struct {
		name, token string
	}{
		{"empty", ""},
		{"one short", good[:Len-1]},
		{"one long", good + "A"},
		{"upper-case hex shard", "A" + body},
		{"non-hex shard", "g" + body},
		{"shard digit missing", body},
		{"standard base64 plus", "0" + body[:42] + "+"},
		{"standard base64 slash", "0" + body[:42] + "/"},
		{"padding", "0" + body[:42] + "="},
		{"double padding", "0" + body[:41] + "=="},
		{"space", "0" + body[:20] + " " + body[21:]},
		{"newline", "0" + body[:20] + "\n" + body[21:]},
		{"non-ASCII", "0" + body[:40] + "é"},
		{"non-zero unused bits", "0" + zeroBody[:42] + "B"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if s, h, ok := Parse(tt.token); ok || s != 0 || h != "" {
				t.Errorf("Parse(%q) = %d, %q, %v; want 0, \"\", false", tt.token, s, h, ok)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	good, _ := New(7)
	f.Add(good)
	f.Add("")
	f.Add("0" + strings.Repeat("A", 43))
	f.Add("f" + strings.Repeat("_", 43))
	f.Add("0" + strings.Repeat("A", 42) + "=")
	f.Add("x" + strings.Repeat("A", 43))
	f.Fuzz(func(t *testing.T, token string) {
		shard, hash, ok := Parse(token)
		if !ok {
			if shard != 0 || hash != "" {
				t.Errorf("rejected %q but returned %d, %q", token, shard, hash)
			}
			return
		}
		if shard < 0 || shard > 15 {
			t.Errorf("Parse(%q) shard = %d", token, shard)
		}
		if len(token) != Len {
			t.Errorf("Parse accepted %q of length %d", token, len(token))
		}
		if hash != Hash(token) {
			t.Errorf("Parse(%q) hash = %q, want %q", token, hash, Hash(token))
		}
		if token[0] != "0123456789abcdef"[shard] {
			t.Errorf("Parse(%q) shard %d does not match its first character", token, shard)
		}
		// An accepted token is canonical: it re-encodes to itself.
		raw, err := base64.RawURLEncoding.DecodeString(token[1:])
		if err != nil || base64.RawURLEncoding.EncodeToString(raw) != token[1:] {
			t.Errorf("Parse accepted a non-canonical body %q", token[1:])
		}
	})
}
