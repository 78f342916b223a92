package openapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/identity/identitytest"
	"github.com/kratos-orgs/kratos-orgs/mail"
	"github.com/kratos-orgs/kratos-orgs/mail/resendtest"
	"github.com/kratos-orgs/kratos-orgs/openapi"
	"github.com/kratos-orgs/kratos-orgs/openapi/openapitest"
	"github.com/kratos-orgs/kratos-orgs/server"
)

const (
	adminKey   = "openapi-test-admin-key-0123"
	hookSecret = "openapi-test-hook-secret-0123"
	// resendSecret signs the Resend webhooks (Svix's documented example).
	resendSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// newServer builds a server on an in-memory Redis with Kratos and mail
// replaced by fakes.
func newServer(t *testing.T) (*server.Server, *identitytest.Fake) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	cfg := config.Default()
	cfg.Admin.APIKeys = []string{adminKey}
	cfg.Mail.FromAddress = "invites@example.com"
	cfg.Secrets.Cipher = []string{"openapi-test-cipher-secret-0123456789"}
	cfg.Hooks.Secret = hookSecret
	cfg.Mail.Resend.WebhookSecrets = []string{resendSecret}
	cfg.Register.Enabled = true           // off by default; the document describes its routes
	cfg.Domains.DNSServer = "127.0.0.1:9" // nothing answers: the DNS check is 503, quickly
	cfg.Domains.DNSTimeout = 200 * time.Millisecond
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ids := identitytest.New()
	srv, err := server.New(context.Background(), server.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Redis: rdb, Identities: ids, Sender: mail.NewLogSender(io.Discard)})
	if err != nil {
		t.Fatal(err)
	}
	return srv, ids
}

func TestDocumentIsValidOpenAPI(t *testing.T) {
	doc, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", where)
			} else if other, dup := ids[op.OperationID]; dup {
				t.Errorf("operationId %s is used by %s and %s", op.OperationID, other, where)
			}
			ids[op.OperationID] = where
			if len(op.Tags) != 1 {
				t.Errorf("%s has %d tags, want 1", where, len(op.Tags))
			}
			if op.Responses.Len() == 0 {
				t.Errorf("%s describes no response", where)
			}
		}
		// Every path but health belongs to one listener.
		if !strings.HasPrefix(path, "/health/") && len(item.Servers) != 1 {
			t.Errorf("%s names %d servers (listeners), want 1", path, len(item.Servers))
		}
	}
}

// param matches gin's path parameters; a catch-all ("*token", which the
// link pages use so that malformed links get their HTML page) is
// documented as the path parameter of the same name.
var param = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// routes lists an engine's routes as "METHOD /path/{param}".
func routes(t *testing.T, h http.Handler) []string {
	t.Helper()
	e, ok := h.(*gin.Engine)
	if !ok {
		t.Fatalf("handler is a %T, not a *gin.Engine", h)
	}
	var out []string
	for _, r := range e.Routes() {
		out = append(out, r.Method+" "+param.ReplaceAllString(r.Path, "{$1}"))
	}
	sort.Strings(out)
	return out
}

// Every route either listener registers is in the document, on the right
// listener, and the document has no route the server lacks.
func TestEveryRouteIsDocumented(t *testing.T) {
	srv, _ := newServer(t)
	doc, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	listenerOf := map[string]string{}
	for _, s := range doc.Servers {
		listenerOf[s.URL], _ = s.Extensions["x-listener"].(string)
	}
	documented := map[string][]string{} // listener → operations
	for path, item := range doc.Paths.Map() {
		servers := item.Servers
		if len(servers) == 0 {
			servers = doc.Servers
		}
		for _, s := range servers {
			l := listenerOf[s.URL]
			if l == "" {
				t.Errorf("%s: server %s is none of the document's listeners", path, s.URL)
			}
			for method := range item.Operations() {
				documented[l] = append(documented[l], method+" "+path)
			}
		}
	}
	for listener, h := range map[string]http.Handler{"admin": srv.AdminHandler(), "public": srv.PublicHandler()} {
		served := routes(t, h)
		docs := documented[listener]
		for _, r := range served {
			if !slices.Contains(docs, r) {
				t.Errorf("%s listener: %s is served but not in openapi.yaml", listener, r)
			}
		}
		for _, d := range docs {
			if !slices.Contains(served, d) {
				t.Errorf("%s listener: %s is in openapi.yaml but not served", listener, d)
			}
		}
	}
}

