# shellcheck shell=bash
# Shared helpers for the single-machine stack. Sourced by ops/local/stack.sh and the component scripts.
#
# The stack's defaults: the shop's host and ports come from its settings (`shop settings --shell`),
# the rest, which only the stack uses, are set here. A caller's SHOP_* variable always wins over the
# default, so `SHOP_KAFKA_PORT=19092 make up` moves Kafka without editing anything.

SHOP_ROOT=${SHOP_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
VAR=$SHOP_ROOT/var
LOG_DIR=$VAR/log
RUN_DIR=$VAR/run
BIN_DIR=$VAR/bin

say() { printf '%s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# shop_defaults: the settings' defaults (SHOP_HOST, SHOP_REDIS_PORT, ...), one NAME=VALUE a line.
# Asked with no SHOP_* variable set, so that a caller's bad setting cannot stop `make down`. The
# venv's Python, or before `make` has made it (`make down` on a fresh machine) the system's 3.11:
# the verb needs nothing but the standard library and the source.
shop_defaults() {
  local python=$SHOP_ROOT/.venv/bin/python
  [ -x "$python" ] || python=$(command -v python3.11 || command -v python3) || return 1
  env -i PATH="$PATH" PYTHONPATH="$SHOP_ROOT" PYTHONDONTWRITEBYTECODE=1 "$python" -P -m shop settings --shell
}

_defaults=$(shop_defaults) || die "cannot read the shop's defaults (\`shop settings --shell\`; Python 3.11+ needed)"
while IFS='=' read -r _name _value; do
  [[ $_name =~ ^SHOP_[A-Z0-9_]+$ ]] || continue
  [ -n "${!_name:-}" ] || printf -v "$_name" '%s' "$_value"
done <<<"$_defaults"
unset _defaults _name _value

: "${SHOP_MAILPIT_SMTP_PORT:=$SHOP_SMTP_PORT}"
: "${SHOP_RABBITMQ_MANAGEMENT_PORT:=15672}"
: "${SHOP_RABBITMQ_DIST_PORT:=25672}"
: "${SHOP_EPMD_PORT:=4369}"
: "${SHOP_KAFKA_CONTROLLER_PORT:=9093}"
: "${SHOP_MAILPIT_HTTP_PORT:=8025}"
: "${SHOP_JAEGER_OTLP_HTTP_PORT:=4318}"
: "${SHOP_JAEGER_OTLP_GRPC_PORT:=4317}"
: "${SHOP_JAEGER_QUERY_PORT:=16686}"
: "${SHOP_JAEGER_QUERY_GRPC_PORT:=16685}"
: "${SHOP_PROMETHEUS_PORT:=9090}"
: "${SHOP_RABBITMQ_PROMETHEUS_PORT:=15692}"
: "${SHOP_KAFKA_METRICS_PORT:=9404}"
: "${SHOP_PG_PRIMARY_EXPORTER_PORT:=9187}"
: "${SHOP_PG_REPLICA_EXPORTER_PORT:=9188}"
: "${SHOP_REDIS_EXPORTER_PORT:=9121}"
: "${SHOP_READY_TIMEOUT:=120}"

# Pinned versions of what the stack builds or downloads itself (Debian packages come from Debian 12).
KAFKA_VERSION=4.1.1
MAILPIT_VERSION=v1.27.11
JAEGER_VERSION=v1.75.0  # the approved release on the Go proxy (v1.76.0 is served, not approved)
JMX_EXPORTER_VERSION=1.0.1

mkdir -p "$LOG_DIR" "$RUN_DIR" "$BIN_DIR"

# host_port PORT: "SHOP_HOST:PORT" for a listen flag or URL; IPv6 literals need brackets.
host_port() { if [[ $SHOP_HOST == *:* ]]; then printf '[%s]:%s' "$SHOP_HOST" "$1"; else printf '%s:%s' "$SHOP_HOST" "$1"; fi; }

# port_open PORT: true when something accepts TCP connections on SHOP_HOST:PORT.
port_open() { (exec 3<>"/dev/tcp/$SHOP_HOST/$1") 2>/dev/null; }

# ports_free NAME PORT...: true when nothing listens on any PORT of SHOP_HOST; else NAME's error
# naming the first one taken.
ports_free() {
  local name=$1 p; shift
  for p in "$@"; do
    if port_open "$p"; then
      printf '%s: port %s:%s is already in use by another process\n' "$name" "$SHOP_HOST" "$p" >&2
      return 1
    fi
  done
}

# pid_alive NAME: true when var/run/NAME.pid names a live process.
pid_alive() {
  local f=$RUN_DIR/$1.pid
  [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

# spawn NAME CMD...: start CMD detached (own session, so Ctrl-C in the caller's terminal does not
# reach it), stdout+stderr appended to var/log/NAME.log, pid recorded in var/run/NAME.pid.
spawn() {
  local name=$1; shift
  setsid nohup "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/$name.pid"
}

# spawn_as USER NAME CMD...: like spawn, but the process runs as USER (PostgreSQL refuses root).
# setpriv execs in place, so the recorded pid is the server's own.
spawn_as() {
  local user=$1 name=$2; shift 2
  touch "$LOG_DIR/$name.log"; chown "$user" "$LOG_DIR/$name.log"
  setsid nohup setpriv --reuid="$user" --regid="$user" --init-groups -- "$@" \
    >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/$name.pid"
}

# as_user USER CMD...: run CMD as USER in the foreground.
as_user() {
  local user=$1; shift
  setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"
}

# stop_pid NAME [TIMEOUT] [SIGNAL]: SIGTERM (or SIGNAL) the process of var/run/NAME.pid and its session, wait, then SIGKILL.
stop_pid() {
  local name=$1 timeout=${2:-30} signal=${3:-TERM} f=$RUN_DIR/$1.pid pid i
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    # The spawned process leads its own session: signal the whole group so wrappers and children go too.
    kill -"$signal" -- "-$pid" 2>/dev/null || kill -"$signal" "$pid" 2>/dev/null
    for ((i = 0; i < timeout * 10; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    fi
  fi
  rm -f "$f"
}

# wait_until TIMEOUT CMD...: poll CMD every 0.2 s until it succeeds; false after TIMEOUT seconds.
wait_until() {
  local timeout=$1; shift
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS >= deadline)) && return 1
    sleep 0.2
  done
}

# ensure_debs PKG...: install the Debian packages that are missing. Serialised with a lock because
# components install in parallel and dpkg allows one writer. Services the packages would start are
# held back (policy-rc.d): the stack starts its own, bound to loopback, with state under var/.
ensure_debs() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  (
    flock 9
    local policy=/usr/sbin/policy-rc.d had_policy=0
    [ -e "$policy" ] && had_policy=1
    if [ $had_policy = 0 ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; fi
    local rc=0
    if [ ! -e "$VAR/.apt-updated" ]; then
      apt-get update -qq && touch "$VAR/.apt-updated" || rc=$?
    fi
    [ $rc = 0 ] && { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" || rc=$?; }
    [ $had_policy = 0 ] && rm -f "$policy"
    exit $rc
  ) 9>"$RUN_DIR/apt.lock"
}

# build_once NAME: unless `_NAME_version_ok` holds, `_NAME_build`, serialised so that two concurrent
# `make up`s do not build into the same scratch file or directory (var/run/NAME-install.lock).
build_once() {
  local name=$1
  "_${name}_version_ok" && return 0
  (
    flock 8 || { printf '%s: could not take %s\n' "$name" "$RUN_DIR/$name-install.lock" >&2; exit 1; }
    "_${name}_version_ok" && exit 0
    "_${name}_build"
  ) 8>"$RUN_DIR/$name-install.lock"
}

# go_toolchain NAME: the path of the go binary (SHOP_GO, else /usr/local/go/bin/go, else go on PATH);
# NAME's error otherwise.
go_toolchain() {
  local go=${SHOP_GO:-/usr/local/go/bin/go}
  [ -x "$go" ] || go=$(command -v go) || { printf '%s: no Go toolchain (looked for /usr/local/go/bin/go and go on PATH)\n' "$1" >&2; return 1; }
  printf '%s' "$go"
}

# go_module_source NAME GO MODULE VERSION: fetch MODULE@VERSION through the Go module proxy and print
# its directory in the (read-only) module cache; NAME's error when a step fails.
go_module_source() {
  local name=$1 go=$2 module=$3 version=$4 modcache src
  "$go" mod download "$module@$version" >&2 || { printf '%s: go mod download %s failed\n' "$name" "$module@$version" >&2; return 1; }
  modcache=$("$go" env GOMODCACHE) || { printf '%s: go env GOMODCACHE failed\n' "$name" >&2; return 1; }
  src=$modcache/$module@$version
  [ -f "$src/go.mod" ] || { printf '%s: module source not found at %s\n' "$name" "$src" >&2; return 1; }
  printf '%s' "$src"
}
