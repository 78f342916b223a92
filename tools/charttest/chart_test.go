package charttest

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	jsonnet "github.com/google/go-jsonnet"
	yamlv3 "gopkg.in/yaml.v3"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"sigs.k8s.io/yaml"
)

// 1. `helm lint --strict`: no errors and no warnings for every values set.
func TestLint(t *testing.T) {
	for _, vf := range valuesFiles {
		t.Run(vf.name, func(t *testing.T) {
			l := action.NewLint()
			l.Strict = true
			l.Namespace = "identity"
			l.KubeVersion = kubeVersion(t)
			res := l.Run([]string{chartDir}, readValues(t, vf.file))
			if res.TotalChartsLinted != 1 {
				t.Fatalf("linted %d charts, want 1 (errors: %v)", res.TotalChartsLinted, res.Errors)
			}
			for _, m := range res.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("lint: %s", m)
				} else {
					t.Logf("lint: %s", m)
				}
			}
			for _, err := range res.Errors {
				t.Errorf("lint error: %v", err)
			}
		})
	}
}

// 2. Rendering: every document decodes strictly into its API type, and the
// chart's promises hold for every values set.
func TestTemplate(t *testing.T) {
	for _, vf := range valuesFiles {
		t.Run(vf.name, func(t *testing.T) {
			opts := renderOpts{}
			if vf.name == "full" {
				opts.apiVersions = []string{monitoringV1, monitoringV1 + "/ServiceMonitor"}
			}
			objs, rel := renderObjects(t, readValues(t, vf.file), opts)
			t.Logf("rendered: %s", strings.Join(objs.kinds, ", "))
			eff, err := chartutil.CoalesceValues(rel.Chart, rel.Config)
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, objs, eff)
			if rel.Info == nil || !strings.Contains(rel.Info.Notes, "/hooks/") {
				t.Errorf("NOTES.txt should explain the Kratos wiring; got:\n%s", rel.Info.Notes)
			}
		})
	}
}

func TestFullValuesRenderEveryOptionalObject(t *testing.T) {
	objs, _ := renderObjects(t, readValues(t, "ci/full-values.yaml"),
		renderOpts{apiVersions: []string{monitoringV1, monitoringV1 + "/ServiceMonitor"}})
	for what, n := range map[string]int{
		"Ingress": len(objs.ingresses), "NetworkPolicy": len(objs.networkPolicies),
		"PodDisruptionBudget": len(objs.pdbs), "HorizontalPodAutoscaler": len(objs.hpas),
		"ServiceMonitor": len(objs.serviceMonitors), "ServiceAccount": len(objs.serviceAccounts),
		"Secret": len(objs.secrets), "ConfigMap": len(objs.configMaps), "Service": len(objs.services),
		"test Pod": len(objs.pods),
	} {
		if n == 0 {
			t.Errorf("full values render no %s", what)
		}
	}
	if len(objs.configMaps) != 2 {
		t.Errorf("want the config and the templates ConfigMaps, got %d", len(objs.configMaps))
	}
	// The base URL comes from the first ingress host, https because TLS covers it.
	cfg := parseConfig(t, objs)
	if got := dig(cfg, "serve", "public", "base_url"); got != "https://orgs.acme.test" {
		t.Errorf("serve.public.base_url = %v, want https://orgs.acme.test", got)
	}
	if got := dig(cfg, "templates", "dir"); got != "/etc/kratos-orgs/templates" {
		t.Errorf("templates.dir = %v, want the templates mount", got)
	}
	c := objs.container(t)
	if containerPort(t, c, "http-public") != 8080 || containerPort(t, c, "http-admin") != 8081 {
		t.Errorf("container ports do not follow config.serve.*.port: %+v", c.Ports)
	}
	if img := c.Image; !strings.HasPrefix(img, "ghcr.io/kratos-orgs/kratos-orgs@sha256:") {
		t.Errorf("image %q: the digest should pin it", img)
	}
	np := objs.networkPolicies[0]
	admin := np.Spec.Ingress[0]
	// 1 namespaced Kratos peer + the helm test pod + 2 operators + 2 extra peers.
	if len(admin.From) != 6 || admin.From[0].NamespaceSelector == nil || admin.From[0].PodSelector == nil ||
		admin.From[2].NamespaceSelector == nil || admin.From[2].PodSelector == nil ||
		admin.From[3].NamespaceSelector != nil || admin.From[3].PodSelector.MatchLabels["app"] != "orgs-admin-cli" {
		t.Errorf("admin rule peers = %+v", admin.From)
	}
	if pub := np.Spec.Ingress[1]; len(pub.From) != 1 {
		t.Errorf("public rule peers = %+v, want the configured one", pub.From)
	}
	if got := objs.pdbs[0].Spec.MinAvailable; got == nil || got.String() != "50%" || objs.pdbs[0].Spec.MaxUnavailable != nil {
		t.Errorf("pdb = %+v", objs.pdbs[0].Spec)
	}
	if hpa := objs.hpas[0]; len(hpa.Spec.Metrics) != 3 || hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas != 2 {
		t.Errorf("hpa = %+v", hpa.Spec)
	}
}

// checkInvariants asserts what the chart promises whatever the values.
func checkInvariants(t *testing.T, objs *objects, eff chartutil.Values) {
	d := objs.deployment(t)
	c := objs.container(t)
	r := &rendered{
		objs: objs, eff: eff, d: d, pod: d.Spec.Template.Spec, c: c, podLabels: labels.Set(d.Spec.Template.Labels),
		cfg: parseConfig(t, objs), adminPort: containerPort(t, c, "http-admin"),
		adminSvc: objs.service(t, d.Name+"-admin"), publicSvc: objs.service(t, d.Name+"-public"),
	}
	r.checkNames(t)
	r.checkCommand(t)
	r.checkSecurity(t)
	r.checkPorts(t)
	r.checkSecrets(t)
	r.checkServices(t)
	r.checkIngresses(t)
	r.checkNoSecretInConfig(t)
	r.checkScaling(t)
	r.checkNetworkPolicies(t)
	r.checkServiceMonitors(t)
}

// rendered is a rendered chart and the parts its invariants look at.
type rendered struct {
	objs                *objects
	eff                 chartutil.Values
	d                   *appsv1.Deployment
	pod                 corev1.PodSpec
	c                   *corev1.Container
	podLabels           labels.Set
	cfg                 map[string]any // config.yaml
	adminPort           int32
	adminSvc, publicSvc *corev1.Service
}

// checkNames checks that names and labels are valid Kubernetes names, and the Deployment selects its pods.
func (r *rendered) checkNames(t *testing.T) {
	objs, d, podLabels := r.objs, r.d, r.podLabels
	for _, m := range allMeta(objs) {
		if errs := validation.IsDNS1123Subdomain(m.Name); len(errs) > 0 {
			t.Errorf("name %q: %v", m.Name, errs)
		}
		for k, v := range m.Labels {
			if errs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...); len(errs) > 0 {
				t.Errorf("%s: label %s=%s: %v", m.Name, k, v, errs)
			}
		}
	}
	if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil || !sel.Matches(podLabels) {
		t.Errorf("the Deployment's selector does not match its pods (%v)", err)
	}
}

// checkCommand checks that the container runs serve with the mounted configuration.
func (r *rendered) checkCommand(t *testing.T) {
	c := r.c
	if want := []string{"serve", "--config", "/etc/kratos-orgs/config.yaml"}; len(c.Args) < 3 || !slices.Equal(c.Args[:3], want) {
		t.Errorf("args = %v, want %v first", c.Args, want)
	}
	var configMount *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if m.MountPath == "/etc/kratos-orgs/config.yaml" {
			configMount = &c.VolumeMounts[i]
		}
	}
	if configMount == nil || !configMount.ReadOnly {
		t.Errorf("config.yaml must be mounted read-only at /etc/kratos-orgs/config.yaml: %+v", c.VolumeMounts)
	}
}

// checkSecurity checks that the pod and the container are locked down.
func (r *rendered) checkSecurity(t *testing.T) {
	objs, pod, c := r.objs, r.pod, r.c
	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("container has no securityContext")
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) || !isTrue(sc.RunAsNonRoot) || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.RunAsUser == nil || *sc.RunAsUser != 65534 || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, corev1.Capability("ALL")) ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container securityContext is not locked down: %s", mustJSON(sc))
	}
	psc := pod.SecurityContext
	if psc == nil || !isTrue(psc.RunAsNonRoot) || psc.RunAsUser == nil || *psc.RunAsUser != 65534 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext is not locked down: %s", mustJSON(psc))
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("automountServiceAccountToken must be false on the pod")
	}
	for _, sa := range objs.serviceAccounts {
		if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			t.Errorf("ServiceAccount %s mounts its token", sa.Name)
		}
		if sa.Name != pod.ServiceAccountName {
			t.Errorf("pods use ServiceAccount %q, the chart makes %q", pod.ServiceAccountName, sa.Name)
		}
	}
}