// A quick conformance run on fakes: real handlers, in-memory Redis, fake
// Kratos. The end-to-end suites check the same against a real Kratos.
func TestResponsesMatchTheDocument(t *testing.T) {
	srv, ids := newServer(t)
	admin := httptest.NewServer(srv.AdminHandler())
	defer admin.Close()
	public := httptest.NewServer(srv.PublicHandler())
	defer public.Close()
	rec := openapitest.NewRecorder(t)
	rec.Listener("admin", admin.URL)
	rec.Listener("public", public.URL)
	client := rec.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	call := func(base, method, path, body string, headers ...string) (int, string) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if base == admin.URL && strings.HasPrefix(path, "/admin/") {
			req.Header.Set("Authorization", "Bearer "+adminKey)
		}
		if strings.HasPrefix(path, "/hooks/") {
			req.Header.Set("X-Kratos-Orgs-Secret", hookSecret)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			if headers[i+1] == "" {
				req.Header.Del(headers[i])
			} else {
				req.Header.Set(headers[i], headers[i+1])
			}
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	idOf := regexp.MustCompile(`"id":"((?:org|inv)_[0-9a-z]+)"`)
	mustID := func(status int, body string) string {
		t.Helper()
		m := idOf.FindStringSubmatch(body)
		if status != http.StatusCreated || m == nil {
			t.Fatalf("%d %s, want 201 with an id", status, body)
		}
		return m[1]
	}

	owner := ids.Add("owner@example.com", "Owner")
	existing := ids.Add("existing@example.com", "Existing")

	// The document itself, and health on both listeners.
	if status, body := call(admin.URL, "GET", "/openapi.yaml", ""); status != 200 || body != string(openapi.Document()) {
		t.Fatalf("GET /openapi.yaml: %d", status)
	}
	for _, base := range []string{admin.URL, public.URL} {
		call(base, "GET", "/health/alive", "")
		call(base, "GET", "/health/ready", "")
	}
	call(admin.URL, "GET", "/metrics", "")

	// Organizations.
	org := mustID(call(admin.URL, "POST", "/admin/organizations", `{"name":"Acme Corp","metadata":{"plan":"pro"},"owner_identity_id":"`+owner.ID+`"}`))
	call(admin.URL, "POST", "/admin/organizations", `{"name":"Other","slug":"acme-corp"}`)         // 409
	call(admin.URL, "POST", "/admin/organizations", `{"name":""}`)                                 // 400
	call(admin.URL, "POST", "/admin/organizations", `{"name":"X","owner":"me"}`)                   // 400 unknown_field
	call(admin.URL, "POST", "/admin/organizations", `name=X`, "Content-Type", "text/plain")        // 415
	call(admin.URL, "POST", "/admin/organizations", `{"name":"X"}`, "Authorization", "")           // 401
	call(admin.URL, "GET", "/admin/organizations?limit=1", "")                                     // 200 with next_cursor
	call(admin.URL, "GET", "/admin/organizations?limit=0", "")                                     // 400
	call(admin.URL, "GET", "/admin/organizations/acme-corp", "")                                   // 200
	call(admin.URL, "GET", "/admin/organizations/nope", "")                                        // 404
	call(admin.URL, "PATCH", "/admin/organizations/"+org, `{"name":"Acme Renamed","slug":"acme"}`) // 200

	// Members.
	call(admin.URL, "POST", "/admin/organizations/acme/members", `{"identity_id":"`+existing.ID+`","role":"admin"}`) // 201
	call(admin.URL, "POST", "/admin/organizations/acme/members", `{"identity_id":"`+existing.ID+`"}`)                // 200
	call(admin.URL, "POST", "/admin/organizations/acme/members", `{"identity_id":"not-a-uuid"}`)                     // 400
	call(admin.URL, "GET", "/admin/organizations/acme/members", "")
	call(admin.URL, "GET", "/admin/organizations/acme/members/"+existing.ID, "")
	call(admin.URL, "GET", "/admin/organizations/acme/members/00000000-0000-4000-8000-000000000000", "") // 404
	call(admin.URL, "PATCH", "/admin/organizations/acme/members/"+existing.ID, `{"role":"member"}`)
	call(admin.URL, "PATCH", "/admin/organizations/acme/members/"+owner.ID, `{"role":"member"}`) // 409 last_owner
	call(admin.URL, "PATCH", "/admin/organizations/acme/members/"+owner.ID, `{"role":"king"}`)   // 400
	call(admin.URL, "DELETE", "/admin/organizations/acme/members/"+owner.ID, "")                 // 409
	call(admin.URL, "DELETE", "/admin/organizations/acme/members/"+existing.ID, "")              // 204

	// Invitations.
	inv := mustID(call(admin.URL, "POST", "/admin/organizations/acme/invitations",
		`{"email":"New@Example.com","role":"admin","inviter":{"id":"`+owner.ID+`","name":"Ada"},"context":{"team":"x"},"ttl":"72h"}`))
	call(admin.URL, "POST", "/admin/organizations/acme/invitations", `{"email":"new@example.com","role":"admin"}`) // 200 rotated
	call(admin.URL, "POST", "/admin/organizations/acme/invitations", `{"email":"owner@example.com"}`)              // 409 already_member
	call(admin.URL, "POST", "/admin/organizations/acme/invitations", `{"email":"link@example.com","send_email":false,"ttl":3600}`)
	call(admin.URL, "POST", "/admin/organizations/acme/invitations", `{"email":"a@example.com","ttl":"soon"}`) // 400
	call(admin.URL, "GET", "/admin/organizations/acme/invitations?status=all&limit=1", "")
	call(admin.URL, "GET", "/admin/organizations/acme/invitations?status=maybe", "") // 400
	call(admin.URL, "GET", "/admin/invitations/"+inv, "")
	call(admin.URL, "GET", "/admin/invitations/inv_nope", "") // 404
	call(admin.URL, "POST", "/admin/invitations/"+inv+"/resend", "")
	call(admin.URL, "POST", "/admin/invitations/"+inv+"/resend", `{"send_email":false}`)
	call(admin.URL, "POST", "/admin/invitations/"+inv+"/remind", "")
	call(admin.URL, "POST", "/admin/invitations/"+inv+"/remind", "") // 429
	call(admin.URL, "DELETE", "/admin/invitations/"+inv, "")
	call(admin.URL, "DELETE", "/admin/invitations/"+inv, "") // 410

	// Delivery status and suppression.
	resend := func(id, sig, body string) {
		t.Helper()
		ts := time.Now()
		if sig == "" {
			sig = resendtest.Sign(resendSecret, id, ts, []byte(body))
		}
		call(public.URL, "POST", "/hooks/resend", body, "svix-id", id, "svix-timestamp", strconv.FormatInt(ts.Unix(), 10), "svix-signature", sig)
	}
	event := `{"type":"email.bounced","created_at":"2026-01-02T03:04:05Z","data":{"email_id":"4ef9a417-02e9-4d39-ad75-9611e0fcc33c","to":["x@example.com"]}}`
	resend("msg_1", "", event)                                                                                       // 200 unknown
	resend("msg_1", "", event)                                                                                       // 200 duplicate
	resend("msg_2", "v1,bm90IGl0", event)                                                                            // 401
	resend("msg_3", "", `{"type":"email.bounced"}`)                                                                  // 400
	resend("msg_4", "", `{"type":"email.opened"}`)                                                                   // 200 ignored
	call(public.URL, "POST", "/hooks/resend", event)                                                                 // 401 missing
	call(public.URL, "POST", "/hooks/resend", "x", "Content-Type", "text/plain")                                     // 415
	call(public.URL, "POST", "/hooks/resend", `{"type":"`+strings.Repeat("a", 70<<10)+`"}`)                          // 413
	call(admin.URL, "POST", "/admin/suppressions", `{"email":"Gone@Example.com","detail":"asked not to be mailed"}`) // 201
	call(admin.URL, "POST", "/admin/suppressions", `{"email":"not an address"}`)                                     // 400
	call(admin.URL, "POST", "/admin/organizations/acme/invitations", `{"email":"gone@example.com"}`)                 // 409 address_suppressed
	call(admin.URL, "GET", "/admin/suppressions?limit=1", "")
	call(admin.URL, "GET", "/admin/suppressions/gone@example.com", "")
	call(admin.URL, "GET", "/admin/organizations/acme/invitations?delivery=bounced", "")
	call(admin.URL, "GET", "/admin/organizations/acme/invitations?delivery=lost", "") // 400
	call(admin.URL, "DELETE", "/admin/suppressions/gone@example.com", "")             // 204
	call(admin.URL, "DELETE", "/admin/suppressions/gone@example.com", "")             // 404
	call(admin.URL, "GET", "/admin/suppressions/gone@example.com", "")                // 404

	// Seat limits.
	full := mustID(call(admin.URL, "POST", "/admin/organizations", `{"name":"Full Ltd","max_members":1}`))
	call(admin.URL, "POST", "/admin/organizations", `{"name":"Y","max_members":0}`) // 400 invalid_max_members
	call(admin.URL, "POST", "/admin/organizations/"+full+"/invitations", `{"email":"one@example.com"}`)
	call(admin.URL, "POST", "/admin/organizations/"+full+"/invitations", `{"email":"two@example.com"}`)   // 409 seat_limit
	call(admin.URL, "POST", "/admin/organizations/"+full+"/members", `{"identity_id":"`+existing.ID+`"}`) // 409 seat_limit
	call(admin.URL, "PATCH", "/admin/organizations/"+full, `{"max_members":null}`)                        // 200 unlimited
	call(admin.URL, "PATCH", "/admin/organizations/"+full, `{"max_members":"ten"}`)                       // 400
	call(admin.URL, "POST", "/admin/invitations/"+inv+"/resend", "")                                      // 410

	// Bulk invitations.
	bulk := `{"invitations":[{"email":"bulk.a@example.com","first_name":"Ada"},{"email":"not an address"},{"email":"BULK.A@example.com"},{"email":"owner@example.com"},{"email":"bulk.b@example.com","role":"king"}]}`
	call(admin.URL, "POST", "/admin/organizations/"+full+"/invitations/bulk", bulk)
	call(admin.URL, "POST", "/admin/organizations/"+full+"/invitations/bulk?dry_run=true", bulk)
	call(admin.URL, "POST", "/admin/organizations/"+full+"/invitations/bulk", bulk, "Idempotency-Key", "k1")
	call(admin.URL, "POST", "/admin/organizations/"+full+"/invitations/bulk", bulk, "Idempotency-Key", "k1")                                          // replayed
	call(admin.URL, "POST", "/admin/organizations/"+full+"/invitations/bulk", `{"invitations":[{"email":"x@example.com"}]}`, "Idempotency-Key", "k1") // 422
	call(admin.URL, "POST", "/admin/organizations/"+full+"/invitations/bulk", "\ufeffemail,role\nbulk.csv@example.com,member\n", "Content-Type", "text/csv")
	call(admin.URL, "POST", "/admin/organizations/"+full+"/invitations/bulk", "email,color\nx@example.com,red\n", "Content-Type", "text/csv")                // 400 unknown_column
	call(admin.URL, "POST", "/admin/organizations/"+full+"/invitations/bulk", `{"invitations":[{"email":"x@example.com","colour":1}]}`)                      // 400
	call(admin.URL, "POST", "/admin/organizations/"+full+"/invitations/bulk", "email=x", "Content-Type", "text/plain")                                       // 415
	call(admin.URL, "POST", "/admin/organizations/"+full+"/invitations/bulk", "email\n"+strings.Repeat("r@example.com\n", 1001), "Content-Type", "text/csv") // 413
	call(admin.URL, "POST", "/admin/organizations/nope/invitations/bulk", bulk)                                                                              // 404
	call(public.URL, "POST", "/api/organizations/acme/invitations/bulk", bulk)                                                                               // 401

	// Domains.
	call(admin.URL, "POST", "/admin/organizations/acme/domains", `{"domain":"Acme.Example","policy":"auto_join"}`) // 201
	call(admin.URL, "POST", "/admin/organizations/acme/domains", `{"domain":"acme.example"}`)                      // 200
	call(admin.URL, "POST", "/admin/organizations/"+full+"/domains", `{"domain":"acme.example"}`)                  // 409 domain_taken
	call(admin.URL, "POST", "/admin/organizations/acme/domains", `{"domain":"co.uk"}`)                             // 400
	call(admin.URL, "GET", "/admin/organizations/acme/domains", "")
	call(admin.URL, "PATCH", "/admin/organizations/acme/domains/acme.example", `{"role":"admin"}`)
	call(admin.URL, "POST", "/admin/organizations/acme/domains/acme.example/verify", "") // 503 dns_unavailable
	call(admin.URL, "PATCH", "/admin/organizations/acme/domains/acme.example", `{"verified":true}`)
	call(admin.URL, "POST", "/admin/organizations/acme/domains/acme.example/verify", "")                                  // 200, verified already
	call(admin.URL, "DELETE", "/admin/organizations/acme/domains/other.example", "")                                      // 404
	call(admin.URL, "DELETE", "/admin/organizations/acme/domains/acme.example", "")                                       // 204
	call(public.URL, "POST", "/domains/join", "domain=acme.example", "Content-Type", "application/x-www-form-urlencoded") // 403 csrf

	// Webhooks.
	hook := func(email string) string {
		return `{"flow_id":"f","traits":{"email":"` + email + `"},"verifiable_addresses":[{"value":"` + email + `","via":"email","verified":true,"status":"completed"}],"invite_token":null,"organization_name":null}`
	}
	call(admin.URL, "POST", "/hooks/registration/pre", hook("someone@example.com"))                                                                       // 204
	call(admin.URL, "POST", "/hooks/registration/pre", hook("someone@example.com"), "X-Kratos-Orgs-Secret", "")                                           // 401
	call(admin.URL, "POST", "/hooks/registration/pre", `{"flow_id":"f","cookies":{}}`)                                                                    // 400
	call(admin.URL, "POST", "/hooks/registration/pre", `{"flow_id":"f","invite_token":"`+strings.Repeat("a", 44)+`","traits":{"email":"x@example.com"}}`) // 403
	call(admin.URL, "POST", "/hooks/registration/post", hook("someone@example.com"))                                                                      // 400 no identity
	call(admin.URL, "POST", "/hooks/registration/post",
		`{"flow_id":"f2","identity_id":"`+owner.ID+`","traits":{"email":"owner@example.com"},"verifiable_addresses":[],"invite_token":null,"organization_name":"Hooked"}`)
	call(admin.URL, "POST", "/hooks/verification/after", `{"flow_id":"f","identity_id":"`+owner.ID+`","verifiable_addresses":[]}`)
	call(admin.URL, "POST", "/hooks/login/after", `{"flow_id":"f","identity_id":"`+owner.ID+`"}`)
	call(admin.URL, "POST", "/hooks/settings/after", `{"flow_id":"f","identity_id":"`+owner.ID+`"}`, "Content-Type", "text/plain") // 415

	// The org admins' API without a session, and the server's own 404 and 405.
	for _, r := range [][2]string{
		{"GET", "/api/organizations"}, {"GET", "/api/organizations/acme"}, {"GET", "/api/organizations/acme/members"},
		{"PATCH", "/api/organizations/acme/members/" + owner.ID}, {"DELETE", "/api/organizations/acme/members/" + owner.ID},
		{"GET", "/api/organizations/acme/invitations"}, {"DELETE", "/api/organizations/acme/invitations/" + inv},
		{"POST", "/api/organizations/acme/invitations/" + inv + "/resend"},
		{"POST", "/api/organizations/acme/invitations/" + inv + "/remind"},
		{"GET", "/api/organizations/acme/audit"},
		{"GET", "/api/organizations/acme/domains"}, {"POST", "/api/organizations/acme/domains"},
		{"PATCH", "/api/organizations/acme/domains/acme.example"}, {"DELETE", "/api/organizations/acme/domains/acme.example"},
		{"POST", "/api/organizations/acme/domains/acme.example/verify"},
	} {
		call(public.URL, r[0], r[1], "") // 401 no_session
	}
	call(public.URL, "POST", "/api/organizations/acme/invitations", `{"email":"c@example.com"}`, "Cookie", "ory_kratos_session=x") // 403 origin
	call(admin.URL, "GET", "/admin/nothing", "")
	call(admin.URL, "PUT", "/admin/organizations", "")
	call(public.URL, "GET", "/admin/organizations", "") // the admin API is not on the public listener

	// Pages answer HTML.
	call(public.URL, "GET", "/register", "")
	call(public.URL, "GET", "/invitations/accept/"+strings.Repeat("a", 44), "")
	call(public.URL, "GET", "/invitations/accept/resume", "") // no resume cookie: 400 page
	call(public.URL, "GET", "/kratos/login", "")
	call(public.URL, "GET", "/kratos/nonsense", "")
	call(public.URL, "GET", "/", "")
	call(public.URL, "GET", "/welcome", "")
	call(public.URL, "GET", "/kratos/error", "")
	call(public.URL, "GET", "/register/activate/"+strings.Repeat("a", 44), "")
	// The org admins' page without a session: 303 to Kratos' login.
	call(public.URL, "GET", "/orgs/acme", "")
	for _, p := range []string{"/orgs/acme/invitations", "/orgs/acme/invitations/" + inv + "/revoke", "/orgs/acme/members/" + owner.ID + "/remove"} {
		call(public.URL, "POST", p, "csrf_token=x&email=a%40example.com", "Content-Type", "application/x-www-form-urlencoded")
	}
	upload := "--b\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nx\r\n--b\r\nContent-Disposition: form-data; name=\"upload_key\"\r\n\r\n" +
		strings.Repeat("k", 24) + "\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\nContent-Type: text/csv\r\n\r\nemail\r\n--b--\r\n"
	call(public.URL, "POST", "/orgs/acme/invitations/upload", upload, "Content-Type", "multipart/form-data; boundary=b")
	for _, p := range []string{"/register", "/invitations/accept/" + strings.Repeat("a", 44), "/register/activate/" + strings.Repeat("a", 44)} {
		call(public.URL, "POST", p, "", "Content-Type", "application/x-www-form-urlencoded")
	}

	call(admin.URL, "GET", "/admin/organizations/acme/audit?limit=2", "")
	call(admin.URL, "GET", "/admin/organizations/acme/audit?cursor=nope", "") // 400 invalid_cursor
	call(admin.URL, "DELETE", "/admin/organizations/acme", "")
	call(admin.URL, "DELETE", "/admin/organizations/acme", "") // 404

	rec.Check(t)
	if seen := rec.Seen(); len(seen) != len(rec.Operations()) {
		t.Errorf("%d of %d operations exercised", len(seen), len(rec.Operations()))
	}
}
