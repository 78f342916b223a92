package charttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const (
	chartDir     = "../../charts/kratos-orgs"
	jsonnetDir   = "../../config/kratos" // the bodies the tests run Kratos with
	repoRoot     = "../.."
	monitoringV1 = "monitoring.coreos.com/v1"
	// The Kubernetes version rendered for (Ory's chart CI validates against
	// 1.32.1). Helm as a library would otherwise claim v1.20.
	kubeVersionString = "v1.32.1"
)

func kubeVersion(t testing.TB) *chartutil.KubeVersion {
	kv, err := chartutil.ParseKubeVersion(kubeVersionString)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// valuesFiles are the values sets every test renders: the chart's defaults
// and the files in ci/.
var valuesFiles = []struct{ name, file string }{
	{"default", ""},
	{"minimal", "ci/minimal-values.yaml"},
	{"full", "ci/full-values.yaml"},
}

func readValues(t *testing.T, file string) map[string]any {
	t.Helper()
	if file == "" {
		return map[string]any{}
	}
	v, err := chartutil.ReadValuesFile(filepath.Join(chartDir, file))
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	return v.AsMap()
}

// renderOpts describe one `helm template`-like run.
type renderOpts struct {
	release     string
	namespace   string
	apiVersions []string // extra capabilities, e.g. monitoring.coreos.com/v1
	kubeVersion string   // default kubeVersionString
}

func (o renderOpts) withDefaults() renderOpts {
	if o.release == "" {
		o.release = "orgs"
	}
	if o.namespace == "" {
		o.namespace = "identity"
	}
	if o.kubeVersion == "" {
		o.kubeVersion = kubeVersionString
	}
	return o
}

// render runs Helm's install action in client-only dry-run mode, which is
// what `helm template` does: values are checked against values.schema.json
// and every template is rendered.
func render(vals map[string]any, o renderOpts) (*release.Release, error) {
	o = o.withDefaults()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		return nil, err
	}
	cfg := &action.Configuration{
		Releases:     storage.Init(driver.NewMemory()),
		KubeClient:   &kubefake.PrintingKubeClient{Out: io.Discard},
		Capabilities: chartutil.DefaultCapabilities,
		Log:          func(string, ...any) {},
	}
	inst := action.NewInstall(cfg)
	inst.DryRun = true
	inst.DryRunOption = "client"
	inst.ClientOnly = true
	inst.Replace = true
	inst.ReleaseName = o.release
	inst.Namespace = o.namespace
	kv, err := chartutil.ParseKubeVersion(o.kubeVersion)
	if err != nil {
		return nil, err
	}
	inst.KubeVersion = kv
	for _, v := range o.apiVersions {
		inst.APIVersions = append(inst.APIVersions, v)
	}
	// The values map is mutated by Helm (coalescing); hand it a copy.
	return inst.Run(chrt, deepCopy(vals))
}

func deepCopy(m map[string]any) map[string]any {
	raw, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		panic(err)
	}
	return out
}

// merge returns base with override applied key by key (maps merge, every
// other value replaces).
func merge(base, override map[string]any) map[string]any {
	out := deepCopy(base)
	var rec func(dst, src map[string]any)
	rec = func(dst, src map[string]any) {
		for k, v := range src {
			if sv, ok := v.(map[string]any); ok {
				if dv, ok := dst[k].(map[string]any); ok {
					rec(dv, sv)
					continue
				}
			}
			dst[k] = v
		}
	}
	rec(out, deepCopy(override))
	return out
}

// set returns a values map with one dotted path set, e.g.
// set("service.public.port", 70000).
func set(path string, value any) map[string]any {
	parts := strings.Split(path, ".")
	m := map[string]any{parts[len(parts)-1]: value}
	for i := len(parts) - 2; i >= 0; i-- {
		m = map[string]any{parts[i]: m}
	}
	return m
}

// objects is a rendered chart decoded into Kubernetes API types.
type objects struct {
	deployments     []*appsv1.Deployment
	services        []*corev1.Service
	configMaps      []*corev1.ConfigMap
	secrets         []*corev1.Secret
	serviceAccounts []*corev1.ServiceAccount
	pods            []*corev1.Pod // helm test hooks
	ingresses       []*networkingv1.Ingress
	networkPolicies []*networkingv1.NetworkPolicy
	pdbs            []*policyv1.PodDisruptionBudget
	hpas            []*autoscalingv2.HorizontalPodAutoscaler
	serviceMonitors []*unstructured.Unstructured
	kinds           []string // "Kind/name" of every document, in order
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// splitDocuments splits a multi-document manifest, dropping empty ones.
func splitDocuments(manifest string) []string {
	var docs []string
	for _, d := range docSeparator.Split(manifest, -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, d)
		}
	}
	return docs
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// decodeStrict turns one YAML document into JSON (refusing duplicate keys)
// and decodes it into out, refusing unknown fields and trailing data.
func decodeStrict(doc string, out any) error {
	js, err := yaml.YAMLToJSONStrict([]byte(doc))
	if err != nil {
		return fmt.Errorf("yaml: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the object")
	}
	return nil
}