// checkPorts checks that the ports follow the configuration and the probes hit the admin port.
func (r *rendered) checkPorts(t *testing.T) {
	c, cfg, adminPort := r.c, r.cfg, r.adminPort
	publicPort := containerPort(t, c, "http-public")
	if fmt.Sprint(dig(cfg, "serve", "public", "port")) != fmt.Sprint(publicPort) ||
		fmt.Sprint(dig(cfg, "serve", "admin", "port")) != fmt.Sprint(adminPort) {
		t.Errorf("config ports %v/%v differ from the container ports %d/%d",
			dig(cfg, "serve", "public", "port"), dig(cfg, "serve", "admin", "port"), publicPort, adminPort)
	}
	checkProbe(t, "liveness", c.LivenessProbe, "/health/alive", adminPort)
	checkProbe(t, "readiness", c.ReadinessProbe, "/health/ready", adminPort)
	checkProbe(t, "startup", c.StartupProbe, "/health/alive", adminPort)
}

// checkSecrets checks that secrets come from a Secret, as environment variables.
func (r *rendered) checkSecrets(t *testing.T) {
	objs, eff, c := r.objs, r.eff, r.c
	secretName := fmt.Sprint(dig(eff, "secret", "existingSecret"))
	if secretName == "" {
		if len(objs.secrets) != 1 {
			t.Fatalf("want the chart's Secret, got %d", len(objs.secrets))
		}
		secretName = objs.secrets[0].Name
		s := objs.secrets[0]
		if s.Annotations["helm.sh/resource-policy"] != "keep" {
			t.Errorf("the Secret must carry helm.sh/resource-policy: keep")
		}
		for _, k := range []string{"adminApiKeys", "hooksSecret", "secretsCipher"} {
			if len(s.Data[k]) < 16 {
				t.Errorf("Secret key %s is missing or short: %q", k, s.Data[k])
			}
		}
	} else if len(objs.secrets) != 0 {
		t.Errorf("secret.existingSecret is set but the chart renders a Secret")
	}
	envKeys := map[string]string{
		"KRATOS_ORGS_ADMIN_API_KEYS":              "adminApiKeys",
		"KRATOS_ORGS_HOOKS_SECRET":                "hooksSecret",
		"KRATOS_ORGS_MAIL_RESEND_API_KEY":         "mailResendApiKey",
		"KRATOS_ORGS_MAIL_RESEND_WEBHOOK_SECRETS": "mailResendWebhookSecrets",
		"KRATOS_ORGS_SECRETS_CIPHER":              "secretsCipher",
	}
	// Each event endpoint's secrets: config.EndpointSecretsEnv's variable.
	endpoints, _ := dig(eff, "config", "events", "endpoints").([]any)
	for _, ep := range endpoints {
		name := fmt.Sprint(ep.(map[string]any)["name"])
		envKeys["KRATOS_ORGS_EVENTS_ENDPOINTS_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))+"_SECRETS"] = "eventsEndpointSecrets-" + name
	}
	for name, key := range envKeys {
		e := findEnv(c.Env, name)
		if e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil ||
			e.ValueFrom.SecretKeyRef.Name != secretName || e.ValueFrom.SecretKeyRef.Key != key {
			t.Errorf("env %s must come from Secret %s key %s: %s", name, secretName, key, mustJSON(e))
		}
	}
}

// checkServices checks that the admin port is on the admin Service only, and Services select only the server.
func (r *rendered) checkServices(t *testing.T) {
	objs, podLabels, adminPort, adminSvc, publicSvc := r.objs, r.podLabels, r.adminPort, r.adminSvc, r.publicSvc
	if adminSvc.Spec.Type != corev1.ServiceTypeClusterIP || len(adminSvc.Spec.Ports) != 1 ||
		adminSvc.Spec.Ports[0].TargetPort != intstr.FromString("http-admin") || adminSvc.Spec.Ports[0].NodePort != 0 {
		t.Errorf("admin Service must be ClusterIP with the one port http-admin: %s", mustJSON(adminSvc.Spec))
	}
	if adminSvc.Labels["app.kubernetes.io/component"] != "admin" {
		t.Errorf("admin Service lacks app.kubernetes.io/component=admin")
	}
	for _, s := range objs.services {
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) || len(s.Spec.Selector) == 0 {
			t.Errorf("Service %s does not select the pods", s.Name)
		}
		if s.Name == adminSvc.Name {
			continue
		}
		for _, p := range s.Spec.Ports {
			if p.Port == 4481 || p.Port == adminPort || p.TargetPort == intstr.FromString("http-admin") ||
				p.TargetPort == intstr.FromInt32(adminPort) || p.TargetPort == intstr.FromInt32(4481) ||
				(p.TargetPort.IntValue() == 0 && p.Port == adminPort) {
				t.Errorf("Service %s exposes the admin port: %s", s.Name, mustJSON(p))
			}
		}
	}
	if len(publicSvc.Spec.Ports) != 1 || publicSvc.Spec.Ports[0].TargetPort != intstr.FromString("http-public") {
		t.Errorf("public Service must target http-public only: %s", mustJSON(publicSvc.Spec.Ports))
	}
	// No pod of the release other than the server may be selected (the helm
	// test pod must not receive traffic).
	for _, p := range objs.pods {
		for _, s := range objs.services {
			if labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(p.Labels)) {
				t.Errorf("Service %s selects the test pod %s", s.Name, p.Name)
			}
		}
		if pc := p.Spec.Containers[0]; !strings.Contains(strings.Join(pc.Command, " "), adminSvc.Name) {
			t.Errorf("test pod should call the admin Service: %v", pc.Command)
		}
	}
}

// checkIngresses checks that the Ingress routes to the public Service and port only.
func (r *rendered) checkIngresses(t *testing.T) {
	objs, adminSvc, publicSvc := r.objs, r.adminSvc, r.publicSvc
	for _, ing := range objs.ingresses {
		if ing.Spec.DefaultBackend != nil {
			t.Errorf("Ingress %s has a default backend", ing.Name)
		}
		for _, r := range ing.Spec.Rules {
			if r.HTTP == nil || len(r.HTTP.Paths) == 0 {
				t.Errorf("Ingress rule without paths: %s", mustJSON(r))
				continue
			}
			for _, p := range r.HTTP.Paths {
				b := p.Backend.Service
				if b == nil || b.Name != publicSvc.Name || b.Port.Name != "" || b.Port.Number != publicSvc.Spec.Ports[0].Port {
					t.Errorf("Ingress %s path %s does not route to the public Service port: %s", ing.Name, p.Path, mustJSON(p.Backend))
				}
				if b != nil && (b.Name == adminSvc.Name || b.Port.Number == adminSvc.Spec.Ports[0].Port) {
					t.Errorf("Ingress %s routes to the admin Service", ing.Name)
				}
			}
		}
	}
}

// checkNoSecretInConfig checks that no secret is in a ConfigMap or config.yaml.
func (r *rendered) checkNoSecretInConfig(t *testing.T) {
	objs, cfg := r.objs, r.cfg
	for _, cm := range objs.configMaps {
		for k, v := range cm.Data {
			for _, s := range objs.secretValues() {
				if len(s) >= 8 && strings.Contains(v, s) {
					t.Errorf("ConfigMap %s key %s contains a secret value", cm.Name, k)
				}
			}
		}
	}
	for _, key := range [][]string{{"admin", "api_keys"}, {"secrets", "cipher"}, {"mail", "resend", "api_key"}, {"redis", "password"}, {"hooks", "secret"}} {
		if v := dig(cfg, key...); v != nil {
			t.Errorf("config.yaml holds the secret %s", strings.Join(key, "."))
		}
	}
}

