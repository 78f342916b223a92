package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	kratosconf "github.com/kratos-orgs/kratos-orgs/config/kratos"
)

// Kratos is a running Kratos v1.3.1 on a throwaway database: SQLite, or
// PostgreSQL with KRATOS_DB=postgres (postgres.go).
type Kratos struct {
	PublicURL string
	AdminURL  string
	// DB is the database it runs on: "sqlite" or "postgres".
	DB     string
	cmd    *exec.Cmd
	out    *bytes.Buffer
	mu     sync.Mutex
	dbDir  string
	dropDB func() error
	dbName string // on PostgreSQL
}

// RepoRoot finds the module root (the directory with the project's go.mod).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/kratos-orgs/kratos-orgs\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("testenv: cannot find the kratos-orgs module root above the working directory")
		}
		dir = parent
	}
}

// KratosBinary is where `make kratos` puts the binary (KRATOS_BIN overrides).
func KratosBinary() (string, error) {
	if p := os.Getenv("KRATOS_BIN"); p != "" {
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, ".cache", "bin", "kratos")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("the Kratos v1.3.1 binary is missing at %s: build it with `make kratos` (it compiles Kratos from the Go module proxy; minutes on first run) or set KRATOS_BIN", p)
	}
	return p, nil
}

// SidecarURL and SidecarAdminURL are where Kratos expects kratos-orgs'
// public and admin listeners unless a test says otherwise.
const (
	SidecarURL      = "http://127.0.0.1:4480"
	SidecarAdminURL = "http://127.0.0.1:4481"
)

// HooksSecret is the webhook secret test Kratos instances send.
const HooksSecret = "dev-hooks-secret-change-me-0123"

// StartKratos starts a private Kratos for one test. env adds Kratos
// configuration overrides (e.g. SELFSERVICE_FLOWS_..._URL).
func StartKratos(t testing.TB, env map[string]string) *Kratos {
	return StartKratosFor(t, SidecarURL, SidecarAdminURL, env)
}

// StartKratosFor starts a private Kratos whose UI, return URLs, CORS and
// webhooks point at a kratos-orgs whose listeners run at publicURL and
// adminURL. Its configuration comes from kratosconf.Generate, exactly as
// `kratos-orgs kratos-config` writes it for operators.
func StartKratosFor(t testing.TB, publicURL, adminURL string, env map[string]string) *Kratos {
	t.Helper()
	k, err := startKratos(publicURL, adminURL, env)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kratos output:\n%s", k.Output())
		}
		k.Stop()
	})
	return k
}

// NewKratos is StartKratosFor outside a test (benchmarks): the caller
// stops it.
func NewKratos(publicURL, adminURL string, env map[string]string) (*Kratos, error) {
	return startKratos(publicURL, adminURL, env)
}

// startKratos starts Kratos, retrying with fresh ports: a port handed out
// by FreePort can be taken by another process before Kratos binds it.
func startKratos(publicURL, adminURL string, env map[string]string) (*Kratos, error) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var k *Kratos
		if k, err = startKratosOnce(publicURL, adminURL, env); err == nil {
			return k, nil
		}
	}
	return nil, err
}

func startKratosOnce(publicURL, adminURL string, env map[string]string) (*Kratos, error) {
	bin, err := KratosBinary()
	if err != nil {
		return nil, err
	}
	pub, err := FreePort()
	if err != nil {
		return nil, err
	}
	adm, err := FreePort()
	if err != nil {
		return nil, err
	}
	k := &Kratos{
		PublicURL: "http://127.0.0.1:" + strconv.Itoa(pub),
		AdminURL:  "http://127.0.0.1:" + strconv.Itoa(adm),
		out:       &bytes.Buffer{},
	}
	// The configuration (and a SQLite database) live in one temporary
	// directory.
	dir, err := os.MkdirTemp("", "kratos-")
	if err != nil {
		return nil, err
	}
	k.dbDir = dir
	conf, err := kratosconf.Generate(kratosconf.Options{
		SidecarURL: publicURL, SidecarAdminURL: adminURL, KratosPublicURL: k.PublicURL, KratosAdminURL: k.AdminURL,
		HooksSecret: HooksSecret, Dev: true,
	})
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "kratos.yml"), conf, 0o600)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	dsn, err := k.database(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	// Run from another directory than the configuration's: the generated
	// file must not depend on the working directory.
	migrate := exec.Command(bin, "migrate", "sql", "-e", "--yes", "-c", filepath.Join(dir, "kratos.yml"))
	migrate.Dir = os.TempDir()
	migrate.Env = append(os.Environ(), dsn)
	if out, err := migrate.CombinedOutput(); err != nil {
		k.Stop()
		return nil, fmt.Errorf("kratos migrate: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "-c", filepath.Join(dir, "kratos.yml"), "--dev")
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), dsn)
	for key, v := range env {
		cmd.Env = append(cmd.Env, key+"="+v)
	}
	cmd.Stdout = syncWriter{k}
	cmd.Stderr = syncWriter{k}
	if err := cmd.Start(); err != nil {
		k.Stop()
		return nil, fmt.Errorf("start kratos: %w", err)
	}
	k.cmd = cmd
	return k, k.waitReady()
}

