from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shop.domain.auth import (
    CODE_TTL,
    MAX_CODE_ATTEMPTS,
    CodeOutcome,
    CodeState,
    InvalidEmail,
    InvalidPassword,
    check_code,
    check_password_policy,
    codes_match,
    cooldown_remaining,
    hash_code,
    looks_like_code,
    new_code,
    normalize_email,
)

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def fresh_code(clock: FakeClock) -> CodeState:
    return CodeState(expires_at=clock.now + CODE_TTL, attempts=0, burnt=False)


def test_the_right_code_verifies_until_it_expires():
    clock = FakeClock()
    state = fresh_code(clock)
    clock.advance(minutes=9, seconds=59)
    assert check_code(state, matches=True, now=clock.now).outcome is CodeOutcome.VERIFIED
    clock.advance(seconds=1)
    assert check_code(state, matches=True, now=clock.now).outcome is CodeOutcome.EXPIRED


def test_the_fifth_wrong_try_burns_the_code_and_then_even_the_right_one_fails():
    clock = FakeClock()
    state = fresh_code(clock)
    for attempt in range(1, MAX_CODE_ATTEMPTS + 1):
        result = check_code(state, matches=False, now=clock.now)
        assert result.outcome is CodeOutcome.WRONG
        assert result.attempts == attempt
        assert result.burn is (attempt == MAX_CODE_ATTEMPTS)
        state = CodeState(state.expires_at, result.attempts, result.burn)
    assert check_code(state, matches=True, now=clock.now).outcome is CodeOutcome.BURNT


def test_four_wrong_tries_still_leave_the_right_code_valid():
    clock = FakeClock()
    state = CodeState(clock.now + CODE_TTL, attempts=MAX_CODE_ATTEMPTS - 1, burnt=False)
    assert check_code(state, matches=True, now=clock.now).verified


def test_an_expired_wrong_code_does_not_count_an_attempt():
    clock = FakeClock()
    state = fresh_code(clock)
    clock.advance(minutes=11)
    result = check_code(state, matches=False, now=clock.now)
    assert result.outcome is CodeOutcome.EXPIRED
    assert result.attempts == 0


def test_resend_cooldown_is_one_minute_rounded_up():
    clock = FakeClock()
    sent = clock.now
    assert cooldown_remaining(None, clock.now) == 0
    assert cooldown_remaining(sent, clock.now) == 60
    clock.advance(seconds=59.2)
    assert cooldown_remaining(sent, clock.now) == 1
    clock.advance(seconds=0.8)
    assert cooldown_remaining(sent, clock.now) == 0


def test_codes_are_six_digits_and_hashed_per_user():
    code = new_code()
    assert looks_like_code(code)
    alice, bob = uuid.uuid4(), uuid.uuid4()
    stored = hash_code("pepper", alice, code)
    assert code not in stored
    assert codes_match(stored, "pepper", alice, code)
    assert not codes_match(stored, "pepper", bob, code)
    assert not codes_match(stored, "other pepper", alice, code)


@pytest.mark.parametrize("code", ["12345", "1234567", "12a456", " 123456", "123456\n", "", "１２３４５６"])
def test_malformed_codes_are_recognised(code):
    assert not looks_like_code(code)


@pytest.mark.parametrize(
    ("raw", "normal"), [("  Alice@Example.COM ", "alice@example.com"), ("a.b+c@d.co", "a.b+c@d.co")]
)
def test_emails_are_normalised(raw, normal):
    assert normalize_email(raw) == normal


@pytest.mark.parametrize(
    "raw", ["", "alice", "alice@", "@example.com", "a@b", "a b@c.de", "a@@b.de", "x" * 250 + "@a.de"]
)
def test_bad_emails_are_refused(raw):
    with pytest.raises(InvalidEmail):
        normalize_email(raw)


CONTROLS = [chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]]


@pytest.mark.parametrize("control", CONTROLS, ids=[f"U+{ord(c):04X}" for c in CONTROLS])
def test_a_control_character_anywhere_in_an_address_is_refused(control):
    # Inside the local part, the domain and its last label; at the very end too, unless it is
    # whitespace that trimming removes (tested below).
    inside = [f"a{control}b@example.com", f"ab@exa{control}mple.com", f"ab@example.c{control}om"]
    at_the_end = [] if control.isspace() else [f"{control}ab@example.com", f"ab@example.com{control}"]
    for raw in inside + at_the_end:
        with pytest.raises(InvalidEmail):
            normalize_email(raw)


def test_whitespace_around_an_address_is_trimmed_never_kept():
    assert normalize_email("\t a@b.co\x1f\x85\u3000\n") == "a@b.co"


def _all_characters(category: str) -> list[str]:
    return [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == category]


@pytest.mark.parametrize("category", ["Cc", "Cf", "Zs", "Zl", "Zp"])
def test_every_invisible_character_of_the_unicode_database_is_refused_inside_an_address(category):
    # The rule is spelled as character classes (so the API's JSON Schema can state it too): they
    # must cover every control, format and space character this Python knows.
    allowed = [c for c in _all_characters(category) if email_accepted(f"ab@exa{c}mple.com")]
    assert allowed == []


def email_accepted(raw: str) -> bool:
    try:
        normalize_email(raw)
    except InvalidEmail:
        return False
    return True


def test_the_length_limit_counts_the_address_as_sent():
    address = "a" * 240 + "@example.com"  # 252 characters
    assert normalize_email(address) == address
    assert not email_accepted(address + "   ")  # 255 as sent, though 252 once trimmed
    assert not email_accepted("a" * 243 + "@example.com")


@pytest.mark.parametrize("password", ["x" * 9, "x" * 129, ""])
def test_passwords_outside_10_to_128_characters_are_refused(password):
    with pytest.raises(InvalidPassword):
        check_password_policy(password)


@pytest.mark.parametrize("password", ["x" * 10, "x" * 128, "ünïcødé-pässwörd"])
def test_passwords_within_bounds_pass(password):
    check_password_policy(password)


def test_a_code_is_derived_from_its_record_and_the_pepper():
    from shop.domain.auth import code_for

    code_id = uuid.uuid4()
    code = code_for("pepper", code_id)
    assert looks_like_code(code)
    assert code_for("pepper", code_id) == code  # the mail worker derives the same code again
    # Another record or another pepper gives, but for one chance in a million, another code.
    others = {code_for("pepper", uuid.uuid4()) for _ in range(50)} | {
        code_for(f"p{n}", code_id) for n in range(50)
    }
    assert len(others) > 90
