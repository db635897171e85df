# shellcheck shell=bash
# Jaeger v2: the trace store. The processes export OpenTelemetry traces over OTLP to it, and tests
# look traces up by trace id through its query API (/api/traces/ID, /api/v3/traces/ID).
#
# Built from source, pinned to JAEGER_VERSION: the Go module github.com/jaegertracing/jaeger comes
# from the Go module proxy and `cmd/jaeger` (the v2 binary, an OpenTelemetry Collector distribution)
# is compiled with the machine's Go. The build runs in the module's own directory of the Go module
# cache, i.e. with Jaeger's own go.mod as the main module: its go.sum pins every dependency and its
# `replace` directives apply (a scratch module that `go get`s Jaeger would silently drop them).
# The machine's Go (1.26) is newer than the module's `go 1.24.6` / `toolchain go1.25.4`, so the
# build runs with GOTOOLCHAIN=local and downloads no toolchain. On a machine whose Go is too old,
# `SHOP_GOTOOLCHAIN=go1.27.3 make up` lets the go command fetch that toolchain from the module proxy.
#
# The module on the proxy does not contain the built Jaeger web UI (cmd/query/app/ui/actual is
# empty; upstream fills it from the jaeger-ui repository at release time), so http://…:16686/ only
# serves Jaeger's placeholder page. The query HTTP API, which is what the stack uses, is complete.
#
# Storage is in memory (the `memory` backend, aka memstore): traces are gone when Jaeger stops.
# Only OTLP (HTTP and gRPC) is received; every listener is on SHOP_HOST (loopback); Jaeger's own
# metrics endpoint (:8888), health check, zpages, expvar, pprof and remote sampling are not enabled.
#
# Defines functions only; sourced by ops/local/stack.sh after lib.sh.
#
# Knobs (all optional): SHOP_JAEGER_OTLP_HTTP_PORT (4318), SHOP_JAEGER_OTLP_GRPC_PORT (4317),
# SHOP_JAEGER_QUERY_PORT (16686, HTTP API and UI), SHOP_JAEGER_QUERY_GRPC_PORT (16685, query gRPC
# API), SHOP_JAEGER_MAX_TRACES (default 10000, oldest evicted beyond it: a benchmark run makes
# hundreds of thousands of traces of ~50 spans), SHOP_GO (path of the go
# binary), SHOP_GOTOOLCHAIN (default local: never download a Go toolchain).

JAEGER_MODULE=github.com/jaegertracing/jaeger

_jaeger_err() { printf 'jaeger: %s\n' "$*" >&2; }

# True when BIN (default var/bin/jaeger) runs and reports the pinned version. `jaeger version`
# prints {"gitCommit":"","gitVersion":"v1.75.0","buildDate":""}; the build stamps gitVersion.
_jaeger_version_ok() {
  local bin=${1:-$BIN_DIR/jaeger} v
  [ -x "$bin" ] || return 1
  v=$("$bin" version 2>/dev/null) || return 1
  [[ $v == *"\"gitVersion\":\"$JAEGER_VERSION\""* ]]
}

jaeger_install() { build_once jaeger; }

