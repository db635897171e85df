"""deliver_email with a fake sender and a fake ledger: once per dedupe key, never lost, never stale."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID, uuid4

import pytest
from jinja2 import UndefinedError

from shop.domain.auth import code_for
from shop.handlers.mail import DeliveryInProgress, SendEmail, deliver_email
from shop.mail.context import ContextResolver
from shop.mail.origins import UnknownOrigin
from shop.mail.render import RenderedEmail, UnknownTemplate
from shop.mail.sender import NO_HOOKS, SendHooks

PEPPER = "test-pepper"


class FakeSender:
    def __init__(self) -> None:
        self.sent: list[tuple[str, RenderedEmail, str]] = []
        self.failure: Exception | None = None
        self.failure_after_acceptance: Exception | None = None
        self.death_after_hand_over: BaseException | None = None  # the process killed after the "."

    def send(self, to: str, email: RenderedEmail, dedupe_key: str, hooks: SendHooks = NO_HOOKS) -> None:
        if self.failure is not None:
            raise self.failure
        if hooks.handing_over is not None:
            hooks.handing_over()
        self.sent.append((to, email, dedupe_key))
        if self.death_after_hand_over is not None:
            raise self.death_after_hand_over
        if hooks.accepted is not None:
            hooks.accepted()
        if self.failure_after_acceptance is not None:  # e.g. the QUIT timed out
            raise self.failure_after_acceptance


class FakeDelivery:
    def __init__(self, ledger: FakeLedger, origin: str, key: str) -> None:
        self._ledger, self._origin, self._key = ledger, origin, key
        self.already_sent = (origin, key) in ledger.sent
        self.already_obsolete = (origin, key) in ledger.obsolete
        self.already_handed_over = (origin, key) in ledger.handed_over

    def order_status(self, order_id: UUID) -> str | None:
        assert self._origin == "orders", "an order's status is read in the orders database"
        return self._ledger.orders.get(order_id)

    def record_sent(self) -> None:
        if self._ledger.lose_database:
            raise ConnectionError("PostgreSQL went away")
        self._ledger.sent.add((self._origin, self._key))

    def record_obsolete(self) -> None:
        self._ledger.obsolete.add((self._origin, self._key))

    def record_handed_over(self) -> None:
        self._ledger.handed_over.add((self._origin, self._key))

    def withdraw_hand_over(self) -> None:
        self._ledger.handed_over.discard((self._origin, self._key))


class FakeLedger:
    """Keeps PostgreSQL's semantics: rows by (database, dedupe key), and the row locks held now."""

    def __init__(self) -> None:
        self.sent: set[tuple[str, str]] = set()
        self.obsolete: set[tuple[str, str]] = set()
        self.handed_over: set[tuple[str, str]] = set()
        self.locked: set[tuple[str, str]] = set()
        self.orders: dict[UUID, str] = {}
        self.lose_database = False

    @contextmanager
    def claim(self, origin: str, dedupe_key: str, template: str) -> Iterator[FakeDelivery]:
        if (origin, dedupe_key) in self.locked:
            raise DeliveryInProgress(dedupe_key)
        self.locked.add((origin, dedupe_key))
        try:
            yield FakeDelivery(self, origin, dedupe_key)
        finally:
            self.locked.discard((origin, dedupe_key))


def command(key: str = "verification-code:c1", context: dict[str, object] | None = None) -> SendEmail:
    return SendEmail(
        template="verification_code",
        to="ada@example.test",
        context=context or {"code": "428913", "expires_minutes": 15},
        dedupe_key=key,
    )


def reminder(order_id: UUID) -> SendEmail:
    context = {
        "order_id": str(order_id),
        "total": "9.00",
        "currency": "EUR",
        "expires_at": "2026-11-26 10:00 UTC",
        "time_left": "7 hours",
        "reminder": 1,
        "lines": [],
    }
    return SendEmail("payment_reminder", "ada@example.test", context, f"order-reminder:{order_id}:reminder_1")


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


@pytest.fixture
def ledger() -> FakeLedger:
    return FakeLedger()


def deliver(cmd: SendEmail, sender: FakeSender, ledger: FakeLedger) -> str:
    return deliver_email(cmd, sender, ledger, ContextResolver(PEPPER))


def test_sends_the_rendered_email_once_and_records_it_in_its_origins_database(sender, ledger):
    assert deliver(command(), sender, ledger) == "sent"
    [(to, email, key)] = sender.sent
    assert to == "ada@example.test"
    assert key == "verification-code:c1"
    assert "428913" in email.text
    assert "428913" in email.html
    assert ledger.sent == {("auth", "verification-code:c1")}
    assert ledger.locked == set(), "the in-flight guard is released after sending"


def test_a_redelivery_after_success_is_skipped(sender, ledger):
    deliver(command(), sender, ledger)
    assert deliver(command(), sender, ledger) == "duplicate"
    assert len(sender.sent) == 1


def test_another_dedupe_key_is_another_email(sender, ledger):
    deliver(command("k1"), sender, ledger)
    assert deliver(command("k2"), sender, ledger) == "sent"
    assert len(sender.sent) == 2


def test_a_concurrent_delivery_of_the_same_key_raises_a_retryable_error(sender, ledger):
    ledger.locked.add(("auth", "verification-code:c1"))  # another worker is sending it right now
    with pytest.raises(DeliveryInProgress):
        deliver(command(), sender, ledger)
    assert sender.sent == []
    assert ledger.sent == set()


