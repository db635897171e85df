"""The log scan that ends the e2e suite (tests/e2e/leaks.py) finds what it looks for."""

from __future__ import annotations

import json

from tests.e2e.leaks import leaks

JWT = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlc2lnbmF0dXJl"


def _line(message: str) -> str:
    record = {"ts": "2026-12-07T10:00:00.123456+00:00", "level": "info", "message": message}
    return "gateway | " + json.dumps(record)


def test_every_kind_of_secret_is_found():
    lines = [
        _line("login for ada@example.test with password correct horse battery staple"),
        _line(f"Authorization: Bearer {JWT}"),
        _line("refresh rt_" + "x" * 43),
        _line("connecting to postgresql://auth:s3cret@127.0.0.1:5432/auth"),
        _line("pepper development-only-pepper"),
        _line("verification code 482913 sent"),
        "Traceback (most recent call last): password=correct horse battery staple",
    ]
    found = leaks(lines, ["correct horse battery staple"], {"482913"}, "development-only-pepper")
    assert len(found) == len(lines)


def test_what_is_not_a_secret_passes():
    lines = [
        _line("connecting to postgresql://auth:***@127.0.0.1:5432/auth"),
        _line("GET /api/v1/orders/01a24ff9-88cd-7bfa-85d1-20603be83074 200 4.1ms"),
        _line("relay published 482913 rows"),  # a number like a code, but not about a code
        _line("http://127.0.0.1:59339/readyz answered"),
    ]
    assert leaks(lines, ["correct horse battery staple"], {"482913"}, "development-only-pepper") == []


HASH = "$argon2id$v=19$m=19456,t=2,p=1$91NsK18TtVzYdauaDnGv8g$nvE88vsXlqZ2g1Q0eW7wZJ8mO1kq3vJ3mG4x5y6z7a8"


def test_argon2_hashes_and_test_account_addresses_are_found():
    lines = [
        # What dramatiq wrote of a failed message before its arguments were kept out of the logs.
        _line(
            "Failed to process message "
            f"register(email='user-c047b30bc651@example.test', password_hash='{HASH}')"
        ),
        _line(f"Failing row contains (1, x, {HASH}, {{customer}})"),
        _line("Failed to process message verify_email(email='user-ba036afe4471@example.test', code=1)"),
        "workers | DETAIL:  Key (email)=(Ada@Example.TEST) already exists.",
    ]
    found = leaks(lines, [], set(), "development-only-pepper")
    assert len(found) == len(lines)
    assert "an Argon2 hash" in found[0]
    assert "a test account's address" in found[0]
    assert "an Argon2 hash" in found[1]
    assert "a test account's address" in found[2]


def test_what_the_logs_write_instead_passes():
    lines = [
        _line(
            "Failed to process message register(0b4c8a8e-5a4e-4c1b-9d6e-2f5b3c1d7e9a) "
            "with unhandled exception."
        ),
        _line("Failing row contains (1, <email>, $argon2id$***, {customer})"),
        _line("mail from shop <no-reply@shop.test>"),
    ]
    assert leaks(lines, [], set(), "development-only-pepper") == []
