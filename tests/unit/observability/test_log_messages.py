"""No argument of an actor message reaches a log line, whatever fails: dramatiq's own lines about a
failed message (its worker logs the message, whose text is `actor(*args, **kwargs)`, and the
traceback), and exceptions that quote the arguments (PostgreSQL's "Failing row contains (...)").
And no Argon2 hash in any line, whoever logs it."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage

from shop.observability.logs import ActorMessageArguments, JsonFormatter, TextFormatter, configure_logging

EMAIL = "Ada.Lovelace@Example.test"
HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g"
CODE = "482913"


@pytest.fixture(params=["text", "json"])
def captured(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """Every line the processes' logging setup writes, at DEBUG (dramatiq logs a received message
    there too)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("DEBUG", request.param)
    stream = io.StringIO()
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        yield stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def _run_failing_actors() -> None:
    broker = StubBroker()
    broker.add_middleware(CurrentMessage())  # as every broker of the shop's has it
    broker.emit_after("process_boot")

    @dramatiq.actor(broker=broker, queue_name="auth", max_retries=1, min_backoff=1, max_backoff=1)
    def register(email: str, password_hash: str) -> None:
        logging.getLogger("shop.test").info("registering %s", email)  # the actor's own line
        raise RuntimeError(
            f"new row violates check constraint\nDETAIL: Failing row contains (1, {email}, {password_hash})"
        )

    @dramatiq.actor(broker=broker, queue_name="auth", max_retries=0)
    def verify_email(email: str, code: object) -> None:
        raise TypeError(f"code must be a string, not {code!r} for {email!r}")

    worker = dramatiq.Worker(broker, worker_timeout=10)
    worker.start()
    try:
        register.send(EMAIL, HASH)
        verify_email.send_with_options(kwargs={"email": EMAIL, "code": int(CODE)})
        verify_email.send(EMAIL, {"nested": [CODE]})
        broker.join("auth", fail_fast=False)
        worker.join()
    finally:
        worker.stop()
        broker.close()


def test_a_failing_actor_logs_none_of_its_arguments(captured):
    _run_failing_actors()
    text = captured.getvalue()
    assert "Failed to process message register(" in text  # the line is there, only without secrets
    assert "Traceback" in text or '"exc"' in text
    for secret in (EMAIL, HASH, HASH.split("$")[-1], CODE, "argon2id$v="):
        assert secret not in text, f"{secret!r} in the log:\n{text}"
    assert "<email>" in text  # where the address was quoted, what it was is still said


def _record(msg: object, args: object = (), exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord("dramatiq.worker", logging.ERROR, __file__, 1, msg, args, exc_info)  # type: ignore[arg-type]


def _message() -> dramatiq.Message[object]:
    return dramatiq.Message(
        queue_name="auth",
        actor_name="register",
        args=(),
        kwargs={"email": EMAIL, "password_hash": HASH},
        options={},
        message_id="m-1",
    )


def test_a_message_is_named_by_its_actor_and_id():
    record = _record("Failed to process message %s (%r).", (_message(), _message()))
    assert ActorMessageArguments().filter(record)
    assert record.getMessage() == "Failed to process message register(m-1) (register(m-1))."


def test_the_traceback_of_a_line_about_a_message_is_scrubbed():
    try:
        raise RuntimeError(f"Failing row contains ({EMAIL!r}, {json.dumps(HASH)})")
    except RuntimeError:
        record = _record("Failed to process message %s.", (_message(),), sys.exc_info())
    ActorMessageArguments().filter(record)
    for formatter in (TextFormatter(), JsonFormatter()):
        line = formatter.format(record)
        assert EMAIL not in line
        assert "c2FsdHNhbHRzYWx0" not in line
        assert "<email>" in line


def test_mapping_arguments_and_a_message_as_the_line_itself():
    record = _record("failed: %(message)s", ({"message": _message()},))
    ActorMessageArguments().filter(record)
    assert record.getMessage() == "failed: register(m-1)"
    record = _record(_message())
    ActorMessageArguments().filter(record)
    assert record.getMessage() == "register(m-1)"


def test_a_line_that_cannot_be_formatted_still_is_one_and_shows_nothing():
    record = _record("%d items for %s", ("many", _message()))
    assert ActorMessageArguments().filter(record)
    assert EMAIL not in record.getMessage()


def test_short_values_stay():
    message: dramatiq.Message[object] = dramatiq.Message(
        queue_name="orders", actor_name="place", args=("EUR",), kwargs={"n": 1}, options={}, message_id="m-2"
    )
    record = _record("place %s: 1 line in EUR", (message,))
    ActorMessageArguments().filter(record)
    assert record.getMessage() == "place place(m-2): 1 line in EUR"


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()], ids=["text", "json"])
def test_no_argon2_hash_in_any_line(formatter):
    line = formatter.format(
        logging.LogRecord("psycopg", logging.WARNING, __file__, 1, "row (%s, %s)", (EMAIL, HASH), None)
    )
    assert "c2FsdHNhbHRzYWx0" not in line
    assert "aGFzaGhhc2g" not in line
    assert "$argon2id$***" in line
