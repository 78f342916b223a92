package mail

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
)

// LogSender prints each message (with its link) for development. It must
// never be used in production: links are secrets.
type LogSender struct {
	mu sync.Mutex
	w  io.Writer
}

// NewLogSender prints to w.
func NewLogSender(w io.Writer) *LogSender { return &LogSender{w: w} }

// Send prints the message's text part.
func (s *LogSender) Send(_ context.Context, m Message) (string, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := "log-" + hex.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n----- mail (log sender, id %s) -----\n", id)
	fmt.Fprintf(&sb, "From:    %s\nTo:      %s\n", m.From, strings.Join(m.To, ", "))
	if m.ReplyTo != "" {
		fmt.Fprintf(&sb, "Reply-To: %s\n", m.ReplyTo)
	}
	fmt.Fprintf(&sb, "Subject: %s\n\n%s\n----- end of mail -----\n", m.Subject, strings.TrimRight(m.Text, "\n"))
	if _, err := io.WriteString(s.w, sb.String()); err != nil {
		// A log that cannot be written will not heal by itself: not temporary.
		return "", &SendError{Message: err.Error()}
	}
	return id, nil
}
