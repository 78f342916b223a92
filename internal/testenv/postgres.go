package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Kratos runs on SQLite unless KRATOS_DB=postgres: then every Kratos a test
// (or `make bench-kratos`) starts gets a fresh database on the PostgreSQL
// server KRATOS_PG_URL names (default DefaultPostgresURL), dropped when
// Kratos stops. `make dev` takes KRATOS_DSN instead when it is set.
// PostgreSQL is reached with psql, createdb and dropdb (Debian's
// postgresql-client): no database driver in kratos-orgs itself.

// DefaultPostgresURL is the local server with trust authentication.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// KratosDB is the database Kratos runs on: "sqlite" or "postgres".
func KratosDB() (string, error) {
	switch db := os.Getenv("KRATOS_DB"); db {
	case "", "sqlite":
		return "sqlite", nil
	case "postgres", "postgresql":
		return "postgres", nil
	default:
		return "", fmt.Errorf("KRATOS_DB=%q: want sqlite or postgres", db)
	}
}

// PostgresURL is the server of KRATOS_PG_URL, or DefaultPostgresURL.
func PostgresURL() string {
	if u := os.Getenv("KRATOS_PG_URL"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// Postgres is a PostgreSQL server: one that already answered, or one
// started from Debian's postgresql binaries (StartPostgres).
type Postgres struct {
	URL     string // of the maintenance database ("postgres")
	pgCtl   string
	dataDir string // set when this process started the server
}

// PostgresAnswers reports whether a server accepts connections at url.
func PostgresAnswers(url string) bool {
	return exec.Command("pg_isready", "-q", "-d", url).Run() == nil
}

// OpenPostgres returns the server at url, failing with instructions when
// it does not answer.
func OpenPostgres(url string) (*Postgres, error) {
	if _, err := exec.LookPath("psql"); err != nil {
		return nil, fmt.Errorf("psql is missing: install Debian's postgresql-client (KRATOS_DB=postgres needs it)")
	}
	if !PostgresAnswers(url) {
		return nil, fmt.Errorf("no PostgreSQL answers at %s: start one, or set KRATOS_PG_URL (KRATOS_DB=postgres)", redactURL(url))
	}
	return &Postgres{URL: url}, nil
}

// StartPostgres returns the server at url if one answers; otherwise it
// starts one on url's port from Debian's postgresql binaries
// (/usr/lib/postgresql/<version>/bin), with its data in dataDir (created
// with initdb on first use, trust authentication, user postgres). Stop
// stops only a server started here.
func StartPostgres(url, dataDir string) (*Postgres, error) {
	if PostgresAnswers(url) {
		return OpenPostgres(url)
	}
	bin, err := postgresBinDir()
	if err != nil {
		return nil, err
	}
	u, err := parsePostgresURL(url)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err != nil {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, err
		}
		out, err := exec.Command(filepath.Join(bin, "initdb"), "-D", dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("initdb: %v\n%s", err, out)
		}
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	p := &Postgres{URL: url, pgCtl: filepath.Join(bin, "pg_ctl"), dataDir: dataDir}
	opts := fmt.Sprintf("-c listen_addresses=%s -p %s -k %s -c max_connections=200 -c fsync=off", u.Hostname(), port, dataDir)
	out, err := exec.Command(p.pgCtl, "-D", dataDir, "-l", filepath.Join(dataDir, "postgres.log"), "-o", opts, "-w", "start").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("pg_ctl start: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(30 * time.Second); !PostgresAnswers(url); {
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("the PostgreSQL started in %s does not answer at %s", dataDir, redactURL(url))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p, nil
}

func postgresBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL answers and none can be started: install Debian's postgresql package (initdb, pg_ctl) or set KRATOS_PG_URL")
}

// Stop stops a server this process started; an existing one is left alone.
func (p *Postgres) Stop() {
	if p.dataDir != "" && p.pgCtl != "" {
		_ = exec.Command(p.pgCtl, "-D", p.dataDir, "-m", "fast", "-w", "stop").Run()
	}
}

// CreateDatabase creates a fresh database named after prefix and returns
// its URL and a function that drops it.
func (p *Postgres) CreateDatabase(prefix string) (dsn string, drop func() error, err error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := prefix + "_" + hex.EncodeToString(b[:])
	if err := p.psql("CREATE DATABASE " + name); err != nil {
		return "", nil, err
	}
	u, err := parsePostgresURL(p.URL)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop = func() error { return p.psql("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") }
	return u.String(), drop, nil
}

// EnsureDatabase creates database name unless it exists, and returns its URL.
func (p *Postgres) EnsureDatabase(name string) (string, error) {
	out, err := exec.Command("psql", p.URL, "-v", "ON_ERROR_STOP=1", "-Atc",
		"SELECT 1 FROM pg_database WHERE datname = '"+name+"'").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("psql: %v: %s", err, out)
	}
	if strings.TrimSpace(string(out)) != "1" {
		if err := p.psql("CREATE DATABASE " + name); err != nil {
			return "", err
		}
	}
	u, err := parsePostgresURL(p.URL)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

func (p *Postgres) psql(sql string) error {
	out, err := exec.Command("psql", p.URL, "-v", "ON_ERROR_STOP=1", "-qc", sql).CombinedOutput()
	if err != nil {
		return fmt.Errorf("psql %q: %v: %s", sql, err, out)
	}
	return nil
}

func parsePostgresURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("KRATOS_PG_URL must be a postgres:// URL, got %q", redactURL(s))
	}
	return u, nil
}

// redactURL hides a password in a database URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
