from __future__ import annotations

import json
import logging

from shop.observability.logs import JsonFormatter, TextFormatter


def _record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("t", logging.INFO, __file__, 1, msg, args, None)


def test_text_lines_hide_passwords_even_in_arguments():
    line = TextFormatter().format(_record("connecting to %s", "postgresql://orders:hunter2@db/orders"))
    assert "hunter2" not in line
    assert "postgresql://orders:***@db/orders" in line


def test_json_lines_are_json_and_hide_passwords():
    record = _record("url=%s", "amqp://shop:topsecret@mq/shop")
    record.request_id = "abc"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "url=amqp://shop:***@mq/shop"
    assert entry["request_id"] == "abc"
    assert entry["level"] == "info"


def test_tracebacks_are_scrubbed_too():
    try:
        raise RuntimeError("cannot reach redis://:pw123@cache:6379")
    except RuntimeError:
        import sys

        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert "pw123" not in TextFormatter().format(record)
    assert "pw123" not in JsonFormatter().format(record)


def test_json_lines_name_the_service_and_the_current_trace_and_span():
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    from shop.observability.logs import set_service

    set_service("shop-test")
    outside = json.loads(JsonFormatter().format(_record("no trace here")))
    assert outside["service"] == "shop-test"
    assert "trace_id" not in outside
    span = NonRecordingSpan(SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(1)))
    with trace.use_span(span):
        inside = json.loads(JsonFormatter().format(_record("in a span")))
    assert inside["trace_id"] == f"{0xABC:032x}"
    assert inside["span_id"] == f"{0xDEF:016x}"
    set_service("shop")
