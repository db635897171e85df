# shellcheck shell=bash
# Prometheus exporters for the dependencies that serve no metrics of their own:
#   pg_primary_exporter  PostgreSQL primary, on SHOP_HOST:SHOP_PG_PRIMARY_EXPORTER_PORT (9187)
#   pg_replica_exporter  PostgreSQL replica, on SHOP_HOST:SHOP_PG_REPLICA_EXPORTER_PORT (9188)
#   redis_exporter       Redis, on SHOP_HOST:SHOP_REDIS_EXPORTER_PORT (9121)
# RabbitMQ serves its own (the rabbitmq_prometheus plugin, rabbitmq.sh) and so does Kafka (the
# Prometheus JMX exporter agent inside the broker's JVM, kafka.sh).
#
# Both programs come from Debian 12 (prometheus-postgres-exporter 0.11.1, prometheus-redis-exporter
# 1.45.0): the Go module proxy reachable here refuses both modules (403 "This module version is not
# available"), so they cannot be built from source like Mailpit. The packages' own services are held
# back at install (policy-rc.d, see ensure_debs); what runs is ours, bound to SHOP_HOST, logging to
# var/log. (On a machine booted with systemd the packages' units are enabled and would listen on
# *:9187 / *:9121: `systemctl disable --now prometheus-postgres-exporter prometheus-redis-exporter`.)
#
# One postgres_exporter per server rather than one with two DSNs: 0.11 given several DSNs fails every
# scrape ("collected metric pg_scrape_collector_success ... was collected before"), and one process
# per server gives each its own pg_up. Both log in as the role shop_monitor (LOGIN, member of
# pg_monitor: reads every statistics view and setting, writes nothing), made by
# pg_primary_exporter_setup on the primary and streamed to the replica. Password:
# SHOP_PG_MONITOR_PASSWORD (default monitor). A custom query (var/pg_exporter/queries.yaml, written on
# start) adds pg_replication_is_replica and pg_replication_lag (seconds the replica's replay is
# behind; 0 on the primary and on a replica that has replayed all it received).
#
# Defines functions only; sourced by ops/local/stack.sh after lib.sh. The `:-` defaults below repeat
# lib.sh's.

PG_EXPORTER_BIN=/usr/bin/prometheus-postgres-exporter
REDIS_EXPORTER_BIN=/usr/bin/prometheus-redis-exporter
PG_MONITOR_ROLE=shop_monitor

_exporter_err() { printf '%s: %s\n' "$1" "${*:2}" >&2; }

_pg_primary_exporter_port() { printf '%s' "${SHOP_PG_PRIMARY_EXPORTER_PORT:-9187}"; }
_pg_replica_exporter_port() { printf '%s' "${SHOP_PG_REPLICA_EXPORTER_PORT:-9188}"; }
_redis_exporter_port() { printf '%s' "${SHOP_REDIS_EXPORTER_PORT:-9121}"; }

# _exporter_http_ok URL: the exporter answers a cheap page (no scrape of the server behind it).
_exporter_http_ok() { curl -fs -o /dev/null --max-time 2 "$1"; }

# --- postgres_exporter: pg_primary_exporter, pg_replica_exporter ------------------------------

_pg_exporter_install() {
  [ -x "$PG_EXPORTER_BIN" ] && return 0
  ensure_debs prometheus-postgres-exporter curl \
    || { _exporter_err postgres_exporter "apt-get install prometheus-postgres-exporter failed"; return 1; }
}
pg_primary_exporter_install() { _pg_exporter_install; }
pg_replica_exporter_install() { _pg_exporter_install; }

_pg_exporter_write_queries() {
  local d=$VAR/pg_exporter
  mkdir -p "$d" || return 1
  cat >"$d/queries.yaml.tmp" <<'YAML' || return 1
# Written by ops/local/components/exporters.sh on every start: edit that file, not this one.
pg_replication:
  query: |
    SELECT pg_is_in_recovery()::int AS is_replica,
           CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                ELSE GREATEST(0, EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())) END AS lag
  master: true
  metrics:
    - is_replica:
        usage: GAUGE
        description: 1 on a streaming replica (in recovery), 0 on the primary
    - lag:
        usage: GAUGE
        description: Seconds the replica's replay is behind the last transaction it received; 0 when caught up
YAML
  mv "$d/queries.yaml.tmp" "$d/queries.yaml"
}

