"""The mail actor's options and retry policy, without any server."""

from __future__ import annotations

import logging
import os
import smtplib
import subprocess
import sys

import pytest
import redis
from dramatiq.brokers.stub import StubBroker
from jinja2 import UndefinedError

from shop.actors.mail import QUEUE, declare_send_email, retry_policy
from shop.handlers.mail import DeliveryInProgress
from shop.mail.render import UnknownTemplate
from shop.settings import MailSettings

MAIL = MailSettings(
    from_address="shop <no-reply@shop.test>",
    smtp_timeout=10.0,
    max_retries=7,
    min_backoff=5.0,
    max_backoff=300.0,
)


def test_the_actor_takes_its_queue_and_backoff_from_the_settings():
    broker = StubBroker()
    actor = declare_send_email(broker, MAIL)
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
        redis.ConnectionError("redis down"),
        redis.TimeoutError("redis slow"),
        DeliveryInProgress("k"),
    ],
)
def test_transient_errors_are_retried_up_to_max_retries(error):
    should_retry = retry_policy(max_retries=3)
    assert [should_retry(n, error) for n in range(5)] == [True, True, True, False, False]


@pytest.mark.parametrize(
    "error",
    [UnknownTemplate("nope"), UndefinedError("'code' is undefined"), TypeError("bad args"), KeyError("x")],
)
def test_anything_else_is_dead_lettered_at_once(error):
    assert retry_policy(max_retries=3)(0, error) is False


def test_the_final_failure_is_logged_with_its_error(caplog):
    error = ConnectionRefusedError(111, "Connection refused")
    error.add_note("email 'k1', template 'verification_code'")
    with caplog.at_level(logging.ERROR, logger="shop.actors.mail"):
        retry_policy(max_retries=2)(2, error)
        retry_policy(max_retries=2)(0, UnknownTemplate("nope"))
    first, second = (r.getMessage() for r in caplog.records)
    assert "mail.XQ after 3 attempts" in first
    assert "ConnectionRefusedError" in first
    assert "'k1'" in first
    assert "without retry" in second
    assert "UnknownTemplate" in second


def test_a_retried_failure_is_not_logged_as_final(caplog):
    with caplog.at_level(logging.ERROR, logger="shop.actors.mail"):
        retry_policy(max_retries=2)(0, ConnectionRefusedError(111, "Connection refused"))
    assert caplog.records == []


def test_importing_the_actors_needs_no_server():
    # Nothing answers on port 1: an import that connected anywhere would fail or hang.
    env = {
        **os.environ,
        "SHOP_RABBITMQ_URL": "amqp://x:y@127.0.0.1:1/none",
        "SHOP_REDIS_URL": "redis://127.0.0.1:1/0",
        "SHOP_SMTP_PORT": "1",
    }
    code = "import shop.actors.registry, shop.actors.mail as m; print(m.send_email.queue_name)"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "mail"
