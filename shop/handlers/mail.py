"""Deliver one email: render it, send it over SMTP at most once per dedupe key, as far as we can tell.

The broker delivers at least once, so the same `SendEmail` may arrive again after the SMTP server
accepted it (a worker died before its ack, the relay resent an outbox row). The ledger remembers
accepted dedupe keys so such a redelivery sends no second copy; its in-flight guard keeps two
concurrent deliveries of one key from both sending.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from shop.mail.render import RenderedEmail, render

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendEmail:
    template: str
    to: str
    context: Mapping[str, Any]
    # Chosen by the sender of the command, the same for every redelivery of one email
    # (e.g. "verification:<user id>:<code id>").
    dedupe_key: str


class DeliveryInProgress(Exception):
    """Another delivery of this dedupe key holds the in-flight guard; try again later."""

    def __init__(self, dedupe_key: str) -> None:
        super().__init__(f"email {dedupe_key!r} is being delivered by another worker")
        self.dedupe_key = dedupe_key


class EmailSender(Protocol):
    def send(self, to: str, email: RenderedEmail, dedupe_key: str) -> None: ...


class SentLedger(Protocol):
    def already_sent(self, key: str) -> bool: ...

    def claim(self, key: str) -> str | None: ...

    def record_sent(self, key: str) -> None: ...

    def release(self, key: str, token: str) -> None: ...


def deliver_email(cmd: SendEmail, sender: EmailSender, ledger: SentLedger) -> bool:
    """Send `cmd`'s email unless it was sent before. True when sent, False when skipped.

    Raises `DeliveryInProgress` when another delivery of the same key is under way, the sender's
    errors when SMTP fails (nothing is recorded, so a retry sends), and render errors
    (`UnknownTemplate`, jinja2's `UndefinedError`) for a command that can never succeed.
    """
    if ledger.already_sent(cmd.dedupe_key):
        log.info("email %s already sent; skipping the redelivery", cmd.dedupe_key)
        return False
    # Rendered before taking the guard: a broken command fails without blocking anyone.
    email = render(cmd.template, cmd.context)
    token = ledger.claim(cmd.dedupe_key)
    if token is None:
        raise DeliveryInProgress(cmd.dedupe_key)
    try:
        # Checked again under the guard: another delivery may have finished since the first check.
        if ledger.already_sent(cmd.dedupe_key):
            log.info("email %s already sent; skipping the redelivery", cmd.dedupe_key)
            return False
        sender.send(cmd.to, email, cmd.dedupe_key)
        # Right after acceptance: the window in which a crash leads to a second copy stays tiny.
        try:
            ledger.record_sent(cmd.dedupe_key)
        except Exception as exc:  # it is sent: failing now would retry, and mail it twice
            log.warning("email %s sent, but the ledger could not record it: %s", cmd.dedupe_key, exc)
    finally:
        try:
            ledger.release(cmd.dedupe_key, token)
        except Exception as exc:  # the guard expires on its own
            log.warning("could not release the guard of email %s: %s", cmd.dedupe_key, exc)
    log.info("email %s (%s) sent", cmd.dedupe_key, cmd.template)
    return True
