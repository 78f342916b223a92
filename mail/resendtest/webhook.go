package resendtest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Resend reports what became of an email with webhooks that Svix delivers:
// a JSON event signed in svix-id, svix-timestamp and svix-signature headers
// (v1, base64 HMAC-SHA256 of "id.timestamp.body" keyed with the base64
// part of a whsec_ secret). The fake builds the same events for the emails
// it accepted and posts them, signed, to a URL.

// NewWebhookSecret returns a fresh signing secret as Resend shows one.
func NewWebhookSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// Bounce is the bounce object of an email.bounced event.
type Bounce struct {
	Type    string `json:"type"` // Permanent, Transient or Undetermined
	SubType string `json:"subType"`
	Message string `json:"message"`
}

// Event is one webhook event about an email.
type Event struct {
	Type      string    // email.sent, email.delivered, email.bounced, ...
	EmailID   string    // an id the server returned
	CreatedAt time.Time // zero: the server's clock
	Bounce    *Bounce   // email.bounced: zero gives a permanent general bounce
}

// Payload renders an event about an accepted email as Resend sends it; an
// email id the server never returned gets the event with no recipients.
func (s *Server) Payload(e Event) []byte {
	s.mu.Lock()
	var em Email
	for _, x := range s.emails {
		if x.ID == e.EmailID {
			em = x
		}
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = s.now()
	}
	s.mu.Unlock()
	data := map[string]any{
		"email_id": e.EmailID, "from": em.From, "to": nonNil(em.To), "subject": em.Subject,
		"created_at": em.Received.UTC().Format("2006-01-02 15:04:05.000000+00"),
	}
	if len(em.Tags) > 0 {
		data["tags"] = em.Tags
	}
	if e.Type == "email.bounced" {
		b := e.Bounce
		if b == nil {
			b = &Bounce{Type: "Permanent", SubType: "General", Message: "The recipient's mail server permanently rejected the email."}
		}
		data["bounce"] = b
	}
	body, _ := json.Marshal(map[string]any{"type": e.Type, "created_at": e.CreatedAt.UTC().Format(time.RFC3339Nano), "data": data})
	return body
}

// Delivery is one signed webhook request and its answer.
type Delivery struct {
	ID        string // svix-id
	Timestamp time.Time
	Body      []byte
	Status    int
	Answer    []byte
}

// Sign returns the svix-signature of a body, as Svix computes it.
func Sign(secret, id string, ts time.Time, body []byte) string {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		panic(fmt.Sprintf("resendtest: bad secret: %v", err))
	}
	sig, _ := wh.Sign(id, ts, body)
	return sig
}

// Post sends body to url signed with secret under message id and
// timestamp ts, and returns the answer.
func Post(url, secret, id string, ts time.Time, body []byte) (Delivery, error) {
	return PostSigned(url, id, ts, Sign(secret, id, ts, body), body)
}

// PostSigned sends body with the given svix headers (a test forges them).
func PostSigned(url, id string, ts time.Time, signature string, body []byte) (Delivery, error) {
	d := Delivery{ID: id, Timestamp: ts, Body: body}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return d, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Svix-Webhooks/1.0")
	req.Header.Set("svix-id", id)
	req.Header.Set("svix-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("svix-signature", signature)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return d, err
	}
	defer resp.Body.Close()
	d.Status = resp.StatusCode
	d.Answer, err = io.ReadAll(resp.Body)
	return d, err
}

// Emit sends one event about an email to url, signed with secret, under a
// new message id and the server's clock, as Resend does.
func (s *Server) Emit(url, secret string, e Event) (Delivery, error) {
	s.mu.Lock()
	now := s.now()
	s.mu.Unlock()
	return Post(url, secret, "msg_"+newUUID(), now, s.Payload(e))
}
