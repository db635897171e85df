"""The trace-context helpers every hop uses, and when the SDK is switched on."""

from __future__ import annotations

from opentelemetry import context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from shop.observability.tracing import (
    export_configured,
    extract,
    inject,
    kafka_headers_carrier,
    trace_id_of,
    traceresponse,
)

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_spans_are_exported_only_when_an_otlp_endpoint_is_configured():
    assert not export_configured({})
    assert export_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert export_configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    assert not export_configured({**endpoint, "OTEL_SDK_DISABLED": "true"})
    assert not export_configured({**endpoint, "OTEL_TRACES_EXPORTER": "none"})


def test_a_context_extracted_from_a_carrier_is_injected_unchanged_without_an_sdk():
    # No SDK installed in unit tests: a caller's context still travels through every hop.
    remote = extract({"traceparent": TRACEPARENT})
    assert inject({}, remote) == {"traceparent": TRACEPARENT}
    token = context.attach(remote)
    try:
        assert inject({"event_id": "e1"}) == {"event_id": "e1", "traceparent": TRACEPARENT}
    finally:
        context.detach(token)
    assert inject({}) == {}  # no current trace: nothing is written


def test_kafka_headers_give_their_trace_entries_whatever_their_shape():
    as_list = [("event_id", b"e1"), ("traceparent", TRACEPARENT.encode()), ("tracestate", None)]
    assert kafka_headers_carrier(as_list) == {"traceparent": TRACEPARENT}
    assert kafka_headers_carrier({"traceparent": TRACEPARENT, "x": b"y"}) == {"traceparent": TRACEPARENT}
    assert kafka_headers_carrier(None) == {}


def test_traceresponse_and_trace_id_name_the_span():
    span = NonRecordingSpan(SpanContext(0x1234, 0x5678, is_remote=False, trace_flags=TraceFlags(1)))
    assert traceresponse(span) == f"00-{0x1234:032x}-{0x5678:016x}-01"
    assert trace_id_of(span) == f"{0x1234:032x}"
    assert traceresponse(trace.INVALID_SPAN) is None
    assert trace_id_of(trace.INVALID_SPAN) is None
