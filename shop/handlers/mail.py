"""Deliver one email: render it, send it over SMTP at most once per dedupe key, as far as we can tell.

The broker delivers at least once, so the same `SendEmail` may arrive again after the SMTP server
accepted it (a worker died before its ack, the relay resent an outbox row). The ledger, in the
database the email comes from, remembers accepted dedupe keys so such a redelivery sends no second
copy; a delivery holds its key's guard for its whole SMTP exchange, so two concurrent deliveries of
one key cannot both send. A payment reminder is checked against its order under that guard: a
reminder decided while the order was PENDING may reach us after the customer paid.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from uuid import UUID

from shop.domain.orders import Status
from shop.mail.ledger import DeliveryInProgress
from shop.mail.origins import origin_of
from shop.mail.render import RenderedEmail, render
from shop.mail.sender import NO_HOOKS, SendHooks

log = logging.getLogger(__name__)

__all__ = ["DeliveryInProgress", "MailDependencies", "SendEmail", "deliver_email"]

Outcome = Literal["sent", "duplicate", "obsolete"]


@dataclass(frozen=True)
class SendEmail:
    template: str
    to: str
    context: Mapping[str, Any]
    # Chosen by the sender of the command, the same for every redelivery of one email
    # (e.g. "verification-code:<code id>").
    dedupe_key: str
    # The context whose database keeps the email's ledger; by default its template's (shop.mail.origins).
    origin: str | None = None


class EmailSender(Protocol):
    def send(self, to: str, email: RenderedEmail, dedupe_key: str, hooks: SendHooks = NO_HOOKS) -> None: ...


class Delivery(Protocol):
    """A delivery's hold on its dedupe key (shop.mail.ledger.Delivery)."""

    @property
    def already_sent(self) -> bool: ...

    @property
    def already_obsolete(self) -> bool: ...

    @property
    def already_handed_over(self) -> bool: ...

    def record_handed_over(self) -> None: ...

    def withdraw_hand_over(self) -> None: ...

    def order_status(self, order_id: UUID) -> str | None: ...

    def record_sent(self) -> None: ...

    def record_obsolete(self) -> None: ...


class Ledger(Protocol):
    def claim(self, origin: str, dedupe_key: str, template: str) -> AbstractContextManager[Delivery]: ...


class ContextResolver(Protocol):
    def resolve(self, template: str, context: Mapping[str, Any]) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class MailDependencies:
    """What `deliver_email` needs, built once per process (shop.bootstrap.build_dependencies)."""

    sender: EmailSender
    ledger: Ledger
    contexts: ContextResolver


def deliver_email(cmd: SendEmail, sender: EmailSender, ledger: Ledger, contexts: ContextResolver) -> Outcome:
    """Send `cmd`'s email unless it was sent before or no longer holds; what became of it.

    Raises `DeliveryInProgress` when another delivery of the same key is under way, the sender's and
    the database's errors (nothing is recorded, so a retry sends), and render errors
    (`UnknownTemplate`, jinja2's `UndefinedError`, `UnknownOrigin`, `ValueError`) for a command that
    can never succeed.
    """
    # Rendered before taking the guard: a broken command fails without blocking anyone.
    email = render(cmd.template, contexts.resolve(cmd.template, cmd.context))
    origin = origin_of(cmd.template, cmd.origin)
    with ledger.claim(origin, cmd.dedupe_key, cmd.template) as delivery:
        if delivery.already_sent:
            log.info("email %s already sent; skipping the redelivery", cmd.dedupe_key)
            return "duplicate"
        if delivery.already_handed_over:
            # An earlier delivery handed the message over and died before the server's answer was
            # recorded: the server most likely holds it. Taken as sent, rather than mailed twice.
            log.warning(
                "email %s was handed over by a delivery that did not finish; taking it as sent",
                cmd.dedupe_key,
            )
            _record_sent(delivery, cmd.dedupe_key)
            return "duplicate"
        if delivery.already_obsolete or not _still_true(cmd, delivery):
            if not delivery.already_obsolete:
                delivery.record_obsolete()
            log.info("email %s (%s) no longer holds; not sent", cmd.dedupe_key, cmd.template)
            return "obsolete"
        hooks = SendHooks(
            handing_over=delivery.record_handed_over,
            refused=delivery.withdraw_hand_over,
            accepted=lambda: _record_sent(delivery, cmd.dedupe_key),
        )
        sender.send(cmd.to, email, cmd.dedupe_key, hooks)
    log.info("email %s (%s) sent", cmd.dedupe_key, cmd.template)
    return "sent"


def _still_true(cmd: SendEmail, delivery: Delivery) -> bool:
    """Whether what the email says still holds. Only a payment reminder can go stale in its queue:
    the order was PENDING when the reminder fired, the customer may have paid since."""
    if cmd.template != "payment_reminder":
        return True
    return delivery.order_status(UUID(str(cmd.context["order_id"]))) == Status.PENDING


def _record_sent(delivery: Delivery, dedupe_key: str) -> None:
    try:
        delivery.record_sent()
    except Exception as exc:  # it is sent: failing now would retry, and mail it twice
        log.warning("email %s sent, but the ledger could not record it: %s", dedupe_key, exc)
