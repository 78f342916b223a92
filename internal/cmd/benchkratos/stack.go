package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/identity"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/server"
)

const adminKey = "bench-admin-key-0123456789abcdef"

// stack is everything the bench runs against.
type stack struct {
	pg        *testenv.Postgres
	redis     *testenv.Redis
	redisDir  string
	kratos    *testenv.Kratos
	orgs      *server.Server
	orgsURL   string // kratos-orgs' admin listener
	publicURL string // kratos-orgs' public listener (the pages)
	cancel    context.CancelFunc
	done      chan struct{}
	hc        *http.Client
	pages     *http.Client // the pages' client: no redirects followed
	mailbox   *mailbox
	pgCPU     *pgCPU // CPU of Kratos' PostgreSQL backends
}

func startStack(ctx context.Context, o options) (*stack, error) {
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 128, IdleConnTimeout: time.Minute}
	s := &stack{hc: &http.Client{Timeout: time.Minute, Transport: tr},
		pages: &http.Client{Timeout: time.Minute, Transport: tr, CheckRedirect: noRedirects}, mailbox: newMailbox()}
	root, err := testenv.RepoRoot()
	if err != nil {
		return s, err
	}
	// testenv reads the database choice from the environment.
	os.Setenv("KRATOS_DB", o.db)
	os.Setenv("KRATOS_PG_URL", o.pgURL)
	if o.db == "postgres" {
		if s.pg, err = testenv.StartPostgres(o.pgURL, filepath.Join(root, ".cache", "postgres")); err != nil {
			return s, err
		}
	}
	if s.redisDir, err = os.MkdirTemp("", "bench-kratos-redis-"); err != nil {
		return s, err
	}
	if s.redis, err = testenv.NewRedis(s.redisDir); err != nil {
		return s, err
	}
	fmt.Fprintf(os.Stderr, "starting Kratos on %s...\n", o.db)
	// Kratos logs every request at info; the bench measures the API, not
	// its log.
	if s.kratos, err = testenv.NewKratos(testenv.SidecarURL, testenv.SidecarAdminURL, map[string]string{"LOG_LEVEL": "warning"}); err != nil {
		return s, err
	}
	s.pgCPU = newPgCPU(s.kratos.PostgresDatabase())
	go s.pgCPU.run(ctx)
	return s, s.startOrgs(ctx)
}

func (s *stack) startOrgs(ctx context.Context) error {
	cfg := config.Default()
	cfg.Serve.Public = config.Listener{Host: "127.0.0.1", Port: 0, BaseURL: testenv.SidecarURL}
	cfg.Serve.Admin = config.Listener{Host: "127.0.0.1", Port: 0}
	cfg.Redis.URL = "redis://" + s.redis.Addr + "/0"
	cfg.Kratos.AdminURL, cfg.Kratos.PublicURL = s.kratos.AdminURL, s.kratos.PublicURL
	cfg.Admin.APIKeys = []string{adminKey}
	cfg.Mail.Sender, cfg.Mail.FromAddress = "log", "invites@bench.example"
	cfg.Secrets.Cipher = []string{"bench-cipher-secret-0123456789abcdef"}
	// The bench sends thousands of mails and opens thousands of links from
	// one client address: quotas meant for abuse would defer the mails (and
	// make the outbox retry them, which costs CPU) and refuse the pages.
	cfg.Limits.MailGlobal.Requests, cfg.Limits.MailPerOrganization.Requests = 0, 0
	cfg.Limits.LinkViewsPerClient.Requests, cfg.Limits.LinkSubmitsPerClient.Requests = 0, 0
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Requests cut by the end of a phase would log as failures: quiet.
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(ctx, server.Options{Config: cfg, Logger: log, Sender: s.mailbox})
	if err != nil {
		return err
	}
	s.orgs = srv
	runCtx, cancel := context.WithCancel(ctx)
	s.cancel, s.done = cancel, make(chan struct{})
	go func() { defer close(s.done); _ = srv.Run(runCtx) }()
	s.orgsURL = "http://" + srv.Addr("admin")
	s.publicURL = "http://" + srv.Addr("public")
	return nil
}

func (s *stack) stop() {
	if s.cancel != nil {
		s.cancel()
		<-s.done
		_ = s.orgs.Close()
	}
	if s.kratos != nil {
		s.kratos.Stop()
	}
	if s.redis != nil {
		s.redis.Stop()
		_ = os.RemoveAll(s.redisDir)
	}
	if s.pg != nil {
		s.pg.Stop()
	}
}

