package main

// The accept phase: what a person new to Kratos does after clicking the
// mail's link — open the page, submit the form — driven over HTTP against
// kratos-orgs' public listener. The links come from the mails the invite
// phase sent (mailbox), so the invitations are the ones measured there.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/kratos-orgs/kratos-orgs/mail"
)

// mailbox is the bench's mail sender: it keeps the link of every mail,
// by organization and address, and prints the message like the log
// sender does (to nowhere), so a mail costs what it costs in `make dev`.
type mailbox struct {
	log   *mail.LogSender
	mu    sync.Mutex
	links map[string]string // "<org> <address>" → link
}

func newMailbox() *mailbox {
	return &mailbox{log: mail.NewLogSender(io.Discard), links: map[string]string{}}
}

var linkRE = regexp.MustCompile(`https?://\S+/invitations/accept/[A-Za-z0-9_\-.~]+`)

// Send implements mail.Sender.
func (m *mailbox) Send(ctx context.Context, msg mail.Message) (string, error) {
	if link := linkRE.FindString(msg.Text); link != "" && len(msg.To) == 1 {
		m.mu.Lock()
		m.links[msg.Tags["organization"]+" "+msg.To[0]] = link
		m.mu.Unlock()
	}
	return m.log.Send(ctx, msg)
}

// link is the last link mailed to an address for an organization.
func (m *mailbox) link(org, email string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.links[org+" "+email]
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// accept opens an invitation link and submits the new person's form, as
// a browser would (without following the redirect to Kratos' recovery
// link: that is Kratos' own work, measured by its row).
func (s *stack) accept(ctx context.Context, link string) error {
	u, err := url.Parse(link)
	if err != nil {
		return err
	}
	page := s.publicURL + u.Path // the configured base URL is not where the bench listens
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, page, nil)
	if err != nil {
		return err
	}
	resp, err := s.pages.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRE.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		return fmt.Errorf("GET %s: %d, no form", u.Path, resp.StatusCode)
	}
	form := url.Values{"csrf_token": {string(m[1])}, "name.first": {"Bench"}, "name.last": {"Person"}}
	post, err := http.NewRequestWithContext(ctx, http.MethodPost, page, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range resp.Cookies() {
		post.AddCookie(c)
	}
	resp, err = s.pages.Do(post)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "/self-service/recovery") {
		return fmt.Errorf("POST %s: %d to %q, want 303 to a Kratos recovery link", u.Path, resp.StatusCode, loc)
	}
	return nil
}

// noRedirects is the pages client's redirect policy: the bench stops at
// kratos-orgs' answer.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

var errNoLink = errors.New("no mailed link for this address")
