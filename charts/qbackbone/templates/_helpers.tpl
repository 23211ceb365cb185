{{/* Names, labels and images shared by every template. */}}
{{- define "qbackbone.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "qbackbone.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "qbackbone.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "qbackbone.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component (operator, device-plugin). */}}
{{- define "qbackbone.selectorLabels" -}}
app.kubernetes.io/name: {{ include "qbackbone.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "qbackbone.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "qbackbone.workerImage" -}}
{{- $repo := default .Values.image.repository .Values.worker.image.repository -}}
{{- $tag := default (default .Chart.AppVersion .Values.image.tag) .Values.worker.image.tag -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{- define "qbackbone.operatorServiceAccount" -}}
{{- default (printf "%s-operator" (include "qbackbone.fullname" .)) .Values.operator.serviceAccount.name -}}
{{- end -}}

{{- define "qbackbone.workerServiceAccount" -}}
{{- default (printf "%s-worker" (include "qbackbone.fullname" .)) .Values.worker.serviceAccount.name -}}
{{- end -}}

{{/* Namespaces where jobs run: worker.namespaces, else operator.watchNamespaces, else the
release namespace; one per line. */}}
{{- define "qbackbone.workerNamespaces" -}}
{{- $ns := .Values.worker.namespaces | default .Values.operator.watchNamespaces | default (list .Release.Namespace) -}}
{{- range $ns }}
{{ . }}
{{- end -}}
{{- end -}}

{{/* Fail rendering with a clear message for combinations the schema cannot express. */}}
{{- define "qbackbone.validate" -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) -}}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled: true (the ServiceMonitor selects the metrics Service)" -}}
{{- end -}}
{{- end -}}
