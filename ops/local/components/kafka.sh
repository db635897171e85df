# shellcheck shell=bash
# Kafka for the local stack: one KRaft node that is broker and controller at once, run straight from
# Apache Kafka's jars on Maven Central (no tarball download: the machine reaches package registries
# only). Sourced by ops/local/stack.sh after lib.sh; defines functions only.
#
#   var/kafka/libs/           the broker's jars (kafka_install, via ops/local/kafka/pom.xml)
#   var/kafka/server.properties  written by kafka_start on every start, from the SHOP_* ports
#   var/kafka/cluster.id      the KRaft cluster id, made once
#   var/kafka/data/           log dirs and the metadata log, formatted once
#   var/kafka/agent/          the Prometheus JMX exporter java agent jar (kafka_install, Maven Central)
#   var/kafka/jmx-exporter.yaml  its rules, written by kafka_start on every start
#
# Metrics: the JMX exporter agent (io.prometheus.jmx:jmx_prometheus_javaagent, JMX_EXPORTER_VERSION)
# runs inside the broker's JVM and serves SHOP_HOST:SHOP_KAFKA_METRICS_PORT (9404)/metrics: the
# broker basics under kafka_* names (the rules below) plus the JVM's own jvm_* and process_*. It
# re-reads its rules file when it changes, so a rule can be tried on a running broker.
#
# The broker does not create topics on first use (auto.create.topics.enable=false): the project
# creates its own, with explicit partition counts.

KAFKA_HOME=$VAR/kafka
KAFKA_LIBS=$KAFKA_HOME/libs
KAFKA_DATA=$KAFKA_HOME/data
KAFKA_CONF_SRC=$SHOP_ROOT/ops/local/kafka
KAFKA_AGENT_DIR=$KAFKA_HOME/agent
# Small heap: a dev/test broker with a handful of topics. The serial collector: on two cores G1's
# concurrent and parallel GC threads cost more CPU than they save in pauses (a young collection of
# this heap takes a few ms), and one JIT compiler thread pair is enough for the broker's hot paths.
KAFKA_JVM_OPTS=(-Xms512m -Xmx512m -XX:+UseSerialGC -XX:CICompilerCount=2
  -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true)

_kafka_err() { printf 'kafka: %s\n' "$*" >&2; }

# What the jars in var/kafka/libs were resolved from: the version and the pom's content.
_kafka_libs_stamp() {
  printf '%s %s\n' "$KAFKA_VERSION" "$(sha256sum <"$KAFKA_CONF_SRC/pom.xml" | cut -d' ' -f1)"
}

# The java command line shared by the storage tool and the broker.
_kafka_java() {
  java "${KAFKA_JVM_OPTS[@]}" \
    "-Dlog4j2.configurationFile=$KAFKA_CONF_SRC/log4j2.xml" \
    -cp "$KAFKA_LIBS/*" "$@"
}

# The pinned agent jar; lib.sh's JMX_EXPORTER_VERSION (the default here repeats it for an older lib.sh).
_kafka_agent_jar() { printf '%s/jmx_prometheus_javaagent-%s.jar' "$KAFKA_AGENT_DIR" "${JMX_EXPORTER_VERSION:-1.0.1}"; }
_kafka_metrics_port() { printf '%s' "${SHOP_KAFKA_METRICS_PORT:-9404}"; }
# host:port of the agent's listener (IPv6 literals in brackets, which the agent's argument accepts).
_kafka_metrics_addr() { host_port "$(_kafka_metrics_port)"; }

kafka_install() {
  if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
    ensure_debs openjdk-17-jre-headless maven || { _kafka_err "could not install java/maven"; return 1; }
  fi
  _kafka_install_libs && _kafka_install_agent
}

