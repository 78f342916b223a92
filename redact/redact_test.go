package redact

import (
	"strings"
	"testing"
)

func TestEmail(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"jane@example.com": "j***@example.com",
		"é@example.com":    "é***@example.com",
		"@example.com":     "***@example.com",
		"not an address":   "not an address",
	} {
		if got := Email(in); got != want {
			t.Errorf("Email(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	body := `{"error":{"reason":"an identity with identifier jane.doe@example.com exists","id":"x"}}`
	got := Text(body)
	if strings.Contains(got, "jane.doe@") || !strings.Contains(got, "j***@example.com") {
		t.Fatalf("Text = %s", got)
	}
	long := Text(strings.Repeat("é", 400))
	if len(long) > maxText+len("…") || !strings.HasSuffix(long, "…") || !strings.HasPrefix(long, "é") {
		t.Fatalf("cut: %d bytes %q", len(long), long[len(long)-8:])
	}
}
