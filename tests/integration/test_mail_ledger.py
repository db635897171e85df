"""The mail ledger on the real PostgreSQL, with the real SMTP sender and Mailpit.

The guard of a delivery is its ledger row's lock, held for the whole SMTP exchange: a slow exchange
(a proxy in front of Mailpit holds each reply for most of the SMTP timeout) keeps a concurrent
delivery of the same email out however long it lasts; a delivery whose connection dies frees it;
the record is committed as soon as the server accepted the email, before the QUIT.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import smtplib
import socket
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from shop.db import mail as db
from shop.db.connections import primary_options
from shop.handlers.mail import DeliveryInProgress, SendEmail, deliver_email
from shop.mail.context import ContextResolver
from shop.mail.ledger import DeliveryLedger
from shop.mail.origins import LEDGER_DATABASES
from shop.mail.sender import NO_HOOKS, SmtpSender

MAILPIT = os.environ.get("SHOP_MAILPIT_URL", "http://127.0.0.1:8025")
SMTP_TIMEOUT = 0.5
FROM = "shop <no-reply@shop.test>"


class SlowSmtpProxy:
    """A TCP proxy in front of an SMTP server that holds every chunk the server sends for `delay`
    before passing it on; what the client sends goes through at once."""

    def __init__(self, target: tuple[str, int], delay: float) -> None:
        self._target = target
        self._delay = delay
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(self._target)
            threading.Thread(target=self._pump, args=(client, upstream, 0.0), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, self._delay), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, delay: float) -> None:
        try:
            while data := source.recv(65536):
                time.sleep(delay)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()


@pytest.fixture(scope="module")
def pools(settings) -> Iterator[dict[str, ConnectionPool]]:
    opened = {}
    for name in LEDGER_DATABASES:
        url = settings.databases[name].primary_url
        opened[name] = ConnectionPool(url, min_size=1, max_size=4, open=True, kwargs=primary_options(url))
    yield opened
    for pool in opened.values():
        pool.close()


@pytest.fixture(scope="module")
def ledger(pools) -> DeliveryLedger:
    return DeliveryLedger(pools)


@pytest.fixture
def keys(pools) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for pool in pools.values():
        with pool.connection() as conn:
            conn.execute("DELETE FROM mail_deliveries WHERE dedupe_key = ANY(%s)", (made,))


@pytest.fixture
def slow_smtp(settings) -> Iterator[SmtpSender]:
    """A sender whose every SMTP reply comes 0.8 timeouts late: one exchange lasts several timeouts."""
    proxy = SlowSmtpProxy((settings.smtp_host, settings.smtp_port), 0.8 * SMTP_TIMEOUT)
    yield SmtpSender("127.0.0.1", proxy.port, FROM, timeout=SMTP_TIMEOUT)
    proxy.close()


def verification(keys: list[str]) -> SendEmail:
    token = uuid.uuid4().hex[:12]
    keys.append(f"test-ledger:{token}")
    context = {"code": "482913", "expires_minutes": 10}
    return SendEmail("verification_code", f"{token}@example.test", context, f"test-ledger:{token}")


def mails_to(address: str) -> list[dict[str, Any]]:
    query = urllib.parse.quote(f'to:"{address}"')
    with urllib.request.urlopen(f"{MAILPIT}/api/v1/search?query={query}", timeout=5) as response:
        return list(json.load(response)["messages"])


def deliver(cmd: SendEmail, sender: SmtpSender, ledger: DeliveryLedger) -> str:
    return deliver_email(cmd, sender, ledger, ContextResolver("pepper"))


def row_of(pools: dict[str, ConnectionPool], database: str, key: str) -> tuple[Any, ...] | None:
    with pools[database].connection() as conn:
        return conn.execute(
            "SELECT sent_at, obsolete_at FROM mail_deliveries WHERE dedupe_key = %s", (key,)
        ).fetchone()


def test_a_slow_smtp_exchange_keeps_a_concurrent_delivery_of_the_same_email_out(ledger, slow_smtp, keys):
    cmd = verification(keys)
    outcomes: list[str] = []
    first = threading.Thread(target=lambda: outcomes.append(deliver(cmd, slow_smtp, ledger)))
    started = time.monotonic()
    first.start()
    # Past twice the SMTP timeout, where the Redis guard of before had expired mid-exchange.
    time.sleep(2 * SMTP_TIMEOUT + 0.25)
    with pytest.raises(DeliveryInProgress):
        deliver(cmd, slow_smtp, ledger)
    assert time.monotonic() - started < 4 * SMTP_TIMEOUT, "the concurrent delivery gave up at once"
    first.join(timeout=30)
    assert outcomes == ["sent"]
    assert time.monotonic() - started > 5 * SMTP_TIMEOUT, "the exchange lasted several SMTP timeouts"

    # The concurrent delivery's retry finds the email sent.
    assert deliver(cmd, slow_smtp, ledger) == "duplicate"
    time.sleep(0.5)
    assert len(mails_to(cmd.to)) == 1


def test_the_sent_email_is_on_record_before_the_smtp_exchange_ends(ledger, slow_smtp, pools, keys):
    cmd = verification(keys)
    recorded_at: list[float] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            row = row_of(pools, "auth", cmd.dedupe_key)
            if row is not None and row[0] is not None:
                recorded_at.append(time.monotonic())
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert deliver(cmd, slow_smtp, ledger) == "sent"
        returned_at = time.monotonic()
    finally:
        done.set()
        watcher.join()
    # The QUIT's reply alone comes 0.4 s after the server accepted the email.
    assert recorded_at, "sent_at was committed while the delivery ran"
    assert returned_at - recorded_at[0] > 0.2


def test_the_record_is_kept_in_the_database_of_the_emails_origin(ledger, pools, settings, keys):
    cmd = verification(keys)
    sender = SmtpSender(settings.smtp_host, settings.smtp_port, FROM, timeout=10)
    assert deliver(cmd, sender, ledger) == "sent"
    row = row_of(pools, "auth", cmd.dedupe_key)
    assert row is not None
    assert row[0] is not None
    assert row_of(pools, "orders", cmd.dedupe_key) is None


def _holder(settings, key: str) -> psycopg.Connection[Any]:
    """Another worker's delivery of `key`, in the middle of its SMTP exchange: its row locked."""
    conn = psycopg.connect(settings.databases["auth"].primary_url)
    db.lock_delivery(conn, key, "verification_code")
    return conn


