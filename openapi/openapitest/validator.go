// Package openapitest checks real HTTP traffic against the OpenAPI document
// of package openapi: a Recorder's Transport validates every request and
// response that goes through it and records what does not match, and
// Check fails a test with the list.
//
// What counts as a violation:
//
//   - a response for a route (path and method) the document does not have,
//     except the server's own 404 route_not_found and 405
//     method_not_allowed answers, which agree with the document;
//   - a response whose status, headers, content type or body the document
//     does not allow for the operation (HTML pages are only checked for
//     status and content type);
//   - a success (1xx-3xx) for a request the document says is invalid.
//
// A request the document refuses that the server refuses too (4xx, 5xx) is
// fine: tests probe bad input on purpose.
package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/kratos-orgs/kratos-orgs/openapi"
)

// Violation is one request/response pair that does not match the document.
type Violation struct {
	Method string
	Path   string // the request's path and query, as sent
	Route  string // the document's operation ("GET /admin/invitations/{id}"), "" when it has none
	Status int
	Reason string
}

func (v Violation) String() string {
	route := ""
	if v.Route != "" {
		route = " [" + v.Route + "]"
	}
	return fmt.Sprintf("%s %s%s → %d: %s", v.Method, v.Path, route, v.Status, v.Reason)
}

// Recorder validates traffic against the document. It is safe for
// concurrent use; one Recorder may serve a whole test binary.
type Recorder struct {
	doc     *openapi3.T
	router  routers.Router
	servers map[string]*url.URL // listener name (the servers' x-listener) → the document's URL for it
	names   []string            // listener names in document order
	errBody *openapi3.Schema
	opts    []openapi3.SchemaValidationOption

	mu         sync.Mutex
	hosts      map[string]string // host:port → listener name
	registered bool              // Listener was called: check registered hosts only
	violations []Violation
	seen       map[string]int
}

// NewRecorder loads and validates the document. t may be nil (a recorder
// shared by a whole package, made before any test runs); a broken
// document then panics instead of failing t.
func NewRecorder(t testing.TB) *Recorder {
	if t != nil {
		t.Helper()
	}
	r, err := newRecorder()
	if err != nil {
		if t == nil {
			panic(err)
		}
		t.Fatal(err)
	}
	return r
}

func newRecorder() (*Recorder, error) {
	doc, err := Load()
	if err != nil {
		return nil, err
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("openapitest: router: %w", err)
	}
	r := &Recorder{doc: doc, router: router, servers: map[string]*url.URL{}, hosts: map[string]string{}, seen: map[string]int{},
		opts: []openapi3.SchemaValidationOption{openapi3.WithStringFormatValidators(Formats())}}
	for _, s := range doc.Servers {
		name, _ := s.Extensions["x-listener"].(string)
		u, err := url.Parse(s.URL)
		if name == "" || err != nil || u.Host == "" {
			return nil, fmt.Errorf("openapitest: server %q needs an absolute URL and an x-listener name", s.URL)
		}
		r.servers[name] = u
		r.names = append(r.names, name)
	}
	if ref := doc.Components.Schemas["ErrorBody"]; ref != nil {
		r.errBody = ref.Value
	} else {
		return nil, errors.New("openapitest: the document has no ErrorBody schema")
	}
	return r, nil
}

// Load parses and validates the embedded document.
func Load() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapi.Document())
	if err != nil {
		return nil, fmt.Errorf("openapitest: load openapi.yaml: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("openapitest: openapi.yaml is not valid OpenAPI: %w", err)
	}
	return doc, nil
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Formats are the string formats the document uses beyond date-time, as
// kratos-orgs means them: uuid (a Kratos identity id, any version), email
// and uri (absolute).
func Formats() map[string]openapi3.StringFormatValidator {
	return map[string]openapi3.StringFormatValidator{
		"uuid":  openapi3.NewRegexpFormatValidator(uuidRE.String()),
		"email": openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForEmail),
		"uri": openapi3.NewCallbackValidator(func(s string) error {
			u, err := url.Parse(s)
			if err != nil || u.Scheme == "" || u.Host == "" {
				return fmt.Errorf("%q is not an absolute URL", s)
			}
			return nil
		}),
	}
}

