"""The mail actor: `send_email` on queue `mail`.

Failures are retried by dramatiq's Retries middleware with exponential backoff and jitter
(`SHOP_MAIL_MIN_BACKOFF` doubling up to `SHOP_MAIL_MAX_BACKOFF`), but only transient ones: an
unreachable SMTP server or Redis, or another worker delivering the same email. Anything else (an
unknown template, a context missing a field) can never succeed and is dead-lettered to `mail.XQ`
at once. Every dead-lettering is logged at ERROR with the error that caused it.

The actor is declared on the current global broker at import (its options come from the settings,
read then): `shop run workers` sets the broker and the environment first. Tests declare it on a
broker of their own with `declare_send_email`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import dramatiq
import redis

from shop import bootstrap
from shop.handlers.mail import DeliveryInProgress, SendEmail, deliver_email
from shop.mail.ledger import RedisSentLedger
from shop.settings import MailSettings

QUEUE = "mail"
DEAD_LETTER_QUEUE = f"{QUEUE}.XQ"

log = logging.getLogger(__name__)

# smtplib.SMTPException is an OSError, as are refused connections and socket timeouts.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    redis.ConnectionError,
    redis.TimeoutError,
    DeliveryInProgress,
)


def _send_email(template: str, to: str, context: dict[str, Any], dedupe_key: str) -> None:
    settings = bootstrap.process_settings()
    # Twice the SMTP timeout: a live delivery keeps the guard, a dead worker's guard soon expires.
    ledger = RedisSentLedger(bootstrap.redis_client(), in_flight_ttl=2 * settings.mail.smtp_timeout)
    command = SendEmail(template=template, to=to, context=context, dedupe_key=dedupe_key)
    try:
        deliver_email(command, bootstrap.mail_sender(), ledger)
    except Exception as exc:
        # Names the email in dramatiq's failure log and in ours, without the context (it may hold a code).
        exc.add_note(f"email {dedupe_key!r}, template {template!r}")
        raise


def retry_policy(max_retries: int) -> Callable[[int, BaseException], bool]:
    """dramatiq's `retry_when`: retry transient errors up to `max_retries` times, log the end."""

    def should_retry(retries: int, exc: BaseException) -> bool:
        # `retries` counts the earlier failures of this message, so this was attempt retries + 1.
        if not isinstance(exc, TRANSIENT_ERRORS):
            log.error("email dead-lettered to %s without retry: %s", DEAD_LETTER_QUEUE, _describe(exc))
            return False
        if retries >= max_retries:
            log.error(
                "email dead-lettered to %s after %d attempts: %s",
                DEAD_LETTER_QUEUE,
                retries + 1,
                _describe(exc),
            )
            return False
        return True

    return should_retry


def _describe(exc: BaseException) -> str:
    notes = "; ".join(getattr(exc, "__notes__", ()))
    return f"{type(exc).__name__}: {exc}" + (f" ({notes})" if notes else "")


def _milliseconds(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def declare_send_email(
    broker: dramatiq.Broker, mail: MailSettings
) -> dramatiq.Actor[[str, str, dict[str, Any], str], None]:
    """Register `send_email` on `broker` with the retry options of `mail`."""
    register = dramatiq.actor(
        broker=broker,
        actor_name="send_email",
        queue_name=QUEUE,
        # Retries consults retry_when instead of max_retries when both are set; the bound lives in
        # the policy, max_retries is kept for on_retry_exhausted payloads and for readers.
        max_retries=mail.max_retries,
        retry_when=retry_policy(mail.max_retries),
        # Per-message min_backoff/max_backoff (send_with_options) override these.
        min_backoff=_milliseconds(mail.min_backoff),
        max_backoff=_milliseconds(mail.max_backoff),
    )
    return register(_send_email)


send_email = declare_send_email(dramatiq.get_broker(), bootstrap.process_settings().mail)