# The JMX exporter agent: one jar, fetched from Maven Central with the dependency plugin pinned in
# the broker's pom (dependency:copy of a single artifact, no transitive jars: the agent is shaded).
_kafka_install_agent() {
  local jar version=${JMX_EXPORTER_VERSION:-1.0.1} tmp=$KAFKA_HOME/agent.tmp
  jar=$(_kafka_agent_jar)
  [ -s "$jar" ] && return 0
  say "kafka: fetching the Prometheus JMX exporter agent $version from Maven Central"
  rm -rf "$tmp"
  if ! mvn -B -q -f "$KAFKA_CONF_SRC/pom.xml" dependency:copy \
      "-Dartifact=io.prometheus.jmx:jmx_prometheus_javaagent:$version" "-DoutputDirectory=$tmp"; then
    rm -rf "$tmp"
    _kafka_err "mvn could not fetch io.prometheus.jmx:jmx_prometheus_javaagent:$version (see the output above)"
    return 1
  fi
  [ -s "$tmp/${jar##*/}" ] || { rm -rf "$tmp"; _kafka_err "mvn finished but ${jar##*/} is not there"; return 1; }
  if ! { mkdir -p "$KAFKA_AGENT_DIR" && mv -f "$tmp/${jar##*/}" "$jar"; }; then
    rm -rf "$tmp"
    _kafka_err "could not move the agent into $KAFKA_AGENT_DIR"
    return 1
  fi
  rm -rf "$tmp"
}

_kafka_install_libs() {
  local stamp tmp
  stamp=$(_kafka_libs_stamp) || return 1
  if [ -f "$KAFKA_LIBS/.resolved" ] && [ "$(cat "$KAFKA_LIBS/.resolved")" = "$stamp" ]; then
    return 0
  fi
  say "kafka: resolving Apache Kafka $KAFKA_VERSION jars from Maven Central"
  mkdir -p "$KAFKA_HOME" || return 1
  tmp=$KAFKA_HOME/libs.tmp
  rm -rf "$tmp"
  if ! mvn -B -q -f "$KAFKA_CONF_SRC/pom.xml" \
      "-Dkafka.version=$KAFKA_VERSION" \
      dependency:copy-dependencies -DincludeScope=runtime "-DoutputDirectory=$tmp"; then
    rm -rf "$tmp"
    _kafka_err "mvn could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (see the output above)"
    return 1
  fi
  if ! [ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]; then
    rm -rf "$tmp"
    _kafka_err "mvn finished but kafka_2.13-$KAFKA_VERSION.jar is not among the copied jars"
    return 1
  fi
  printf '%s\n' "$stamp" >"$tmp/.resolved"
  rm -rf "$KAFKA_LIBS" && mv "$tmp" "$KAFKA_LIBS" || { _kafka_err "could not move the jars into $KAFKA_LIBS"; return 1; }
  say "kafka: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars in $KAFKA_LIBS"
}

# A random KRaft cluster id: 16 random bytes in URL-safe base64 without padding, as Kafka's
# Uuid.randomUuid() makes them (and, like it, never starting with '-').
_kafka_new_cluster_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [ "${#id}" = 22 ] && [ "${id:0:1}" != - ] && break
  done
  printf '%s\n' "$id"
}

_kafka_write_config() {
  local tmp=$KAFKA_HOME/server.properties.tmp
  cat >"$tmp" <<EOF || return 1
# Written by ops/local/components/kafka.sh on every start: edit that file, not this one.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$SHOP_HOST:$SHOP_KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://$SHOP_HOST:$SHOP_KAFKA_PORT,CONTROLLER://$SHOP_HOST:$SHOP_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$SHOP_HOST:$SHOP_KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA

# One node: every replication factor and ISR minimum is 1.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1
# Fewer partitions for the internal topics than the production defaults (50): quicker to create
# when the first group or transactional producer appears, and fewer files.
offsets.topic.num.partitions=10
transaction.state.log.num.partitions=10

# The project creates its topics itself, with explicit partition counts.
auto.create.topics.enable=false
num.partitions=1
# Test consumers join at once instead of after the default 3 s.
group.initial.rebalance.delay.ms=0

# Threads for a two-core machine (the defaults, 3 network and 8 request handler threads, 10
# background threads, are sized for a server): fewer threads hand each request over fewer times.
num.network.threads=1
num.io.threads=2
background.threads=2
# The lone controller appends a no-op record to the metadata log (and syncs it) every 500 ms by
# default, to show it is alive; one node has no one to show it to.
metadata.max.idle.interval.ms=5000
EOF
  mv "$tmp" "$KAFKA_HOME/server.properties"
}