// Listener says that baseURL (scheme://host:port) serves the named
// listener ("admin" or "public": the x-listener of the document's
// servers). Once Listener has been called, only requests to registered
// hosts are checked; the others (Kratos, redirects elsewhere) pass through
// unchecked. A recorder never told about listeners checks every request,
// against whichever listener has its route. The returned func forgets the
// registration (for t.Cleanup: ports are reused by later servers).
func (r *Recorder) Listener(name, baseURL string) (forget func()) {
	if _, ok := r.servers[name]; !ok {
		panic(fmt.Sprintf("openapitest: the document has no server with x-listener %q", name))
	}
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		panic(fmt.Sprintf("openapitest: listener %s: %q is not a base URL", name, baseURL))
	}
	r.mu.Lock()
	r.hosts[u.Host] = name
	r.registered = true
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		if r.hosts[u.Host] == name {
			delete(r.hosts, u.Host)
		}
		r.mu.Unlock()
	}
}

// Transport wraps base (http.DefaultTransport when nil) so that every
// request/response pair through it is validated.
func (r *Recorder) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{r: r, base: base}
}

// Client is an http.Client whose transport is the recorder's.
func (r *Recorder) Client() *http.Client { return &http.Client{Transport: r.Transport(nil)} }

type transport struct {
	r    *Recorder
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if err != nil {
		// The caller sees the truncated body; there is nothing to validate.
		return resp, nil
	}
	t.r.check(req, reqBody, resp, respBody)
	return resp, nil
}

// check validates one exchange and records what does not match.
func (r *Recorder) check(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) {
	r.mu.Lock()
	listener, known := r.hosts[req.URL.Host]
	registered := r.registered
	r.mu.Unlock()
	if !known && registered {
		return // not a kratos-orgs listener
	}
	candidates := r.names
	if known {
		candidates = []string{listener}
	}
	fail := func(route, format string, args ...any) {
		r.record(Violation{Method: req.Method, Path: req.URL.RequestURI(), Route: route, Status: resp.StatusCode, Reason: fmt.Sprintf(format, args...)})
	}

	var (
		route       *routers.Route
		params      map[string]string
		vreq        *http.Request
		wrongMethod bool
	)
	for _, name := range candidates {
		vreq = r.retarget(req, name, reqBody)
		rt, p, err := r.router.FindRoute(vreq)
		if err == nil {
			route, params = rt, p
			break
		}
		if errors.Is(err, routers.ErrMethodNotAllowed) {
			wrongMethod = true
		}
	}
	if route == nil {
		// The server's own "no such route" answers agree with the document.
		code, bodyErr := r.errorCode(resp, respBody)
		switch {
		case wrongMethod && resp.StatusCode == http.StatusMethodNotAllowed && code == "method_not_allowed":
			return
		case resp.StatusCode == http.StatusNotFound && code == "route_not_found":
			return
		case bodyErr != nil && (resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotFound):
			fail("", "the route is not in the document, and the %d body is not an ErrorBody: %v", resp.StatusCode, bodyErr)
		case wrongMethod:
			fail("", "the document has the path but not the method %s", req.Method)
		default:
			fail("", "the route is not in the document")
		}
		return
	}
	op := route.Method + " " + route.Path
	r.mu.Lock()
	r.seen[op]++
	r.mu.Unlock()

	ctx := context.Background()
	reqOpts := &openapi3filter.Options{AuthenticationFunc: authenticate, SkipSettingDefaults: true, SchemaValidationOptions: r.opts}
	reqOpts.WithCustomSchemaErrorFunc(schemaError)
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: reqOpts}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && resp.StatusCode < 400 {
		fail(op, "the document refuses this request (%s), yet the server answered %d", oneLine(err), resp.StatusCode)
	}
	respOpts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, SchemaValidationOptions: r.opts}
	respOpts.WithCustomSchemaErrorFunc(schemaError)
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: respOpts}
	out.SetBodyBytes(respBody)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		fail(op, "response: %s", oneLine(err))
	}
}

