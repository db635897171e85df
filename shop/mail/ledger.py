"""Which emails the SMTP server accepted, in PostgreSQL, and which are being sent right now.

The record lives in `mail_deliveries` of the database the email comes from (shop.mail.origins):
it outlives any loss of Redis, and shares the durability of the change that caused the email.

The in-flight guard is that record's row lock, held by the delivering transaction for the whole
SMTP exchange, however many SMTP timeouts it takes: a concurrent delivery of the same key finds the
row locked and raises `DeliveryInProgress` (retried later) instead of sending a second copy. A
delivery whose worker dies releases it with its connection. Once the server accepted the email,
`record_sent` writes and commits at once, which also releases the guard.

SMTP has no idempotency key: a delivery killed after the server took the message but before its
acceptance was recorded leaves no trace of it, and its redelivery mails a second copy (a chaos run's
SIGKILL of the mail workers did, about one run in five). So the delivery also commits the moment it
hands the message over (`record_handed_over`, just before the final "."), and a redelivery that finds
a hand-over without an acceptance takes the email as sent. The window for a second copy is gone;
what is left is a window of microseconds (the "." not yet written when the process dies) in which an
email could be lost instead, and a server that answers the "." with an error withdraws the hand-over.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool

from shop.db import mail as db
from shop.mail.origins import UnknownOrigin

log = logging.getLogger(__name__)


class DeliveryInProgress(Exception):
    """Another delivery of this dedupe key holds the in-flight guard; try again later."""

    def __init__(self, dedupe_key: str) -> None:
        super().__init__(f"email {dedupe_key!r} is being delivered by another worker")
        self.dedupe_key = dedupe_key


class Delivery:
    """One delivery's hold on its dedupe key: an open transaction holding the key's row lock."""

    def __init__(self, conn: psycopg.Connection[Any], dedupe_key: str, record: db.DeliveryRecord) -> None:
        self._conn = conn
        self._key = dedupe_key
        self.already_sent = record.sent_at is not None
        self.already_obsolete = record.obsolete_at is not None
        # An earlier delivery got as far as the final "." and was never heard of again (killed):
        # the server may well hold the email.
        self.already_handed_over = record.handed_over_at is not None

    def order_status(self, order_id: UUID) -> str | None:
        """Read in the transaction that holds the guard (the ledger of the orders database)."""
        return db.order_status(self._conn, order_id)

    def record_sent(self) -> None:
        """Commits at once: every moment between acceptance and commit is a window for a second copy."""
        db.record_sent(self._conn, self._key)
        self._conn.commit()

    def record_handed_over(self) -> None:
        """Commits, just before the message's final "." goes to the server: from here on a
        redelivery takes the email as sent. (This ends the transaction and with it the row lock: a
        concurrent delivery that takes the row now sees the hand-over and sends nothing.)"""
        db.record_handed_over(self._conn, self._key)
        self._conn.commit()

    def withdraw_hand_over(self) -> None:
        """The server answered the "." with an error: it does not hold the email, so a retry sends."""
        db.record_handed_over(self._conn, self._key, handed_over=False)
        self._conn.commit()

    def record_obsolete(self) -> None:
        db.record_obsolete(self._conn, self._key)
        self._conn.commit()


class DeliveryLedger:
    def __init__(self, pools: Mapping[str, ConnectionPool]) -> None:
        """`pools`: a primary pool per database with a mail ledger, by context name."""
        self._pools = pools

    @contextmanager
    def claim(self, origin: str, dedupe_key: str, template: str) -> Iterator[Delivery]:
        """Hold the in-flight guard of `dedupe_key` in `origin`'s database while the block runs.

        Raises `DeliveryInProgress` when another delivery holds it. Whatever the block did not record
        is rolled back when it ends (a first delivery's row with it), which releases the guard.
        """
        pool = self._pools.get(origin)
        if pool is None:
            raise UnknownOrigin(f"no mail ledger for origin {origin!r}")
        with pool.connection() as conn:
            try:
                record = db.lock_delivery(conn, dedupe_key, template)
            except psycopg.errors.LockNotAvailable as exc:
                conn.rollback()
                raise DeliveryInProgress(dedupe_key) from exc
            try:
                yield Delivery(conn, dedupe_key, record)
            finally:
                _roll_back_quietly(conn, dedupe_key)


def _roll_back_quietly(conn: psycopg.Connection[Any], dedupe_key: str) -> None:
    # After a commit this does nothing. On a broken connection (the database went away mid-send) it
    # must not hide what happened before; the server rolls back on its own, and the pool discards it.
    if conn.closed:
        return
    try:
        conn.rollback()
    except psycopg.Error as exc:
        log.warning("could not roll back the delivery of email %s: %s", dedupe_key, exc)
