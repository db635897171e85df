"""The people of a benchmark, made through the gateway as real ones are: accounts signed up (the
code read from Mailpit), an admin's product, and the wait until the order side knows its price."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from harness import mailpit
from harness.http import Response, call

PASSWORD = "correct horse battery staple"


def signed_up(base: str, email: str, admin: bool = False) -> str:
    """Registers, verifies (code from Mailpit), optionally grants admin, logs in: the access token."""
    registered = call(base, "POST", "/api/v1/auth/register", {"email": email, "password": PASSWORD})
    assert registered.status == 202, registered
    code = mailpit.latest_code(email, timeout=60)
    verified = call(base, "POST", "/api/v1/auth/verify", {"email": email, "code": code})
    assert verified.status == 200, verified
    if admin:
        subprocess.run(
            [sys.executable, "-m", "shop", "admin", "grant", email], check=True, capture_output=True
        )
    tokens = call(base, "POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD})
    assert tokens.status == 200, tokens
    return str(tokens.json()["access_token"])


def sign_up_customers(base: str, count: int, prefix: str) -> list[str]:
    """Access tokens of `count` new, verified customers, six signing up at a time."""
    with ThreadPoolExecutor(6) as pool:
        return list(
            pool.map(
                lambda n: signed_up(base, f"{prefix}-{n}-{secrets.token_hex(5)}@example.test"),
                range(count),
            )
        )


def create_product(base: str, admin: str, sku_prefix: str, name: str, description: str, stock: int) -> str:
    """A product at 10.00 EUR with `stock` units, created by `admin` through the gateway; its id."""
    product = call(
        base,
        "POST",
        "/api/v1/products",
        {
            "sku": f"{sku_prefix}-{uuid.uuid4().hex[:10]}",
            "name": name,
            "description": description,
            "price_cents": 1000,
            "currency": "EUR",
            "stock": stock,
        },
        admin,
    )
    assert product.status == 201, product
    return str(product.json()["id"])


def priced(base: str, token: str, product_id: str, quantity: int, deadline: float) -> Response:
    """The answer (201) to a probe order of `quantity` units, placed again while the order side does
    not know the product's price yet (422: it learns it from product.created, through the price-feed
    agent); SystemExit at `deadline` (time.monotonic())."""
    probe = {"items": [{"product_id": product_id, "quantity": quantity}]}
    while True:
        answer = call(
            base, "POST", "/api/v1/orders", probe, token, {"Idempotency-Key": f"probe-{uuid.uuid4()}"}
        )
        if answer.status == 201:
            return answer
        if answer.status != 422 or time.monotonic() > deadline:
            raise SystemExit(f"bench: the order side never learnt the product's price: {answer}")
        time.sleep(0.3)
