# shellcheck shell=bash
# RabbitMQ (Debian 12: rabbitmq-server 3.10.8 on Erlang 25): our own node shop@localhost, every port
# on SHOP_HOST only, all state (mnesia, quorum logs, cookie, config, plugins list) under var/rabbitmq/.
# Sourced by ops/local/stack.sh after lib.sh; defines functions only.
#
# Processes we start, and `rabbitmq_stop` stops, nothing else:
#   var/run/epmd.pid      epmd in the foreground (normally a daemon that outlives the broker)
#   var/run/rabbitmq.pid  the rabbitmq-server sh wrapper; its child beam.smp, with erl_child_setup
#                         and inet_gethost under that (in sessions of their own: they exit with the
#                         VM). TERM to the wrapper = graceful broker shutdown, about 8 s (5 of them
#                         the management stats collector's shutdown timeout).
# The broker runs as root: state lives wherever the checkout is (/tmp/xyz in CI), no chown dance.
#
# Prometheus metrics: the rabbitmq_prometheus plugin on SHOP_HOST:SHOP_RABBITMQ_PROMETHEUS_PORT (15692),
# /metrics, per object (one series per queue, exchange, connection, channel).
#
# The node's default user/vhost are shop/shop (rabbitmq.conf), so there is no guest and no "/".
# To run the CLI against this node: `rabbitmq_cli rabbitmqctl list_queues -p shop`
# (never the /usr/sbin wrappers: as root they `su rabbitmq`, lose HOME and so the cookie).

RMQ_USER=shop
RMQ_PASS=shop
RMQ_VHOST=shop
RMQ_NODE=shop@localhost
RMQ_BIN=/usr/lib/rabbitmq/bin

