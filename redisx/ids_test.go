package redisx

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

func TestNewIDParseIDRoundTrip(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"org", "inv"} {
		for shard := 0; shard < Shards; shard++ {
			id := NewID(kind, shard, testNow)
			if !strings.HasPrefix(id, kind+"_") || len(id) != len(kind)+1+idBodyLen {
				t.Fatalf("NewID(%q, %d) = %q: want %q followed by %d characters", kind, shard, id, kind+"_", idBodyLen)
			}
			got, ok := ParseID(kind, id)
			if !ok || got != shard {
				t.Errorf("ParseID(%q, %q) = %d, %v; want %d, true", kind, id, got, ok, shard)
			}
			if s := ShardOf(id); s != shard {
				t.Errorf("ShardOf(%q) = %d, want %d", id, s, shard)
			}
			// The timestamp reads back from the first 48 bits.
			b, err := idEncoding.DecodeString(id[len(kind)+1:])
			if err != nil {
				t.Fatal(err)
			}
			var ts [8]byte
			copy(ts[2:], b[:6])
			if ms := int64(binary.BigEndian.Uint64(ts[:])); ms != testNow.UnixMilli() {
				t.Errorf("%q holds time %d ms, want %d", id, ms, testNow.UnixMilli())
			}
		}
	}
}

func TestNewIDIsRandom(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		id := NewID("org", 5, testNow)
		if seen[id] {
			t.Fatalf("NewID repeated %q within one millisecond", id)
		}
		seen[id] = true
	}
}

// Shards wider than 4 bits must not spill into the random bits of the id
// or change the shard read back to something out of range.
func TestNewIDMasksShard(t *testing.T) {
	t.Parallel()
	id := NewID("org", 16+3, testNow)
	if s, ok := ParseID("org", id); !ok || s != 3 {
		t.Errorf("ParseID of a shard-19 id = %d, %v; want 3, true", s, ok)
	}
}

func TestIDsSortByCreationTime(t *testing.T) {
	t.Parallel()
	var ids []string
	times := []time.Time{
		time.UnixMilli(0),
		time.UnixMilli(1),
		testNow,
		testNow.Add(time.Millisecond),
		testNow.Add(2 * time.Millisecond),
		testNow.Add(time.Second),
		testNow.Add(24 * time.Hour),
		testNow.AddDate(10, 0, 0),
		time.UnixMilli(1<<48 - 1), // the last millisecond 48 bits hold
	}
	for i, tm := range times {
		// Shards and kinds alternate so that neither orders the ids: the
		// high shard comes first.
		ids = append(ids, NewID("org", Shards-1-i%Shards, tm))
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	if !slices.Equal(ids, sorted) {
		t.Errorf("ids in creation order:\n%s\nsorted lexically:\n%s", strings.Join(ids, "\n"), strings.Join(sorted, "\n"))
	}

	// Many ids over consecutive milliseconds.
	ids = ids[:0]
	for ms := range 2000 {
		ids = append(ids, NewID("inv", ms%Shards, testNow.Add(time.Duration(ms)*time.Millisecond)))
	}
	if !slices.IsSorted(ids) {
		t.Error("ids made one millisecond apart do not sort lexically in creation order")
	}
}

func TestParseIDRejects(t *testing.T) {
	t.Parallel()
	good := NewID("org", 9, testNow)
	body := good[len("org_"):]

	// An alias: the last character carries 2 unused low bits; flipping the
	// lowest gives a body that decodes to the same bytes but is not what
	// the encoder writes.
	last := strings.IndexByte("0123456789abcdefghjkmnpqrstvwxyz", body[len(body)-1])
	alias := body[:len(body)-1] + string("0123456789abcdefghjkmnpqrstvwxyz"[last^1])
	a, errA := idEncoding.DecodeString(alias)
	g, errG := idEncoding.DecodeString(body)
	if errA != nil || errG != nil || !bytes.Equal(a, g) {
		t.Fatalf("test setup: %q is not an alias of %q (%v, %v)", alias, body, errA, errG)
	}

	tests := []struct {
		name, kind, id string
	}{
		{"empty", "org", ""},
		{"kind only", "org", "org_"},
		{"wrong kind", "inv", good},
		{"kind without underscore", "org", "org" + body},
		{"kind is a prefix of another", "or", good},
		{"prefix repeated", "org", "org_org_" + body[:idBodyLen-4]},
		{"one short", "org", good[:len(good)-1]},
		{"one long", "org", good + "0"},
		{"upper case", "org", "org_" + strings.ToUpper(body)},
		{"letter i", "org", "org_" + body[:5] + "i" + body[6:]},
		{"letter l", "org", "org_" + body[:5] + "l" + body[6:]},
		{"letter o", "org", "org_" + body[:5] + "o" + body[6:]},
		{"letter u", "org", "org_" + body[:5] + "u" + body[6:]},
		{"padding", "org", "org_" + body[:idBodyLen-1] + "="},
		{"newline", "org", "org_" + body[:10] + "\n" + body[11:]},
		{"alias", "org", "org_" + alias},
		{"leading space", "org", " " + good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if s, ok := ParseID(tt.kind, tt.id); ok {
				t.Errorf("ParseID(%q, %q) = %d, true; want rejection", tt.kind, tt.id, s)
			}
		})
	}
}

func TestShardOfGarbageIsZero(t *testing.T) {
	t.Parallel()
	good := NewID("org", 11, testNow) // a non-zero shard, so a wrong answer shows
	for _, id := range []string{
		"",
		"_",
		"org",
		"org_",
		"_" + good[4:],
		"org_xyz",
		strings.ToUpper(good),
		good + "0",
		good[:len(good)-1],
		"nothing-like-an-id",
		"org_" + strings.Repeat("z", idBodyLen),
	} {
		if s := ShardOf(id); s != 0 {
			t.Errorf("ShardOf(%q) = %d, want 0", id, s)
		}
	}
	if s := ShardOf(good); s != 11 {
		t.Errorf("ShardOf(%q) = %d, want 11", good, s)
	}
}

func TestRandomShard(t *testing.T) {
	t.Parallel()
	var seen [Shards]int
	for range 2000 {
		s := RandomShard()
		if s < 0 || s >= Shards {
			t.Fatalf("RandomShard() = %d, out of 0..%d", s, Shards-1)
		}
		seen[s]++
	}
	for s, n := range seen {
		if n == 0 {
			t.Errorf("shard %d never picked in 2000 draws", s)
		}
	}
}

// ParseID runs several times per request (ShardOf, ResolveID): it must not
// allocate.
func TestParseIDDoesNotAllocate(t *testing.T) {
	id := NewID("inv", 5, time.Now())
	if n := testing.AllocsPerRun(100, func() {
		if s, ok := ParseID("inv", id); !ok || s != 5 {
			t.Fatal("round trip failed")
		}
	}); n != 0 {
		t.Fatalf("ParseID allocates %.0f times", n)
	}
}