def test_an_smtp_failure_records_nothing_so_the_retry_sends(sender, ledger):
    sender.failure = ConnectionRefusedError(111, "Connection refused")
    with pytest.raises(ConnectionRefusedError):
        deliver(command(), sender, ledger)
    assert ledger.sent == set()
    assert ledger.locked == set(), "a failed attempt must not block its own retry"

    sender.failure = None
    assert deliver(command(), sender, ledger) == "sent"
    assert len(sender.sent) == 1


def test_an_error_after_acceptance_still_finds_the_email_recorded(sender, ledger):
    sender.failure_after_acceptance = TimeoutError("QUIT timed out")
    with pytest.raises(TimeoutError):
        deliver(command(), sender, ledger)
    assert ledger.sent == {("auth", "verification-code:c1")}
    sender.failure_after_acceptance = None
    assert deliver(command(), sender, ledger) == "duplicate"


def test_a_render_error_fails_before_taking_the_guard(sender, ledger):
    class NoClaims(FakeLedger):
        def claim(self, origin: str, dedupe_key: str, template: str):
            raise AssertionError("the guard was taken for a command that can never succeed")

    broken = SendEmail(template="nope", to="ada@example.test", context={}, dedupe_key="k")
    with pytest.raises(UnknownTemplate):
        deliver(broken, sender, NoClaims())
    with pytest.raises(UndefinedError):
        deliver(command(context={"expires_minutes": 15}), sender, NoClaims())
    assert sender.sent == []


def test_a_sent_email_counts_as_delivered_even_when_the_ledger_cannot_record_it(sender, ledger):
    # Raising would make the actor retry, and the retry would mail it a second time.
    ledger.lose_database = True
    assert deliver(command(), sender, ledger) == "sent"
    assert len(sender.sent) == 1


def test_each_email_is_recorded_in_the_database_of_the_context_it_comes_from(sender, ledger):
    order_id = uuid4()
    ledger.orders[order_id] = "PENDING"
    deliver(reminder(order_id), sender, ledger)
    notice = SendEmail("already_registered", "ada@example.test", {}, "notice:n1")
    deliver(notice, sender, ledger)
    cancelled = SendEmail("order_cancelled", "ada@example.test", {"order_id": "o", "reason": "r"}, "oc:o")
    deliver(cancelled, sender, ledger)
    assert ledger.sent == {
        ("orders", f"order-reminder:{order_id}:reminder_1"),
        ("auth", "notice:n1"),
        ("orders", "oc:o"),
    }


def test_an_origin_named_by_the_message_must_agree_with_its_template(sender, ledger):
    named = SendEmail("already_registered", "ada@example.test", {}, "notice:n2", origin="auth")
    assert deliver(named, sender, ledger) == "sent"
    misrouted = SendEmail("already_registered", "ada@example.test", {}, "notice:n3", origin="orders")
    with pytest.raises(UnknownOrigin):
        deliver(misrouted, sender, ledger)
    assert len(sender.sent) == 1


def test_a_payment_reminder_for_an_order_no_longer_pending_is_not_sent(sender, ledger):
    order_id = uuid4()
    ledger.orders[order_id] = "PAID"
    assert deliver(reminder(order_id), sender, ledger) == "obsolete"
    assert sender.sent == []
    assert ledger.obsolete == {("orders", f"order-reminder:{order_id}:reminder_1")}
    assert ledger.sent == set()
    assert deliver(reminder(order_id), sender, ledger) == "obsolete", "a redelivery stays unsent"
    assert sender.sent == []


@pytest.mark.parametrize("status", ["CANCELLED", "COMPLETED", None])
def test_a_payment_reminder_for_a_cancelled_completed_or_unknown_order_is_not_sent(sender, ledger, status):
    order_id = uuid4()
    if status is not None:
        ledger.orders[order_id] = status
    assert deliver(reminder(order_id), sender, ledger) == "obsolete"
    assert sender.sent == []


def test_a_payment_reminder_for_a_pending_order_is_sent(sender, ledger):
    order_id = uuid4()
    ledger.orders[order_id] = "PENDING"
    assert deliver(reminder(order_id), sender, ledger) == "sent"
    assert len(sender.sent) == 1


def test_a_verification_email_named_by_its_code_id_shows_the_derived_code(sender, ledger):
    code_id = uuid4()
    cmd = command(f"verification-code:{code_id}", {"code_id": str(code_id), "expires_minutes": 10})
    assert deliver(cmd, sender, ledger) == "sent"
    [(_, email, _)] = sender.sent
    assert code_for(PEPPER, code_id) in email.text
    assert code_for(PEPPER, code_id) in email.html
    assert str(code_id) not in email.text


class Killed(BaseException):
    """The worker process dying (SIGKILL): nothing after it runs, no handler catches it."""


def test_a_delivery_killed_after_handing_the_email_over_is_not_mailed_again(sender, ledger):
    """Killed after the server took the message but before its acceptance was recorded, a delivery
    leaves its hand-over behind: the redelivery takes the email as sent instead of mailing it twice
    (a chaos run's SIGKILL of the mail workers did, once in five runs)."""
    sender.death_after_hand_over = Killed()
    with pytest.raises(Killed):
        deliver(command(), sender, ledger)
    sender.death_after_hand_over = None
    assert deliver(command(), sender, ledger) == "duplicate"
    assert len(sender.sent) == 1
    assert ("auth", "verification-code:c1") in ledger.sent  # the record settled
