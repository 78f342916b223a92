// Command dev runs kratos-orgs for development (make dev): a Redis (a local
// redis-server when installed, else the embedded one), Kratos v1.3.1 on
// SQLite (or PostgreSQL with KRATOS_DB=postgres), and the sidecar with mail printed to the terminal. It creates a
// demo organization and invitation and prints the link to follow.
package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/alicebob/miniredis/v2"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
	"github.com/kratos-orgs/kratos-orgs/config"
	kratosconf "github.com/kratos-orgs/kratos-orgs/config/kratos"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/server"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	state := filepath.Join(root, ".cache", "dev")
	if err := os.MkdirAll(state, 0o755); err != nil {
		return err
	}
	cfg, err := config.Load(filepath.Join(root, "config", "dev.yaml"), os.Getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	var children []*exec.Cmd
	defer func() {
		for _, c := range children {
			_ = c.Process.Signal(syscall.SIGTERM)
			_, _ = c.Process.Wait()
		}
	}()

	// Redis: a real server keeps data across restarts of make dev.
	if bin, err := exec.LookPath("redis-server"); err == nil {
		port := "6390"
		c := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--dir", state,
			"--appendonly", "yes", "--save", "", "--logfile", filepath.Join(state, "redis.log"))
		if err := c.Start(); err != nil {
			return fmt.Errorf("start redis-server: %w", err)
		}
		children = append(children, c)
		cfg.Redis.Mode, cfg.Redis.URL = "single", "redis://127.0.0.1:"+port+"/0"
		fmt.Fprintf(os.Stderr, "redis:  redis-server on 127.0.0.1:%s (data in .cache/dev)\n", port)
	} else {
		// Development only, and only here: kratos-orgs serve always needs a
		// real Redis, so the production binary does not carry this one.
		m := miniredis.NewMiniRedis()
		if err := m.Start(); err != nil {
			return fmt.Errorf("start the embedded Redis: %w", err)
		}
		defer m.Close()
		cfg.Redis.Mode, cfg.Redis.URL = "single", "redis://"+m.Addr()+"/0"
		fmt.Fprintln(os.Stderr, "redis:  redis-server is not installed; using an embedded in-memory Redis (install redis-server to keep data)")
	}

	// Kratos on SQLite (or PostgreSQL: KRATOS_DB=postgres), migrated first.
	dsn, where, err := kratosDSN(state)
	if err != nil {
		return err
	}
	kratos, err := startKratos(ctx, root, state, cfg, dsn)
	if kratos != nil {
		children = append(children, kratos)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "kratos: public %s, admin %s (%s, log in .cache/dev/kratos.log)\n", cfg.Kratos.PublicURL, cfg.Kratos.AdminURL, where)

	srv, err := server.New(ctx, server.Options{Config: cfg, Logger: log, MailLog: os.Stdout})
	if err != nil {
		return err
	}
	defer srv.Close()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()

	if err := demo(ctx, srv, cfg); err != nil {
		return err
	}
	return <-done
}

// kratosDSN is Kratos' database: SQLite in state by default (for trying
// things out, as Ory says), or with KRATOS_DB=postgres the database
// KRATOS_DSN names, else kratos_orgs_dev on the server of KRATOS_PG_URL
// (default: the local one), created on first use and kept like the SQLite
// file.
func kratosDSN(state string) (dsn, where string, err error) {
	db, err := testenv.KratosDB()
	if err != nil || db == "sqlite" {
		return "sqlite://" + filepath.Join(state, "kratos.db") + "?_fk=true&mode=rwc", "SQLite in .cache/dev", err
	}
	if dsn := os.Getenv("KRATOS_DSN"); dsn != "" {
		return dsn, "PostgreSQL at KRATOS_DSN", nil
	}
	pg, err := testenv.OpenPostgres(testenv.PostgresURL())
	if err != nil {
		return "", "", err
	}
	dsn, err = pg.EnsureDatabase("kratos_orgs_dev")
	return dsn, "PostgreSQL database kratos_orgs_dev", err
}