# _pg_exporter_start NAME PG_PORT LISTEN_PORT
_pg_exporter_start() {
  local name=$1 pg_port=$2 port=$3 pw=${SHOP_PG_MONITOR_PASSWORD:-monitor} host=$SHOP_HOST
  [[ $host == *:* ]] && host="[$host]"
  [ -x "$PG_EXPORTER_BIN" ] || { _exporter_err "$name" "not installed (run ${name}_install)"; return 1; }
  if pid_alive "$name"; then
    say "$name: already running (pid $(cat "$RUN_DIR/$name.pid"))"
    return 0
  fi
  if port_open "$port"; then
    _exporter_err "$name" "$SHOP_HOST:$port is taken by a process that is not ours"
    return 1
  fi
  _pg_exporter_write_queries || { _exporter_err "$name" "could not write $VAR/pg_exporter/queries.yaml"; return 1; }
  # The DSN carries a password: passed in the environment (readable by root alone), not on the
  # command line that `ps` shows everyone. Database postgres: what is exported is cluster-wide.
  spawn "$name" env \
    "DATA_SOURCE_NAME=postgresql://$PG_MONITOR_ROLE:$pw@$host:$pg_port/postgres?sslmode=disable" \
    "$PG_EXPORTER_BIN" \
    "--web.listen-address=$(host_port "$port")" \
    "--extend.query-path=$VAR/pg_exporter/queries.yaml" \
    --log.level=warn
}

pg_primary_exporter_start() {
  _pg_exporter_start pg_primary_exporter "$SHOP_PG_PRIMARY_PORT" "$(_pg_primary_exporter_port)"
}
pg_replica_exporter_start() {
  _pg_exporter_start pg_replica_exporter "$SHOP_PG_REPLICA_PORT" "$(_pg_replica_exporter_port)"
}

# The landing page: answers without querying PostgreSQL, so it is fine to poll.
pg_primary_exporter_ready() {
  pid_alive pg_primary_exporter && _exporter_http_ok "http://$(host_port "$(_pg_primary_exporter_port)")/"
}
pg_replica_exporter_ready() {
  pid_alive pg_replica_exporter && _exporter_http_ok "http://$(host_port "$(_pg_replica_exporter_port)")/"
}

# The monitoring role, made on the primary (the replica gets it by streaming). Safe to rerun.
pg_primary_exporter_setup() {
  local p=$SHOP_PG_PRIMARY_PORT pw=${SHOP_PG_MONITOR_PASSWORD:-monitor}
  pg_psql "$p" postgres "DO \$\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_MONITOR_ROLE') THEN
        CREATE ROLE $PG_MONITOR_ROLE LOGIN;
      END IF;
      IF NOT pg_has_role('$PG_MONITOR_ROLE', 'pg_monitor', 'MEMBER') THEN
        GRANT pg_monitor TO $PG_MONITOR_ROLE;
      END IF; END \$\$;" || return 1
  pg_psql "$p" postgres "ALTER ROLE $PG_MONITOR_ROLE PASSWORD '$pw'" || return 1
  say "pg_primary_exporter: role $PG_MONITOR_ROLE (pg_monitor) ready"
}

pg_primary_exporter_stop() { stop_pid pg_primary_exporter 10; }
pg_replica_exporter_stop() { stop_pid pg_replica_exporter 10; }

pg_primary_exporter_env() {
  say "SHOP_PG_PRIMARY_EXPORTER_URL=http://$(host_port "$(_pg_primary_exporter_port)")/metrics"
}
pg_replica_exporter_env() {
  say "SHOP_PG_REPLICA_EXPORTER_URL=http://$(host_port "$(_pg_replica_exporter_port)")/metrics"
}

# --- redis_exporter ----------------------------------------------------------------------------

redis_exporter_install() {
  [ -x "$REDIS_EXPORTER_BIN" ] && return 0
  ensure_debs prometheus-redis-exporter curl \
    || { _exporter_err redis_exporter "apt-get install prometheus-redis-exporter failed"; return 1; }
}

redis_exporter_start() {
  local port host=$SHOP_HOST
  port=$(_redis_exporter_port)
  [[ $host == *:* ]] && host="[$host]"
  [ -x "$REDIS_EXPORTER_BIN" ] || { _exporter_err redis_exporter "not installed (run redis_exporter_install)"; return 1; }
  if pid_alive redis_exporter; then
    say "redis_exporter: already running (pid $(cat "$RUN_DIR/redis_exporter.pid"))"
    return 0
  fi
  if port_open "$port"; then
    _exporter_err redis_exporter "$SHOP_HOST:$port is taken by a process that is not ours"
    return 1
  fi
  # -connection-timeout: a scrape while Redis is down answers redis_up 0 quickly instead of after 15 s.
  spawn redis_exporter "$REDIS_EXPORTER_BIN" \
    -redis.addr "redis://$host:$SHOP_REDIS_PORT" \
    -web.listen-address "$(host_port "$port")" \
    -connection-timeout 3s
}

redis_exporter_ready() {
  pid_alive redis_exporter || return 1
  _exporter_http_ok "http://$(host_port "$(_redis_exporter_port)")/health"
}

redis_exporter_stop() { stop_pid redis_exporter 10; }

redis_exporter_env() {
  say "SHOP_REDIS_EXPORTER_URL=http://$(host_port "$(_redis_exporter_port)")/metrics"
}
