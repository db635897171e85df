"""Registration, verification and login through the gateway, with the code read from Mailpit."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest

from harness import mailpit
from harness.http import Response, request
from harness.stack import ShopStack

PASSWORD = "correct horse battery staple"
ODD_PASSWORD = "пароль 密码 🔑 \u202e{{ 7*7 }}'; --"  # the log scan (conftest) looks for both


def post(stack: ShopStack, path: str, body: object, headers: dict[str, str] | None = None) -> Response:
    return request(
        "POST",
        stack.url("gateway", path),
        json.dumps(body).encode(),
        {"Content-Type": "application/json", **(headers or {})},
    )


def get(stack: ShopStack, path: str, token: str | None = None) -> Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return request("GET", stack.url("gateway", path), headers=headers)


def new_address() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.test"


def assert_error(response: Response, status: int, code: str) -> None:
    assert response.status == status, response.body
    body = response.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["request_id"] == response.headers["X-Request-Id"]


def register_and_verify(stack: ShopStack, email: str, password: str = PASSWORD) -> None:
    assert post(stack, "/api/v1/auth/register", {"email": email, "password": password}).status == 202
    code = mailpit.latest_code(email)
    assert post(stack, "/api/v1/auth/verify", {"email": email, "code": code}).status == 200


def login(stack: ShopStack, email: str, password: str = PASSWORD) -> dict:
    response = post(stack, "/api/v1/auth/login", {"email": email, "password": password})
    assert response.status == 200, response.body
    return response.json()


def new_customer(stack: ShopStack) -> tuple[str, str]:
    """A new account, verified and logged in: (its address, its access token)."""
    email = new_address()
    register_and_verify(stack, email)
    return email, str(login(stack, email)["access_token"])


def customer_token(stack: ShopStack) -> str:
    return new_customer(stack)[1]


def admin_token(stack: ShopStack) -> str:
    """The access token of a new account granted the admin role (`shop admin grant`)."""
    email, _ = new_customer(stack)
    subprocess.run([sys.executable, "-m", "shop", "admin", "grant", email], check=True, capture_output=True)
    return str(login(stack, email)["access_token"])


def test_register_verify_login_me_refresh_reuse_and_logout(stack):
    email = new_address()
    registered = post(stack, "/api/v1/auth/register", {"email": email.upper(), "password": PASSWORD})
    assert registered.status == 202
    assert registered.json() == {"status": "verification_sent"}

    code = mailpit.latest_code(email)  # 202 means accepted: the account exists once the code is out
    # Not verified yet: the right password answers 403, a wrong one the usual 401.
    assert_error(
        post(stack, "/api/v1/auth/login", {"email": email, "password": PASSWORD}), 403, "email_not_verified"
    )
    assert_error(
        post(stack, "/api/v1/auth/login", {"email": email, "password": "x" * 12}), 401, "invalid_credentials"
    )

    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert_error(post(stack, "/api/v1/auth/verify", {"email": email, "code": wrong}), 400, "invalid_code")
    verified = post(stack, "/api/v1/auth/verify", {"email": email, "code": code})
    assert verified.status == 200
    assert verified.json() == {"status": "verified"}

    tokens = login(stack, email)  # straight after verify: must not depend on the replica
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 900
    me = get(stack, "/api/v1/auth/me", tokens["access_token"])
    assert me.status == 200
    account = me.json()
    assert account["email"] == email
    assert account["roles"] == ["customer"]
    assert account["verified"] is True
    uuid.UUID(account["id"])
    assert account["created_at"]

    rotated = post(stack, "/api/v1/auth/refresh", {"refresh_token": tokens["refresh_token"]})
    assert rotated.status == 200
    new_pair = rotated.json()
    assert new_pair["refresh_token"] != tokens["refresh_token"]
    assert get(stack, "/api/v1/auth/me", new_pair["access_token"]).status == 200

    # The spent token comes back: the whole family is revoked, the fresh token too.
    assert_error(
        post(stack, "/api/v1/auth/refresh", {"refresh_token": tokens["refresh_token"]}),
        401,
        "refresh_token_reused",
    )
    assert_error(
        post(stack, "/api/v1/auth/refresh", {"refresh_token": new_pair["refresh_token"]}),
        401,
        "invalid_refresh_token",
    )

    session = login(stack, email)
    assert post(stack, "/api/v1/auth/logout", {"refresh_token": session["refresh_token"]}).status == 204
    assert_error(
        post(stack, "/api/v1/auth/refresh", {"refresh_token": session["refresh_token"]}),
        401,
        "invalid_refresh_token",
    )


def test_the_verification_email_is_rendered_in_html_and_text_with_a_dedupe_key(stack):
    email = new_address()
    assert post(stack, "/api/v1/auth/register", {"email": email, "password": PASSWORD}).status == 202
    (found,) = mailpit.wait_for_messages(email)
    full = mailpit.message(found["ID"])
    code = mailpit.latest_code(email)
    assert code in full["Text"]
    assert code in full["HTML"]
    assert "<html" in full["HTML"].lower()
    assert mailpit.headers(found["ID"])["X-Shop-Dedupe-Key"][0].startswith("verification-code:")


def test_register_does_not_tell_known_from_unknown_addresses(stack):
    email = new_address()
    register_and_verify(stack, email)
    time.sleep(1)
    again = post(stack, "/api/v1/auth/register", {"email": email, "password": "another password 1"})
    fresh = post(stack, "/api/v1/auth/register", {"email": new_address(), "password": PASSWORD})
    assert again.status == fresh.status == 202
    assert again.json() == fresh.json()
    # The owner of the known address is told (a notice, not a code) — once the cooldown allows.
    # The verification email went out less than a minute ago, so no notice yet; the old password still works.
    assert login(stack, email)


def test_login_answers_alike_for_a_wrong_email_and_a_wrong_password(stack):
    email = new_address()
    register_and_verify(stack, email)
    wrong_password = post(stack, "/api/v1/auth/login", {"email": email, "password": "not the password"})
    wrong_email = post(stack, "/api/v1/auth/login", {"email": new_address(), "password": PASSWORD})
    assert_error(wrong_password, 401, "invalid_credentials")
    assert_error(wrong_email, 401, "invalid_credentials")
    assert wrong_password.json()["error"]["message"] == wrong_email.json()["error"]["message"]


def test_resend_within_a_minute_is_429_with_retry_after_known_or_not(stack):
    known = new_address()
    assert post(stack, "/api/v1/auth/register", {"email": known, "password": PASSWORD}).status == 202
    first_code = mailpit.latest_code(known)
    too_soon = post(stack, "/api/v1/auth/resend", {"email": known})
    assert_error(too_soon, 429, "resend_too_soon")
    assert 1 <= int(too_soon.headers["Retry-After"]) <= 60

    unknown = new_address()
    assert post(stack, "/api/v1/auth/resend", {"email": unknown}).status == 202
    assert_error(post(stack, "/api/v1/auth/resend", {"email": unknown}), 429, "resend_too_soon")
    assert mailpit.messages_to(unknown) == []
    # The first code still works: a refused resend changes nothing.
    assert post(stack, "/api/v1/auth/verify", {"email": known, "code": first_code}).status == 200


def test_five_wrong_codes_burn_the_code(stack):
    email = new_address()
    assert post(stack, "/api/v1/auth/register", {"email": email, "password": PASSWORD}).status == 202
    code = mailpit.latest_code(email)
    wrong = f"{(int(code) + 7) % 1_000_000:06d}"
    for _ in range(5):
        assert_error(post(stack, "/api/v1/auth/verify", {"email": email, "code": wrong}), 400, "invalid_code")
    assert_error(post(stack, "/api/v1/auth/verify", {"email": email, "code": code}), 400, "invalid_code")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"email": "not-an-email", "password": PASSWORD}, 422, "invalid_email"),
        ({"email": "a@example.test", "password": "short"}, 422, "invalid_password"),
        ({"email": "a@example.test", "password": "x" * 129}, 422, "invalid_password"),
        ({"email": "a@example.test"}, 422, "missing_field"),
        ({"email": 42, "password": PASSWORD}, 422, "invalid_field"),
        ([1, 2], 422, "invalid_body"),
    ],
)
def test_register_refuses_bad_input_clearly(stack, body, status, code):
    assert_error(post(stack, "/api/v1/auth/register", body), status, code)


def test_wrong_content_type_and_malformed_json(stack):
    plain = request("POST", stack.url("gateway", "/api/v1/auth/login"), b"{}", {"Content-Type": "text/plain"})
    assert_error(plain, 415, "unsupported_media_type")
    broken = request(
        "POST",
        stack.url("gateway", "/api/v1/auth/login"),
        b'{"email": ',
        {"Content-Type": "application/json"},
    )
    assert_error(broken, 400, "malformed_json")


def test_jwks_publishes_the_public_key_only(stack):
    jwks = get(stack, "/.well-known/jwks.json").json()
    assert jwks["keys"]
    for key in jwks["keys"]:
        assert key["kty"] == "OKP"
        assert key["alg"] == "EdDSA"
        assert key["kid"]
        assert "d" not in key


def test_me_without_a_token_is_401_with_www_authenticate(stack):
    response = get(stack, "/api/v1/auth/me")
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_admin_granted_on_the_command_line_gets_the_role_at_next_login(stack):
    import base64
    import subprocess
    import sys

    email = new_address()
    register_and_verify(stack, email)
    before = login(stack, email)
    granted = subprocess.run(
        [sys.executable, "-m", "shop", "admin", "grant", email], capture_output=True, text=True
    )
    assert granted.returncode == 0, granted.stderr
    after = login(stack, email)

    def roles(token: str) -> list[str]:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["roles"]

    assert roles(before["access_token"]) == ["customer"]
    assert roles(after["access_token"]) == ["customer", "admin"]
    assert get(stack, "/api/v1/auth/me", after["access_token"]).json()["roles"] == ["customer", "admin"]


def test_a_rival_registration_cannot_hold_the_password_of_the_account_its_owner_verifies(stack):
    """Pre-hijacking through the gateway: the attacker registers the victim's address right after
    the victim (inside the mail cooldown, so no second email goes out) with a password of their own.
    The victim's code alone no longer decides; with the password they choose it verifies, and the
    attacker's password never logs in."""
    email, attacker = new_address(), "the attacker's password"
    assert post(stack, "/api/v1/auth/register", {"email": email, "password": PASSWORD}).status == 202
    code = mailpit.latest_code(email)
    assert post(stack, "/api/v1/auth/register", {"email": email, "password": attacker}).status == 202
    assert_error(post(stack, "/api/v1/auth/verify", {"email": email, "code": code}), 400, "password_required")
    verified = post(stack, "/api/v1/auth/verify", {"email": email, "code": code, "password": PASSWORD})
    assert verified.status == 200, verified.body
    assert login(stack, email)
    assert_error(login_attempt(stack, email, attacker), 401, "invalid_credentials")


