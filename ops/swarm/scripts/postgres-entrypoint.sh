#!/bin/bash
# Entrypoint of the Swarm PostgreSQL servers (ops/swarm/data.yml, pg-<context>-<n>; mounted as a config
# at /usr/local/bin/shop-postgres-entrypoint). It runs the image's own entrypoint and run.sh unchanged,
# as its child, and adds the one thing the image leaves to a Kubernetes preStop hook: a clean stop.
#
# In bitnami/postgresql-repmgr the container's main process is repmgrd; PostgreSQL runs beside it,
# started with pg_ctl. `docker stop` (a task update, a node drain) signals repmgrd alone, and when it
# exits the kernel kills PostgreSQL with SIGKILL: crash recovery at the next start, and a primary that
# never wrote its shutdown checkpoint. Here SIGTERM (or SIGINT) first stops PostgreSQL with pg_ctl's
# fast mode (sessions ended, checkpoint written), then repmgrd. The same happens when repmgrd exits on
# its own. stop_grace_period in data.yml leaves room for POSTGRESQL_PGCTLTIMEOUT.
#
# Runs as the image's user (1001).
set -uo pipefail

ENTRYPOINT=${PG_IMAGE_ENTRYPOINT:-/opt/bitnami/scripts/postgresql-repmgr/entrypoint.sh}
RUN=${PG_IMAGE_RUN:-/opt/bitnami/scripts/postgresql-repmgr/run.sh}
# Stops PostgreSQL the way the image's own scripts do (pg_ctl stop -m $POSTGRESQL_SHUTDOWN_MODE, fast
# by default, waiting up to $POSTGRESQL_PGCTLTIMEOUT seconds). Overridable for tests.
STOP_POSTGRES=${PG_STOP_COMMAND:-. /opt/bitnami/scripts/libpostgresql.sh && . /opt/bitnami/scripts/postgresql-env.sh && postgresql_enable_nss_wrapper && postgresql_stop}

log() { printf '%s shop-postgres-entrypoint: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

child=
stopping=0

stop_postgres() {
  log "stopping PostgreSQL (pg_ctl, ${POSTGRESQL_SHUTDOWN_MODE:-fast} mode)"
  bash -c "$STOP_POSTGRES" || log "pg_ctl stop failed (already stopped?)"
}

# shellcheck disable=SC2317  # invoked by the trap below
on_signal() {
  [ "$stopping" = 1 ] && return
  stopping=1
  stop_postgres
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    log "stopping repmgrd"
    kill -TERM "$child" 2>/dev/null
  fi
}

trap on_signal TERM INT

"$ENTRYPOINT" "$RUN" "$@" &
child=$!

# `wait` returns early when a trapped signal arrives: wait again until the child is really gone.
status=0
while kill -0 "$child" 2>/dev/null; do
  wait "$child"
  status=$?
done

if [ "$stopping" = 0 ]; then
  log "the image's process exited with status $status"
  stop_postgres
fi
exit "$status"