// startKratos writes Kratos' configuration, migrates its database (dsn)
// and starts it; the returned process is to be stopped by the caller.
func startKratos(ctx context.Context, root, state string, cfg config.Config, dsn string) (*exec.Cmd, error) {
	kratos := filepath.Join(root, ".cache", "bin", "kratos")
	if _, err := os.Stat(kratos); err != nil {
		return nil, errors.New("the Kratos binary is missing: run `make kratos` (or just `make dev`)")
	}
	// Its configuration is generated from ours, as operators do it with
	// `kratos-orgs kratos-config`.
	conf, err := kratosconf.Generate(kratosconf.Options{
		SidecarURL: cfg.Serve.Public.BaseURL, SidecarAdminURL: fmt.Sprintf("http://127.0.0.1:%d", cfg.Serve.Admin.Port),
		KratosPublicURL: cfg.Kratos.PublicURL, KratosAdminURL: cfg.Kratos.AdminURL, SchemaID: cfg.Kratos.SchemaID,
		HooksSecret: cfg.Hooks.Secret, Dev: true,
	})
	if err != nil {
		return nil, err
	}
	kratosYML := filepath.Join(state, "kratos.yml")
	if err := os.WriteFile(kratosYML, conf, 0o600); err != nil {
		return nil, err
	}
	env := append(os.Environ(), "DSN="+dsn)
	migrate := exec.Command(kratos, "migrate", "sql", "-e", "--yes", "-c", kratosYML)
	migrate.Env = env
	if out, err := migrate.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("kratos migrate: %v\n%s", err, out)
	}
	serve := exec.Command(kratos, "serve", "-c", kratosYML, "--dev")
	serve.Env = env
	kratosLog, err := os.Create(filepath.Join(state, "kratos.log"))
	if err != nil {
		return nil, err
	}
	serve.Stdout, serve.Stderr = kratosLog, kratosLog
	err = serve.Start()
	kratosLog.Close() // the child has its own descriptor
	if err != nil {
		return nil, fmt.Errorf("start kratos: %w", err)
	}
	if err := waitReady(ctx, cfg.Kratos.AdminURL+"/admin/health/ready"); err != nil {
		return serve, fmt.Errorf("kratos did not start (see .cache/dev/kratos.log): %w", err)
	}
	return serve, nil
}

func waitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.New("not ready after 60s")
}

// demo creates the demo organization (once) and a fresh invitation; the
// log sender prints its mail with the link.
func demo(ctx context.Context, srv *server.Server, cfg config.Config) error {
	o, err := srv.Orgs.Store().Resolve(ctx, "demo")
	if apperr.KindOf(err) == apperr.NotFound {
		o, err = srv.Orgs.Create(ctx, orgs.CreateRequest{Name: "Demo Organization", Slug: "demo"}, orgs.StateActive)
	}
	if err != nil {
		return fmt.Errorf("demo organization: %w", err)
	}
	inv, _, err := srv.Invites.Invite(ctx, o.ID, invites.InviteRequest{
		Email: "newcomer@example.com", Role: "admin", Inviter: &invites.Inviter{Name: "The kratos-orgs demo"},
	})
	if err != nil {
		return fmt.Errorf("demo invitation: %w", err)
	}
	fmt.Fprintf(os.Stderr, `
kratos-orgs is running.
  public listener  %s
  admin listener   http://%s  (API key: %s)

Demo organization %q (%s); invitation %s for %s.
Its mail is printed below by the log sender: open the link in a browser.

Try the admin API:
  curl -s -H 'Authorization: Bearer %s' http://%s/admin/organizations/demo/invitations

Press Ctrl-C to stop.
`, cfg.Serve.Public.BaseURL, srv.Addr("admin"), cfg.Admin.APIKeys[0], o.Name, o.ID, inv.ID, inv.Email,
		cfg.Admin.APIKeys[0], srv.Addr("admin"))
	return nil
}
