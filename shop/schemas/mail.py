"""The mail command: the message a context queues, through its outbox, for the `send_email` actor.

Its fields are the actor's keyword arguments (shop/actors/mail.py `send_email`, decoded there into
shop.handlers.mail.SendEmail): `template`, `to`, `context`, `dedupe_key`, and `origin` only when the
producer names one (shop.mail.origins decides it from the template otherwise). A dramatiq message
carries no schema version, so a new field is optional and the actor accepts it before any producer
sends it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shop.names import MAIL_QUEUE, SEND_EMAIL


@dataclass(frozen=True)
class MailCommand:
    """Where the command goes and what it says: the arguments of `UnitOfWork.enqueue_actor` but the
    message id, which the producer chooses."""

    queue: str
    actor_name: str
    kwargs: dict[str, Any]


def encode_send_email(
    template: str, to: str, context: Mapping[str, Any], dedupe_key: str, origin: str | None = None
) -> MailCommand:
    """One email to `to`. `dedupe_key` names the change that caused it, the same for every
    redelivery, so that the mail worker sends it once."""
    kwargs: dict[str, Any] = {
        "template": template,
        "to": to,
        "context": dict(context),
        "dedupe_key": dedupe_key,
    }
    if origin is not None:
        kwargs["origin"] = origin
    return MailCommand(MAIL_QUEUE, SEND_EMAIL, kwargs)