@pytest.mark.parametrize("committed_before", [False, True], ids=["first delivery", "redelivery"])
def test_a_held_guard_turns_another_delivery_away_at_once(ledger, settings, pools, keys, committed_before):
    key = f"test-ledger:{uuid.uuid4().hex[:12]}"
    keys.append(key)
    if committed_before:  # sent before; another redelivery holds its row while it looks
        with pools["auth"].connection() as conn:
            conn.execute(
                "INSERT INTO mail_deliveries (dedupe_key, template, sent_at) VALUES (%s, 'x', now())", (key,)
            )
    holder = _holder(settings, key)
    try:
        started = time.monotonic()
        with pytest.raises(DeliveryInProgress), ledger.claim("auth", key, "verification_code"):
            pass
        assert time.monotonic() - started < 1.0
    finally:
        holder.rollback()
        holder.close()
    with ledger.claim("auth", key, "verification_code") as delivery:
        assert delivery.already_sent is committed_before


def test_a_delivery_whose_worker_died_frees_its_guard(ledger, settings, pools, keys):
    key = f"test-ledger:{uuid.uuid4().hex[:12]}"
    keys.append(key)
    holder = _holder(settings, key)
    with pytest.raises(DeliveryInProgress), ledger.claim("auth", key, "verification_code"):
        pass
    with pools["auth"].connection() as conn:  # the worker's connection goes away with the worker
        conn.execute("SELECT pg_terminate_backend(%s)", (holder.info.backend_pid,))
    deadline = time.monotonic() + 5
    while True:
        try:
            with ledger.claim("auth", key, "verification_code") as delivery:
                assert not delivery.already_sent
            break
        except DeliveryInProgress:
            assert time.monotonic() < deadline, "the dead delivery's guard was never released"
            time.sleep(0.05)
    holder.close()


class _Killed(BaseException):
    """The worker process dying (SIGKILL) at that moment: nothing after it runs."""


class _DiesBeforeTheAcceptanceIsRecorded(SmtpSender):
    """The real SMTP exchange, to the server's acceptance; then the process dies before recording it."""

    def send(self, to, email, dedupe_key, hooks=NO_HOOKS):
        def die() -> None:
            raise _Killed

        super().send(to, email, dedupe_key, dataclasses.replace(hooks, accepted=die))


def test_a_delivery_killed_after_the_server_took_the_email_is_not_mailed_twice(ledger, pools, settings, keys):
    """SMTP has no idempotency key: the server holds the email, the ledger does not know it. The
    delivery committed its hand-over before the final ".", so the redelivery takes the email as sent.
    (Before, a chaos run's SIGKILL of the mail workers mailed a completion twice.)"""
    cmd = verification(keys)
    dying = _DiesBeforeTheAcceptanceIsRecorded(settings.smtp_host, settings.smtp_port, FROM, timeout=10)
    with pytest.raises(_Killed):
        deliver(cmd, dying, ledger)
    sender = SmtpSender(settings.smtp_host, settings.smtp_port, FROM, timeout=10)
    assert deliver(cmd, sender, ledger) == "duplicate"
    time.sleep(0.5)
    assert len(mails_to(cmd.to)) == 1
    row = row_of(pools, "auth", cmd.dedupe_key)
    assert row is not None
    assert row[0] is not None  # the record settled: sent


def test_a_refusal_of_the_email_withdraws_its_hand_over(ledger, pools, keys):
    """A server that answers the final "." with an error does not hold the email: a retry sends."""
    cmd = verification(keys)
    refusing = _RefusingSmtpServer()
    try:
        sender = SmtpSender("127.0.0.1", refusing.port, FROM, timeout=5)
        with pytest.raises(smtplib.SMTPDataError):
            deliver(cmd, sender, ledger)
    finally:
        refusing.close()
    with pools["auth"].connection() as conn:
        row = conn.execute(
            "SELECT handed_over_at, sent_at FROM mail_deliveries WHERE dedupe_key = %s", (cmd.dedupe_key,)
        ).fetchone()
    assert row == (None, None)


class _RefusingSmtpServer:
    """A minimal SMTP server that takes everything up to the message and refuses the message (554)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"220 refusing ESMTP\r\n")
            in_data = False
            for line in lines:
                if in_data:
                    if line == b".\r\n":
                        conn.sendall(b"554 5.6.0 message refused\r\n")
                        in_data = False
                    continue
                command = line[:4].upper()
                if command == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    in_data = True
                elif command == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                elif command == b"EHLO":
                    conn.sendall(b"250 refusing\r\n")
                else:
                    conn.sendall(b"250 ok\r\n")

    def close(self) -> None:
        self._listener.close()
