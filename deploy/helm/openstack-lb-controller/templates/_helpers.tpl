{{- define "olbc.name" -}}openstack-lb-controller{{- end -}}
{{- define "olbc.labels" -}}
app.kubernetes.io/name: {{ include "olbc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{- define "olbc.selector" -}}
app.kubernetes.io/name: {{ include "olbc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "olbc.secretName" -}}
{{- if .Values.cloudConfig.content -}}{{ .Release.Name }}-cloud-config{{- else -}}{{ required "cloudConfig.existingSecret or cloudConfig.content is required" .Values.cloudConfig.existingSecret }}{{- end -}}
{{- end -}}
