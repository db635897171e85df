"""Failures injected into the auth actors leave no secret in the stack's log: dramatiq logs a failed
message with its arguments, and PostgreSQL's error quotes the row it refused, so a failing
`register` or `verify_email` wrote the address, the Argon2 hash and the submitted code. The
messages are published straight to the stack's RabbitMQ, as the gateway would send them, with
arguments the actors fail on, and retried until they are dead-lettered. (The suite's last check,
in conftest, scans every stack's log for secrets as well.)"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

import dramatiq
import pika
from argon2 import PasswordHasher

from harness import mailpit
from tests.e2e.leaks import leaks
from tests.e2e.test_auth import PASSWORD, new_address, post

QUEUE = "auth"  # the auth actors' queue


def _publish(rabbitmq_url: str, actor: str, kwargs: dict[str, Any]) -> str:
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=QUEUE, actor_name=actor, args=(), kwargs=kwargs, options={}
    )
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url.split(",")[0]))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("", QUEUE, message.encode(), pika.BasicProperties(delivery_mode=2))
    finally:
        connection.close()
    return message.message_id


def _wait_until_given_up(stack, message_ids: Iterable[str], timeout: float = 90) -> None:
    """Until this stack tried each message and dramatiq stopped retrying it (it logs both with the
    message id only). Another stack on the same vhost may take some of the attempts: at least one
    must have been this stack's."""
    ids = set(message_ids)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = stack.output()
        tried = {m for m in ids if f"message '{m}'" in output}  # "Retrying message ..." or "Retries exceeded"
        given_up = {m for m in ids if f"Retries exceeded for message '{m}'" in output}
        if given_up == ids or (tried == ids and time.monotonic() > deadline - timeout / 2):
            return
        time.sleep(0.5)
    assert tried == ids, f"this stack never tried {ids - tried}"


def test_failing_auth_actors_log_no_address_hash_or_code(stack, settings):
    start = len(stack.output())
    # An account with a live code, so that verify_email gets as far as comparing it.
    email = new_address()
    assert post(stack, "/api/v1/auth/register", {"email": email, "password": PASSWORD}).status == 202
    code = mailpit.latest_code(email)
    password_hash = PasswordHasher().hash(PASSWORD)
    # Not lower case: the users table's CHECK (email = lower(email)) refuses the row, and
    # PostgreSQL's error quotes it: "Failing row contains (..., address, hash, ...)".
    shouting = f"User-{uuid.uuid4().hex[:12]}@Example.test"
    ids = {
        _publish(settings.rabbitmq_url, "register", {"email": shouting, "password_hash": password_hash}): (
            "register"
        ),
        # A code that is not a string: the code check raises (TypeError) instead of comparing.
        _publish(settings.rabbitmq_url, "verify_email", {"email": email, "code": int(code)}): "verify_email",
    }
    _wait_until_given_up(stack, ids)

    output = stack.output()
    for message_id, actor in ids.items():  # it did fail, and the lines say which message did
        assert f"Failed to process message {actor}({message_id})" in output, actor
    lines = output[start:].splitlines()
    about = [line for line in lines if any(m in line for m in ids) or "Failing row" in line]
    assert about, "no log line about the injected messages"
    for secret in (password_hash, password_hash.rsplit("$", 2)[1], password_hash.rsplit("$", 1)[1], PASSWORD):
        assert secret not in output, f"the log shows {secret!r}"
    assert shouting not in output
    assert shouting.lower() not in output
    assert email not in output
    # The code: in the lines about these messages (six digits may turn up by chance elsewhere).
    assert not [line for line in about if code in line], f"the code {code} in the log"
    assert leaks(lines, [PASSWORD], {code}, settings.auth.code_pepper) == []