# Written so that it also fails correctly when errexit is off (callers like `jaeger_install && ...`
# disable set -e inside the function): every step checks its own status.
_jaeger_build() {
  local go t0=$SECONDS src tmp
  go=$(go_toolchain jaeger) || return 1

  # GOWORK=off: no go.work may capture the build. -buildvcs=false: there is no VCS in the module
  # cache, and none is wanted. -mod=readonly: build exactly Jaeger's go.mod/go.sum, never edit them.
  # CGO off: a static binary, as upstream's release build.
  export GOTOOLCHAIN=${SHOP_GOTOOLCHAIN:-local} GOWORK=off GOFLAGS="-buildvcs=false -mod=readonly" CGO_ENABLED=0

  say "jaeger: $("$go" version) (GOTOOLCHAIN=$GOTOOLCHAIN); fetching $JAEGER_MODULE@$JAEGER_VERSION"
  src=$(go_module_source jaeger "$go" "$JAEGER_MODULE" "$JAEGER_VERSION") || return 1
  [ -d "$src/cmd/jaeger" ] || { _jaeger_err "module source not found at $src"; return 1; }

  tmp=$BIN_DIR/.jaeger.tmp.$$
  say "jaeger: go build ./cmd/jaeger (the first build compiles ~2,300 packages: about 5 minutes on 2 cores)"
  # The module cache is read-only, which suits `go build`: it writes only to -o and the build cache.
  (cd "$src" && "$go" build -trimpath \
    -ldflags "-s -w -X $JAEGER_MODULE/internal/version.latestVersion=$JAEGER_VERSION" -o "$tmp" ./cmd/jaeger) \
    || { rm -f "$tmp"; _jaeger_err "go build failed in $src"; return 1; }
  _jaeger_version_ok "$tmp" || { rm -f "$tmp"; _jaeger_err "built binary does not report $JAEGER_VERSION"; return 1; }
  mv -f "$tmp" "$BIN_DIR/jaeger" || { _jaeger_err "could not install $BIN_DIR/jaeger"; return 1; }
  say "jaeger: built $BIN_DIR/jaeger $JAEGER_VERSION in $((SECONDS - t0))s"
}

# The OpenTelemetry-Collector-style configuration, regenerated at every start so the port knobs apply.
_jaeger_config() {
  cat <<EOF
# Written by ops/local/components/jaeger.sh at every start; edits are overwritten.
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      # No batch processor: a span is stored before the OTLP request is answered, so a trace can be
      # read back as soon as the exporter's flush returns.
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    # Jaeger's own metrics would listen on :8888.
    metrics:
      level: none
    logs:
      level: info

extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: ${SHOP_JAEGER_MAX_TRACES:-10000}

  jaeger_query:
    storage:
      traces: memstore
    # Jaeger would otherwise trace its own query requests.
    enable_tracing: false
    http:
      endpoint: "$(host_port "$SHOP_JAEGER_QUERY_PORT")"
    grpc:
      endpoint: "$(host_port "$SHOP_JAEGER_QUERY_GRPC_PORT")"

receivers:
  otlp:
    protocols:
      grpc:
        endpoint: "$(host_port "$SHOP_JAEGER_OTLP_GRPC_PORT")"
      http:
        endpoint: "$(host_port "$SHOP_JAEGER_OTLP_HTTP_PORT")"

exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
EOF
}

jaeger_start() {
  [ -x "$BIN_DIR/jaeger" ] || { _jaeger_err "$BIN_DIR/jaeger missing; run jaeger_install first"; return 1; }
  if pid_alive jaeger; then
    say "jaeger: already running (pid $(cat "$RUN_DIR/jaeger.pid"))"
    return 0
  fi
  ports_free jaeger "$SHOP_JAEGER_OTLP_HTTP_PORT" "$SHOP_JAEGER_OTLP_GRPC_PORT" "$SHOP_JAEGER_QUERY_PORT" "$SHOP_JAEGER_QUERY_GRPC_PORT" || return 1
  mkdir -p "$VAR/jaeger" || return 1
  _jaeger_config >"$VAR/jaeger/config.yaml" || return 1
  spawn jaeger "$BIN_DIR/jaeger" --config "$VAR/jaeger/config.yaml"
}

# Polled: cheap checks first, one HTTP request with a short timeout last.
jaeger_ready() {
  pid_alive jaeger || return 1
  port_open "$SHOP_JAEGER_OTLP_HTTP_PORT" || return 1
  port_open "$SHOP_JAEGER_OTLP_GRPC_PORT" || return 1
  curl -fs -o /dev/null --max-time 2 "http://$(host_port "$SHOP_JAEGER_QUERY_PORT")/api/services"
}

jaeger_stop() { stop_pid jaeger; }

jaeger_env() {
  say "OTEL_EXPORTER_OTLP_ENDPOINT=http://$(host_port "$SHOP_JAEGER_OTLP_HTTP_PORT")"
  say "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
  say "SHOP_TRACE_QUERY_URL=http://$(host_port "$SHOP_JAEGER_QUERY_PORT")"
}
