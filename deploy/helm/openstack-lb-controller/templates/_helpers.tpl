{{/* Short name: the chart's, or nameOverride. Used in labels. */}}
{{- define "olbc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Prefix of every object's name. Derived from the release so that two releases never share a
name: fullnameOverride wins; a release whose name already contains the chart name is used
as is (`helm install openstack-lb-controller ...` keeps the short names).
*/}}
{{- define "olbc.fullname" -}}
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

{{/* Cluster-scoped objects also carry the namespace: the same release name in two namespaces must not collide. */}}
{{- define "olbc.clusterName" -}}
{{- printf "%s-%s" (include "olbc.fullname" .) .Release.Namespace -}}
{{- end -}}

{{- define "olbc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "olbc.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create=false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "olbc.labels" -}}
app.kubernetes.io/name: {{ include "olbc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "olbc.selector" -}}
app.kubernetes.io/name: {{ include "olbc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "olbc.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* Exactly one source of cloud.conf; a conflicting choice is an error, never a silent pick. */}}
{{- define "olbc.cloudConfigSource" -}}
{{- $c := .Values.cloudConfig -}}
{{- if and $c.content $c.hostPath -}}
{{- fail "cloudConfig.content and cloudConfig.hostPath are both set: keep one (content makes the chart create a Secret; hostPath reads a file on the node, e.g. Magnum's /etc/kubernetes/cloud-config-occm)" -}}
{{- else if and $c.existingSecret (or $c.content $c.hostPath) -}}
{{- fail "cloudConfig.existingSecret cannot be combined with cloudConfig.content or cloudConfig.hostPath: unset existingSecret or the other one" -}}
{{- else if $c.content -}}content
{{- else if $c.hostPath -}}hostPath
{{- else -}}secret
{{- end -}}
{{- end -}}

{{- define "olbc.secretName" -}}
{{- if .Values.cloudConfig.existingSecret -}}
{{- .Values.cloudConfig.existingSecret -}}
{{- else -}}
{{- printf "%s-cloud-config" (include "olbc.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The CA bundle comes from at most one place. */}}
{{- define "olbc.caBundleSource" -}}
{{- $b := .Values.caBundle -}}
{{- $n := 0 -}}
{{- if $b.hostPath }}{{ $n = add1 $n }}{{ end -}}
{{- if $b.secretName }}{{ $n = add1 $n }}{{ end -}}
{{- if $b.configMapName }}{{ $n = add1 $n }}{{ end -}}
{{- if gt $n 1 -}}
{{- fail "caBundle: set only one of hostPath, secretName, configMapName" -}}
{{- else if $b.hostPath -}}hostPath
{{- else if $b.secretName -}}secret
{{- else if $b.configMapName -}}configMap
{{- end -}}
{{- end -}}