# The agent's rules: the broker basics in few series (a few hundred on a dev broker). Only the
# MBeans listed under includeObjectNames are read at all; of those, what no rule matches is dropped.
# Meters are exported by their Count (a counter: rate() it), gauges by Value, and the request-time
# histograms by three of their percentiles (Kafka's own, over its recent samples).
_kafka_write_agent_config() {
  local tmp=$KAFKA_HOME/jmx-exporter.yaml.tmp
  cat >"$tmp" <<'YAML' || return 1
# Written by ops/local/components/kafka.sh on every start: edit that file, not this one.
lowercaseOutputName: true
lowercaseOutputLabelNames: true
includeObjectNames:
  - "kafka.server:type=BrokerTopicMetrics,*"
  - "kafka.server:type=ReplicaManager,*"
  - "kafka.controller:type=KafkaController,*"
  - "kafka.network:type=RequestMetrics,name=RequestsPerSec,*"
  - "kafka.network:type=RequestMetrics,name=ErrorsPerSec,*"
  - "kafka.network:type=RequestMetrics,name=TotalTimeMs,*"
  - "kafka.network:type=SocketServer,name=NetworkProcessorAvgIdlePercent"
  - "kafka.server:type=KafkaRequestHandlerPool,name=RequestHandlerAvgIdlePercent"
  - "kafka.log:type=Log,name=Size,*"
rules:
  # Per topic (the broker-wide meters, without a topic, are left out: sum() the topics).
  - pattern: "kafka.server<type=BrokerTopicMetrics, name=MessagesInPerSec, topic=(.+)><>Count"
    name: kafka_topic_messages_in_total
    type: COUNTER
    labels: {topic: "$1"}
  - pattern: "kafka.server<type=BrokerTopicMetrics, name=BytesInPerSec, topic=(.+)><>Count"
    name: kafka_topic_bytes_in_total
    type: COUNTER
    labels: {topic: "$1"}
  - pattern: "kafka.server<type=BrokerTopicMetrics, name=BytesOutPerSec, topic=(.+)><>Count"
    name: kafka_topic_bytes_out_total
    type: COUNTER
    labels: {topic: "$1"}
  - pattern: "kafka.server<type=BrokerTopicMetrics, name=TotalProduceRequestsPerSec, topic=(.+)><>Count"
    name: kafka_topic_produce_requests_total
    type: COUNTER
    labels: {topic: "$1"}
  - pattern: "kafka.server<type=BrokerTopicMetrics, name=TotalFetchRequestsPerSec, topic=(.+)><>Count"
    name: kafka_topic_fetch_requests_total
    type: COUNTER
    labels: {topic: "$1"}
  - pattern: "kafka.server<type=BrokerTopicMetrics, name=FailedProduceRequestsPerSec, topic=(.+)><>Count"
    name: kafka_topic_failed_produce_requests_total
    type: COUNTER
    labels: {topic: "$1"}
  - pattern: "kafka.server<type=BrokerTopicMetrics, name=FailedFetchRequestsPerSec, topic=(.+)><>Count"
    name: kafka_topic_failed_fetch_requests_total
    type: COUNTER
    labels: {topic: "$1"}
  - pattern: "kafka.log<type=Log, name=Size, topic=(.+), partition=(.+)><>Value"
    name: kafka_log_size_bytes
    type: GAUGE
    labels: {topic: "$1", partition: "$2"}
  # Partitions and replication.
  - pattern: "kafka.server<type=ReplicaManager, name=UnderReplicatedPartitions><>Value"
    name: kafka_server_under_replicated_partitions
    type: GAUGE
  - pattern: "kafka.server<type=ReplicaManager, name=UnderMinIsrPartitionCount><>Value"
    name: kafka_server_under_min_isr_partitions
    type: GAUGE
  - pattern: "kafka.server<type=ReplicaManager, name=OfflineReplicaCount><>Value"
    name: kafka_server_offline_replicas
    type: GAUGE
  - pattern: "kafka.server<type=ReplicaManager, name=PartitionCount><>Value"
    name: kafka_server_partitions
    type: GAUGE
  - pattern: "kafka.server<type=ReplicaManager, name=LeaderCount><>Value"
    name: kafka_server_leader_partitions
    type: GAUGE
  - pattern: "kafka.controller<type=KafkaController, name=ActiveControllerCount><>Value"
    name: kafka_controller_active_controllers
    type: GAUGE
  - pattern: "kafka.controller<type=KafkaController, name=OfflinePartitionsCount><>Value"
    name: kafka_controller_offline_partitions
    type: GAUGE
  - pattern: "kafka.controller<type=KafkaController, name=GlobalTopicCount><>Value"
    name: kafka_controller_topics
    type: GAUGE
  - pattern: "kafka.controller<type=KafkaController, name=GlobalPartitionCount><>Value"
    name: kafka_controller_partitions
    type: GAUGE
  # Requests: rate and errors by request type (and API version), time for the ones the services make.
  - pattern: "kafka.network<type=RequestMetrics, name=RequestsPerSec, request=(.+), version=(.+)><>Count"
    name: kafka_network_requests_total
    type: COUNTER
    labels: {request: "$1", version: "$2"}
  - pattern: "kafka.network<type=RequestMetrics, name=ErrorsPerSec, request=(.+), error=(.+)><>Count"
    name: kafka_network_request_errors_total
    type: COUNTER
    labels: {request: "$1", error: "$2"}
  - pattern: "kafka.network<type=RequestMetrics, name=TotalTimeMs, request=(Produce|Fetch|FetchConsumer|FetchFollower|Metadata|ListOffsets|OffsetCommit|OffsetFetch|FindCoordinator|JoinGroup|SyncGroup|Heartbeat|LeaveGroup|ConsumerGroupHeartbeat|InitProducerId|AddPartitionsToTxn|AddOffsetsToTxn|TxnOffsetCommit|EndTxn|CreateTopics|DeleteTopics)><>(50|99|999)thPercentile"
    name: kafka_network_request_time_ms
    type: GAUGE
    labels: {request: "$1", quantile: "0.$2"}
  # Idle share of the request handler threads and the network threads (1 = idle, 0 = saturated).
  - pattern: "kafka.server<type=KafkaRequestHandlerPool, name=RequestHandlerAvgIdlePercent><>OneMinuteRate"
    name: kafka_server_request_handler_idle_ratio
    type: GAUGE
  - pattern: "kafka.network<type=SocketServer, name=NetworkProcessorAvgIdlePercent><>Value"
    name: kafka_network_processor_idle_ratio
    type: GAUGE
YAML
  mv "$tmp" "$KAFKA_HOME/jmx-exporter.yaml"
}

