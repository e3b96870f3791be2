{{/* Names and labels. */}}
{{- define "kpistream.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kpistream.fullname" -}}
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

{{- define "kpistream.headless" -}}
{{- printf "%s-headless" (include "kpistream.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kpistream.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kpistream.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kpistream.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "kpistream.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: worker
{{- end -}}

{{/* The Secret holding the credentials: the operator's own, or the one this chart renders. */}}
{{- define "kpistream.secretName" -}}
{{- default (include "kpistream.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{- define "kpistream.strategiesConfigMap" -}}
{{- default (printf "%s-strategies" (include "kpistream.fullname" .)) .Values.strategies.existingConfigMap -}}
{{- end -}}

{{- define "kpistream.sasl" -}}
{{- if hasPrefix "SASL_" .Values.kafka.securityProtocol -}}true{{- end -}}
{{- end -}}

{{- define "kpistream.tls" -}}
{{- if or (eq .Values.kafka.securityProtocol "SSL") (eq .Values.kafka.securityProtocol "SASL_SSL") -}}true{{- end -}}
{{- end -}}

{{/* Refuse values that cannot work, with a message that says what to change. */}}
{{- define "kpistream.validate" -}}
{{- $protocols := list "PLAINTEXT" "SSL" "SASL_PLAINTEXT" "SASL_SSL" -}}
{{- if not (has .Values.kafka.securityProtocol $protocols) -}}
{{- fail (printf "kafka.securityProtocol must be one of %s" (join ", " $protocols)) -}}
{{- end -}}
{{- if not .Values.kafka.bootstrapServers -}}
{{- fail "kafka.bootstrapServers: list at least one host:port" -}}
{{- end -}}
{{- if and (hasPrefix "rocksdb" .Values.store) (gt (int .Values.tableStandbyReplicas) 0) -}}
{{- fail "tableStandbyReplicas must be 0 with store rocksdb:// (kpistream refuses it: lost counts at failover)" -}}
{{- end -}}
{{- if lt (int .Values.kafka.replicationFactor) (int .Values.kafka.minInsyncReplicas) -}}
{{- fail "kafka.minInsyncReplicas cannot exceed kafka.replicationFactor" -}}
{{- end -}}
{{- if not .Values.existingSecret -}}
{{- if not .Values.secrets.redisUrl -}}
{{- fail "set existingSecret (a Secret with the key redis-url) or secrets.redisUrl" -}}
{{- end -}}
{{- if and (include "kpistream.sasl" .) (not .Values.secrets.kafkaSaslPassword) -}}
{{- fail (printf "kafka.securityProtocol %s needs the SASL password: existingSecret (key kafka-sasl-password) or secrets.kafkaSaslPassword" .Values.kafka.securityProtocol) -}}
{{- end -}}
{{- if and (include "kpistream.tls" .) .Values.kafka.ssl.caCert (not .Values.secrets.kafkaCaCert) -}}
{{- fail "kafka.ssl.caCert is on: existingSecret (key kafka-ca.crt) or secrets.kafkaCaCert (--set-file), or turn it off for a public CA" -}}
{{- end -}}
{{- $auth := or .Values.secrets.webViewerToken .Values.secrets.webAdminToken .Values.secrets.webIngestToken .Values.secrets.webAuthFile -}}
{{- if and $auth (gt (int .Values.replicaCount) 1) (not .Values.secrets.webPeerToken) -}}
{{- fail "web auth is on with several workers: set secrets.webPeerToken too (the workers call each other with it)" -}}
{{- end -}}
{{- if and .Values.redis.caCert (not .Values.secrets.redisCaCert) -}}
{{- fail "redis.caCert is on: existingSecret (key redis-ca.crt) or secrets.redisCaCert (--set-file)" -}}
{{- end -}}
{{- if and .Values.kafka.ssl.clientCert (not (and .Values.secrets.kafkaClientCert .Values.secrets.kafkaClientKey)) -}}
{{- fail "kafka.ssl.clientCert is on: existingSecret (keys kafka-client.crt, kafka-client.key) or secrets.kafkaClientCert and secrets.kafkaClientKey" -}}
{{- end -}}
{{- end -}}
{{- end -}}
