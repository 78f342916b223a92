{{/*
The chart's name.
*/}}
{{- define "kratos-orgs.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name: <release>-<chart>, or the release name alone when it already
contains the chart name; at most 63 characters (DNS label).
*/}}
{{- define "kratos-orgs.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Names of the Services. The admin Service name is what Kratos' webhook URLs use.
*/}}
{{- define "kratos-orgs.publicServiceName" -}}
{{- printf "%s-public" (include "kratos-orgs.fullname" . | trunc 56 | trimSuffix "-") }}
{{- end }}

{{- define "kratos-orgs.adminServiceName" -}}
{{- printf "%s-admin" (include "kratos-orgs.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "kratos-orgs.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "kratos-orgs.labels" -}}
helm.sh/chart: {{ include "kratos-orgs.chart" . }}
{{ include "kratos-orgs.selectorLabels" . }}
app.kubernetes.io/version: {{ include "kratos-orgs.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kratos-orgs
{{- end }}

{{/*
Selector labels: stable across upgrades.
*/}}
{{- define "kratos-orgs.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kratos-orgs.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount's name.
*/}}
{{- define "kratos-orgs.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kratos-orgs.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The Secret the pods read: the chart's own, or secret.existingSecret.
*/}}
{{- define "kratos-orgs.secretName" -}}
{{- default (include "kratos-orgs.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{/*
The image tag and the full image reference.
*/}}
{{- define "kratos-orgs.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "kratos-orgs.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "kratos-orgs.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
Container ports, taken from the configuration so the listeners and the
Kubernetes objects always agree.
*/}}
{{- define "kratos-orgs.publicPort" -}}
{{- dig "serve" "public" "port" 4480 (.Values.config | default dict) | int }}
{{- end }}

{{- define "kratos-orgs.adminPort" -}}
{{- dig "serve" "admin" "port" 4481 (.Values.config | default dict) | int }}
{{- end }}

{{/*
Where the template overrides are mounted.
*/}}
{{- define "kratos-orgs.templatesDir" -}}
/etc/kratos-orgs/templates
{{- end }}

{{/*
Refuse secrets in .Values.config: they would land in a ConfigMap. Each has a
place under .Values.secret and reaches the pod as an environment variable.
*/}}
{{- define "kratos-orgs.validate" -}}
{{- $cfg := .Values.config | default dict }}
{{- $checks := list
  (list "admin" "api_keys" "secret.adminApiKeys")
  (list "secrets" "cipher" "secret.secretsCipher")
  (list "hooks" "secret" "secret.hooksSecret")
  (list "redis" "password" "secret.redisPassword") }}
{{- range $checks }}
{{- $section := get $cfg (index . 0) | default dict }}
{{- if and (kindIs "map" $section) (hasKey $section (index . 1)) }}
{{- fail (printf "config.%s.%s is a secret and must not be in the ConfigMap: set %s (or secret.existingSecret) instead" (index . 0) (index . 1) (index . 2)) }}
{{- end }}
{{- end }}
{{- $resend := dig "mail" "resend" dict $cfg }}
{{- if and (kindIs "map" $resend) (hasKey $resend "api_key") }}
{{- fail "config.mail.resend.api_key is a secret and must not be in the ConfigMap: set secret.mailResendApiKey (or secret.existingSecret) instead" }}
{{- end }}
{{- if and (kindIs "map" $resend) (hasKey $resend "webhook_secrets") }}
{{- fail "config.mail.resend.webhook_secrets is a secret and must not be in the ConfigMap: set secret.mailResendWebhookSecrets (or secret.existingSecret) instead" }}
{{- end }}
{{- include "kratos-orgs.validateEventEndpoints" . }}
{{- $url := dig "redis" "url" "" $cfg | toString }}
{{- if regexMatch "^[a-z]+://[^/@]*:[^/@]+@" $url }}
{{- fail "config.redis.url carries a password and must not be in the ConfigMap: set secret.redisUrl (or secret.redisPassword) instead" }}
{{- end }}
{{- if and .Values.pdb.enabled (toString .Values.pdb.spec.minAvailable) (toString .Values.pdb.spec.maxUnavailable) }}
{{- fail "pdb.spec: set minAvailable or maxUnavailable, not both" }}
{{- end }}
{{- end }}

{{/*
The configuration file: .Values.config as given, plus what the chart decides
(templates.dir when templates are given, the public base URL from the ingress
when none is set). No secrets: "kratos-orgs.validate" refuses them.
*/}}
{{- define "kratos-orgs.configYaml" -}}
{{- include "kratos-orgs.validate" . }}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- if .Values.templates }}
{{- $t := get $cfg "templates" | default dict }}
{{- $_ := set $t "dir" (include "kratos-orgs.templatesDir" .) }}
{{- $_ := set $cfg "templates" $t }}
{{- end }}
{{- $ing := .Values.ingress.public }}
{{- if and $ing.enabled $ing.hosts (not (dig "serve" "public" "base_url" "" $cfg)) }}
{{- $host := (first $ing.hosts).host }}
{{- $scheme := "http" }}
{{- range $ing.tls }}
{{- if has $host (.hosts | default list) }}
{{- $scheme = "https" }}
{{- end }}
{{- end }}
{{- $serve := get $cfg "serve" | default dict }}
{{- $public := get $serve "public" | default dict }}
{{- $_ := set $public "base_url" (printf "%s://%s" $scheme $host) }}
{{- $_ := set $serve "public" $public }}
{{- $_ := set $cfg "serve" $serve }}
{{- end }}
{{- /* An empty base_url means "not set": leave it to the service's default. */}}
{{- $public := dig "serve" "public" dict $cfg }}
{{- if and (kindIs "map" $public) (hasKey $public "base_url") (not (get $public "base_url")) }}
{{- $_ := unset $public "base_url" }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/*
One key of the chart's Secret, base64-encoded: the value from .Values, else
the value the Secret already holds in the cluster (so generated keys are
stable across upgrades and reinstalls), else a random one when $random > 0.
Arguments: (list value existingData key randomLength).
*/}}
{{- define "kratos-orgs.secretData" -}}
{{- $value := index . 0 }}
{{- $existing := index . 1 }}
{{- $key := index . 2 }}
{{- $random := index . 3 | int }}
{{- if kindIs "slice" $value }}
{{- $value = join "," $value }}
{{- end }}
{{- if $value }}
{{- $value | toString | b64enc }}
{{- else if hasKey $existing $key }}
{{- index $existing $key }}
{{- else if gt $random 0 }}
{{- randAlphaNum $random | b64enc }}
{{- end }}
{{- end }}

{{/*
Pod annotations that roll the pods when the configuration, the templates or
the Secret change.
*/}}
{{- define "kratos-orgs.checksums" -}}
{{- if .Values.configmap.hashSumEnabled }}
checksum/config: {{ include "kratos-orgs.configYaml" . | sha256sum }}
checksum/templates: {{ toJson (.Values.templates | default dict) | sha256sum }}
{{- end }}
{{- if .Values.secret.hashSumEnabled }}
{{- if .Values.secret.existingSecret }}
checksum/secret: {{ .Values.secret.existingSecret | sha256sum }}
{{- else }}
checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end }}
{{- end }}