kafka_start() {
  local id agent
  if pid_alive kafka; then
    return 0 # running, or still starting: kafka_ready tells which
  fi
  [ -f "$KAFKA_LIBS/.resolved" ] || { _kafka_err "no jars in $KAFKA_LIBS: run kafka_install first"; return 1; }
  # A checkout whose jars predate the agent (`stack.sh start kafka` installs nothing): fetch it now;
  # should that fail, the broker still starts, without metrics.
  agent=$(_kafka_agent_jar)
  [ -s "$agent" ] || _kafka_install_agent >>"$LOG_DIR/kafka.log" 2>&1 \
    || _kafka_err "no JMX exporter agent at $agent (see $LOG_DIR/kafka.log): starting without metrics"
  if port_open "$SHOP_KAFKA_PORT" || port_open "$SHOP_KAFKA_CONTROLLER_PORT" || port_open "$(_kafka_metrics_port)"; then
    _kafka_err "$SHOP_HOST:$SHOP_KAFKA_PORT, $SHOP_KAFKA_CONTROLLER_PORT or $(_kafka_metrics_port) is already taken by another process"
    return 1
  fi
  mkdir -p "$KAFKA_DATA" || return 1
  _kafka_write_config || { _kafka_err "could not write $KAFKA_HOME/server.properties"; return 1; }
  _kafka_write_agent_config || { _kafka_err "could not write $KAFKA_HOME/jmx-exporter.yaml"; return 1; }

  if [ ! -s "$KAFKA_HOME/cluster.id" ]; then
    _kafka_new_cluster_id >"$KAFKA_HOME/cluster.id" || return 1
  fi
  id=$(cat "$KAFKA_HOME/cluster.id")
  if [ ! -f "$KAFKA_DATA/meta.properties" ]; then
    # Static quorum (controller.quorum.voters), so no --standalone: that flag is for dynamic quorums.
    if ! _kafka_java kafka.tools.StorageTool format --ignore-formatted \
        -t "$id" -c "$KAFKA_HOME/server.properties" >>"$LOG_DIR/kafka.log" 2>&1; then
      _kafka_err "formatting $KAFKA_DATA failed: see $LOG_DIR/kafka.log"
      return 1
    fi
  elif ! grep -qx "cluster.id=$id" "$KAFKA_DATA/meta.properties"; then
    _kafka_err "$KAFKA_DATA belongs to another cluster than $KAFKA_HOME/cluster.id: remove $KAFKA_HOME to start afresh"
    return 1
  fi

  # kafka_ready only trusts log lines written after this point.
  touch "$LOG_DIR/kafka.log"
  stat -c %s "$LOG_DIR/kafka.log" >"$RUN_DIR/kafka.logoffset"
  rm -f "$RUN_DIR/kafka.started"
  # The agent binds its HTTP port before the broker starts: a taken port fails the JVM at once.
  local agent_opt=()
  [ -s "$agent" ] && agent_opt=("-javaagent:$agent=$(_kafka_metrics_addr):$KAFKA_HOME/jmx-exporter.yaml")
  spawn kafka java "${KAFKA_JVM_OPTS[@]}" "${agent_opt[@]}" \
    "-Dlog4j2.configurationFile=$KAFKA_CONF_SRC/log4j2.xml" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_HOME/server.properties"
}