# The environment of our node, shared by the server and the CLI tools (one NAME=VALUE a line).
_rabbitmq_env_vars() {
  local d=$VAR/rabbitmq
  cat <<EOF
HOME=$d
LANG=C.UTF-8
LC_ALL=C.UTF-8
ERL_EPMD_ADDRESS=$SHOP_HOST
ERL_EPMD_PORT=$SHOP_EPMD_PORT
ERL_CRASH_DUMP=$d/erl_crash.dump
RABBITMQ_NODENAME=$RMQ_NODE
RABBITMQ_USE_LONGNAME=false
RABBITMQ_NODE_IP_ADDRESS=$SHOP_HOST
RABBITMQ_NODE_PORT=$SHOP_RABBITMQ_PORT
RABBITMQ_DIST_PORT=$SHOP_RABBITMQ_DIST_PORT
RABBITMQ_CONF_ENV_FILE=$d/rabbitmq-env.conf
RABBITMQ_CONFIG_FILE=$d/rabbitmq.conf
RABBITMQ_ADVANCED_CONFIG_FILE=$d/advanced.config
RABBITMQ_ENABLED_PLUGINS_FILE=$d/enabled_plugins
RABBITMQ_PLUGINS_EXPAND_DIR=$d/plugins-expand
RABBITMQ_MNESIA_BASE=$d/mnesia
RABBITMQ_LOG_BASE=$d/log
RABBITMQ_PID_FILE=$d/beam.pid
RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {${SHOP_HOST//./,}}
EOF
}

# rabbitmq_cli TOOL ARGS...: run rabbitmqctl / rabbitmq-diagnostics / rabbitmq-queues / rabbitmq-plugins
# against our node. Slow (1-2 s: an Erlang VM each time); not for polling.
rabbitmq_cli() {
  local tool=$1; shift
  local vars=()
  mapfile -t vars < <(_rabbitmq_env_vars)
  env "${vars[@]}" "$RMQ_BIN/$tool" -n "$RMQ_NODE" "$@"
}

rabbitmq_install() {
  local fresh=0 u pids
  [ -x "$RMQ_BIN/rabbitmq-server" ] || fresh=1
  ensure_debs rabbitmq-server curl || { echo "rabbitmq: apt-get install rabbitmq-server failed" >&2; return 1; }
  # policy-rc.d keeps the packages from starting their services. Should one have slipped through
  # anyway, stop it: the users rabbitmq and epmd were created by this very install, so whatever runs
  # as them is the packages' (ours runs as root).
  if [ $fresh = 1 ]; then
    for u in rabbitmq epmd; do
      id -u "$u" >/dev/null 2>&1 || continue
      pids=$(pgrep -u "$u" || true)
      [ -z "$pids" ] && continue
      echo "rabbitmq: the package started processes as $u ($pids); stopping them"
      # shellcheck disable=SC2086
      kill -TERM $pids 2>/dev/null || true
    done
  fi
  return 0
}

_rabbitmq_write_config() {
  local d=$VAR/rabbitmq
  mkdir -p "$d/mnesia" "$d/log" "$d/plugins-expand"
  # The Erlang cookie: made once, kept with the state.
  if [ ! -s "$d/.erlang.cookie" ]; then
    (umask 077; od -An -N20 -tx1 /dev/urandom | tr -d ' \n' >"$d/.erlang.cookie")
  fi
  chmod 400 "$d/.erlang.cookie"
  # Empty on purpose: keeps /etc/rabbitmq/rabbitmq-env.conf out of our node.
  : >"$d/rabbitmq-env.conf"
  echo '[rabbitmq_management,rabbitmq_prometheus].' >"$d/enabled_plugins"
  # Regenerated on every start so port changes apply; the state in mnesia/ stays.
  cat >"$d/rabbitmq.conf" <<EOF
# Written by ops/local/components/rabbitmq.sh on every start: edit that file, not this one.
listeners.tcp.default = $SHOP_HOST:$SHOP_RABBITMQ_PORT
management.tcp.ip = $SHOP_HOST
management.tcp.port = $SHOP_RABBITMQ_MANAGEMENT_PORT
# Prometheus metrics (rabbitmq_prometheus) on /metrics, one series per queue, exchange, connection and
# channel (per-object, as /metrics/per-object serves them) rather than one total: a dev broker has a
# few dozen queues, and the dashboards want depth per queue. sum() gives the totals.
prometheus.tcp.ip = $SHOP_HOST
prometheus.tcp.port = ${SHOP_RABBITMQ_PROMETHEUS_PORT:-15692}
prometheus.return_per_object_metrics = true
# Made on the node's first boot (empty database) instead of guest and "/".
default_vhost = $RMQ_VHOST
default_user = $RMQ_USER
default_pass = $RMQ_PASS
default_user_tags.administrator = true
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
# One log: stdout, which spawn appends to var/log/rabbitmq.log.
log.console = true
log.console.level = info
log.console.use_colors = off
log.file = false
EOF
}

rabbitmq_start() {
  local vars=() i
  [ -x "$RMQ_BIN/rabbitmq-server" ] || { echo "rabbitmq: not installed (run rabbitmq_install)" >&2; return 1; }
  if pid_alive rabbitmq; then
    echo "rabbitmq: already running (pid $(cat "$RUN_DIR/rabbitmq.pid"))"
    return 0
  fi
  for i in "$SHOP_RABBITMQ_PORT" "$SHOP_RABBITMQ_MANAGEMENT_PORT" "$SHOP_RABBITMQ_DIST_PORT" \
    "${SHOP_RABBITMQ_PROMETHEUS_PORT:-15692}"; do
    if port_open "$i"; then
      echo "rabbitmq: $SHOP_HOST:$i is taken by a process that is not ours" >&2
      return 1
    fi
  done
  _rabbitmq_write_config
  mapfile -t vars < <(_rabbitmq_env_vars)

  # epmd first, ours, in the foreground, so that `rabbitmq_stop` can stop it (the broker would
  # otherwise start a daemon epmd that outlives it).
  if ! pid_alive epmd; then
    if port_open "$SHOP_EPMD_PORT"; then
      echo "rabbitmq: $SHOP_HOST:$SHOP_EPMD_PORT is taken by a process that is not ours (another epmd?)" >&2
      return 1
    fi
    spawn epmd env "${vars[@]}" epmd -address "$SHOP_HOST" -port "$SHOP_EPMD_PORT"
    # Asking epmd for its names (a bare connect is logged by epmd as a partial packet).
    wait_until 10 epmd -port "$SHOP_EPMD_PORT" -names || { echo "rabbitmq: epmd did not listen on $SHOP_HOST:$SHOP_EPMD_PORT (see $LOG_DIR/epmd.log)" >&2; return 1; }
  fi

  # The script (not the /usr/sbin wrapper, which would su to rabbitmq and log to /var/log) stays in
  # the foreground: it runs beam.smp as its child and turns SIGTERM into a clean broker shutdown.
  # Started from var/rabbitmq so nothing lands in the caller's directory.
  (cd "$VAR/rabbitmq" && spawn rabbitmq env "${vars[@]}" "$RMQ_BIN/rabbitmq-server")
}

# Fast: pid alive, AMQP port open, and the management API answers with no resource alarm
# (a broker in memory/disk alarm blocks every publisher).
rabbitmq_ready() {
  pid_alive rabbitmq || return 1
  port_open "$SHOP_RABBITMQ_PORT" || return 1
  curl -fsS -m 1 -o /dev/null -u "$RMQ_USER:$RMQ_PASS" \
    "http://$SHOP_HOST:$SHOP_RABBITMQ_MANAGEMENT_PORT/api/health/checks/alarms" 2>/dev/null
}

# _rabbitmq_api METHOD PATH [JSON]: call the management API as shop (falls back to guest, which
# only exists on a node whose database predates the default_user setting).
_rabbitmq_api() {
  local method=$1 path=$2 body=${3:-'{}'} cred
  for cred in "$RMQ_USER:$RMQ_PASS" guest:guest; do
    if curl -fsS -m 10 -o /dev/null -u "$cred" \
      "http://$SHOP_HOST:$SHOP_RABBITMQ_MANAGEMENT_PORT/api/whoami" 2>/dev/null; then
      curl -fsS -m 10 -o /dev/null -u "$cred" -X "$method" -H 'content-type: application/json' \
        --data "$body" "http://$SHOP_HOST:$SHOP_RABBITMQ_MANAGEMENT_PORT$path"
      return
    fi
  done
  echo "rabbitmq: the management API accepts neither shop nor guest" >&2
  return 1
}

# Idempotent: the first boot already made all this (rabbitmq.conf defaults); this re-asserts it.
rabbitmq_setup() {
  _rabbitmq_api PUT "/api/vhosts/$RMQ_VHOST" '{}' \
    || { echo "rabbitmq: could not create vhost $RMQ_VHOST" >&2; return 1; }
  _rabbitmq_api PUT "/api/users/$RMQ_USER" \
    "{\"password\":\"$RMQ_PASS\",\"tags\":\"administrator\"}" \
    || { echo "rabbitmq: could not create user $RMQ_USER" >&2; return 1; }
  _rabbitmq_api PUT "/api/permissions/$RMQ_VHOST/$RMQ_USER" \
    '{"configure":".*","write":".*","read":".*"}' \
    || { echo "rabbitmq: could not grant $RMQ_USER on $RMQ_VHOST" >&2; return 1; }
  echo "rabbitmq: user $RMQ_USER, vhost $RMQ_VHOST ready"
}

rabbitmq_stop() {
  local f=$RUN_DIR/rabbitmq.pid pid i
  if [ -s "$f" ]; then
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
      # TERM to the wrapper only: it TERMs beam.smp (one signal, one clean shutdown) and waits for it.
      kill -TERM "$pid" 2>/dev/null || true
      for ((i = 0; i < 600; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
    fi
    # Still there after 60 s: stop_pid TERMs, then KILLs, the whole group.
    stop_pid rabbitmq 5
    # Anything of its session left (the wrapper gone, a child not): kill it too.
    if pgrep -s "$pid" >/dev/null 2>&1; then
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
  fi
  stop_pid epmd 10
}

rabbitmq_env() {
  echo "SHOP_RABBITMQ_URL=amqp://$RMQ_USER:$RMQ_PASS@$SHOP_HOST:$SHOP_RABBITMQ_PORT/$RMQ_VHOST"
  echo "SHOP_RABBITMQ_MANAGEMENT_URL=http://$RMQ_USER:$RMQ_PASS@$SHOP_HOST:$SHOP_RABBITMQ_MANAGEMENT_PORT"
  echo "SHOP_RABBITMQ_METRICS_URL=http://$SHOP_HOST:${SHOP_RABBITMQ_PROMETHEUS_PORT:-15692}/metrics"
}
