// Package charttest tests the Helm chart in charts/kratos-orgs with Helm as
// a Go library (no helm binary): `helm lint --strict`, rendering with
// strict decoding of every object into its Kubernetes API type, the values
// schema, the Kratos wiring example, and the static build the Dockerfile
// relies on. It is a module of its own so Helm's dependencies stay out of the
// service's go.mod. Run it with `cd tools/charttest && go test ./...`.
package charttest
