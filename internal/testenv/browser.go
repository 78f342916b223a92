package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// ChromiumBinary finds Chromium (CHROMIUM_BIN overrides).
func ChromiumBinary() (string, error) {
	if p := os.Getenv("CHROMIUM_BIN"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("chromium is not installed: apt-get install chromium (Debian/Ubuntu) or set CHROMIUM_BIN")
}

// Browser is a fresh headless Chromium (its own profile, so no cookies are
// shared between tests) whose pages can be screenshotted into a folder.
type Browser struct {
	Ctx  context.Context
	t    testing.TB
	dir  string
	step atomic.Int32
}

// NewBrowser starts Chromium for one test; it is stopped when the test ends.
func NewBrowser(t testing.TB) *Browser {
	t.Helper()
	bin, err := ChromiumBinary()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(420, 900), // a phone-sized window: the pages must work there
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// The first action starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("testenv: start chromium: %v", err)
	}
	b := &Browser{Ctx: ctx, t: t}
	if root, err := RepoRoot(); err == nil {
		b.dir = filepath.Join(root, ".cache", "screenshots", sanitize(t.Name()))
		_ = os.RemoveAll(b.dir)
		_ = os.MkdirAll(b.dir, 0o755)
	}
	return b
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func sanitize(s string) string { return unsafeChars.ReplaceAllString(s, "_") }

// Do runs steps (within 30s), failing the test with a screenshot on error.
func (b *Browser) Do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.Shot("failure")
		b.t.Fatalf("browser (at %s): %v", b.Location(), err)
	}
}

// AcceptLanguage makes every request of the browser send this
// Accept-Language header, as a browser set to that language would.
func (b *Browser) AcceptLanguage(value string) {
	b.t.Helper()
	if _, err := chromedp.Call(b.Ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Accept-Language": value},
	}); err != nil {
		b.t.Fatalf("browser: accept-language: %v", err)
	}
}

// Location is the current URL.
func (b *Browser) Location() string {
	loc, _ := chromedp.Run(b.Ctx, chromedp.Location())
	return loc
}

// Text returns the text of the first element matching a CSS selector.
func (b *Browser) Text(css string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		b.Shot("failure")
		b.t.Fatalf("browser (at %s): text of %s: %v", b.Location(), css, err)
	}
	return s
}

// HTML returns the page's HTML.
func (b *Browser) HTML() string {
	b.t.Helper()
	s, err := chromedp.Run(b.Ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		b.t.Fatalf("browser: %v", err)
	}
	return s
}

// WaitURL waits until the location matches the pattern.
func (b *Browser) WaitURL(pattern string) string {
	b.t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if loc := b.Location(); re.MatchString(loc) && b.settled() {
			return loc
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Shot("failure")
	b.t.Fatalf("browser: location %s never matched %s (or its page never finished loading)", b.Location(), pattern)
	return ""
}

// settled reports whether the current document has finished loading and
// its body can be queried. A URL can match while Chromium is still swapping
// the document in after a navigation; a query sent in that moment fails
// with "Not attached to an active page", so WaitURL waits for this too.
func (b *Browser) settled() bool {
	ctx, cancel := context.WithTimeout(b.Ctx, 2*time.Second)
	defer cancel()
	state, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.readyState"))
	if err != nil || state != "complete" {
		return false
	}
	_, err = chromedp.Run(ctx, chromedp.WaitReady(chromedp.CSS("body")))
	return err == nil
}

// DisableScripts turns JavaScript off for the page (no-JS fallbacks).
func (b *Browser) DisableScripts() {
	b.t.Helper()
	if _, err := chromedp.Call(b.Ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		b.t.Fatalf("browser: disable scripts: %v", err)
	}
}

// CookieHeader returns the browser's cookies for a URL as a Cookie header.
func (b *Browser) CookieHeader(url string) string {
	b.t.Helper()
	res, err := chromedp.Call(b.Ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
	if err != nil {
		b.t.Fatalf("browser: cookies: %v", err)
	}
	var parts []string
	for _, c := range res.Cookies {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// Shot saves a full-page screenshot as NN-name.png in the test's folder
// (.cache/screenshots/<test>/) and returns its path.
func (b *Browser) Shot(name string) string {
	if b.dir == "" {
		return ""
	}
	png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return ""
	}
	path := filepath.Join(b.dir, fmt.Sprintf("%02d-%s.png", b.step.Add(1), sanitize(name)))
	_ = os.WriteFile(path, png, 0o644)
	return path
}

// WaitText waits until the text of the first element matching css matches
// pattern (for submits that stay on the same URL) and returns it.
func (b *Browser) WaitText(css, pattern string) string {
	b.t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.Ctx, 2*time.Second)
		last, _ = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
		cancel()
		if re.MatchString(last) {
			return last
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Shot("failure")
	b.t.Fatalf("browser (at %s): text of %s is %q, never matched %s", b.Location(), css, last, pattern)
	return ""
}