def test_registering_twice_with_one_password_still_verifies_with_the_code_alone(stack):
    email = new_address()
    for _ in range(2):  # a double click, a retry
        assert post(stack, "/api/v1/auth/register", {"email": email, "password": PASSWORD}).status == 202
    code = mailpit.latest_code(email)
    assert post(stack, "/api/v1/auth/verify", {"email": email, "code": code}).status == 200
    assert login(stack, email)


def test_register_then_resend_answers_alike_whatever_the_address(stack):
    """A new address, an unverified one and a verified one: after a registration, resend is 429 for
    all three (a verified address answered 202, which told it apart)."""
    unverified, verified = new_address(), new_address()
    assert post(stack, "/api/v1/auth/register", {"email": unverified, "password": PASSWORD}).status == 202
    register_and_verify(stack, verified)
    answers = {}
    for kind, email in {"new": new_address(), "unverified": unverified, "verified": verified}.items():
        assert post(stack, "/api/v1/auth/register", {"email": email, "password": PASSWORD}).status == 202
        answer = post(stack, "/api/v1/auth/resend", {"email": email})
        answers[kind] = (answer.status, answer.json()["error"]["code"] if answer.status != 202 else None)
    assert set(answers.values()) == {(429, "resend_too_soon")}, answers


def login_attempt(stack: ShopStack, email: str, password: str) -> Response:
    return post(stack, "/api/v1/auth/login", {"email": email, "password": password})
