{{/* Chart name, truncated to the 63 characters a label value may hold. */}}
{{- define "mnistlite.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: release-chart, or the release name when it already has the chart's. */}}
{{- define "mnistlite.fullname" -}}
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

{{- define "mnistlite.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries (no component: see mnistlite.labels / mnistlite.testLabels). */}}
{{- define "mnistlite.commonLabels" -}}
helm.sh/chart: {{ include "mnistlite.chart" . }}
app.kubernetes.io/name: {{ include "mnistlite.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ (default .Chart.AppVersion .Values.image.tag) | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mnistlite
{{- end }}

{{/* Selector of the server pods. Immutable once installed: never add to it. */}}
{{- define "mnistlite.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mnistlite.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{- define "mnistlite.labels" -}}
{{ include "mnistlite.commonLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{/* The helm test pod: same app labels, another component, so no ReplicaSet ever adopts it. */}}
{{- define "mnistlite.testSelectorLabels" -}}
app.kubernetes.io/name: {{ include "mnistlite.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: test
{{- end }}

{{- define "mnistlite.testLabels" -}}
{{ include "mnistlite.commonLabels" . }}
app.kubernetes.io/component: test
{{- end }}

{{- define "mnistlite.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mnistlite.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository:tag@digest when a digest is pinned. */}}
{{- define "mnistlite.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end }}

{{- define "mnistlite.testImage" -}}
{{- with .Values.tests.image -}}
{{- if .digest -}}
{{- printf "%s:%s@%s" .repository .tag .digest -}}
{{- else -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}
{{- end -}}
{{- end }}
