{{/* Labels every object of the release carries; the selector uses the first two. */}}
{{- define "remediator.selectorLabels" -}}
app.kubernetes.io/name: remediator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "remediator.labels" -}}
{{ include "remediator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{- define "remediator.receiverTokenSecret" -}}
{{ .Values.receiver.tokenSecret.name | default (printf "%s-receiver-token" .Release.Name) }}
{{- end }}
