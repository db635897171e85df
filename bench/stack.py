"""The stack the gateway benchmarks (orders, flash-sale, profile) run against: `shop run all` from the
harness, on a RabbitMQ vhost of its own, rate limits lifted, tracing off unless asked for."""

from __future__ import annotations

import os
from pathlib import Path

from harness.stack import LIMITS_LIFTED, ShopStack

VHOST = "shop-bench-orders"


def bench_stack(log: Path, tracing: dict[str, str] | None = None) -> ShopStack:
    """Not started (`with bench_stack(...) as stack:` starts and stops it); tracing off
    (OTEL_SDK_DISABLED=true) unless `tracing` gives the OTEL_* settings to run it with."""
    # No span export unless asked for: tracing is a figure of its own (`orders-traced`).
    return ShopStack(log, {**LIMITS_LIFTED, **(tracing or {"OTEL_SDK_DISABLED": "true"})}, VHOST)


def tracing_env(ratio: float) -> dict[str, str]:
    """OTEL_* settings of a traced run: the SDK on, `ratio` of the traces sampled (a child follows its
    parent's decision) and exported over OTLP to the stack's endpoint (var/stack.env: its Jaeger)."""
    from shop.observability.tracing import export_configured

    env = {
        "OTEL_SDK_DISABLED": "false",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": f"{ratio:g}",
    }
    if not export_configured({**os.environ, **env}):
        raise SystemExit(
            "bench: tracing asked for, but no OTEL_EXPORTER_OTLP_ENDPOINT (run under ops/local/with-env)"
        )
    return {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")}
