#!/usr/bin/env bash
# Entrypoint of the Swarm Kafka brokers (ops/swarm/data.yml, kafka-1..3; mounted as a config at
# /usr/local/bin/shop-kafka-entrypoint). It puts the Prometheus JMX exporter agent into the broker's
# JVM, then hands over to the apache/kafka image's own start script (/etc/kafka/docker/run), which
# renders the KAFKA_* environment into server.properties, formats the log directory once with
# CLUSTER_ID and starts the broker.
#
# The official image carries no agent, and a Swarm config (500 KB at most) cannot carry the 2.9 MB
# jar. So the jar lives in the broker's own volume (/var/lib/kafka/data/jmx-agent/, next to the log
# directory, never inside it) and is fetched once, from Maven Central or JMX_AGENT_URL (an internal
# mirror), and checked against its SHA-256 below before every use. Without the jar (no egress, no
# mirror) the broker starts anyway, without metrics, and says so in its log. On a node without
# egress, put the jar into the volume once, e.g. for kafka-1 (stack shop):
#   docker run --rm -v shop_kafka-1-data:/d -v "$PWD":/src alpine \
#     sh -c 'mkdir -p /d/jmx-agent && cp /src/jmx_prometheus_javaagent-1.0.1.jar /d/jmx-agent/ && chown -R 1000 /d/jmx-agent'
#
# Runs as the image's user (appuser), which owns /var/lib/kafka/data. Alpine: busybox provides wget
# and sha256sum.
set -euo pipefail

AGENT_VERSION=${JMX_AGENT_VERSION:-1.0.1}
# sha256 of io.prometheus.jmx:jmx_prometheus_javaagent:1.0.1 (Maven Central; its .sha1 is
# f9c53eb0aa1828c3c9cd7647238563e43a4ed68c). Another version needs its own sum here.
AGENT_SHA256=${JMX_AGENT_SHA256:-7d61f737fd661610ccc14aea79764faa1ea94a340cbc8f0029b3d2edea3d80c1}
AGENT_URL=${JMX_AGENT_URL:-https://repo1.maven.org/maven2/io/prometheus/jmx/jmx_prometheus_javaagent/${AGENT_VERSION}/jmx_prometheus_javaagent-${AGENT_VERSION}.jar}
AGENT_DIR=${JMX_AGENT_DIR:-/var/lib/kafka/data/jmx-agent}
AGENT_CONFIG=${JMX_AGENT_CONFIG:-/etc/kafka/jmx-exporter.yaml}
AGENT_PORT=${JMX_AGENT_PORT:-9404}
IMAGE_RUN=${IMAGE_RUN:-/etc/kafka/docker/run}
# The image removes GNU wget after its build; busybox's applets stay.
WGET=${WGET:-busybox wget}
SHA256SUM=${SHA256SUM:-busybox sha256sum}

jar="$AGENT_DIR/jmx_prometheus_javaagent-$AGENT_VERSION.jar"

log() { printf '%s shop-kafka-entrypoint: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

verified() { [ -s "$1" ] && printf '%s  %s\n' "$AGENT_SHA256" "$1" | $SHA256SUM -c - >/dev/null 2>&1; }

fetch_agent() {
  local tmp="$jar.part.$$"
  mkdir -p "$AGENT_DIR" || return 1
  log "fetching the JMX exporter agent $AGENT_VERSION from $AGENT_URL"
  # shellcheck disable=SC2086  # WGET and SHA256SUM are a command and its first argument
  if $WGET -q -T 60 -O "$tmp" "$AGENT_URL" && verified "$tmp"; then
    mv -f "$tmp" "$jar"
    return 0
  fi
  rm -f "$tmp"
  return 1
}

if ! verified "$jar"; then
  [ -e "$jar" ] && log "$jar does not match its SHA-256: fetching it again"
  fetch_agent || log "WARNING: no verified JMX exporter agent (fetch failed): starting WITHOUT metrics on :$AGENT_PORT"
fi

if verified "$jar"; then
  export KAFKA_OPTS="-javaagent:$jar=$AGENT_PORT:$AGENT_CONFIG${KAFKA_OPTS:+ $KAFKA_OPTS}"
  log "JMX exporter agent $AGENT_VERSION on :$AGENT_PORT ($AGENT_CONFIG)"
fi

exec "$IMAGE_RUN" "$@"