{{/*
An IntOrString from a string: "1" → 1, "50%" → "50%".
*/}}
{{- define "kratos-orgs.intOrString" -}}
{{- if regexMatch "^[0-9]+$" . }}{{ . }}{{ else }}{{ . | quote }}{{ end }}
{{- end }}

{{/*
The event endpoints of .Values.config: each needs a name (its secrets come
from secret.eventsEndpointSecrets.<name>) and carries no secrets itself;
every name under secret.eventsEndpointSecrets is a configured endpoint's.
*/}}
{{- define "kratos-orgs.validateEventEndpoints" -}}
{{- $names := dict }}
{{- range $i, $ep := include "kratos-orgs.eventEndpoints" . | fromYamlArray }}
{{- if not (and (kindIs "map" $ep) $ep.name) }}
{{- fail (printf "config.events.endpoints[%d] needs a name: its secrets come from secret.eventsEndpointSecrets.<name>" $i) }}
{{- end }}
{{- if hasKey $ep "secrets" }}
{{- fail (printf "config.events.endpoints[%d].secrets is a secret and must not be in the ConfigMap: set secret.eventsEndpointSecrets.%s (or secret.existingSecret) instead" $i $ep.name) }}
{{- end }}
{{- $_ := set $names (toString $ep.name) true }}
{{- end }}
{{- range $name, $_ := .Values.secret.eventsEndpointSecrets | default dict }}
{{- if not (hasKey $names $name) }}
{{- fail (printf "secret.eventsEndpointSecrets.%s names no endpoint in config.events.endpoints" $name) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
config.events.endpoints as a YAML list (empty when none).
*/}}
{{- define "kratos-orgs.eventEndpoints" -}}
{{- toYaml (dig "events" "endpoints" list (.Values.config | default dict)) }}
{{- end }}

{{/*
The Secret key and the environment variable of an event endpoint's secrets
(config.EndpointSecretsEnv: the name upper-cased, "-" as "_").
*/}}
{{- define "kratos-orgs.eventSecretKey" -}}
eventsEndpointSecrets-{{ . }}
{{- end }}
{{- define "kratos-orgs.eventSecretEnv" -}}
KRATOS_ORGS_EVENTS_ENDPOINTS_{{ . | upper | replace "-" "_" }}_SECRETS
{{- end }}
