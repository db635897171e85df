"""deliver_email with a fake sender and a fake ledger: once per dedupe key, and never lost."""

from __future__ import annotations

import pytest

from shop.handlers.mail import DeliveryInProgress, SendEmail, deliver_email
from shop.mail.render import RenderedEmail, UnknownTemplate


class FakeSender:
    def __init__(self) -> None:
        self.sent: list[tuple[str, RenderedEmail, str]] = []
        self.failure: Exception | None = None

    def send(self, to: str, email: RenderedEmail, dedupe_key: str) -> None:
        if self.failure is not None:
            raise self.failure
        self.sent.append((to, email, dedupe_key))


class FakeLedger:
    """Keeps Redis's semantics: a set of sent keys and a map of guard tokens."""

    def __init__(self) -> None:
        self.sent: set[str] = set()
        self.guards: dict[str, str] = {}
        self._tokens = 0

    def already_sent(self, key: str) -> bool:
        return key in self.sent

    def claim(self, key: str) -> str | None:
        if key in self.guards:
            return None
        self._tokens += 1
        self.guards[key] = f"token-{self._tokens}"
        return self.guards[key]

    def record_sent(self, key: str) -> None:
        self.sent.add(key)

    def release(self, key: str, token: str) -> None:
        if self.guards.get(key) == token:
            del self.guards[key]


def command(key: str = "verification:u1:c1") -> SendEmail:
    return SendEmail(
        template="verification_code",
        to="ada@example.test",
        context={"code": "428913", "expires_minutes": 15},
        dedupe_key=key,
    )


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


@pytest.fixture
def ledger() -> FakeLedger:
    return FakeLedger()


def test_sends_the_rendered_email_once_and_records_it(sender, ledger):
    assert deliver_email(command(), sender, ledger) is True
    [(to, email, key)] = sender.sent
    assert to == "ada@example.test"
    assert key == "verification:u1:c1"
    assert "428913" in email.text
    assert "428913" in email.html
    assert ledger.sent == {"verification:u1:c1"}
    assert ledger.guards == {}, "the in-flight guard is released after sending"


def test_a_redelivery_after_success_is_skipped(sender, ledger):
    deliver_email(command(), sender, ledger)
    assert deliver_email(command(), sender, ledger) is False
    assert len(sender.sent) == 1


def test_another_dedupe_key_is_another_email(sender, ledger):
    deliver_email(command("k1"), sender, ledger)
    assert deliver_email(command("k2"), sender, ledger) is True
    assert len(sender.sent) == 2


def test_a_concurrent_delivery_of_the_same_key_raises_a_retryable_error(sender, ledger):
    ledger.claim("verification:u1:c1")  # another worker is sending it right now
    with pytest.raises(DeliveryInProgress):
        deliver_email(command(), sender, ledger)
    assert sender.sent == []
    assert ledger.sent == set()


def test_a_delivery_that_finished_between_check_and_claim_is_not_sent_again(sender):
    class RacingLedger(FakeLedger):
        """The other delivery records its success just after our first check."""

        def claim(self, key: str) -> str | None:
            self.sent.add(key)
            return super().claim(key)

    ledger = RacingLedger()
    assert deliver_email(command(), sender, ledger) is False
    assert sender.sent == []
    assert ledger.guards == {}


def test_an_smtp_failure_records_nothing_so_the_retry_sends(sender, ledger):
    sender.failure = ConnectionRefusedError(111, "Connection refused")
    with pytest.raises(ConnectionRefusedError):
        deliver_email(command(), sender, ledger)
    assert ledger.sent == set()
    assert ledger.guards == {}, "a failed attempt must not block its own retry"

    sender.failure = None
    assert deliver_email(command(), sender, ledger) is True
    assert len(sender.sent) == 1


def test_a_render_error_fails_before_taking_the_guard(sender, ledger):
    broken = SendEmail(template="nope", to="ada@example.test", context={}, dedupe_key="k")
    with pytest.raises(UnknownTemplate):
        deliver_email(broken, sender, ledger)
    assert ledger.guards == {}
    assert sender.sent == []


class LedgerThatLosesRedis(FakeLedger):
    """Redis goes away right after the SMTP server accepted the email."""

    def record_sent(self, key: str) -> None:
        raise ConnectionError("Redis went away")

    def release(self, key: str, token: str) -> None:
        raise ConnectionError("Redis went away")


def test_a_sent_email_counts_as_delivered_even_when_the_ledger_cannot_record_it(sender):
    # Raising would make the actor retry, and the retry would mail it a second time.
    assert deliver_email(command(), sender, LedgerThatLosesRedis()) is True
    assert len(sender.sent) == 1
