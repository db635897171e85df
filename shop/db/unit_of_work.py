"""The unit of work: one transaction on a context's primary, and the outbox rows written in it.

Handlers do their reads and writes through `uow.conn` and queue messages with `publish_event` /
`enqueue_actor`, which also record the current trace context in the row's headers. The rows are
inserted just before the commit, in the same transaction, so a message exists if and only if the
state change that caused it was committed. After the commit a `NOTIFY outbox` wakes the relay (see
the migrations' `outbox_notify_after_commit` for why it is not sent inside the transaction); if it
is lost, the relay's poll finds the rows a moment later.

A unit of work may be entered again while it is open (a command actor opens it to look up and
record the command's answer, and the handler it calls enters it too): the inner `with` joins the
outer transaction, and only the outermost exit commits or rolls back.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from types import TracebackType
from typing import Any
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool

from shop.db.outbox import KAFKA, NOTIFY_CHANNEL, RABBITMQ, OutboxMessage, insert_messages
from shop.observability.tracing import inject

log = logging.getLogger("shop.outbox")


class UnitOfWork:
    def __init__(self, pool: ConnectionPool, track_lsn: bool = False) -> None:
        self._pool = pool
        self._track_lsn = track_lsn
        self.messages: list[OutboxMessage] = []
        self.committed = False
        # The primary's WAL position just after the commit: a replica that has replayed up to it
        # shows this unit's writes (read-your-writes for the caller).
        self.commit_lsn: str | None = None
        self._depth = 0  # how many `with` blocks are open on this unit
        self._notifications: list[tuple[str, str]] = []

    def __enter__(self) -> UnitOfWork:
        self._depth += 1
        if self._depth > 1:
            return self
        self._conn_cm = self._pool.connection()
        self.conn: psycopg.Connection[Any] = self._conn_cm.__enter__()
        # Pipeline mode: a statement whose result nobody reads is sent without waiting for its
        # answer, so a unit's writes and its COMMIT cost one round trip instead of one each (the
        # inventory agent: 250 -> 520 reservations/s). Reading a result (fetchone, RETURNING) waits
        # for everything sent before it, and so does the end of the pipeline, which is where a
        # failed write or COMMIT raises. Hence no `rowcount` in shop/db (it is unknown until then).
        self._pipeline = self.conn.pipeline()
        self._pipeline.__enter__()
        self._tx = self.conn.transaction()
        self._tx.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._depth -= 1
        if self._depth:
            return  # an inner block: the outermost one decides
        failure: BaseException | None = None
        try:
            try:
                if exc is None and self.messages:
                    try:
                        insert_messages(self.conn, self.messages)
                    except BaseException as insert_failure:
                        # A statement queued before may fail here (pipeline mode reports a failure
                        # where it is read): the transaction must still be rolled back, not left.
                        failure = insert_failure
                        exc_type, exc, tb = type(failure), failure, failure.__traceback__
                self._tx.__exit__(exc_type, exc, tb)  # commits, or rolls back on an exception
            finally:
                self._pipeline.__exit__(exc_type, exc, tb)  # sends what is queued; raises its failure
            self.committed = exc is None
            if self.committed:
                self._after_commit()
        finally:
            self._conn_cm.__exit__(exc_type, exc, tb)
        if failure is not None:
            raise failure

    def notify_after_commit(self, channel: str, payload: str) -> None:
        """A `NOTIFY channel, payload` sent once this unit committed (not if it rolls back)."""
        self._notifications.append((channel, payload))

    def _after_commit(self) -> None:
        """The relay's wake-up (when rows were written), the notifications asked for and the commit's
        WAL position (when tracked), in one round trip in autocommit mode: a transaction with no
        writes, so no WAL flush, and none left open on the connection. Committed already: a failure
        here must not look like a failed unit (a retry would do the work again); without the wake-up
        the relay's poll finds the rows, without the position the caller reads the primary."""
        notifications = [(NOTIFY_CHANNEL, "")] if self.messages else []
        notifications += self._notifications
        if not notifications and not self._track_lsn:
            return
        columns = ["pg_notify(%s, %s)"] * len(notifications)
        if self._track_lsn:
            columns.append("pg_current_wal_lsn()::text")
        autocommit = self.conn.autocommit
        try:
            self.conn.autocommit = True
            row = self.conn.execute(
                f"SELECT {', '.join(columns)}", [value for pair in notifications for value in pair]
            ).fetchone()
            if self._track_lsn and row is not None:
                self.commit_lsn = row[-1]
        except psycopg.Error as exc:
            log.warning("committed, but could not notify or read the commit's WAL position: %s", exc)
        finally:
            if not self.conn.closed:
                self.conn.autocommit = autocommit

    def publish_event(
        self, event_id: UUID, topic: str, key: str, payload: Any, headers: dict[str, str] | None = None
    ) -> None:
        """A Kafka record, carrying the current trace context (`traceparent`) for the relay."""
        self.messages.append(OutboxMessage(event_id, KAFKA, topic, key, payload, inject(dict(headers or {}))))

    def enqueue_actor(
        self,
        message_id: UUID,
        queue: str,
        actor_name: str,
        kwargs: dict[str, Any],
        delay: timedelta | None = None,
    ) -> None:
        """A dramatiq message for `actor_name`, sent by the relay once this transaction committed.

        With `delay`, the relay sends it to the RabbitMQ queue of that delay, which hands it on to
        `queue` when the delay is over (see `shop.actors.broker.delay_queue_name`).
        """
        payload: dict[str, Any] = {"actor_name": actor_name, "args": [], "kwargs": kwargs}
        if delay is not None:
            payload["delay_ms"] = round(delay.total_seconds() * 1000)
        self.messages.append(OutboxMessage(message_id, RABBITMQ, queue, None, payload, inject()))
