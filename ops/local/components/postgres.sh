# shellcheck shell=bash
# PostgreSQL 15 from Debian: a primary and one streaming replica of our own, cloned with
# pg_basebackup and kept in step through a physical replication slot (so the primary keeps the WAL
# the replica still needs, even across a replica restart).

PG_BIN=/usr/lib/postgresql/15/bin
PG_DIR=$VAR/pg
PG_SOCKET_DIR=$RUN_DIR/pg
PG_SLOT=shop_replica_1
# One role and one database per context; nothing reads another context's tables.
PG_CONTEXTS=(auth catalog orders)
: "${SHOP_PG_REPLICATION_PASSWORD:=replicator}"

pg_install() {
  ensure_debs postgresql-15 postgresql-client-15 postgresql-contrib
  # The server refuses to run as root, so it runs as Debian's postgres user, who must be able
  # to reach var/ (a checkout under a private home directory would hide it).
  local d=$VAR
  while [ "$d" != / ]; do
    as_user postgres test -x "$d" 2>/dev/null || chmod o+x "$d"
    d=$(dirname "$d")
  done
}
pg_primary_install() { pg_install; }
pg_replica_install() { pg_install; }

# pg_psql PORT DB SQL: run SQL as the superuser over the local socket, tuples only.
pg_psql() {
  as_user postgres "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$1" -d "$2" -c "$3"
}

pg_prepare_dirs() {
  mkdir -p "$PG_DIR" "$PG_SOCKET_DIR"
  chown postgres:postgres "$PG_DIR" "$PG_SOCKET_DIR"
  chmod 700 "$PG_DIR"
}

# pg_spawn NAME DATADIR PORT: run the postmaster in the foreground of its own session.
pg_spawn() {
  spawn_as postgres "$1" "$PG_BIN/postgres" -D "$2" \
    -c listen_addresses="$SHOP_HOST" -c port="$3" -c unix_socket_directories="$PG_SOCKET_DIR"
}

# pg_stop_one NAME: fast shutdown (SIGINT) of the postmaster alone; smart shutdown (SIGTERM) would
# wait for every client to disconnect, and signalling the group would confuse its children.
pg_stop_one() {
  local f=$RUN_DIR/$1.pid pid i
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  kill -INT "$pid" 2>/dev/null || true
  for ((i = 0; i < 600; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -QUIT "$pid" 2>/dev/null
  rm -f "$f"
}

pg_ready_on() { pid_alive "$1" && "$PG_BIN/pg_isready" -q -h "$SHOP_HOST" -p "$2" -t 1; }

# --- primary ---------------------------------------------------------------------------------

pg_primary_start() {
  pg_prepare_dirs
  local data=$PG_DIR/primary
  if [ ! -s "$data/PG_VERSION" ]; then
    as_user postgres "$PG_BIN/initdb" -D "$data" -U postgres --auth-local=peer \
      --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >>"$LOG_DIR/pg_primary.log" 2>&1
    cat >>"$data/postgresql.conf" <<CONF

# --- shop: a primary that feeds one streaming replica ---
wal_level = replica
max_wal_senders = 5
max_replication_slots = 5
hot_standby = on
max_connections = 200
shared_buffers = 128MB
log_line_prefix = '%m [%p] %q%u@%d '
log_min_duration_statement = 1000
CONF
    cat >"$data/pg_hba.conf" <<HBA
local   all          postgres                     peer
local   all          all                          scram-sha-256
host    all          all          127.0.0.1/32    scram-sha-256
host    replication  replicator   127.0.0.1/32    scram-sha-256
HBA
  fi
  pg_spawn pg_primary "$data" "$SHOP_PG_PRIMARY_PORT"
}

pg_primary_ready() { pg_ready_on pg_primary "$SHOP_PG_PRIMARY_PORT"; }

# Roles, databases and the replication slot. Every statement checks first, so a rerun is harmless.
pg_primary_setup() {
  local p=$SHOP_PG_PRIMARY_PORT ctx
  pg_psql "$p" postgres "DO \$\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'replicator') THEN
        CREATE ROLE replicator WITH REPLICATION LOGIN;
      END IF; END \$\$;"
  pg_psql "$p" postgres "ALTER ROLE replicator PASSWORD '$SHOP_PG_REPLICATION_PASSWORD'"
  for ctx in "${PG_CONTEXTS[@]}"; do
    local pw_var="SHOP_PG_${ctx^^}_PASSWORD"
    local pw=${!pw_var:-$ctx}
    pg_psql "$p" postgres "DO \$\$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ctx') THEN
          CREATE ROLE $ctx LOGIN;
        END IF; END \$\$;"
    pg_psql "$p" postgres "ALTER ROLE $ctx PASSWORD '$pw'"
    if [ -z "$(pg_psql "$p" postgres "SELECT 1 FROM pg_database WHERE datname = '$ctx'")" ]; then
      pg_psql "$p" postgres "CREATE DATABASE $ctx OWNER $ctx"
    fi
    pg_psql "$p" "$ctx" "REVOKE ALL ON DATABASE $ctx FROM PUBLIC; GRANT ALL ON SCHEMA public TO $ctx"
  done
  if [ -z "$(pg_psql "$p" postgres "SELECT 1 FROM pg_replication_slots WHERE slot_name = '$PG_SLOT'")" ]; then
    pg_psql "$p" postgres "SELECT pg_create_physical_replication_slot('$PG_SLOT')" >/dev/null
  fi
}

pg_primary_stop() { pg_stop_one pg_primary; }

# --- replica ---------------------------------------------------------------------------------

pg_replica_start() {
  pg_prepare_dirs
  local data=$PG_DIR/replica
  if [ ! -s "$data/PG_VERSION" ]; then
    rm -rf "$data"
    # -R writes standby.signal and primary_conninfo; -S streams through our slot from the start.
    PGPASSWORD=$SHOP_PG_REPLICATION_PASSWORD as_user postgres "$PG_BIN/pg_basebackup" \
      -h "$SHOP_HOST" -p "$SHOP_PG_PRIMARY_PORT" -U replicator -D "$data" \
      -R -S "$PG_SLOT" -X stream -c fast >>"$LOG_DIR/pg_replica.log" 2>&1 || return 1
  fi
  pg_spawn pg_replica "$data" "$SHOP_PG_REPLICA_PORT"
}

# Ready means accepting connections and streaming from the primary, not merely up.
pg_replica_ready() {
  pg_ready_on pg_replica "$SHOP_PG_REPLICA_PORT" &&
    [ "$(pg_psql "$SHOP_PG_REPLICA_PORT" postgres "SELECT status FROM pg_stat_wal_receiver" 2>/dev/null)" = streaming ]
}

pg_replica_stop() { pg_stop_one pg_replica; }

pg_env_for() {
  local ctx=$1 pw_var="SHOP_PG_${1^^}_PASSWORD"
  local pw=${!pw_var:-$ctx}
  say "SHOP_${ctx^^}_DB_URL=postgresql://$ctx:$pw@$SHOP_HOST:$SHOP_PG_PRIMARY_PORT/$ctx"
  say "SHOP_${ctx^^}_DB_REPLICA_URL=postgresql://$ctx:$pw@$SHOP_HOST:$SHOP_PG_REPLICA_PORT/$ctx"
}

pg_primary_env() {
  local ctx
  for ctx in "${PG_CONTEXTS[@]}"; do pg_env_for "$ctx"; done
}
pg_replica_env() { :; }