// checkScaling checks that checksums roll the pods; replicas, HPA and PDB follow the values.
func (r *rendered) checkScaling(t *testing.T) {
	objs, eff, d, podLabels := r.objs, r.eff, r.d, r.podLabels
	for _, a := range []string{"checksum/config", "checksum/templates", "checksum/secret"} {
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(d.Spec.Template.Annotations[a]) {
			t.Errorf("pod annotation %s = %q, want a sha256", a, d.Spec.Template.Annotations[a])
		}
	}

	// Autoscaling: an HPA and no replicas, or replicas and no HPA.
	autoscale := dig(eff, "autoscaling", "enabled") == true
	if autoscale {
		if d.Spec.Replicas != nil {
			t.Errorf("replicas must be omitted when autoscaling is enabled, got %d", *d.Spec.Replicas)
		}
		if len(objs.hpas) != 1 || objs.hpas[0].Spec.ScaleTargetRef.Name != d.Name || objs.hpas[0].Spec.ScaleTargetRef.Kind != "Deployment" {
			t.Errorf("want one HPA targeting the Deployment, got %d", len(objs.hpas))
		}
	} else {
		if d.Spec.Replicas == nil {
			t.Errorf("replicas must be set without autoscaling")
		}
		if len(objs.hpas) != 0 {
			t.Errorf("HPA rendered although autoscaling is disabled")
		}
	}
	if (dig(eff, "pdb", "enabled") == true) != (len(objs.pdbs) == 1) {
		t.Errorf("PodDisruptionBudget rendered %d times with pdb.enabled=%v", len(objs.pdbs), dig(eff, "pdb", "enabled"))
	}
	for _, p := range objs.pdbs {
		if sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector); err != nil || !sel.Matches(podLabels) {
			t.Errorf("PDB does not select the pods")
		}
	}
}

// checkNetworkPolicies checks that the admin port is open only to selected peers.
func (r *rendered) checkNetworkPolicies(t *testing.T) {
	objs, podLabels := r.objs, r.podLabels
	for _, np := range objs.networkPolicies {
		if sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector); err != nil || !sel.Matches(podLabels) {
			t.Errorf("NetworkPolicy does not select the pods")
		}
		var sawAdmin, sawPublic bool
		for _, r := range np.Spec.Ingress {
			for _, p := range r.Ports {
				if p.Port == nil {
					t.Errorf("NetworkPolicy rule without a port opens every port")
					continue
				}
				switch p.Port.String() {
				case "http-admin":
					sawAdmin = true
					if len(r.From) == 0 {
						t.Errorf("the admin port is open to everyone")
					}
					for _, peer := range r.From {
						if peer.IPBlock == nil && peer.PodSelector == nil && peer.NamespaceSelector == nil {
							t.Errorf("empty peer on the admin port")
						}
						if peer.PodSelector != nil && len(peer.PodSelector.MatchLabels) == 0 && len(peer.PodSelector.MatchExpressions) == 0 && peer.NamespaceSelector == nil {
							t.Errorf("the admin port is open to every pod of the namespace")
						}
					}
				case "http-public":
					sawPublic = true
				default:
					t.Errorf("NetworkPolicy opens unexpected port %s", p.Port.String())
				}
			}
		}
		if !sawAdmin || !sawPublic {
			t.Errorf("NetworkPolicy must have an admin and a public rule")
		}
		kratosPeer := np.Spec.Ingress[0].From[0].PodSelector
		if kratosPeer == nil || kratosPeer.MatchLabels["app.kubernetes.io/name"] != "kratos" {
			t.Errorf("the first admin peer must be Kratos' pods: %s", mustJSON(np.Spec.Ingress[0].From[0]))
		}
	}
}

// checkServiceMonitors checks that the ServiceMonitor scrapes the admin Service only.
func (r *rendered) checkServiceMonitors(t *testing.T) {
	objs, adminSvc, publicSvc := r.objs, r.adminSvc, r.publicSvc
	for _, sm := range objs.serviceMonitors {
		eps, _, _ := unstructuredSlice(sm.Object, "spec", "endpoints")
		if len(eps) != 1 {
			t.Fatalf("ServiceMonitor endpoints = %v", eps)
		}
		ep := eps[0].(map[string]any)
		if ep["port"] != "http-admin" || ep["path"] != "/metrics" {
			t.Errorf("ServiceMonitor must scrape http-admin /metrics, got %v", ep)
		}
		ml, _ := dig(sm.Object, "spec", "selector", "matchLabels").(map[string]any)
		set := labels.Set{}
		for k, v := range ml {
			set[k] = fmt.Sprint(v)
		}
		if len(set) == 0 || !labels.SelectorFromSet(set).Matches(labels.Set(adminSvc.Labels)) ||
			labels.SelectorFromSet(set).Matches(labels.Set(publicSvc.Labels)) {
			t.Errorf("ServiceMonitor must select the admin Service only: %v", ml)
		}
	}
}

// More value combinations, each held to the same invariants.
func TestVariants(t *testing.T) {
	base := readValues(t, "ci/minimal-values.yaml")
	for _, tc := range []struct {
		name    string
		release string
		vals    map[string]any
		check   func(t *testing.T, objs *objects)
	}{
		{"existing Secret", "", set("secret.existingSecret", "my-orgs-secrets"), func(t *testing.T, objs *objects) {
			if len(objs.secrets) != 0 {
				t.Errorf("a Secret was rendered although secret.existingSecret is set")
			}
			if e := findEnv(objs.container(t).Env, "KRATOS_ORGS_ADMIN_API_KEYS"); e.ValueFrom.SecretKeyRef.Name != "my-orgs-secrets" {
				t.Errorf("env refers to %s", e.ValueFrom.SecretKeyRef.Name)
			}
		}},
		{"no ServiceAccount", "", set("serviceAccount.create", false), func(t *testing.T, objs *objects) {
			if len(objs.serviceAccounts) != 0 || objs.deployment(t).Spec.Template.Spec.ServiceAccountName != "default" {
				t.Errorf("want the namespace's default ServiceAccount")
			}
		}},
		{"plain HTTP ingress", "", set("ingress.public", map[string]any{"enabled": true, "hosts": []any{map[string]any{"host": "orgs.internal", "paths": []any{map[string]any{"path": "/"}}}}}), func(t *testing.T, objs *objects) {
			if got := dig(parseConfig(t, objs), "serve", "public", "base_url"); got != "https://orgs.acme.test" {
				t.Errorf("an explicit base_url must win over the ingress host, got %v", got)
			}
		}},
		{"ingress-derived http base URL", "", merge(set("ingress.public", map[string]any{"enabled": true, "hosts": []any{map[string]any{"host": "orgs.internal", "paths": []any{map[string]any{"path": "/"}}}}}), set("config.serve.public.base_url", "")), func(t *testing.T, objs *objects) {
			if got := dig(parseConfig(t, objs), "serve", "public", "base_url"); got != "http://orgs.internal" {
				t.Errorf("base_url = %v, want http://orgs.internal (no TLS)", got)
			}
		}},
		{"custom probes", "", set("deployment.customLivenessProbe", map[string]any{"httpGet": map[string]any{"path": "/health/alive", "port": "http-admin"}, "periodSeconds": 30}), func(t *testing.T, objs *objects) {
			if p := objs.container(t).LivenessProbe; p.PeriodSeconds != 30 || p.FailureThreshold != 0 {
				t.Errorf("custom liveness probe not used: %s", mustJSON(p))
			}
		}},
		{"release named after the chart", "kratos-orgs", map[string]any{}, func(t *testing.T, objs *objects) {
			objs.service(t, "kratos-orgs-admin")
			objs.service(t, "kratos-orgs-public")
		}},
		{"nameOverride", "prod", set("nameOverride", "orgs"), func(t *testing.T, objs *objects) {
			objs.service(t, "prod-orgs-admin")
		}},
		{"templates only", "", set("templates", map[string]any{"invitation_subject.txt": "Join {{ .Organization.Name }}"}), func(t *testing.T, objs *objects) {
			if dig(parseConfig(t, objs), "templates", "dir") != "/etc/kratos-orgs/templates" {
				t.Errorf("templates.dir not set")
			}
			objs.configMap(t, "-templates")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, rel := renderObjects(t, merge(base, tc.vals), renderOpts{release: tc.release})
			eff, err := chartutil.CoalesceValues(rel.Chart, rel.Config)
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, objs, eff)
			tc.check(t, objs)
		})
	}
}

func TestKubeVersion(t *testing.T) {
	vals := readValues(t, "ci/minimal-values.yaml")
	if _, err := render(vals, renderOpts{kubeVersion: "v1.25.0"}); err != nil {
		t.Errorf("Kubernetes 1.25 should be supported: %v", err)
	}
	if _, err := render(vals, renderOpts{kubeVersion: "v1.24.9"}); err == nil || !strings.Contains(err.Error(), "kubeVersion") {
		t.Errorf("Kubernetes 1.24 should be refused (autoscaling/v2, policy/v1), got %v", err)
	}
}