// decodeRelease decodes the manifest and the hooks of a release. Every
// document must be of a known apiVersion/kind and decode strictly.
func decodeRelease(t *testing.T, rel *release.Release) *objects {
	t.Helper()
	docs := splitDocuments(rel.Manifest)
	for _, h := range rel.Hooks {
		docs = append(docs, splitDocuments(h.Manifest)...)
	}
	objs := &objects{}
	for _, doc := range docs {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("document is not YAML: %v\n%s", err, doc)
		}
		gvk := tm.APIVersion + "/" + tm.Kind
		var err error
		var name string
		switch gvk {
		case "apps/v1/Deployment":
			o := &appsv1.Deployment{}
			err, name = decodeStrict(doc, o), o.Name
			objs.deployments = append(objs.deployments, o)
		case "v1/Service":
			o := &corev1.Service{}
			err, name = decodeStrict(doc, o), o.Name
			objs.services = append(objs.services, o)
		case "v1/ConfigMap":
			o := &corev1.ConfigMap{}
			err, name = decodeStrict(doc, o), o.Name
			objs.configMaps = append(objs.configMaps, o)
		case "v1/Secret":
			o := &corev1.Secret{}
			err, name = decodeStrict(doc, o), o.Name
			objs.secrets = append(objs.secrets, o)
		case "v1/ServiceAccount":
			o := &corev1.ServiceAccount{}
			err, name = decodeStrict(doc, o), o.Name
			objs.serviceAccounts = append(objs.serviceAccounts, o)
		case "v1/Pod":
			o := &corev1.Pod{}
			err, name = decodeStrict(doc, o), o.Name
			objs.pods = append(objs.pods, o)
		case "networking.k8s.io/v1/Ingress":
			o := &networkingv1.Ingress{}
			err, name = decodeStrict(doc, o), o.Name
			objs.ingresses = append(objs.ingresses, o)
		case "networking.k8s.io/v1/NetworkPolicy":
			o := &networkingv1.NetworkPolicy{}
			err, name = decodeStrict(doc, o), o.Name
			objs.networkPolicies = append(objs.networkPolicies, o)
		case "policy/v1/PodDisruptionBudget":
			o := &policyv1.PodDisruptionBudget{}
			err, name = decodeStrict(doc, o), o.Name
			objs.pdbs = append(objs.pdbs, o)
		case "autoscaling/v2/HorizontalPodAutoscaler":
			o := &autoscalingv2.HorizontalPodAutoscaler{}
			err, name = decodeStrict(doc, o), o.Name
			objs.hpas = append(objs.hpas, o)
		case "monitoring.coreos.com/v1/ServiceMonitor":
			js, yerr := yaml.YAMLToJSONStrict([]byte(doc))
			if yerr != nil {
				t.Fatalf("ServiceMonitor: %v", yerr)
			}
			u := &unstructured.Unstructured{}
			err = u.UnmarshalJSON(js)
			name = u.GetName()
			objs.serviceMonitors = append(objs.serviceMonitors, u)
		default:
			t.Fatalf("unexpected object %s in the rendered chart:\n%s", gvk, doc)
		}
		if err != nil {
			t.Fatalf("%s %q does not decode strictly: %v\n%s", gvk, name, err, doc)
		}
		objs.kinds = append(objs.kinds, tm.Kind+"/"+name)
	}
	sort.Strings(objs.kinds)
	return objs
}

func (o *objects) deployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	if len(o.deployments) != 1 {
		t.Fatalf("want exactly one Deployment, got %d", len(o.deployments))
	}
	return o.deployments[0]
}

func (o *objects) container(t *testing.T) *corev1.Container {
	t.Helper()
	d := o.deployment(t)
	for i := range d.Spec.Template.Spec.Containers {
		if d.Spec.Template.Spec.Containers[i].Name == "kratos-orgs" {
			return &d.Spec.Template.Spec.Containers[i]
		}
	}
	t.Fatalf("no container named kratos-orgs")
	return nil
}

func (o *objects) service(t *testing.T, name string) *corev1.Service {
	t.Helper()
	for _, s := range o.services {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no Service %q (have %v)", name, o.kinds)
	return nil
}

func (o *objects) configMap(t *testing.T, suffix string) *corev1.ConfigMap {
	t.Helper()
	for _, c := range o.configMaps {
		if strings.HasSuffix(c.Name, suffix) {
			return c
		}
	}
	t.Fatalf("no ConfigMap *%s (have %v)", suffix, o.kinds)
	return nil
}

// renderObjects renders and decodes, failing the test on any error.
func renderObjects(t *testing.T, vals map[string]any, o renderOpts) (*objects, *release.Release) {
	t.Helper()
	rel, err := render(vals, o)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return decodeRelease(t, rel), rel
}

// containerPort returns the named container port's number.
func containerPort(t *testing.T, c *corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container has no port %q", name)
	return 0
}

// secretValues returns the decoded values of every rendered Secret, each
// also split at commas (lists are stored comma-separated).
func (o *objects) secretValues() []string {
	var out []string
	for _, s := range o.secrets {
		for _, v := range s.Data {
			out = append(out, string(v))
			if strings.Contains(string(v), ",") {
				out = append(out, strings.Split(string(v), ",")...)
			}
		}
	}
	return out
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
