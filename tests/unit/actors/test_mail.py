"""The mail actor's options and retry policy, without any server."""

from __future__ import annotations

import logging
import os
import smtplib
import subprocess
import sys

import dramatiq
import psycopg
import pytest
from dramatiq.brokers.stub import StubBroker
from jinja2 import UndefinedError
from psycopg_pool import PoolTimeout

from shop.actors.mail import QUEUE, AttemptFailed, declare_send_email, retry_policy
from shop.handlers.mail import DeliveryInProgress, MailDependencies
from shop.mail.origins import UnknownOrigin
from shop.mail.render import UnknownTemplate
from shop.settings import MailSettings

MAIL = MailSettings(
    from_address="shop <no-reply@shop.test>",
    smtp_timeout=10.0,
    max_retries=7,
    min_backoff=5.0,
    max_backoff=300.0,
)


def _never_built() -> MailDependencies:
    raise AssertionError("declaring the actor built its dependencies")


def test_the_actor_takes_its_queue_and_backoff_from_the_settings():
    broker = StubBroker()
    actor = declare_send_email(broker, MAIL, dependencies=_never_built)
    assert actor.actor_name == "send_email"
    assert actor.queue_name == QUEUE == "mail"
    assert actor.options["min_backoff"] == 5000  # dramatiq counts milliseconds
    assert actor.options["max_backoff"] == 300_000
    assert actor.options["max_retries"] == 7
    assert QUEUE in broker.get_declared_queues()


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out"),
        smtplib.SMTPServerDisconnected("gone"),
        smtplib.SMTPResponseException(451, b"try again later"),
        psycopg.OperationalError("connection to server failed"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        PoolTimeout("couldn't get a connection after 30.00 sec"),
        DeliveryInProgress("k"),
    ],
)
def test_transient_errors_are_retried_up_to_max_retries(error):
    should_retry = retry_policy(max_retries=3)
    assert [should_retry(n, error) for n in range(5)] == [True, True, True, False, False]


@pytest.mark.parametrize(
    "error",
    [
        UnknownTemplate("nope"),
        UndefinedError("'code' is undefined"),
        UnknownOrigin("no origin"),
        ValueError("badly formed hexadecimal UUID string"),
        psycopg.errors.UndefinedTable('relation "mail_deliveries" does not exist'),
        TypeError("bad args"),
        KeyError("x"),
    ],
)
def test_anything_else_is_dead_lettered_at_once(error):
    assert retry_policy(max_retries=3)(0, error) is False


def failed(cause: Exception) -> AttemptFailed:
    return AttemptFailed("verification:u1:c1", "verification_code", cause)


def test_a_failed_attempt_is_judged_by_its_cause():
    should_retry = retry_policy(max_retries=3)
    assert should_retry(0, failed(ConnectionRefusedError(111, "Connection refused"))) is True
    assert should_retry(0, failed(UnknownTemplate("nope"))) is False


def test_every_failure_is_logged_with_its_error_and_the_last_as_an_error(caplog):
    refused = failed(ConnectionRefusedError(111, "Connection refused"))
    with caplog.at_level(logging.INFO, logger="shop.actors.mail"):
        retry_policy(max_retries=2)(0, refused)
        retry_policy(max_retries=2)(2, refused)
        retry_policy(max_retries=2)(0, failed(UnknownTemplate("nope")))
    retried, exhausted, poison = caplog.records
    assert retried.levelno == logging.WARNING
    assert "attempt 1 of 3, retrying" in retried.getMessage()
    assert exhausted.levelno == logging.ERROR
    assert "'verification:u1:c1' (verification_code): ConnectionRefusedError" in exhausted.getMessage()
    assert "mail.XQ after 3 attempts" in exhausted.getMessage()
    assert poison.levelno == logging.ERROR
    assert "UnknownTemplate" in poison.getMessage()
    assert "without retry" in poison.getMessage()
    assert poison.exc_info is not None, "a broken command is logged with its traceback"


def test_a_failed_attempt_is_a_retry_so_dramatiq_does_not_log_the_arguments():
    # dramatiq's worker logs every exception but Retry with the message's arguments (a code).
    assert isinstance(failed(ValueError("x")), dramatiq.Retry)
    assert "428913" not in str(failed(UndefinedError("'expires_minutes' is undefined")))


def test_declaring_every_actor_needs_no_server():
    # Nothing answers on port 1: a declaration that connected anywhere would fail or hang.
    env = {
        **os.environ,
        "SHOP_RABBITMQ_URL": "amqp://x:y@127.0.0.1:1/none",
        "SHOP_REDIS_URL": "redis://127.0.0.1:1/0",
        "SHOP_SMTP_PORT": "1",
    }
    code = (
        "from shop import bootstrap; settings = bootstrap.load_settings(); "
        "_, actors = bootstrap.build_broker(settings, bootstrap.build_dependencies(settings)); "
        "print(actors.send_email.queue_name)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "mail"


def test_the_actor_builds_its_dependencies_on_its_first_message_not_when_declared():
    calls: list[str] = []

    def dependencies():
        calls.append("built")
        raise ConnectionRefusedError(111, "Connection refused")

    broker = StubBroker()
    actor = declare_send_email(broker, MAIL, dependencies=dependencies)
    assert calls == []
    with pytest.raises(AttemptFailed) as failure:
        actor.fn("verification_code", "ada@example.test", {"code": "428913", "expires_minutes": 15}, "k")
    assert calls == ["built"]
    assert isinstance(failure.value.cause, ConnectionRefusedError)


def test_each_outcome_is_counted_by_template():
    from uuid import uuid4

    from shop.actors.mail import MAIL_DELIVERIES
    from shop.handlers.mail import MailDependencies
    from shop.mail.context import ContextResolver
    from tests.unit.handlers.test_mail import FakeLedger, FakeSender, reminder

    ledger, sender = FakeLedger(), FakeSender()
    paid, pending = uuid4(), uuid4()
    ledger.orders.update({paid: "PAID", pending: "PENDING"})
    needs = MailDependencies(sender, ledger, ContextResolver("pepper"))
    actor = declare_send_email(StubBroker(), MAIL, dependencies=lambda: needs)

    def count(outcome: str) -> float:
        return MAIL_DELIVERIES.labels("payment_reminder", outcome)._value.get()

    before = {outcome: count(outcome) for outcome in ("sent", "duplicate", "obsolete")}
    for order_id in (paid, pending, pending):
        cmd = reminder(order_id)
        actor.fn(cmd.template, cmd.to, dict(cmd.context), cmd.dedupe_key)
    assert {outcome: count(outcome) - before[outcome] for outcome in before} == {
        "sent": 1,
        "duplicate": 1,
        "obsolete": 1,
    }
    assert len(sender.sent) == 1