func TestServiceMonitorNeedsTheCRD(t *testing.T) {
	vals := merge(readValues(t, "ci/minimal-values.yaml"), set("serviceMonitor.enabled", true))
	without, rel := renderObjects(t, vals, renderOpts{})
	if len(without.serviceMonitors) != 0 {
		t.Errorf("ServiceMonitor rendered without the monitoring.coreos.com/v1 capability")
	}
	if !strings.Contains(rel.Info.Notes, "no ServiceMonitor was created") {
		t.Errorf("NOTES should warn that no ServiceMonitor was created")
	}
	with, _ := renderObjects(t, vals, renderOpts{apiVersions: []string{monitoringV1}})
	if len(with.serviceMonitors) != 1 {
		t.Errorf("want a ServiceMonitor with the capability, got %d", len(with.serviceMonitors))
	}
	disabled, _ := renderObjects(t, readValues(t, "ci/minimal-values.yaml"), renderOpts{apiVersions: []string{monitoringV1}})
	if len(disabled.serviceMonitors) != 0 {
		t.Errorf("ServiceMonitor rendered although disabled")
	}
}

func TestAutoscalingOmitsReplicas(t *testing.T) {
	base := readValues(t, "ci/minimal-values.yaml")
	on, _ := renderObjects(t, merge(base, map[string]any{"replicaCount": 3, "autoscaling": map[string]any{"enabled": true}}), renderOpts{})
	if r := on.deployment(t).Spec.Replicas; r != nil {
		t.Errorf("replicas = %d with autoscaling, want none", *r)
	}
	if len(on.hpas) != 1 {
		t.Fatalf("want one HPA")
	}
	off, _ := renderObjects(t, merge(base, map[string]any{"replicaCount": 3}), renderOpts{})
	if r := off.deployment(t).Spec.Replicas; r == nil || *r != 3 {
		t.Errorf("replicas = %v, want 3", r)
	}
}

func TestChecksumsFollowTheirInputs(t *testing.T) {
	full := readValues(t, "ci/full-values.yaml")
	annotations := func(vals map[string]any) map[string]string {
		objs, _ := renderObjects(t, vals, renderOpts{})
		return objs.deployment(t).Spec.Template.Annotations
	}
	base := annotations(full)
	again := annotations(full)
	for _, k := range []string{"checksum/config", "checksum/templates", "checksum/secret"} {
		if base[k] != again[k] {
			t.Errorf("%s differs between two renders of the same values", k)
		}
	}
	cases := []struct {
		name    string
		change  map[string]any
		changed []string
	}{
		{"config value", set("config.log.level", "warn"), []string{"checksum/config"}},
		{"config via ingress-derived base URL", set("ingress.public.tls", []any{}), []string{"checksum/config"}},
		{"template content", map[string]any{"templates": map[string]any{"invitation_subject.txt": "Join {{ .Organization.Name }}"}}, []string{"checksum/templates"}},
		{"secret value", set("secret.hooksSecret", "another-hooks-secret-0000000001"), []string{"checksum/secret"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := annotations(merge(full, tc.change))
			for _, k := range []string{"checksum/config", "checksum/templates", "checksum/secret"} {
				if want := slices.Contains(tc.changed, k); (got[k] != base[k]) != want {
					t.Errorf("%s changed=%v, want changed=%v", k, got[k] != base[k], want)
				}
			}
		})
	}
	// And the ConfigMap really carries the change.
	objs, _ := renderObjects(t, merge(full, set("config.log.level", "warn")), renderOpts{})
	if dig(parseConfig(t, objs), "log", "level") != "warn" {
		t.Errorf("config.yaml does not follow config.log.level")
	}
}

