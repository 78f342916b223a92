package redisx

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"strings"
	"time"
)

// IDs are "<kind>_" followed by 26 characters: 16 bytes in lower-case
// base32, a 48-bit millisecond timestamp (so ids sort by creation time), 76
// random bits and, in the low 4 bits of the last byte, the shard. Reading
// the shard off the id finds the right hash tag without a lookup.
var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

const idBodyLen = 26

// NewID returns a new id of the given kind ("org", "inv") in shard s.
func NewID(kind string, shard int, now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		panic("redisx: crypto/rand failed: " + err.Error())
	}
	b[15] = b[15]&0xf0 | byte(shard&0x0f)
	return kind + "_" + idEncoding.EncodeToString(b[:])
}

// RandomShard picks a shard for a new organization.
func RandomShard() int {
	var b [1]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("redisx: crypto/rand failed: " + err.Error())
	}
	return int(b[0] % Shards)
}

// ParseID checks that id is a well-formed id of kind and returns its shard.
// It runs several times per request, so it decodes on the stack.
func ParseID(kind, id string) (shard int, ok bool) {
	b, ok := decodeID(kind, id)
	if !ok {
		return 0, false
	}
	return int(b[15] & 0x0f), true
}

// decodeID returns the 16 bytes of a well-formed id of kind.
func decodeID(kind, id string) (b [16]byte, ok bool) {
	if len(id) != len(kind)+1+idBodyLen || id[:len(kind)] != kind || id[len(kind)] != '_' {
		return b, false
	}
	var src [idBodyLen]byte
	copy(src[:], id[len(kind)+1:])
	n, err := idEncoding.Decode(b[:], src[:])
	if err != nil || n != 16 {
		return b, false
	}
	// Re-encoding rejects aliases that differ only in the unused low bits.
	var again [idBodyLen]byte
	idEncoding.Encode(again[:], b[:])
	return b, again == src
}

// ShardOf returns the shard of a well-formed id, 0 for anything else (whose
// lookups then simply find nothing).
func ShardOf(id string) int {
	if i := strings.IndexByte(id, '_'); i > 0 {
		if s, ok := ParseID(id[:i], id); ok {
			return s
		}
	}
	return 0
}

// IDTime is the creation time an id carries (millisecond precision); the
// zero time for a malformed id.
func IDTime(id string) time.Time {
	i := strings.IndexByte(id, '_')
	if i <= 0 {
		return time.Time{}
	}
	b, ok := decodeID(id[:i], id)
	if !ok {
		return time.Time{}
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(b[:8]) >> 16))
}
