"""The mail actor: `send_email` on queue `mail`.

Failures are retried by dramatiq's Retries middleware with exponential backoff and jitter
(`SHOP_MAIL_MIN_BACKOFF` doubling up to `SHOP_MAIL_MAX_BACKOFF`), but only transient ones: an
unreachable SMTP server or PostgreSQL (the mail ledger), or another worker delivering the same
email. Anything else (an unknown template, a context missing a field) can never succeed and is
dead-lettered to `mail.XQ` at once. Each failed attempt is logged (WARNING while it will be
retried, ERROR with the error when the message is dead-lettered), by dedupe key and template: never
with the context, which may hold a verification code.

The actor is declared on a broker with the process's dependencies (`declare`, called by
shop.actors.registry): its retry options come from their mail settings, and its own dependencies
(the SMTP sender, the ledger's database pools, the pepper that derives verification codes) are made
on its first message, so declaring it connects to nothing. Tests declare it on a broker of their
own with `declare_send_email`.

Message kwargs: template, to, context, dedupe_key, and optionally origin (shop.mail.origins).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import dramatiq
import psycopg
from dramatiq.common import xq_name
from prometheus_client import Counter

from shop.dependencies import Dependencies
from shop.handlers.mail import DeliveryInProgress, MailDependencies, SendEmail, deliver_email
from shop.names import MAIL_QUEUE, SEND_EMAIL
from shop.settings import MailSettings

QUEUE = MAIL_QUEUE
DEAD_LETTER_QUEUE = xq_name(QUEUE)

log = logging.getLogger(__name__)

MAIL_DELIVERIES = Counter(
    "shop_mail_deliveries_total",
    "Emails by what became of them: sent, duplicate (sent before; skipped), obsolete (no longer true,"
    " e.g. a reminder for a paid order; skipped), retried (a failed attempt that will be tried again)"
    " or dead_lettered",
    ["template", "outcome"],
)

# smtplib.SMTPException is an OSError, as are refused connections and socket timeouts. A database
# that is away, restarting or failing over raises OperationalError (psycopg_pool's PoolTimeout too).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    psycopg.OperationalError,
    DeliveryInProgress,
)


class AttemptFailed(dramatiq.Retry):
    """One failed attempt at an email; the error is `cause` (and `__cause__`).

    Raised as a `Retry` because dramatiq's worker logs any other exception together with the
    message's arguments, and a verification code must not reach the logs. Whether the message is
    really retried is still decided by `retry_policy`, from the cause.
    """

    def __init__(self, dedupe_key: str, template: str, cause: Exception) -> None:
        super().__init__(f"email {dedupe_key!r} ({template}): {type(cause).__name__}: {cause}")
        self.dedupe_key = dedupe_key
        self.template = template
        self.cause = cause


def retry_policy(
    max_retries: int, dead_letter_queue: str = DEAD_LETTER_QUEUE
) -> Callable[[int, BaseException], bool]:
    """dramatiq's `retry_when`: retry transient errors up to `max_retries` times, and log each
    failure (the worker does not: see `AttemptFailed`)."""

    def should_retry(retries: int, exc: BaseException) -> bool:
        cause = exc.cause if isinstance(exc, AttemptFailed) else exc
        template = exc.template if isinstance(exc, AttemptFailed) else "unknown"
        # `retries` counts the earlier failures of this message, so this was attempt retries + 1.
        attempt = retries + 1
        if not isinstance(cause, TRANSIENT_ERRORS):
            # A broken command: the traceback shows where, the arguments stay out of the log.
            log.error("%s; dead-lettered to %s without retry", exc, dead_letter_queue, exc_info=cause)
            MAIL_DELIVERIES.labels(template, "dead_lettered").inc()
            return False
        if retries >= max_retries:
            log.error("%s; dead-lettered to %s after %d attempts", exc, dead_letter_queue, attempt)
            MAIL_DELIVERIES.labels(template, "dead_lettered").inc()
            return False
        log.warning("%s; attempt %d of %d, retrying", exc, attempt, max_retries + 1)
        MAIL_DELIVERIES.labels(template, "retried").inc()
        return True

    return should_retry


def _milliseconds(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def declare_send_email(
    broker: dramatiq.Broker,
    mail: MailSettings,
    dependencies: Callable[[], MailDependencies],
    queue_name: str = QUEUE,
) -> dramatiq.Actor[..., None]:
    """Register `send_email` on `broker` with the retry options of `mail`.

    `queue_name` is for tests: a queue of their own keeps the workers of a running stack (which
    consume `mail`) from taking their messages. `dependencies` is called on each message (cache it):
    importing the actor must open no connection.
    """

    def send_email(
        template: str, to: str, context: dict[str, Any], dedupe_key: str, origin: str | None = None
    ) -> None:
        command = SendEmail(template, to, context, dedupe_key, origin)
        try:
            needs = dependencies()
            outcome = deliver_email(command, needs.sender, needs.ledger, needs.contexts)
        except Exception as exc:
            raise AttemptFailed(dedupe_key, template, exc) from exc
        MAIL_DELIVERIES.labels(template, outcome).inc()

    register = dramatiq.actor(
        broker=broker,
        actor_name=SEND_EMAIL,
        queue_name=queue_name,
        # Retries consults retry_when instead of max_retries when both are set; the bound lives in
        # the policy, max_retries is kept for on_retry_exhausted payloads and for readers.
        max_retries=mail.max_retries,
        retry_when=retry_policy(mail.max_retries, xq_name(queue_name)),
        # Per-message min_backoff/max_backoff (send_with_options) override these.
        min_backoff=_milliseconds(mail.min_backoff),
        max_backoff=_milliseconds(mail.max_backoff),
    )
    return register(send_email)


def declare(broker: dramatiq.Broker, needs: Dependencies) -> dramatiq.Actor[..., None]:
    return declare_send_email(broker, needs.mail_settings, needs.mail)
