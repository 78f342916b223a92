package kratos_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	kratosconf "github.com/kratos-orgs/kratos-orgs/config/kratos"
	"github.com/kratos-orgs/kratos-orgs/internal/testenv"
)

var prod = kratosconf.Options{
	SidecarURL:      "https://app.example.com/",
	SidecarAdminURL: "http://kratos-orgs-admin.ory.svc:4481",
	KratosPublicURL: "https://auth.example.com",
	KratosAdminURL:  "http://kratos-admin.ory.svc:4434",
	Host:            "0.0.0.0",
	PublicPort:      4433,
	HooksSecret:     "a-production-secret-0123456789",
}

func TestGenerateWiresEveryHookToTheSidecar(t *testing.T) {
	out, err := kratosconf.Generate(prod)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(out), prod.HooksSecret); n != 1 {
		t.Errorf("the hooks secret appears %d times; want once", n)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, out)
	}
	for _, want := range []string{"https://app.example.com/kratos/login", "https://app.example.com/kratos/settings", "https://auth.example.com/"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the configuration does not mention %s", want)
		}
	}
	if strings.Contains(string(out), "DEVELOPMENT-ONLY") || strings.Contains(string(out), "cost: 4") {
		t.Error("a production configuration carries development secrets or a weak hash")
	}
	if strings.Contains(string(out), "file://") || strings.Contains(string(out), "dsn:") {
		t.Error("the configuration depends on the working directory or hard-codes a database")
	}
	for _, h := range kratosconf.Hooks {
		body, err := kratosconf.Body(h)
		if err != nil {
			t.Fatal(err)
		}
		url := prod.SidecarAdminURL + "/hooks/" + strings.Replace(h, "-", "/", 1)
		inline := "base64://" + base64.StdEncoding.EncodeToString(body)
		at := strings.Index(string(out), "url: "+url+"\n")
		if at < 0 {
			t.Errorf("no webhook calls %s", url)
			continue
		}
		if !strings.Contains(string(out[at:]), inline) {
			t.Errorf("the %s webhook does not send config/kratos/%s.jsonnet", h, h)
		}
	}
}

func TestGenerateRefusesBadOptions(t *testing.T) {
	for name, mutate := range map[string]func(*kratosconf.Options){
		"relative sidecar URL": func(o *kratosconf.Options) { o.SidecarURL = "/app" },
		"ftp Kratos URL":       func(o *kratosconf.Options) { o.KratosPublicURL = "ftp://auth.example.com" },
		"URL with a query":     func(o *kratosconf.Options) { o.SidecarAdminURL = "http://x:1/?a=b" },
		"short secret":         func(o *kratosconf.Options) { o.HooksSecret = "short" },
		"secret with a quote":  func(o *kratosconf.Options) { o.HooksSecret = `0123456789abcdef"` },
		"secret with a colon":  func(o *kratosconf.Options) { o.HooksSecret = "0123456789: abcdef" },
	} {
		t.Run(name, func(t *testing.T) {
			o := prod
			mutate(&o)
			if _, err := kratosconf.Generate(o); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// Kratos itself accepts the production configuration: `kratos serve`
// (without --dev) checks it against Kratos' configuration schema and starts.
// A key Kratos does not know makes it refuse, which shows the check is real.
// (Every end-to-end test runs Kratos with the development variant.)
func TestKratosServesTheProductionConfiguration(t *testing.T) {
	bin, err := testenv.KratosBinary()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := testenv.FreePort()
	adm, _ := testenv.FreePort()
	o := prod
	o.Host, o.PublicPort = "127.0.0.1", 0
	o.KratosPublicURL = fmt.Sprintf("http://127.0.0.1:%d", pub)
	o.KratosAdminURL = fmt.Sprintf("http://127.0.0.1:%d", adm)
	out, err := kratosconf.Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := append(os.Environ(), "DSN=sqlite://"+filepath.Join(dir, "db.sqlite")+"?_fk=true&mode=rwc")
	run := func(conf []byte, args ...string) *exec.Cmd {
		path := filepath.Join(dir, "kratos.yml")
		if err := os.WriteFile(path, conf, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, append(args, "-c", path)...)
		cmd.Dir, cmd.Env = t.TempDir(), env // any working directory
		return cmd
	}
	if b, err := run(out, "migrate", "sql", "-e", "--yes").CombinedOutput(); err != nil {
		t.Fatalf("kratos migrate: %v\n%s", err, b)
	}
	if b, err := run(append(out, "\nno_such_key: 1\n"...), "serve").CombinedOutput(); err == nil || !strings.Contains(string(b), "no_such_key") {
		t.Fatalf("kratos accepted an unknown key (err %v):\n%s", err, b)
	}
	serve := run(out, "serve")
	var log bytes.Buffer
	serve.Stdout, serve.Stderr = &log, &log
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = serve.Process.Kill(); _ = serve.Wait() }()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get(o.KratosAdminURL + "/admin/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
	_ = serve.Process.Kill()
	_ = serve.Wait()
	t.Fatalf("kratos did not start with the generated configuration:\n%s", log.String())
}
