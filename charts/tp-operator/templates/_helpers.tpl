{{/* Name of the operator's objects. */}}
{{- define "tp-operator.name" -}}
{{- printf "%s" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tp-operator.labels" -}}
app.kubernetes.io/name: tp-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "tp-operator.selector" -}}
app.kubernetes.io/name: tp-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Rules of the reconcilers, shared by the ClusterRole and the per-namespace Roles. */}}
{{- define "tp-operator.rules" -}}
- apiGroups: ["telemetry.tpctl.dev"]
  resources: ["coreinstances"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["telemetry.tpctl.dev"]
  resources: ["pipelines"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["telemetry.tpctl.dev"]
  resources: ["coreinstances/status", "pipelines/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["configmaps", "services"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments", "daemonsets", "statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}
