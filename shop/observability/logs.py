"""Structured logging for every process, with secrets scrubbed from every line.

Two layers. Every line, whoever logged it, loses the passwords of URLs and any Argon2 hash. And the
arguments of actor messages never reach a line: dramatiq logs a failed message with its arguments
(`register(email, password_hash)`, `verify_email(email, code)`), and an exception can quote them
(PostgreSQL's "Failing row contains (...)"), so `ActorMessageArguments` names each message by its
actor and id instead, and replaces its argument values wherever they appear in a line that logs a
message or is logged while one is being processed.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import CurrentMessage
from opentelemetry import trace

from shop.settings import redact as redact_urls

# $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash> (and the argon2i/argon2d variants).
_ARGON2_HASH = re.compile(r"\$argon2(?:id|i|d)\$(?:[\w+/=]|[,$](?=[\w+/=]))*")


def redact(text: str) -> str:
    """`text` without the passwords of URLs and without Argon2 hashes."""
    return _ARGON2_HASH.sub("$argon2id$***", redact_urls(text))


# Argument values shorter than this are left in place: replacing "1" or "EUR" everywhere would
# mangle the line and hide nothing (a code is 6 digits, an address or a password longer).
_MIN_SCRUBBED = 4


class _Named:
    """How a message shows in a log line: its actor and id, never its arguments."""

    def __init__(self, message: Any) -> None:
        self._text = f"{message.actor_name}({message.message_id})"

    def __str__(self) -> str:
        return self._text

    __repr__ = __str__


def _is_message(value: object) -> bool:
    return isinstance(value, dramatiq.Message | MessageProxy)


def _argument_values(message: Any) -> Iterator[tuple[str, str]]:
    """(placeholder, text) for every argument value long enough to scrub, nested ones too."""
    pending: list[tuple[str, Any]] = [(f"<arg{n}>", v) for n, v in enumerate(message.args or ())]
    pending += [(f"<{name}>", v) for name, v in (message.kwargs or {}).items()]
    while pending:
        placeholder, value = pending.pop()
        if isinstance(value, Mapping):
            pending += [(placeholder, v) for v in value.values()]  # keys are names, not secrets
        elif isinstance(value, list | tuple | set | frozenset):
            pending += [(placeholder, v) for v in value]
        elif value is not None and not isinstance(value, bool):
            text = str(value)
            # As written, and as repr() and JSON would escape it inside an exception's text.
            for form in {text, repr(text)[1:-1], json.dumps(text)[1:-1]}:
                if len(form) >= _MIN_SCRUBBED:
                    yield placeholder, form


class ActorMessageArguments(logging.Filter):
    """Keeps the arguments of dramatiq messages out of log lines (see the module's notes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._hide_arguments(record)
        except Exception:  # a filter that raises would fail the caller's log call
            record.msg, record.args = "(a line about an actor message that could not be formatted)", None
            record.exc_info = record.exc_text = record.stack_info = None
        return True

    def _hide_arguments(self, record: logging.LogRecord) -> None:
        messages = []
        if _is_message(record.msg):
            messages.append(record.msg)
            record.msg = _Named(record.msg)
        if isinstance(record.args, tuple):
            messages += [a for a in record.args if _is_message(a)]
            record.args = tuple(_Named(a) if _is_message(a) else a for a in record.args)
        elif isinstance(record.args, Mapping):
            messages += [a for a in record.args.values() if _is_message(a)]
            record.args = {k: _Named(a) if _is_message(a) else a for k, a in record.args.items()}
        current = CurrentMessage.get_current_message()
        if current is not None:
            messages.append(current)
        if messages:
            self._scrub(record, messages)

    @staticmethod
    def _scrub(record: logging.LogRecord, messages: list[Any]) -> None:
        values = sorted(
            {pair for message in messages for pair in _argument_values(message)},
            key=lambda pair: len(pair[1]),
            reverse=True,  # the longest first: an address before the shorter text inside it
        )

        def scrubbed(text: str) -> str:
            for placeholder, value in values:
                text = text.replace(value, placeholder)
            return text

        record.msg, record.args = scrubbed(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrubbed(record.exc_text)
        if record.stack_info:
            record.stack_info = scrubbed(record.stack_info)


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
        if record.exc_text:  # a filter formatted (and scrubbed) the traceback already
            entry["exc"] = record.exc_text
        elif record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    # On the handler, so that it sees the records of every logger (dramatiq's included).
    handler.addFilter(ActorMessageArguments())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # pika logs every connection step at INFO; its warnings are what matter to an operator.
    logging.getLogger("pika").setLevel(logging.WARNING)