// Generated secrets are reused from the Secret already in the cluster (Helm's
// lookup), so an upgrade never rotates the cipher or the webhook secret.
func TestGeneratedSecretsSurviveUpgrades(t *testing.T) {
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	existing := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: "orgs-kratos-orgs", Namespace: "identity"},
		Data: map[string][]byte{
			"adminApiKeys":  []byte("existing-admin-key-000000000001"),
			"hooksSecret":   []byte("existing-hooks-secret-00000001"),
			"secretsCipher": []byte("existing-cipher-key-0000000000000000000001"),
		},
	}
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	client := dynamicfake.NewSimpleDynamicClient(scheme, existing)
	renderSecret := func(user map[string]any) *corev1.Secret {
		vals, err := chartutil.ToRenderValuesWithSchemaValidation(chrt, user,
			chartutil.ReleaseOptions{Name: "orgs", Namespace: "identity", IsUpgrade: true, Revision: 2},
			chartutil.DefaultCapabilities, false)
		if err != nil {
			t.Fatal(err)
		}
		out, err := engine.RenderWithClientProvider(chrt, vals, fakeProvider{client})
		if err != nil {
			t.Fatal(err)
		}
		s := &corev1.Secret{}
		if err := decodeStrict(out["kratos-orgs/templates/secret.yaml"], s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := renderSecret(readValues(t, "ci/minimal-values.yaml"))
	for k, v := range existing.Data {
		if !bytes.Equal(s.Data[k], v) {
			t.Errorf("%s = %q, want the existing %q", k, s.Data[k], v)
		}
	}
	if string(s.Data["mailResendApiKey"]) != "re_minimal_ci_key_not_real" {
		t.Errorf("mailResendApiKey = %q", s.Data["mailResendApiKey"])
	}
	// A value given explicitly wins over the stored one.
	s = renderSecret(merge(readValues(t, "ci/minimal-values.yaml"), set("secret.hooksSecret", "rotated-hooks-secret-00000001")))
	if string(s.Data["hooksSecret"]) != "rotated-hooks-secret-00000001" {
		t.Errorf("hooksSecret = %q, want the value from values", s.Data["hooksSecret"])
	}
	// Without a stored Secret (first install), values are generated.
	first := dynamicfake.NewSimpleDynamicClient(scheme)
	vals, err := chartutil.ToRenderValues(chrt, readValues(t, "ci/minimal-values.yaml"),
		chartutil.ReleaseOptions{Name: "orgs", Namespace: "identity", IsInstall: true, Revision: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := engine.RenderWithClientProvider(chrt, vals, fakeProvider{first})
	if err != nil {
		t.Fatal(err)
	}
	gen := &corev1.Secret{}
	if err := decodeStrict(out["kratos-orgs/templates/secret.yaml"], gen); err != nil {
		t.Fatal(err)
	}
	if len(gen.Data["adminApiKeys"]) != 32 || len(gen.Data["secretsCipher"]) != 48 || len(gen.Data["hooksSecret"]) != 32 {
		t.Errorf("generated lengths: admin %d, cipher %d, hooks %d", len(gen.Data["adminApiKeys"]), len(gen.Data["secretsCipher"]), len(gen.Data["hooksSecret"]))
	}
}

type fakeProvider struct{ client dynamic.Interface }

func (f fakeProvider) GetClientFor(apiVersion, kind string) (dynamic.NamespaceableResourceInterface, bool, error) {
	if apiVersion != "v1" || kind != "Secret" {
		return nil, false, fmt.Errorf("unexpected lookup of %s %s", apiVersion, kind)
	}
	return f.client.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}), true, nil
}

// The chart refuses secrets in .Values.config: they would land in the ConfigMap.
func TestSecretsAreRefusedInConfig(t *testing.T) {
	base := readValues(t, "ci/minimal-values.yaml")
	for _, tc := range []struct {
		path  string
		value any
		hint  string
	}{
		{"config.admin.api_keys", []any{"an-admin-key-in-the-configmap"}, "secret.adminApiKeys"},
		{"config.secrets.cipher", []any{"a-cipher-key-in-the-configmap-0000000000"}, "secret.secretsCipher"},
		{"config.mail.resend.api_key", "re_in_the_configmap", "secret.mailResendApiKey"},
		{"config.mail.resend.webhook_secrets", []any{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "secret.mailResendWebhookSecrets"},
		{"config.redis.password", "hunter2", "secret.redisPassword"},
		{"config.hooks.secret", "a-hooks-secret-in-the-configmap", "secret.hooksSecret"},
		{"config.redis.url", "redis://default:hunter2@redis:6379/0", "secret.redisUrl"},
		{"config.events.endpoints", []any{map[string]any{"name": "crm", "url": "https://crm.example.com/", "secrets": []any{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}}, "secret.eventsEndpointSecrets.crm"},
		{"config.events.endpoints", []any{map[string]any{"url": "https://crm.example.com/"}}, "missing property 'name'"}, // the schema's word; the template's "needs a name" backs it
		{"secret.eventsEndpointSecrets", map[string]any{"crm": []any{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}, "names no endpoint"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			_, err := render(merge(base, set(tc.path, tc.value)), renderOpts{})
			if err == nil || !strings.Contains(err.Error(), tc.hint) {
				t.Errorf("render error = %v, want one pointing at %s", err, tc.hint)
			}
		})
	}
	_, err := render(merge(base, map[string]any{"pdb": map[string]any{"enabled": true, "spec": map[string]any{"minAvailable": 1, "maxUnavailable": 1}}}), renderOpts{})
	if err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("pdb with both bounds: err = %v", err)
	}
}

// 3. values.schema.json rejects bad values and accepts the ci ones.
func TestSchema(t *testing.T) {
	base := readValues(t, "ci/minimal-values.yaml")
	bad := []struct {
		name string
		vals map[string]any
	}{
		{"public service port 70000", set("service.public.port", 70000)},
		{"admin service port 0", set("service.admin.port", 0)},
		{"listener port 70000", set("config.serve.admin.port", 70000)},
		{"unknown log level", set("config.log.level", "verbose")},
		{"unknown log format", set("config.log.format", "xml")},
		{"replicaCount as a word", set("replicaCount", "two")},
		{"negative replicaCount", set("replicaCount", -1)},
		{"ingress.enabled as a string", set("ingress.public.enabled", "yes")},
		{"admin ingress", set("ingress.admin", map[string]any{"enabled": true})},
		{"admin Service as LoadBalancer", set("service.admin.type", "LoadBalancer")},
		{"unknown public Service type", set("service.public.type", "Ingress")},
		{"embedded Redis", set("config.redis.mode", "embedded")},
		{"Redis URL scheme", set("config.redis.url", "http://redis:6379")},
		{"unknown mail sender", set("config.mail.sender", "smtp")},
		{"from address with a name", set("config.mail.from_address", "Acme <invites@acme.test>")},
		{"empty image repository", set("image.repository", "")},
		{"unknown pull policy", set("image.pullPolicy", "Sometimes")},
		{"duration as a number", set("config.invitations.ttl", 3600)},
		{"duration without unit", set("config.outbox.claim_after", "90")},
		{"Kratos URL without scheme", set("config.kratos.admin_url", "kratos-admin:4434")},
		{"short admin key", set("secret.adminApiKeys", []any{"short"})},
		{"short cipher key", set("secret.secretsCipher", []any{"too-short-for-aes"})},
		{"short hooks secret", set("secret.hooksSecret", "short")},
		{"unknown top-level key", set("replicas", 2)},
		{"unknown config section", set("config.database", map[string]any{"dsn": "x"})},
		{"unknown config key", set("config.log.levle", "debug")},
		{"max_body_bytes too small", set("config.serve.max_body_bytes", 10)},
		{"role with capitals", set("config.roles", []any{"Owner", "admin", "member"})},
		{"ingress host without paths", set("ingress.public.hosts", []any{map[string]any{"host": "a.test"}})},
		{"unknown pathType", set("ingress.public.hosts", []any{map[string]any{"host": "a.test", "paths": []any{map[string]any{"path": "/", "pathType": "Regex"}}}})},
		{"template file name with a slash", set("templates", map[string]any{"../x": "y"})},
		{"HPA max 0", set("autoscaling.maxReplicas", 0)},
		{"pdb as a word", set("pdb.spec.maxUnavailable", "one")},
		{"ServiceMonitor scheme", set("serviceMonitor.scheme", "ftp")},
		{"operator without a selector", set("networkPolicy.admin.operators", []any{map[string]any{}})},
		{"operator selecting every namespace", set("networkPolicy.admin.operators", []any{map[string]any{"namespaceSelector": map[string]any{}}})},
		{"operator with empty labels", set("networkPolicy.admin.operators", []any{map[string]any{"podSelector": map[string]any{"matchLabels": map[string]any{}}}})},
		{"operator with an unknown field", set("networkPolicy.admin.operators", []any{map[string]any{"ipBlock": map[string]any{"cidr": "0.0.0.0/0"}}})},
	}
	for _, tc := range bad {
		t.Run("rejects "+tc.name, func(t *testing.T) {
			_, err := render(merge(base, tc.vals), renderOpts{})
			if err == nil {
				t.Fatalf("rendered with %s", mustJSON(tc.vals))
			}
			if !strings.Contains(err.Error(), "schema") {
				t.Errorf("error is not a schema error: %v", err)
			}
		})
	}
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, vf := range valuesFiles {
		t.Run("accepts "+vf.name, func(t *testing.T) {
			vals, err := chartutil.CoalesceValues(chrt, readValues(t, vf.file))
			if err != nil {
				t.Fatal(err)
			}
			if err := chartutil.ValidateAgainstSchema(chrt, vals); err != nil {
				t.Errorf("schema rejects %s: %v", vf.name, err)
			}
		})
	}
}

// 4. The Kratos wiring example.
func TestKratosExample(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir, "examples", "kratos-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var vals map[string]any
	if err := yaml.UnmarshalStrict(raw, &vals); err != nil {
		t.Fatalf("kratos-values.yaml: %v", err)
	}
	flows, ok := dig(vals, "kratos", "config", "selfservice", "flows").(map[string]any)
	if !ok {
		t.Fatal("no kratos.config.selfservice.flows")
	}

	// The chart installed as the example assumes: release kratos-orgs in ory.
	objs, _ := renderObjects(t, readValues(t, "ci/minimal-values.yaml"), renderOpts{release: "kratos-orgs", namespace: "ory"})
	adminSvc := objs.service(t, "kratos-orgs-admin")
	adminPort := adminSvc.Spec.Ports[0].Port
	if adminPort != 4481 {
		t.Fatalf("admin Service port = %d, want 4481", adminPort)
	}
	secret := objs.secrets[0]

	// Every web_hook, with the environment variable that overrides its auth value.
	type webhook struct {
		env    string
		config map[string]any
	}
	var hooks []webhook
	var walk func(prefix string, node any)
	walk = func(prefix string, node any) {
		switch n := node.(type) {
		case map[string]any:
			keys := make([]string, 0, len(n))
			for k := range n {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(prefix+"_"+strings.ToUpper(k), n[k])
			}
		case []any:
			for i, item := range n {
				m, _ := item.(map[string]any)
				if m != nil && m["hook"] == "web_hook" {
					cfg, _ := m["config"].(map[string]any)
					hooks = append(hooks, webhook{env: fmt.Sprintf("%s_%d_CONFIG_AUTH_CONFIG_VALUE", prefix, i), config: cfg})
				}
			}
		}
	}
	walk("SELFSERVICE_FLOWS", flows)
	if len(hooks) == 0 {
		t.Fatal("no web_hook in the example")
	}

	wantPaths := map[string]bool{
		"/hooks/registration/pre": true, "/hooks/registration/post": true, "/hooks/verification/after": true,
		"/hooks/login/after": true, "/hooks/settings/after": true,
	}
	seenPaths := map[string]bool{}
	usedJsonnet := map[string]bool{}
	for _, h := range hooks {
		u, err := url.Parse(fmt.Sprint(h.config["url"]))
		if err != nil {
			t.Errorf("%s: bad url: %v", h.env, err)
			continue
		}
		wantHost := fmt.Sprintf("%s.%s.svc.cluster.local", adminSvc.Name, adminSvc.Namespace)
		if u.Scheme != "http" || u.Hostname() != wantHost || u.Port() != fmt.Sprint(adminPort) || !strings.HasPrefix(u.Path, "/hooks/") {
			t.Errorf("%s: url %s must be http://%s:%d/hooks/...", h.env, u, wantHost, adminPort)
		}
		if !wantPaths[u.Path] {
			t.Errorf("%s: unknown hook path %s", h.env, u.Path)
		}
		seenPaths[u.Path] = true
		if h.config["method"] != "POST" {
			t.Errorf("%s: method %v, want POST", h.env, h.config["method"])
		}
		auth, _ := h.config["auth"].(map[string]any)
		ac, _ := auth["config"].(map[string]any)
		if auth["type"] != "api_key" || ac["name"] != "X-Kratos-Orgs-Secret" || ac["in"] != "header" || ac["value"] == nil {
			t.Errorf("%s: auth must be api_key header X-Kratos-Orgs-Secret: %v", h.env, auth)
		}
		parse := dig(h.config, "response", "parse") == true
		if parse != (u.Path == "/hooks/registration/pre") {
			t.Errorf("%s: response.parse = %v; only /hooks/registration/pre parses the response", h.env, parse)
		}
		// login and settings are fire and forget (kratos-orgs being down must
		// not block them); Kratos refuses ignore together with parse.
		ignore := dig(h.config, "response", "ignore") == true
		if ignore != (u.Path == "/hooks/login/after" || u.Path == "/hooks/settings/after") || (ignore && parse) {
			t.Errorf("%s: response.ignore = %v; only login and settings hooks ignore the response", h.env, ignore)
		}
		// The body is the jsonnet file named after the path, inline.
		parts := strings.Split(strings.TrimPrefix(u.Path, "/hooks/"), "/")
		file := strings.Join(parts, "-") + ".jsonnet"
		want, err := os.ReadFile(filepath.Join(jsonnetDir, file))
		if err != nil {
			t.Errorf("%s: %v", h.env, err)
			continue
		}
		usedJsonnet[file] = true
		body := fmt.Sprint(h.config["body"])
		enc, ok := strings.CutPrefix(body, "base64://")
		if !ok {
			t.Errorf("%s: body must be a base64:// URI", h.env)
			continue
		}
		got, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			t.Errorf("%s: body: %v", h.env, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: body is not config/kratos/%s; use base64://%s", h.env, file, base64.StdEncoding.EncodeToString(want))
		}
	}
	for p := range wantPaths {
		if !seenPaths[p] {
			t.Errorf("no webhook for %s", p)
		}
	}
	files, _ := filepath.Glob(filepath.Join(jsonnetDir, "*.jsonnet"))
	for _, f := range files {
		if !usedJsonnet[filepath.Base(f)] {
			t.Errorf("config/kratos/%s is not used by any webhook", filepath.Base(f))
		}
	}
	// Registration: per method, pre then post then the session hook.
	for _, m := range []string{"password", "oidc", "code"} {
		list, _ := dig(flows, "registration", "after", m, "hooks").([]any)
		if len(list) != 3 || dig(list[2].(map[string]any), "hook") != "session" {
			t.Errorf("registration.after.%s.hooks must be [pre, post, session], got %d hooks", m, len(list))
		}
	}

	// The secret reaches each hook through an environment variable from
	// kratos-orgs' Secret, and nowhere else.
	extraEnv, _ := dig(vals, "deployment", "extraEnv").([]any)
	envs := map[string]map[string]any{}
	for _, e := range extraEnv {
		m := e.(map[string]any)
		envs[fmt.Sprint(m["name"])] = m
	}
	if !slices.Contains(slices.Collect(maps.Keys(envs)), "SELFSERVICE_FLOWS_REGISTRATION_AFTER_PASSWORD_HOOKS_0_CONFIG_AUTH_CONFIG_VALUE") {
		t.Errorf("the password pre-registration hook's variable is missing")
	}
	for _, h := range hooks {
		e, ok := envs[h.env]
		if !ok {
			t.Errorf("no deployment.extraEnv entry %s", h.env)
			continue
		}
		ref, _ := dig(e, "valueFrom", "secretKeyRef").(map[string]any)
		if ref["name"] != secret.Name || ref["key"] != "hooksSecret" {
			t.Errorf("%s must come from Secret %s key hooksSecret, got %v", h.env, secret.Name, ref)
		}
		delete(envs, h.env)
	}
	for name := range envs {
		t.Errorf("extraEnv %s matches no webhook (stale index?)", name)
	}
	if _, ok := secret.Data["hooksSecret"]; !ok {
		t.Errorf("the chart's Secret has no hooksSecret")
	}
}

// The jsonnet bodies evaluate, with go-jsonnet at the version Kratos v1.3.1
// uses, against webhook contexts Kratos v1.3.1 sent, and select exactly the
// fields kratos-orgs reads (never the cookies).
func TestJsonnetBodies(t *testing.T) {
	payloads, _ := filepath.Glob("testdata/kratos-v1.3.1/*.json")
	if len(payloads) < 6 {
		t.Fatalf("testdata payloads missing: %v", payloads)
	}
	files, _ := filepath.Glob(filepath.Join(jsonnetDir, "*.jsonnet"))
	if len(files) != 5 {
		t.Fatalf("want 5 jsonnet bodies, got %v", files)
	}
	// The service decodes bodies strictly into hooks.Body: every key sent
	// must be one of its JSON fields.
	accepted := hookBodyFields(t)
	if accepted == nil {
		accepted = []string{"flow_id", "identity_id", "invite_token", "organization_name", "traits", "verifiable_addresses"}
	}
	eval := func(file, payload string) (map[string]any, error) {
		src, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		ctx, err := os.ReadFile(payload)
		if err != nil {
			return nil, err
		}
		vm := jsonnet.MakeVM()
		vm.TLACode("ctx", string(ctx)) // as Kratos does (request/builder.go)
		out, err := vm.EvaluateAnonymousSnippet(filepath.Base(file), string(src))
		if err != nil {
			return nil, err
		}
		var m map[string]any
		return m, json.Unmarshal([]byte(out), &m)
	}
	// Every body copes with every shape of the after-hooks it may be attached
	// to (no transient_payload, a null one, ...). registration.before has no
	// identity and no kratos-orgs hook.
	for _, f := range files {
		for _, p := range payloads {
			if raw, _ := os.ReadFile(p); !strings.Contains(string(raw), `"identity"`) {
				continue
			}
			out, err := eval(f, p)
			if err != nil {
				t.Errorf("%s on %s: %v", filepath.Base(f), filepath.Base(p), err)
				continue
			}
			for k := range out {
				if !slices.Contains(accepted, k) {
					t.Errorf("%s on %s sends %q, which hooks.Body (hooks/handlers.go) does not accept: %v", filepath.Base(f), filepath.Base(p), k, accepted)
				}
			}
			var body hookBody
			dec := json.NewDecoder(strings.NewReader(mustJSON(out)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&body); err != nil {
				t.Errorf("%s on %s: does not decode as the service does: %v", filepath.Base(f), filepath.Base(p), err)
			}
			if s := mustJSON(out); strings.Contains(s, "cookie") || strings.Contains(s, "csrf") {
				t.Errorf("%s leaks cookies: %s", filepath.Base(f), s)
			}
		}
	}
	// Each body on the payload of its own hook point, carrying what its
	// handler reads (and nothing it does not).
	const real = "real" // the payload's own identity id
	cases := []struct {
		jsonnet, payload string
		want             map[string]any // field → value; "email" means traits.email
		addresses        bool           // verifiable_addresses is sent
		verified         bool
	}{
		{"registration-pre", "registration-after-prepersist.json",
			map[string]any{"email": "alice@example.org", "invite_token": "tok_abc123", "organization_name": nil}, true, false},
		{"registration-pre", "registration-after-prepersist-new-org.constructed.json",
			map[string]any{"email": "alice@example.org", "invite_token": nil, "organization_name": "Acme Corp"}, true, false},
		{"registration-post", "registration-after-postpersist.json",
			map[string]any{"identity_id": real, "email": "alice@example.org", "invite_token": "tok_abc123", "organization_name": nil}, true, false},
		{"login-after", "login-after.json", map[string]any{"identity_id": real}, false, false},
		{"settings-after", "settings-after.json", map[string]any{"identity_id": real}, false, false},
		{"verification-after", "verification-after.constructed.json", map[string]any{"identity_id": real}, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.jsonnet+"/"+tc.payload, func(t *testing.T) {
			payload := filepath.Join("testdata/kratos-v1.3.1", tc.payload)
			out, err := eval(filepath.Join(jsonnetDir, tc.jsonnet+".jsonnet"), payload)
			if err != nil {
				t.Fatal(err)
			}
			var ctx map[string]any
			raw, err := os.ReadFile(payload)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &ctx); err != nil {
				t.Fatal(err)
			}
			if out["flow_id"] != dig(ctx, "flow", "id") {
				t.Errorf("flow_id = %v", out["flow_id"])
			}
			for field, want := range tc.want {
				got, present := out[field]
				if field == "email" {
					got, present = dig(out, "traits", "email"), out["traits"] != nil
				}
				if want == real {
					want = dig(ctx, "identity", "id")
					if want == "00000000-0000-0000-0000-000000000000" || want == nil {
						t.Fatalf("payload %s has no real identity id", tc.payload)
					}
				}
				if !present || got != want {
					t.Errorf("%s = %v (present %v), want %v; body %s", field, got, present, want, mustJSON(out))
				}
			}
			addrs, _ := out["verifiable_addresses"].([]any)
			if !tc.addresses {
				if _, sent := out["verifiable_addresses"]; sent {
					t.Errorf("%s sends verifiable_addresses it does not need", tc.jsonnet)
				}
				return
			}
			email := dig(ctx, "identity", "traits", "email")
			if len(addrs) != 1 || dig(addrs[0].(map[string]any), "value") != email || dig(addrs[0].(map[string]any), "verified") != tc.verified {
				t.Errorf("verifiable_addresses = %s", mustJSON(out["verifiable_addresses"]))
			}
		})
	}
}

// hookBody mirrors hooks.Body, what the service decodes webhook bodies into
// (strictly: unknown fields are refused).
type hookBody struct {
	FlowID              string         `json:"flow_id"`
	IdentityID          string         `json:"identity_id"`
	Traits              map[string]any `json:"traits"`
	VerifiableAddresses []struct {
		Value    string `json:"value"`
		Via      string `json:"via"`
		Verified bool   `json:"verified"`
		Status   string `json:"status"`
	} `json:"verifiable_addresses"`
	InviteToken      *string `json:"invite_token"`
	OrganizationName *string `json:"organization_name"`
}

// hookBodyFields reads the JSON field names of type Body in the service's
// hooks/handlers.go (nil when the file or the type is not there).
func hookBodyFields(t *testing.T) []string {
	t.Helper()
	path := filepath.Join(repoRoot, "hooks", "handlers.go")
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Logf("hooks.Body not checked: %v", err)
		return nil
	}
	var fields []string
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "Body" {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return false
		}
		for _, fl := range st.Fields.List {
			if fl.Tag == nil {
				continue
			}
			tag := reflect.StructTag(strings.Trim(fl.Tag.Value, "`")).Get("json")
			if name := strings.Split(tag, ",")[0]; name != "" && name != "-" {
				fields = append(fields, name)
			}
		}
		return false
	})
	if fields == nil {
		t.Logf("hooks.Body not found in %s", path)
	}
	return fields
}