# Ready: the process lives, the client port answers and this run logged "Kafka Server started".
# The log is searched once per run; afterwards var/run/kafka.started (holding the pid) answers.
kafka_ready() {
  local pid off
  pid_alive kafka || return 1
  port_open "$SHOP_KAFKA_PORT" || return 1
  pid=$(cat "$RUN_DIR/kafka.pid")
  [ -s "$RUN_DIR/kafka.started" ] && [ "$(cat "$RUN_DIR/kafka.started")" = "$pid" ] && return 0
  off=$(cat "$RUN_DIR/kafka.logoffset" 2>/dev/null || echo 0)
  # Not `tail | grep -q`: grep quits at the first match, tail dies of SIGPIPE, and pipefail fails it.
  grep -q 'Kafka Server started' < <(tail -c "+$((off + 1))" "$LOG_DIR/kafka.log" 2>/dev/null) || return 1
  echo "$pid" >"$RUN_DIR/kafka.started"
}

kafka_stop() {
  stop_pid kafka 60
  rm -f "$RUN_DIR/kafka.started" "$RUN_DIR/kafka.logoffset"
}

kafka_env() {
  say "SHOP_KAFKA_BOOTSTRAP=$SHOP_HOST:$SHOP_KAFKA_PORT"
  say "SHOP_KAFKA_METRICS_URL=http://$(_kafka_metrics_addr)/metrics"
}
