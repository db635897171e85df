"""Security checks through the gateway: every forged token on every authenticated route, the limits
on guessing codes and passwords, answers (and their timing) that do not tell known addresses from
unknown ones. The last check of the suite — no secret in any log line — is in tests/e2e/conftest.py."""

from __future__ import annotations

import statistics
import time
import uuid

import pytest

from harness import mailpit
from harness.http import request
from shop.http.routing import ROUTES, Access
from tests.e2e.test_auth import PASSWORD, assert_error, new_address, post, register_and_verify
from tests.e2e.test_token_attacks import _attacks, keyring  # noqa: F401  # the fixture

AUTHENTICATED = [spec for spec in ROUTES if spec.access is not Access.ANYONE]


def test_the_routing_table_has_authenticated_routes_of_every_kind():
    assert {spec.access for spec in AUTHENTICATED} == {Access.CUSTOMER, Access.OWNER, Access.ADMIN}


@pytest.mark.parametrize("spec", AUTHENTICATED, ids=lambda s: f"{s.method} {s.path}")
def test_every_forged_token_is_401_on_every_authenticated_route(stack, keyring, spec):  # noqa: F811
    path = spec.path
    for name in ("product_id", "order_id", "placement_id"):
        path = path.replace(f"{{{name}}}", str(uuid.uuid4()))
    body = b"{}" if spec.method in ("POST", "PATCH") else None
    for attack, token in _attacks(keyring).items():
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        response = request(spec.method, stack.url("gateway", path), body, headers)
        assert response.status == 401, (spec.path, attack, response.status, response.body[:200])
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), (spec.path, attack)
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}):
        response = request(spec.method, stack.url("gateway", path), body, headers)
        assert response.status == 401, (spec.path, headers, response.status)


def test_guessing_a_verification_code_stops_at_five_tries_even_with_the_right_one_after(stack):
    email = new_address()
    assert post(stack, "/api/v1/auth/register", {"email": email, "password": PASSWORD}).status == 202
    code = mailpit.latest_code(email)
    guesses = [f"{(int(code) + n) % 1_000_000:06d}" for n in range(1, 6)]
    for guess in guesses:
        assert_error(post(stack, "/api/v1/auth/verify", {"email": email, "code": guess}), 400, "invalid_code")
    assert_error(post(stack, "/api/v1/auth/verify", {"email": email, "code": code}), 400, "invalid_code")
    login = post(stack, "/api/v1/auth/login", {"email": email, "password": PASSWORD})
    assert_error(login, 403, "email_not_verified")


def test_failed_logins_for_one_account_are_throttled_right_password_included(stack, settings):
    email = new_address()
    register_and_verify(stack, email)
    limit = settings.auth.login_failures_per_account_per_hour
    for n in range(limit):
        wrong = post(stack, "/api/v1/auth/login", {"email": email, "password": f"wrong password {n}"})
        assert_error(wrong, 401, "invalid_credentials")
    throttled = post(stack, "/api/v1/auth/login", {"email": email, "password": PASSWORD})
    assert throttled.status == 429, throttled.body
    assert int(throttled.headers["Retry-After"]) > 0
    # Another account is not affected.
    other = new_address()
    register_and_verify(stack, other)
    assert post(stack, "/api/v1/auth/login", {"email": other, "password": PASSWORD}).status == 200


def _median_ms(stack, path: str, bodies: list[dict]) -> float:
    times = []
    for body in bodies:
        started = time.perf_counter()
        post(stack, path, body)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def test_known_and_unknown_addresses_take_comparable_time(stack):
    """A wrong password for a real account costs the same Argon2 verification as any password for an
    address nobody has: the medians stay within a factor of two (it would be ~20x without the dummy
    verification)."""
    known = new_address()
    register_and_verify(stack, known)
    rounds = 15
    known_ms = _median_ms(
        stack,
        "/api/v1/auth/login",
        [{"email": known, "password": f"wrong {n} password"} for n in range(rounds)],
    )
    unknown_ms = _median_ms(
        stack, "/api/v1/auth/login", [{"email": new_address(), "password": PASSWORD} for _ in range(rounds)]
    )
    assert 0.5 < known_ms / unknown_ms < 2.0, (known_ms, unknown_ms)