// 5. The Dockerfile's build: CGO_ENABLED=0 makes a static binary, so the
// distroless static image can run it.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "charttest-")
	if err != nil {
		panic(err)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildBinary builds the service exactly as the Dockerfile does.
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(buildDir, "kratos-orgs")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", binPath, ".")
		cmd.Dir = repoRoot
		// Never let -mod=mod (used to tidy this module) touch the service's go.mod.
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=readonly -buildvcs=false")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestStaticBuild(t *testing.T) {
	bin := buildBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has a %v program header: it is dynamically linked", p.Type)
		}
	}
	if s := f.Section(".dynamic"); s != nil {
		t.Errorf("binary has a .dynamic section")
	}
	if s := f.Section(".interp"); s != nil {
		t.Errorf("binary has an .interp section")
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary needs shared libraries: %v", libs)
	}
	if f.Section(".symtab") != nil {
		t.Errorf("binary keeps its symbol table; -ldflags \"-s -w\" strips it")
	}
	// Development-only code stays out of the image: the in-process Redis
	// belongs to make dev.
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range info.Deps {
		if strings.Contains(dep.Path, "miniredis") || strings.Contains(dep.Path, "gopher-lua") {
			t.Errorf("the production binary links %s (development only)", dep.Path)
		}
	}
	// It runs on its own (in distroless it is the entrypoint).
	out, err := exec.Command(bin, "serve", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--config") {
		t.Errorf("kratos-orgs serve --help: %v\n%s", err, out)
	}
}