// retarget copies req onto the document's URL of a listener, for routing
// and validation; the body is fresh.
func (r *Recorder) retarget(req *http.Request, listener string, body []byte) *http.Request {
	u := *req.URL
	s := r.servers[listener]
	u.Scheme, u.Host = s.Scheme, s.Host
	out := req.Clone(context.Background())
	out.URL = &u
	out.Host = s.Host
	out.Body = http.NoBody
	out.GetBody = nil
	if body != nil {
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		out.ContentLength = int64(len(body))
	}
	return out
}

// errorCode reads the code of an ErrorBody response, validating its shape.
func (r *Recorder) errorCode(resp *http.Response, body []byte) (string, error) {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "application/json" {
		return "", fmt.Errorf("content type %q", resp.Header.Get("Content-Type"))
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return "", err
	}
	if err := r.errBody.VisitJSON(v, r.opts...); err != nil {
		return "", errors.New(oneLine(err))
	}
	return v.(map[string]any)["error"].(map[string]any)["code"].(string), nil
}

// authenticate checks that the credentials a security scheme names are
// present (whether they are right is the server's business).
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	req := in.RequestValidationInput.Request
	s := in.SecurityScheme
	switch s.Type {
	case "http":
		scheme, cred, ok := strings.Cut(req.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, s.Scheme) || strings.TrimSpace(cred) == "" {
			return fmt.Errorf("no %s credentials in Authorization", s.Scheme)
		}
	case "apiKey":
		switch s.In {
		case "header":
			if req.Header.Get(s.Name) == "" {
				return fmt.Errorf("no %s header", s.Name)
			}
		case "cookie":
			if _, err := req.Cookie(s.Name); err != nil {
				return fmt.Errorf("no %s cookie", s.Name)
			}
		case "query":
			if req.URL.Query().Get(s.Name) == "" {
				return fmt.Errorf("no %s query parameter", s.Name)
			}
		default:
			return fmt.Errorf("apiKey in %q is not supported", s.In)
		}
	default:
		return fmt.Errorf("security scheme type %q is not supported", s.Type)
	}
	return nil
}

// schemaError says where in the value a schema check failed, without
// dumping the schema.
func schemaError(err *openapi3.SchemaError) string {
	at := "/" + strings.Join(err.JSONPointer(), "/")
	return fmt.Sprintf("at %s: %s", at, err.Reason)
}

func oneLine(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}

func (r *Recorder) record(v Violation) {
	r.mu.Lock()
	r.violations = append(r.violations, v)
	r.mu.Unlock()
}

// Violations returns what did not match, in order.
func (r *Recorder) Violations() []Violation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.violations)
}

// Seen lists the document's operations ("METHOD /path/{param}") that
// traffic exercised, sorted.
func (r *Recorder) Seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.seen))
	for op := range r.seen {
		out = append(out, op)
	}
	sort.Strings(out)
	return out
}

// Operations lists every operation of the document ("METHOD /path"), sorted.
func (r *Recorder) Operations() []string {
	var out []string
	for path, item := range r.doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, method+" "+path)
		}
	}
	sort.Strings(out)
	return out
}

// Err describes every violation (identical ones once, with a count), or
// returns nil.
func (r *Recorder) Err() error {
	vs := r.Violations()
	if len(vs) == 0 {
		return nil
	}
	counts := map[string]int{}
	var order []string
	for _, v := range vs {
		s := v.String()
		if counts[s] == 0 {
			order = append(order, s)
		}
		counts[s]++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d response(s) do not match openapi/openapi.yaml:", len(vs))
	for _, s := range order {
		b.WriteString("\n  ")
		b.WriteString(s)
		if n := counts[s]; n > 1 {
			fmt.Fprintf(&b, " (×%d)", n)
		}
	}
	return errors.New(b.String())
}

// Check fails t with every violation recorded so far, and logs which
// operations of the document the traffic exercised.
func (r *Recorder) Check(t testing.TB) {
	t.Helper()
	seen := r.Seen()
	all := r.Operations()
	var missed []string
	for _, op := range all {
		if !slices.Contains(seen, op) {
			missed = append(missed, op)
		}
	}
	if len(missed) == 0 {
		missed = []string{"none"}
	}
	t.Logf("openapi: %d of %d operations exercised; not exercised: %s", len(seen), len(all), strings.Join(missed, ", "))
	if err := r.Err(); err != nil {
		t.Error(err)
	}
}