// database returns the DSN variable for Kratos: a SQLite file in WAL mode
// in dir, or a fresh database on the PostgreSQL of KRATOS_PG_URL. Not
// DSN=memory: Kratos' in-memory database is shared-cache SQLite, which
// fails concurrent writers with "table is locked" and made browser
// journeys flaky.
func (k *Kratos) database(dir string) (string, error) {
	db, err := KratosDB()
	if err != nil {
		return "", err
	}
	k.DB = db
	if db == "sqlite" {
		return "DSN=sqlite://" + filepath.Join(dir, "kratos.db") + "?_fk=true&mode=rwc&_journal_mode=WAL&_busy_timeout=10000", nil
	}
	sharedPostgresOnce.Do(func() { sharedPostgres, sharedPostgresErr = OpenPostgres(PostgresURL()) })
	if sharedPostgresErr != nil {
		return "", sharedPostgresErr
	}
	dsn, drop, err := sharedPostgres.CreateDatabase("kratos_test")
	if err != nil {
		return "", err
	}
	k.dropDB = drop
	if u, err := url.Parse(dsn); err == nil {
		k.dbName = strings.TrimPrefix(u.Path, "/")
	}
	return "DSN=" + dsn, nil
}

var (
	sharedPostgres     *Postgres
	sharedPostgresErr  error
	sharedPostgresOnce sync.Once
)

// waitReady waits until both listeners answer: the admin one alone could
// be up while the public one failed to bind.
func (k *Kratos) waitReady() error {
	exited := make(chan struct{})
	go func() { _ = k.cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			k.Stop()
			return fmt.Errorf("kratos exited during start-up:\n%s", k.Output())
		default:
		}
		if answers(k.AdminURL+"/admin/health/ready") && answers(k.PublicURL+"/health/alive") {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	k.Stop()
	return fmt.Errorf("kratos did not become ready within 60s:\n%s", k.Output())
}

func answers(url string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

type syncWriter struct{ k *Kratos }

func (w syncWriter) Write(p []byte) (int, error) {
	w.k.mu.Lock()
	defer w.k.mu.Unlock()
	return w.k.out.Write(p)
}

// Output is what Kratos printed so far.
func (k *Kratos) Output() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.out.String()
}

// PID is the Kratos process' id (benchmarks read its CPU time).
func (k *Kratos) PID() int {
	if k.cmd == nil || k.cmd.Process == nil {
		return 0
	}
	return k.cmd.Process.Pid
}

// PostgresDatabase is the name of Kratos' PostgreSQL database ("" on
// SQLite): benchmarks find its server processes by it.
func (k *Kratos) PostgresDatabase() string { return k.dbName }

// Stop kills Kratos and removes its database.
func (k *Kratos) Stop() {
	if k.cmd != nil && k.cmd.Process != nil {
		_ = k.cmd.Process.Kill() // SIGKILL: nothing writes the database after this
	}
	if k.dbDir != "" {
		_ = os.RemoveAll(k.dbDir)
	}
	if k.dropDB != nil {
		_ = k.dropDB()
		k.dropDB = nil
	}
}

var (
	sharedKratos     *Kratos
	sharedKratosErr  error
	sharedKratosOnce sync.Once
)

// SharedKratos returns the package's Kratos, started on first use and
// stopped by Main. Tests share it; each uses its own addresses.
func SharedKratos(t testing.TB) *Kratos {
	t.Helper()
	sharedKratosOnce.Do(func() { sharedKratos, sharedKratosErr = startKratos(SidecarURL, SidecarAdminURL, nil) })
	if sharedKratosErr != nil {
		t.Fatalf("testenv: %v", sharedKratosErr)
	}
	return sharedKratos
}

func stopKratos() {
	if sharedKratos != nil {
		sharedKratos.Stop()
	}
}