func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(raw)
	for _, want := range []string{
		"FROM golang:1.26",
		`CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/kratos-orgs .`,
		"USER 65534:65534",
		"EXPOSE 4480 4481",
		`ENTRYPOINT ["/kratos-orgs"]`,
		`CMD ["serve", "--config", "/etc/kratos-orgs/config.yaml"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	ignore, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".cache", "bin", ".git"} {
		if !slices.ContainsFunc(strings.Split(string(ignore), "\n"), func(l string) bool {
			return strings.Trim(strings.TrimSpace(l), "/") == want
		}) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
}

// The rendered configuration, with the environment the Deployment gives the
// container (secrets resolved from the rendered Secret), is accepted by the
// real service: `kratos-orgs check-config`.
func TestRenderedConfigIsValid(t *testing.T) {
	bin := buildBinary(t)
	for _, vf := range valuesFiles {
		t.Run(vf.name, func(t *testing.T) {
			objs, _ := renderObjects(t, readValues(t, vf.file), renderOpts{})
			out, err := checkConfig(t, bin, objs)
			if vf.name == "default" {
				// The defaults are complete but for the Resend API key, which
				// only the operator can provide.
				if err == nil || strings.Count(out, "\n  - ") != 1 || !strings.Contains(out, "mail.resend.api_key") {
					t.Errorf("default values: want exactly the missing Resend key, got err=%v\n%s", err, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("check-config: %v\n%s", err, out)
			}
			var eff map[string]any
			if err := yaml.Unmarshal([]byte(out), &eff); err != nil {
				t.Fatalf("check-config output: %v\n%s", err, out)
			}
			if keys, _ := dig(eff, "admin", "api_keys").([]any); len(keys) == 0 {
				t.Errorf("no admin API keys reached the service")
			}
			if ciphers, _ := dig(eff, "secrets", "cipher").([]any); len(ciphers) == 0 {
				t.Errorf("no cipher keys reached the service")
			}
			if dig(eff, "mail", "resend", "api_key") != "****" {
				t.Errorf("the Resend key did not reach the service")
			}
			if vf.name == "full" {
				if dig(eff, "serve", "public", "base_url") != "https://orgs.acme.test" || dig(eff, "redis", "password") != "****" ||
					dig(eff, "invitations", "ttl") != "48h0m0s" {
					t.Errorf("full values: unexpected effective config:\n%s", out)
				}
			}
		})
	}
}

// checkConfig runs `kratos-orgs check-config` with the rendered config.yaml,
// the rendered templates and the container's environment.
func checkConfig(t *testing.T, bin string, objs *objects) (string, error) {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	writeFile(t, cfgPath, objs.configMap(t, "-config").Data["config.yaml"])
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	for _, cm := range objs.configMaps {
		if strings.HasSuffix(cm.Name, "-templates") {
			tdir := filepath.Join(dir, "templates")
			for name, content := range cm.Data {
				writeFile(t, filepath.Join(tdir, name), content)
			}
			env = append(env, "KRATOS_ORGS_TEMPLATES_DIR="+tdir)
		}
	}
	c := objs.container(t)
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			var found bool
			for _, s := range objs.secrets {
				if s.Name == ref.Name {
					if v, ok := s.Data[ref.Key]; ok {
						env = append(env, e.Name+"="+string(v))
						found = true
					}
				}
			}
			if !found && (ref.Optional == nil || !*ref.Optional) {
				t.Fatalf("env %s: Secret %s has no key %s and the reference is not optional", e.Name, ref.Name, ref.Key)
			}
		}
	}
	cmd := exec.Command(bin, "check-config", "--config", cfgPath)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// Every configuration key of the service is described in values.schema.json
// (config has additionalProperties: false, so a key missing there could not
// be set through the chart), and the schema describes no key the service
// does not have.
func TestSchemaCoversEveryConfigKey(t *testing.T) {
	bin := buildBinary(t)
	objs, _ := renderObjects(t, readValues(t, "ci/full-values.yaml"), renderOpts{})
	out, err := checkConfig(t, bin, objs)
	if err != nil {
		t.Fatalf("check-config: %v\n%s", err, out)
	}
	var eff map[string]any
	if err := yaml.Unmarshal([]byte(out), &eff); err != nil {
		t.Fatal(err)
	}
	appKeys := leafKeys("", eff)
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sch map[string]any
	if err := json.Unmarshal(raw, &sch); err != nil {
		t.Fatal(err)
	}
	cfgSchema, _ := dig(sch, "properties", "config").(map[string]any)
	schemaKeys := schemaLeafKeys("", cfgSchema)
	for _, k := range appKeys {
		if !slices.Contains(schemaKeys, k) {
			t.Errorf("config key %s (KRATOS_ORGS_%s) is not in values.schema.json: describe it under properties.config",
				k, strings.ToUpper(strings.ReplaceAll(k, ".", "_")))
		}
	}
	// hooks.secret is announced (KRATOS_ORGS_HOOKS_SECRET) before the service reads it.
	announced := []string{"hooks.secret"}
	for _, k := range schemaKeys {
		if !slices.Contains(appKeys, k) && !slices.Contains(announced, k) {
			t.Errorf("values.schema.json describes config.%s, which the service does not know", k)
		}
	}
}

func leafKeys(prefix string, m map[string]any) []string {
	var out []string
	for k, v := range m {
		key := strings.TrimPrefix(prefix+"."+k, ".")
		if sub, ok := v.(map[string]any); ok {
			out = append(out, leafKeys(key, sub)...)
			continue
		}
		out = append(out, key)
	}
	sort.Strings(out)
	return out
}

func schemaLeafKeys(prefix string, s map[string]any) []string {
	props, _ := s["properties"].(map[string]any)
	if len(props) == 0 {
		return []string{prefix}
	}
	var out []string
	for k, v := range props {
		sub, _ := v.(map[string]any)
		out = append(out, schemaLeafKeys(strings.TrimPrefix(prefix+"."+k, "."), sub)...)
	}
	sort.Strings(out)
	return out
}

// Every key in values.yaml carries a helm-docs `# --` comment.
func TestValuesAreDocumented(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var check func(prefix string, n *yamlv3.Node)
	count := 0
	check = func(prefix string, n *yamlv3.Node) {
		if n.Kind != yamlv3.MappingNode {
			return // list items are examples, not keys
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := strings.TrimPrefix(prefix+"."+k.Value, ".")
			count++
			if !strings.Contains(k.HeadComment, "# --") {
				t.Errorf("values.yaml:%d: %s has no `# --` comment", k.Line, key)
			}
			check(key, v)
		}
	}
	check("", doc.Content[0])
	if count < 100 {
		t.Errorf("only %d keys checked; is values.yaml parsed?", count)
	}
}

// Helpers for the checks above.

func checkProbe(t *testing.T, what string, p *corev1.Probe, path string, adminPort int32) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s probe: want an HTTP GET, got %s", what, mustJSON(p))
		return
	}
	if p.HTTPGet.Path != path || (p.HTTPGet.Port != intstr.FromString("http-admin") && p.HTTPGet.Port != intstr.FromInt32(adminPort)) {
		t.Errorf("%s probe: GET %s on %s, want %s on the admin port", what, p.HTTPGet.Path, p.HTTPGet.Port.String(), path)
	}
}