// call sends a JSON request and decodes a JSON answer into out (may be nil).
func (s *stack) call(ctx context.Context, method, url string, body, out any, want int, headers ...string) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		if len(b) > 200 {
			b = b[:200]
		}
		return fmt.Errorf("%s %s: %d %s", method, req.URL.Path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// Kratos' own calls.

func (s *stack) kratosCreate(ctx context.Context, email string) (string, error) {
	var got struct {
		ID string `json:"id"`
	}
	err := s.call(ctx, http.MethodPost, s.kratos.AdminURL+"/admin/identities",
		map[string]any{"schema_id": "default", "traits": map[string]any{"email": email}}, &got, http.StatusCreated)
	return got.ID, err
}

// kratosCreateAsOrgs sends the body kratos-orgs sends for a new address
// (identity.CreateInvited): inactive, with its metadata_admin marker. The
// bench measures it apart, to tell Kratos' cost of that body from the
// contention of kratos-orgs running beside it.
func (s *stack) kratosCreateAsOrgs(ctx context.Context, email, org string) error {
	marker := map[string]any{"created": true, "organization": org, "created_at": time.Now().UTC().Format(time.RFC3339)}
	return s.call(ctx, http.MethodPost, s.kratos.AdminURL+"/admin/identities", map[string]any{
		"schema_id": "default", "traits": map[string]any{"email": email}, "state": "inactive",
		"metadata_admin": map[string]any{identity.MarkerKey: marker}}, nil, http.StatusCreated)
}

func (s *stack) kratosLookUp(ctx context.Context, email string) error {
	var got []map[string]any
	if err := s.call(ctx, http.MethodGet, s.kratos.AdminURL+"/admin/identities?credentials_identifier="+email, nil, &got, http.StatusOK); err != nil {
		return err
	}
	if len(got) != 1 {
		return fmt.Errorf("look-up of %s found %d identities", email, len(got))
	}
	return nil
}

func (s *stack) kratosRecoveryLink(ctx context.Context, id string) error {
	return s.call(ctx, http.MethodPost, s.kratos.AdminURL+"/admin/recovery/link",
		map[string]any{"identity_id": id, "expires_in": "1h"}, nil, http.StatusOK)
}

// seed creates n identities through Kratos' batch endpoint.
func (s *stack) seed(ctx context.Context, n int) error {
	const batch = 1000
	for done := 0; done < n; done += batch {
		var list []map[string]any
		for i := done; i < min(n, done+batch); i++ {
			list = append(list, map[string]any{"create": map[string]any{
				"schema_id": "default", "traits": map[string]any{"email": fmt.Sprintf("seed-%d@bench.example", i)}}})
		}
		if err := s.call(ctx, http.MethodPatch, s.kratos.AdminURL+"/admin/identities", map[string]any{"identities": list}, nil, http.StatusOK); err != nil {
			return fmt.Errorf("seeding identities: %w", err)
		}
	}
	return nil
}

// kratos-orgs' operations.

func (s *stack) createOrg(ctx context.Context, name string) (string, error) {
	var got struct {
		ID string `json:"id"`
	}
	err := s.call(ctx, http.MethodPost, s.orgsURL+"/admin/organizations", map[string]any{"name": name}, &got, http.StatusCreated,
		"Authorization", "Bearer "+adminKey)
	return got.ID, err
}

func (s *stack) invite(ctx context.Context, org, email string) error {
	return s.call(ctx, http.MethodPost, s.orgsURL+"/admin/organizations/"+org+"/invitations",
		map[string]any{"email": email, "role": "member"}, nil, http.StatusCreated, "Authorization", "Bearer "+adminKey)
}

// waitKnown waits until the invitation.sync jobs remembered the identity
// of every address (what makes them known to kratos-orgs).
func (s *stack) waitKnown(ctx context.Context, emails []string) error {
	rdb := s.orgs.Redis()
	ks := s.orgs.Keyspace()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		missing := 0
		cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, e := range emails {
				p.Exists(ctx, ks.AddressIdentity(e))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, c := range cmds {
			if n, _ := c.(*redis.IntCmd).Result(); n == 0 {
				missing++
			}
		}
		if missing == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d addresses still unknown after 2 minutes (outbox behind?)", missing, len(emails))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
