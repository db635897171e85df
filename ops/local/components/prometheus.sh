# shellcheck shell=bash
# Prometheus (Debian 12: prometheus 2.42, which ships promtool too): our own server on
# SHOP_HOST:SHOP_PROMETHEUS_PORT scraping every shop process and the dependencies' exporters, with the
# alert rules of ops/prometheus/rules/ and the console pages of ops/prometheus/consoles/ (the shop's
# views as graphs and tables, http://127.0.0.1:9090/consoles/index.html: Grafana is AGPL and not part of
# this stack). State (TSDB, 2 days) in var/prometheus/. Part of the stack by default; `SHOP_PROMETHEUS=0
# make up` leaves it out (idle here: ~80 MB resident, under 1 % of one core; docs/local-stack.md). The
# shop processes need not be running: their targets just show down.
#
# ops/prometheus/prometheus.yml names every target by its default address (127.0.0.1:8080, ...).
# Each start renders it to var/prometheus/prometheus.yml with the addresses this stack really uses
# (SHOP_HOST and the SHOP_*_PORT variables), validated by promtool before Prometheus sees it.
# var/prometheus/rules links to ops/prometheus/rules, so edited rules apply on a reload:
# `kill -HUP "$(cat var/run/prometheus.pid)"` (an edited prometheus.yml needs a restart, to be rendered).
# The console pages and their library (ops/prometheus/console_libraries/) are read from the repository
# on every request: an edited page shows on the next reload of the browser.
#
# Defines functions only; sourced by ops/local/stack.sh after lib.sh.
#
# Knobs (all optional): SHOP_PROMETHEUS_PORT (9090), SHOP_PROMETHEUS_RETENTION (2d); the scraped
# addresses follow SHOP_GATEWAY_PORT (8080), SHOP_WORKERS_PORT (9101), SHOP_STREAMS_PORT (9102),
# SHOP_RELAY_PORT (9103), SHOP_RABBITMQ_PROMETHEUS_PORT (15692), SHOP_PG_PRIMARY_EXPORTER_PORT (9187),
# SHOP_PG_REPLICA_EXPORTER_PORT (9188), SHOP_REDIS_EXPORTER_PORT (9121) and SHOP_KAFKA_METRICS_PORT
# (9404), the variables of exporters.sh, rabbitmq.sh and kafka.sh.

_prometheus_err() { printf 'prometheus: %s\n' "$*" >&2; }

_prometheus_port() { printf '%s' "${SHOP_PROMETHEUS_PORT:-9090}"; }

prometheus_install() {
  local fresh=0
  command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || fresh=1
  ensure_debs prometheus || { _prometheus_err "apt-get install prometheus failed"; return 1; }
  # policy-rc.d keeps the package from starting its service; should one have slipped through anyway,
  # stop it: it would hold port 9090 and scrape nothing of ours.
  if [ $fresh = 1 ] && [ -s /run/prometheus/prometheus.pid ]; then
    say "prometheus: the package started its own service; stopping it"
    kill -TERM "$(cat /run/prometheus/prometheus.pid)" 2>/dev/null || true
    sleep 1
  fi
  return 0
}

# Writes var/prometheus/prometheus.yml: ops/prometheus/prometheus.yml with every default target
# address replaced by this stack's. The targets are quoted in the source, so "127.0.0.1:9101" cannot
# match a prefix of another port.
_prometheus_render() {
  local dir=$VAR/prometheus src=$SHOP_ROOT/ops/prometheus/prometheus.yml pair args=()
  local pairs=(
    "8080:${SHOP_GATEWAY_PORT:-8080}"
    "9101:${SHOP_WORKERS_PORT:-9101}"
    "9102:${SHOP_STREAMS_PORT:-9102}"
    "9103:${SHOP_RELAY_PORT:-9103}"
    "15692:${SHOP_RABBITMQ_PROMETHEUS_PORT:-15692}"
    "9187:${SHOP_PG_PRIMARY_EXPORTER_PORT:-9187}"
    "9188:${SHOP_PG_REPLICA_EXPORTER_PORT:-9188}"
    "9121:${SHOP_REDIS_EXPORTER_PORT:-9121}"
    "9404:${SHOP_KAFKA_METRICS_PORT:-9404}"
    "9090:$(_prometheus_port)"
  )
  for pair in "${pairs[@]}"; do
    args+=(-e "s|\"127\\.0\\.0\\.1:${pair%%:*}\"|\"$(host_port "${pair#*:}")\"|")
  done
  mkdir -p "$dir/data" || return 1
  ln -sfn "$SHOP_ROOT/ops/prometheus/rules" "$dir/rules" || return 1
  {
    say "# Written by ops/local/components/prometheus.sh on every start from ops/prometheus/prometheus.yml:"
    say "# edit that file, not this one."
    sed "${args[@]}" "$src"
  } >"$dir/prometheus.yml.tmp" || return 1
  if ! promtool check config "$dir/prometheus.yml.tmp" >"$LOG_DIR/prometheus-config-check.log" 2>&1; then
    _prometheus_err "invalid configuration; promtool says:"
    cat "$LOG_DIR/prometheus-config-check.log" >&2
    return 1
  fi
  mv -f "$dir/prometheus.yml.tmp" "$dir/prometheus.yml"
}

prometheus_start() {
  command -v prometheus >/dev/null 2>&1 || { _prometheus_err "prometheus missing; run prometheus_install first"; return 1; }
  if pid_alive prometheus; then
    say "prometheus: already running (pid $(cat "$RUN_DIR/prometheus.pid"))"
    return 0
  fi
  ports_free prometheus "$(_prometheus_port)" || return 1
  _prometheus_render || return 1
  spawn prometheus prometheus \
    --config.file="$VAR/prometheus/prometheus.yml" \
    --storage.tsdb.path="$VAR/prometheus/data" \
    --storage.tsdb.retention.time="${SHOP_PROMETHEUS_RETENTION:-2d}" \
    --web.listen-address="$(host_port "$(_prometheus_port)")" \
    --web.console.templates="$SHOP_ROOT/ops/prometheus/consoles" \
    --web.console.libraries="$SHOP_ROOT/ops/prometheus/console_libraries"
}

# Polled: cheap checks first, one HTTP request with a short timeout last. /-/ready answers 200 once
# the TSDB is open and the configuration loaded.
prometheus_ready() {
  pid_alive prometheus || return 1
  curl -fs -o /dev/null --max-time 2 "http://$(host_port "$(_prometheus_port)")/-/ready"
}

prometheus_stop() { stop_pid prometheus 30; }

prometheus_env() {
  say "SHOP_PROMETHEUS_URL=http://$(host_port "$(_prometheus_port)")"
}
