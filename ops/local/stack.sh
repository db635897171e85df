#!/usr/bin/env bash
# The single-machine stack: `stack.sh up|down|status|clean|env|components`, or `stop NAME`/`start NAME`/
# `kill NAME` (SIGKILL, a crash) for one part.
#
# Each component is defined in ops/local/components/*.sh by these functions:
#   NAME_install  make sure the software is present (fast no-op when it is)
#   NAME_start    start it in the background via `spawn` (pid in var/run, log in var/log)
#   NAME_ready    true when it serves requests
#   NAME_setup    optional: one-time set-up once it is ready (users, databases); must be safe to rerun
#   NAME_stop     optional: stop it (default: stop_pid NAME)
#   NAME_env      print its SHOP_* addresses, one KEY=VALUE per line
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

# Start order matters: the replica is cloned from the primary.
COMPONENTS=(pg_primary pg_replica redis rabbitmq kafka mailpit jaeger pg_primary_exporter pg_replica_exporter
  redis_exporter)
for f in "$here"/components/*.sh; do
  # shellcheck disable=SC1090
  . "$f"
done
# Prometheus (ops/prometheus/) scrapes every process and serves the console pages; `SHOP_PROMETHEUS=0
# make up` leaves it out on a small machine. Once running it stays part of the stack, so a plain
# `make down`, `status` or `env` includes it.
if [ "${SHOP_PROMETHEUS:-1}" != 0 ] || pid_alive prometheus; then COMPONENTS+=(prometheus); fi

label() { printf '%-20s' "${1//_/ }"; }

fail() {
  local c=$1 why=$2
  label "$c"; say "FAILED: $why"
  local log=$LOG_DIR/$c.log
  [ -s "$LOG_DIR/install-$c.log" ] && [ ! -s "$log" ] && log=$LOG_DIR/install-$c.log
  say "---- last lines of $log ----"
  tail -n 30 "$log" 2>/dev/null || say "(no log)"
  exit 1
}

# Install everything that is missing at once, in parallel: apt, Maven and the Go build overlap.
install_all() {
  local c pids=() names=() i rc=0 t0=$SECONDS
  for c in "${COMPONENTS[@]}"; do
    "${c}_ready" && continue
    ( "${c}_install" ) >"$LOG_DIR/install-$c.log" 2>&1 &
    pids+=($!); names+=("$c")
  done
  [ ${#pids[@]} -eq 0 ] && return 0
  say "checking/installing ${names[*]} (logs: var/log/install-*.log)"
  for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then
      label "${names[$i]}"; say "installed ($((SECONDS - t0))s)"
    else
      rc=1
      label "${names[$i]}"; say "FAILED to install"
      say "---- last lines of $LOG_DIR/install-${names[$i]}.log ----"
      tail -n 30 "$LOG_DIR/install-${names[$i]}.log"
    fi
  done
  ((rc == 0)) && say "software ready in $((SECONDS - t0))s"
  return $rc
}

up() {
  local started=$SECONDS c t0
  install_all || exit 1
  for c in "${COMPONENTS[@]}"; do
    t0=$SECONDS
    if "${c}_ready"; then
      label "$c"; say "up (already running)"
      continue
    fi
    "${c}_start" || fail "$c" "could not start"
    wait_until "$SHOP_READY_TIMEOUT" "${c}_ready" || fail "$c" "not ready after ${SHOP_READY_TIMEOUT}s"
    if declare -F "${c}_setup" >/dev/null; then
      "${c}_setup" >>"$LOG_DIR/$c.log" 2>&1 || fail "$c" "set-up failed"
    fi
    label "$c"; say "up in $((SECONDS - t0))s"
  done
  write_env
  say "stack up in $((SECONDS - started))s; addresses in var/stack.env"
}

write_env() {
  local c tmp=$VAR/stack.env.tmp
  {
    say "# Written by ops/local/stack.sh up: the address of every component of the local stack."
    for c in "${COMPONENTS[@]}"; do "${c}_env"; done
    # The gateway's development signing key is generated here on first start.
    say "SHOP_JWT_KEYS_DIR=$VAR/keys"
  } >"$tmp"
  mv "$tmp" "$VAR/stack.env"
}

down() {
  local i c
  # Reverse order: the replica goes before the primary it streams from.
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    stop_one "${COMPONENTS[$i]}"
  done
}

status() {
  local c rc=0
  for c in "${COMPONENTS[@]}"; do
    label "$c"
    if "${c}_ready"; then say "up"; else say "down"; rc=1; fi
  done
  return $rc
}

# stop_one NAME / start_one NAME: one component alone (tests use them to take a dependency away).
stop_one() {
  local c=$1
  if declare -F "${c}_stop" >/dev/null; then "${c}_stop"; else stop_pid "$c"; fi
  label "$c"; say "stopped"
}

# kill_one NAME: SIGKILL the component's whole process group, as a crash would (no clean shutdown).
kill_one() {
  stop_pid "$1" 5 KILL
  label "$1"; say "killed"
}

start_one() {
  local c=$1 t0=$SECONDS
  if "${c}_ready"; then label "$c"; say "up (already running)"; return 0; fi
  "${c}_start" || fail "$c" "could not start"
  wait_until "$SHOP_READY_TIMEOUT" "${c}_ready" || fail "$c" "not ready after ${SHOP_READY_TIMEOUT}s"
  label "$c"; say "up in $((SECONDS - t0))s"
}

known() {
  local c
  for c in "${COMPONENTS[@]}"; do [ "$c" = "${1:-}" ] && return 0; done
  die "unknown component '${1:-}'; one of: ${COMPONENTS[*]}"
}

case "${1:-}" in
  up) up ;;
  stop) known "${2:-}"; stop_one "$2" ;;
  start) known "${2:-}"; start_one "$2" ;;
  kill) known "${2:-}"; kill_one "$2" ;;
  down) down ;;
  status) status ;;
  env) for c in "${COMPONENTS[@]}"; do "${c}_env"; done ;;
  components) printf '%s\n' "${COMPONENTS[@]}" ;;
  clean) down >/dev/null; rm -rf "$VAR"; say "removed $VAR" ;;
  *) die "usage: $0 up|down|status|env|components|clean|stop NAME|start NAME|kill NAME" ;;
esac
