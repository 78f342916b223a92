package identity

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSessionCookie(t *testing.T) {
	t.Parallel()
	tests := []struct{ header, name, want string }{
		{"", "", ""},
		{"ory_kratos_session=abc", "", "ory_kratos_session=abc"},
		{"app=1; ory_kratos_session=abc; _ga=GA1.2", "", "ory_kratos_session=abc"},
		{"app=1; csrf_token_x=y", "", ""},
		{"ory_kratos_session=", "", ""},
		{"a=1; __Host-s=xyz", "__Host-s", "__Host-s=xyz"},
		{`bad"cookie; ory_kratos_session=abc`, "", "ory_kratos_session=abc"},
	}
	for _, tt := range tests {
		if got := SessionCookie(tt.header, tt.name); got != tt.want {
			t.Errorf("SessionCookie(%q, %q) = %q, want %q", tt.header, tt.name, got, tt.want)
		}
	}
}

// Kratos' whoami receives the session cookie and nothing else the browser
// sent.
func TestWhoamiForwardsOnlyTheSessionCookie(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	kratos := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Cookie"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"code":401,"status":"Unauthorized"}}`))
	}))
	defer kratos.Close()
	k := New(Config{AdminURL: kratos.URL, PublicURL: kratos.URL, Timeout: time.Second}, nil)
	ctx := context.Background()
	if s, err := k.Whoami(ctx, "app_session=secret-of-the-app; ory_kratos_session=k1; _ga=x", ""); s != nil || err != nil {
		t.Fatalf("Whoami: %v %v", s, err)
	}
	// No session cookie among the cookies: Kratos is not asked at all.
	if s, err := k.Whoami(ctx, "app_session=secret-of-the-app", ""); s != nil || err != nil {
		t.Fatalf("Whoami: %v %v", s, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != "ory_kratos_session=k1" {
		t.Fatalf("Kratos received cookies %q, want only the session cookie once", got)
	}
}

func TestSessionCache(t *testing.T) {
	t.Parallel()
	calls := map[string]int{}
	var mu sync.Mutex
	lookup := func(_ context.Context, cookie, token string) (*Session, error) {
		mu.Lock()
		defer mu.Unlock()
		calls[cookie+"|"+token]++
		if cookie == "ory_kratos_session=good" {
			return &Session{ID: "s1", Identity: &Identity{ID: "i1"}}, nil
		}
		return nil, nil
	}
	now := time.Unix(1000, 0)
	c := NewSessionCache(lookup, 5*time.Second, 3, func() time.Time { return now })
	ctx := context.Background()
	for range 10 {
		if s, _ := c.Whoami(ctx, "ory_kratos_session=good", ""); s == nil || s.ID != "s1" {
			t.Fatal("lost the session")
		}
	}
	if calls["ory_kratos_session=good|"] != 1 {
		t.Fatalf("%d look-ups for 10 calls within the TTL, want 1", calls["ory_kratos_session=good|"])
	}
	now = now.Add(5 * time.Second)
	_, _ = c.Whoami(ctx, "ory_kratos_session=good", "")
	if calls["ory_kratos_session=good|"] != 2 {
		t.Fatal("an expired entry was used")
	}
	// A cookie and a token with the same text are different keys.
	_, _ = c.Whoami(ctx, "", "ory_kratos_session=good")
	if calls["|ory_kratos_session=good"] != 1 {
		t.Fatal("token and cookie share an entry")
	}
	// Bounded: more distinct sessions than the limit never grow it past it.
	for i := range 20 {
		_, _ = c.Whoami(ctx, "ory_kratos_session=guess"+string(rune('a'+i)), "")
		if c.Len() > 3 {
			t.Fatalf("%d entries, limit 3", c.Len())
		}
	}
	// Off: every call asks.
	off := NewSessionCache(lookup, 0, 3, nil)
	_, _ = off.Whoami(ctx, "ory_kratos_session=x", "")
	_, _ = off.Whoami(ctx, "ory_kratos_session=x", "")
	if calls["ory_kratos_session=x|"] != 2 || off.Len() != 0 {
		t.Fatal("a disabled cache cached")
	}
}

// Kratos' error bodies may quote an address; the error (which ends up in
// logs) carries it masked.
func TestKratosErrorsMaskAddresses(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusBadRequest, http.StatusForbidden, http.StatusInternalServerError} {
		kratos := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`{"error":{"reason":"identifier jane.doe@example.com is taken by jane.doe@example.com"}}`))
		}))
		k := New(Config{AdminURL: kratos.URL, PublicURL: kratos.URL, Timeout: time.Second, EmailTrait: "email"}, nil)
		_, err := k.FindByEmail(context.Background(), "jane.doe@example.com")
		kratos.Close()
		if err == nil {
			t.Fatalf("%d: no error", status)
		}
		var chain string
		for e := err; e != nil; e = errors.Unwrap(e) {
			chain += e.Error() + " | "
		}
		if strings.Contains(chain, "jane.doe@") {
			t.Errorf("%d: the address reached the error: %s", status, chain)
		}
	}
}
