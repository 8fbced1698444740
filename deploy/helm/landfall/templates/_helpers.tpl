{{/* vim: set filetype=mustache: */}}

{{- define "landfall.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-scoped name of every object. */}}
{{- define "landfall.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "landfall.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "landfall.selectorLabels" -}}
app.kubernetes.io/name: {{ include "landfall.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "landfall.labels" -}}
helm.sh/chart: {{ include "landfall.chart" . }}
{{ include "landfall.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "landfall.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "landfall.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "landfall.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Directory the sink ConfigMap is mounted at; `landfall run --config-dir` reads every *.toml in it. */}}
{{- define "landfall.configDir" -}}/etc/landfall/sinks{{- end -}}

{{/*
  ---------------------------------------------------------------------------------------------
  Sink TOML rendering.

  Helm hands numbers from values files to templates as float64, and Helm's own `toToml` writes
  them as floats (`30000.0`, `1.34217728e+08`), which Landfall's strict config refuses for its
  integer keys. So the chart writes TOML itself: whole numbers as integers, strings as TOML basic
  strings (JSON string escaping is valid TOML), lists as arrays, maps as inline tables.
  ---------------------------------------------------------------------------------------------
*/}}

{{/* A TOML key: bare when it can be, else quoted (`"security.protocol"`). */}}
{{- define "landfall.toml.key" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . -}}{{ . }}{{- else -}}{{ toJson . }}{{- end -}}
{{- end -}}

{{/* A TOML value (recursive). */}}
{{- define "landfall.toml.value" -}}
{{- $v := . -}}
{{- $k := kindOf $v -}}
{{- if eq $k "string" -}}
{{- toJson $v -}}
{{- else if eq $k "bool" -}}
{{- $v -}}
{{- else if or (eq $k "float64") (eq $k "float32") -}}
{{- if eq (float64 (int64 $v)) (float64 $v) -}}{{ int64 $v }}{{- else -}}{{ $v }}{{- end -}}
{{- else if has $k (list "int" "int8" "int16" "int32" "int64" "uint" "uint8" "uint16" "uint32" "uint64") -}}
{{- $v -}}
{{- else if eq $k "slice" -}}
[{{- range $i, $e := $v -}}{{- if $i -}}, {{ end -}}{{- include "landfall.toml.value" $e -}}{{- end -}}]
{{- else if eq $k "map" -}}
{{- $first := true -}}
{ {{- range $key := keys $v | sortAlpha -}}
{{- $e := index $v $key -}}
{{- if not (kindIs "invalid" $e) -}}
{{- if not $first -}}, {{ end -}}{{- $first = false -}}
{{ include "landfall.toml.key" $key }} = {{ include "landfall.toml.value" $e }}
{{- end -}}
{{- end -}} }
{{- else -}}
{{- fail (printf "landfall: cannot write a %s value into a sink TOML" $k) -}}
{{- end -}}
{{- end -}}

{{/*
  `key = value` lines of one table: plain values first, then inline tables (`options`), each
  group sorted by key; an array of tables (format.fields) gets one element per line.
*/}}
{{- define "landfall.toml.entries" -}}
{{- $m := . -}}
{{- $plain := list -}}
{{- $maps := list -}}
{{- range $key := keys $m | sortAlpha -}}
{{- if kindIs "map" (index $m $key) -}}{{- $maps = append $maps $key -}}{{- else -}}{{- $plain = append $plain $key -}}{{- end -}}
{{- end -}}
{{- range $key := concat $plain $maps -}}
{{- $v := index $m $key -}}
{{- if kindIs "invalid" $v -}}
{{- else if and (kindIs "slice" $v) $v (kindIs "map" (first $v)) }}
{{ include "landfall.toml.key" $key }} = [
{{- range $e := $v }}
  {{ include "landfall.toml.value" $e }},
{{- end }}
]
{{- else }}
{{ include "landfall.toml.key" $key }} = {{ include "landfall.toml.value" $v }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Tables in the order docs/configuration.md lists them; any other table follows, sorted. */}}
{{- define "landfall.toml.tableOrder" -}}
{{- list "kafka" "format" "partitioning" "flush" "parquet" "store" "marker" "errors" "runtime" | toJson -}}
{{- end -}}

{{/* One sink's TOML file. Argument: dict "name" NAME "sink" VALUES. */}}
{{- define "landfall.sinkToml" -}}
{{- $name := .name -}}
{{- $sink := .sink | default dict -}}
{{- $order := include "landfall.toml.tableOrder" . | fromJsonArray -}}
{{- $root := dict -}}
{{- $tables := dict -}}
{{- range $key, $v := $sink -}}
{{- if kindIs "map" $v -}}{{- $_ := set $tables $key $v -}}{{- else -}}{{- $_ := set $root $key $v -}}{{- end -}}
{{- end -}}
# Sink `{{ $name }}`, rendered by the landfall Helm chart from .Values.sinks.{{ $name }}.
# Keys: docs/configuration.md. ${NAME} is replaced from the container's environment at start.
name = {{ include "landfall.toml.value" $name }}
{{- include "landfall.toml.entries" $root }}
{{- range $t := $order }}
{{- if hasKey $tables $t }}

[{{ $t }}]
{{- include "landfall.toml.entries" (index $tables $t) }}
{{- end }}
{{- end }}
{{- range $t := keys $tables | sortAlpha }}
{{- if not (has $t $order) }}

[{{ include "landfall.toml.key" $t }}]
{{- include "landfall.toml.entries" (index $tables $t) }}
{{- end }}
{{- end }}
{{ end -}}

{{/* Consumer group of a sink: kafka.group_id, else Landfall's default `landfall-{name}`. */}}
{{- define "landfall.groupId" -}}
{{- $kafka := .sink.kafka | default dict -}}
{{- default (printf "landfall-%s" .name) $kafka.group_id -}}
{{- end -}}

{{/*
  terminationGracePeriodSeconds, derived (README "Shutdown and the grace period"):

      ceil(max over sinks of runtime.shutdown_timeout_ms / 1000)   the sinks stop in parallel; the
                                                                    timeout bounds the whole stop:
                                                                    land, group leave, runtime drop
    + shutdown.graceMarginSeconds                                   SIGTERM delivery, slack

  A sink without runtime.shutdown_timeout_ms counts with Landfall's default, 25000 (with the
  default margin of 5 s: Kubernetes' default 30 s).
*/}}
{{- define "landfall.maxShutdownTimeoutMs" -}}
{{- $max := int64 0 -}}
{{- range $name, $sink := .Values.sinks -}}
{{- $ms := int64 25000 -}}
{{- $rt := (($sink | default dict).runtime) | default dict -}}
{{- if hasKey $rt "shutdown_timeout_ms" -}}{{- $ms = int64 (index $rt "shutdown_timeout_ms") -}}{{- end -}}
{{- if gt $ms $max -}}{{- $max = $ms -}}{{- end -}}
{{- end -}}
{{- $max -}}
{{- end -}}

{{- define "landfall.terminationGracePeriodSeconds" -}}
{{- $ms := include "landfall.maxShutdownTimeoutMs" . | int64 -}}
{{- add (div (add $ms 999) 1000) .Values.shutdown.graceMarginSeconds -}}
{{- end -}}

{{/*
  Every ${NAME} a sink config uses must reach the container: from secretEnv (a Secret key) or
  env (a plain value). Landfall refuses to start on an unset variable; failing at render time
  says which one before a pod crash-loops. Skipped when envFromSecrets is used (its keys are
  not known here). Like Landfall, it skips comment lines and `$${` (the escape for a literal `${`).
*/}}
{{- define "landfall.checkEnv" -}}
{{- $declared := list -}}
{{- range .Values.secretEnv -}}{{- $declared = append $declared .name -}}{{- end -}}
{{- range $k, $_ := .Values.env -}}{{- $declared = append $declared $k -}}{{- end -}}
{{- if not .Values.envFromSecrets -}}
{{- range $name, $sink := .Values.sinks -}}
{{- $toml := include "landfall.sinkToml" (dict "name" $name "sink" $sink) -}}
{{- $text := regexReplaceAll "(?m)^#.*$" $toml "" | replace "$${" "" -}}
{{- range $ref := regexFindAll "\\$\\{[A-Za-z0-9_]+\\}" $text -1 -}}
{{- $var := $ref | trimPrefix "${" | trimSuffix "}" -}}
{{- if not (has $var $declared) -}}
{{- fail (printf "sink `%s` uses ${%s}, but no environment variable %s is given: add it to secretEnv (from a Secret) or, if it is not secret, to env" $name $var $var) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Refuse combinations that cannot work, with a message that says what to change. */}}
{{- define "landfall.checkValues" -}}
{{- if not .Values.sinks -}}
{{- fail "landfall: .Values.sinks is empty: define at least one sink (see the chart README)" -}}
{{- end -}}
{{- if and .Values.autoscaling.keda.enabled .Values.autoscaling.hpa.enabled -}}
{{- fail "landfall: enable at most one of autoscaling.keda and autoscaling.hpa (KEDA creates its own HPA)" -}}
{{- end -}}
{{- if and .Values.podDisruptionBudget.enabled (not (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable)) -}}
{{- fail "landfall: set only one of podDisruptionBudget.minAvailable and podDisruptionBudget.maxUnavailable (set the other to null)" -}}
{{- end -}}
{{- $perSink := .Values.autoscaling.perSink | default dict -}}
{{- range $name, $_ := $perSink -}}
{{- if not (hasKey $.Values.sinks $name) -}}
{{- fail (printf "landfall: autoscaling.perSink.%s names no sink in .Values.sinks" $name) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.autoscaling.hpa.enabled (lt (int .Values.autoscaling.minReplicas) 1) -}}
{{- fail "landfall: autoscaling.minReplicas must be at least 1 with autoscaling.hpa (scaling to zero needs KEDA)" -}}
{{- end -}}
{{- if include "landfall.autoscalingEnabled" . -}}
{{- $scaled := list -}}
{{- range $name, $_ := .Values.sinks -}}
{{- if not (index $perSink $name | default dict).disabled -}}{{- $scaled = append $scaled $name -}}{{- end -}}
{{- end -}}
{{- if not $scaled -}}
{{- fail "landfall: autoscaling is enabled but autoscaling.perSink disables it for every sink" -}}
{{- end -}}
{{- end -}}
{{- include "landfall.checkEnv" . -}}
{{- end -}}

{{- define "landfall.autoscalingEnabled" -}}
{{- if or .Values.autoscaling.keda.enabled .Values.autoscaling.hpa.enabled -}}true{{- end -}}
{{- end -}}
