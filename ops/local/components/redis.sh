# shellcheck shell=bash
# Redis (Debian 12: redis-server 7.0): our own instance on SHOP_HOST:SHOP_REDIS_PORT, state in var/redis/.
# Sourced by ops/local/stack.sh after lib.sh; defines functions only.

redis_install() {
  local fresh=0
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || fresh=1
  ensure_debs redis-server redis-tools || { echo "redis: apt-get install redis-server failed" >&2; return 1; }
  # policy-rc.d keeps the package from starting its service; should one have slipped through anyway
  # (a machine without policy-rc.d, an init that ignores it), stop it: it would hold our port.
  if [ $fresh = 1 ] && [ -s /run/redis/redis-server.pid ]; then
    echo "redis: the package started its own service; stopping it"
    kill -TERM "$(cat /run/redis/redis-server.pid)" 2>/dev/null || true
    sleep 1
  fi
  return 0
}

redis_start() {
  local dir=$VAR/redis conf=$VAR/redis/redis.conf
  if pid_alive redis; then
    echo "redis: already running (pid $(cat "$RUN_DIR/redis.pid"))"
    return 0
  fi
  if port_open "$SHOP_REDIS_PORT"; then
    echo "redis: $SHOP_HOST:$SHOP_REDIS_PORT is taken by a process that is not ours" >&2
    return 1
  fi
  mkdir -p "$dir"
  # Regenerated on every start so port changes apply; the data (appendonly dir, dump) stays.
  cat >"$conf" <<EOF
# Written by ops/local/components/redis.sh on every start: edit that file, not this one.
bind $SHOP_HOST
port $SHOP_REDIS_PORT
protected-mode no
daemonize no
supervised no
dir $dir
appendonly yes
appendfsync everysec
logfile ""
loglevel notice
databases 16
EOF
  spawn redis redis-server "$conf"
}

redis_ready() {
  pid_alive redis || return 1
  [ "$(timeout 2 redis-cli -h "$SHOP_HOST" -p "$SHOP_REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

redis_stop() {
  stop_pid redis 30
}

redis_env() {
  echo "SHOP_REDIS_URL=redis://$SHOP_HOST:$SHOP_REDIS_PORT/0"
}
