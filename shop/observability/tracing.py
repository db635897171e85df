"""OpenTelemetry tracing: one trace follows a request across HTTP, RabbitMQ and Kafka.

Configured by the standard `OTEL_*` variables. Spans are exported over OTLP/HTTP when an endpoint
is set (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; the local stack sets
the first to its Jaeger) and neither `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none` says
otherwise; the sampler (`OTEL_TRACES_SAMPLER`, default parent-based always-on), batching
(`OTEL_BSP_*`) and the service name (`OTEL_SERVICE_NAME`, default `shop-<process>`) too. Without an
endpoint no SDK is installed: spans cost nothing, and a caller's `traceparent` still travels on.

W3C trace context moves through every hop by the helpers here: `inject` writes the current context
into a carrier (outbox row headers, Kafka record headers, a dramatiq message's options), `extract`
reads one back. The hops themselves: shop/http/middlewares.py (the gateway's server span),
shop/actors/observability.py (actors), shop/relay.py (publishing outbox rows) and
shop/streams/runner.py (stream agents); psycopg and redis get the official instrumentations.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping, Sequence

from opentelemetry import context, propagate, trace
from opentelemetry.trace import Span

import shop

log = logging.getLogger("shop.tracing")

TRACER_NAME = "shop"
# Where a dramatiq message carries its trace context: an option, kept across retries.
TRACE_OPTION = "trace_context"
_configured = False


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME, shop.__version__)


def export_configured(environ: Mapping[str, str]) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure_tracing(process: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Installs the SDK with an OTLP exporter for this process; True when spans are exported.
    Call it before opening database or Redis connections: the instrumentations patch their
    constructors."""
    global _configured
    if _configured or not export_configured(environ):
        return _configured
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create(
        {
            "service.name": environ.get("OTEL_SERVICE_NAME") or f"shop-{process}",
            "service.namespace": "shop",
            "service.version": shop.__version__,
            "service.instance.id": f"{socket.gethostname()}-{os.getpid()}",
        }
    )
    provider = TracerProvider(resource=resource)  # flushes at exit (shutdown_on_exit)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    # Statements as span names and attributes, never their parameters; no SQL comments appended.
    PsycopgInstrumentor().instrument(skip_dep_check=True, enable_commenter=False)
    RedisInstrumentor().instrument()
    _configured = True
    log.info("tracing: exporting spans of %s over OTLP", resource.attributes["service.name"])
    return True


def inject(carrier: dict[str, str] | None = None, of: context.Context | None = None) -> dict[str, str]:
    """The trace context (`of`, default the current one) as `traceparent` (and `tracestate`)
    entries of `carrier`."""
    carrier = {} if carrier is None else carrier
    propagate.inject(carrier, context=of)
    return carrier


def extract(carrier: Mapping[str, str] | None) -> context.Context:
    return propagate.extract(dict(carrier or {}))


def kafka_headers_carrier(
    headers: Sequence[tuple[str, str | bytes | None]] | Mapping[str, str | bytes | None] | None,
) -> dict[str, str]:
    """The trace entries of a Kafka record's headers, decoded."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers or []
    carrier: dict[str, str] = {}
    for key, value in pairs:
        if key in ("traceparent", "tracestate") and value is not None:
            carrier[key] = value.decode("latin-1") if isinstance(value, bytes) else value
    return carrier


def trace_id_of(span: Span) -> str | None:
    """The span's trace id as 32 hex digits, or None when it has none (no SDK and no caller's)."""
    span_context = span.get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


def traceresponse(span: Span) -> str | None:
    """The W3C Trace Context Level 2 `traceresponse` value naming this span, or None."""
    span_context = span.get_span_context()
    if not span_context.is_valid:
        return None
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{int(span_context.trace_flags):02x}"
