"""Structured logging for every process, with secrets scrubbed from every line."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from opentelemetry import trace

from shop.settings import redact

# Extra fields that the access log and handlers attach to records; the JSON format keeps them.
_EXTRA_FIELDS = ("request_id", "method", "path", "status", "duration_ms", "remote")


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        # Scrub the whole line, traceback included, whoever logged it (our code, psycopg, pika...).
        return redact(super().format(record))


_service = "shop"


def set_service(name: str) -> None:
    """The `service` of every JSON line from now on (the process: shop-gateway, shop-workers, ...)."""
    global _service
    _service = name


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the trace and span current when the line was logged, so a
    log line leads to its trace and a trace to its log lines."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": _service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        for key in _EXTRA_FIELDS:
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # pika logs every connection step at INFO; its warnings are what matter to an operator.
    logging.getLogger("pika").setLevel(logging.WARNING)