func parseConfig(t *testing.T, objs *objects) map[string]any {
	t.Helper()
	var cfg map[string]any
	if err := yaml.UnmarshalStrict([]byte(objs.configMap(t, "-config").Data["config.yaml"]), &cfg); err != nil {
		t.Fatalf("config.yaml: %v", err)
	}
	return cfg
}

func dig(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			if v, ok := cur.(chartutil.Values); ok {
				mm = v
			} else {
				return nil
			}
		}
		cur = mm[p]
	}
	return cur
}

func unstructuredSlice(obj map[string]any, path ...string) ([]any, bool, error) {
	v, ok := dig(obj, path...).([]any)
	return v, ok, nil
}

func findEnv(env []corev1.EnvVar, name string) *corev1.EnvVar {
	for i := range env {
		if env[i].Name == name {
			return &env[i]
		}
	}
	return nil
}

func isTrue(b *bool) bool { return b != nil && *b }

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func allMeta(o *objects) []metav1.ObjectMeta {
	var out []metav1.ObjectMeta
	for _, x := range o.deployments {
		out = append(out, x.ObjectMeta, x.Spec.Template.ObjectMeta)
	}
	for _, x := range o.services {
		out = append(out, x.ObjectMeta)
	}
	for _, x := range o.configMaps {
		out = append(out, x.ObjectMeta)
	}
	for _, x := range o.secrets {
		out = append(out, x.ObjectMeta)
	}
	for _, x := range o.serviceAccounts {
		out = append(out, x.ObjectMeta)
	}
	for _, x := range o.pods {
		out = append(out, x.ObjectMeta)
	}
	for _, x := range o.ingresses {
		out = append(out, x.ObjectMeta)
	}
	for _, x := range o.networkPolicies {
		out = append(out, x.ObjectMeta)
	}
	for _, x := range o.pdbs {
		out = append(out, x.ObjectMeta)
	}
	for _, x := range o.hpas {
		out = append(out, x.ObjectMeta)
	}
	// Pod template metadata carries no name.
	var named []metav1.ObjectMeta
	for _, m := range out {
		if m.Name == "" {
			m.Name = "pod-template"
		}
		named = append(named, m)
	}
	return named
}

// The NetworkPolicy is on with the chart's defaults: the admin listener
// (operator API, Kratos webhooks, metrics) admits Kratos' pods and the
// release's `helm test` pod, nothing else, until operators are listed.
func TestNetworkPolicyIsOnByDefault(t *testing.T) {
	for _, vf := range valuesFiles[:2] { // default and minimal: neither mentions networkPolicy
		t.Run(vf.name, func(t *testing.T) {
			objs, rel := renderObjects(t, readValues(t, vf.file), renderOpts{})
			if len(objs.networkPolicies) != 1 {
				t.Fatalf("%d NetworkPolicies with %s values, want 1", len(objs.networkPolicies), vf.name)
			}
			admin := objs.networkPolicies[0].Spec.Ingress[0]
			if len(admin.From) != 2 {
				t.Fatalf("admin peers = %s, want Kratos' pods and the test pod", mustJSON(admin.From))
			}
			kratos, test := admin.From[0], admin.From[1]
			if kratos.NamespaceSelector != nil || kratos.PodSelector.MatchLabels["app.kubernetes.io/name"] != "kratos" {
				t.Errorf("first admin peer = %s, want Kratos' pods of the release's namespace", mustJSON(kratos))
			}
			if test.NamespaceSelector != nil || test.PodSelector.MatchLabels["app.kubernetes.io/component"] != "test" {
				t.Errorf("second admin peer = %s, want the helm test pod", mustJSON(test))
			}
			if !strings.Contains(rel.Info.Notes, "networkPolicy.admin.operators") {
				t.Errorf("NOTES.txt should say how to admit operators; got:\n%s", rel.Info.Notes)
			}
		})
	}
	t.Run("operators", func(t *testing.T) {
		vals := merge(readValues(t, "ci/minimal-values.yaml"), set("networkPolicy.admin.operators", []any{
			map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "ops"}}},
			map[string]any{"podSelector": map[string]any{"matchLabels": map[string]any{"app": "backend"}}},
		}))
		objs, rel := renderObjects(t, vals, renderOpts{})
		from := objs.networkPolicies[0].Spec.Ingress[0].From
		if len(from) != 4 || from[2].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "ops" || from[2].PodSelector != nil ||
			from[3].PodSelector.MatchLabels["app"] != "backend" || from[3].NamespaceSelector != nil {
			t.Fatalf("admin peers = %s", mustJSON(from))
		}
		if strings.Contains(rel.Info.Notes, "networkPolicy.admin.operators") {
			t.Errorf("NOTES.txt still asks for operators although they are listed")
		}
	})
	t.Run("off", func(t *testing.T) {
		objs, _ := renderObjects(t, merge(readValues(t, "ci/minimal-values.yaml"), set("networkPolicy.enabled", false)), renderOpts{})
		if len(objs.networkPolicies) != 0 {
			t.Fatal("networkPolicy.enabled=false still renders a NetworkPolicy")
		}
	})
}

// The defaults run two replicas behind a PodDisruptionBudget that lets a
// node drain take one at a time: replicas coordinate through Redis
// (e2e TestTwoReplicasOneKilled).
func TestDefaultsRunTwoReplicasWithABudget(t *testing.T) {
	objs, _ := renderObjects(t, readValues(t, "ci/minimal-values.yaml"), renderOpts{})
	if r := objs.deployment(t).Spec.Replicas; r == nil || *r != 2 {
		t.Errorf("default replicas = %v, want 2", r)
	}
	if len(objs.pdbs) != 1 {
		t.Fatalf("default values render %d PodDisruptionBudgets, want 1", len(objs.pdbs))
	}
	if mu := objs.pdbs[0].Spec.MaxUnavailable; mu == nil || mu.String() != "1" || objs.pdbs[0].Spec.MinAvailable != nil {
		t.Errorf("default pdb = %+v, want maxUnavailable 1", objs.pdbs[0].Spec)
	}
	one, _ := renderObjects(t, merge(readValues(t, "ci/minimal-values.yaml"), set("pdb.enabled", false)), renderOpts{})
	if len(one.pdbs) != 0 {
		t.Errorf("pdb.enabled=false still renders a PodDisruptionBudget")
	}
}
