"""The catalog through the gateway, with an admin token, a customer token and none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from harness.http import call
from tests.e2e.test_auth import admin_token, assert_error, customer_token, get
from tests.e2e.test_replica_lag import replica_paused
from tests.integration.kafka_helpers import consume, value_of


@pytest.fixture(scope="module")
def customer(stack) -> str:
    return customer_token(stack)


@pytest.fixture(scope="module")
def admin(stack) -> str:
    return admin_token(stack)


def fresh_key() -> dict[str, str]:
    """A fresh Idempotency-Key header (stock adjustments require one)."""
    return {"Idempotency-Key": f"e2e-{uuid.uuid4()}"}


def new_product(**override) -> dict:
    return {
        "sku": f"E2E-{uuid.uuid4().hex[:10]}",
        "name": "Tea cup",
        "description": "Porcelain",
        "price_cents": 1250,
        "currency": "EUR",
        "stock": 20,
        **override,
    }


def create(stack, admin, **override) -> dict:
    response = call(stack.base, "POST", "/api/v1/products", new_product(**override), admin)
    assert response.status == 201, response.body
    return dict(response.json())


def test_create_patch_stock_history_and_public_reads(stack, admin):
    created = call(stack.base, "POST", "/api/v1/products", new_product(), admin)
    assert created.status == 201
    product = created.json()
    assert created.headers["Location"] == f"/api/v1/products/{product['id']}"
    assert created.headers["ETag"] == '"1"'
    assert {k: product[k] for k in ("name", "price_cents", "currency", "stock_available", "version")} == {
        "name": "Tea cup",
        "price_cents": 1250,
        "currency": "EUR",
        "stock_available": 20,
        "version": 1,
    }
    path = f"/api/v1/products/{product['id']}"

    assert_error(
        call(stack.base, "POST", "/api/v1/products", new_product(sku=product["sku"]), admin),
        409,
        "duplicate_sku",
    )
    patched = call(
        stack.base, "PATCH", path, {"price_cents": 1400, "name": "Tea cup XL"}, admin, {"If-Match": '"1"'}
    )
    assert patched.status == 200
    assert patched.json()["version"] == 2
    assert_error(
        call(stack.base, "PATCH", path, {"price_cents": 1}, admin, {"If-Match": '"1"'}),
        412,
        "version_conflict",
    )
    assert_error(call(stack.base, "PATCH", path, {"price_cents": 1}, admin), 428, "if_match_required")
    assert_error(
        call(stack.base, "POST", f"{path}/stock", {"delta": -21}, admin, fresh_key()),
        409,
        "stock_below_reserved",
    )
    restocked = call(stack.base, "POST", f"{path}/stock", {"delta": -5}, admin, fresh_key())
    assert restocked.json()["stock_available"] == 15

    history = call(stack.base, "GET", f"{path}/events", token=admin).json()["items"]
    assert [(e["type"], e["data"]) for e in history] == [
        ("ProductCreated", {**{k: v for k, v in new_product().items() if k != "sku"}, "sku": product["sku"]}),
        ("ProductUpdated", {"price_cents": 1400, "name": "Tea cup XL"}),
        ("StockAdjusted", {"delta": -5}),
    ]
    assert [e["seq"] for e in history] == sorted(e["seq"] for e in history)

    deadline = time.monotonic() + 5
    while (public := get(stack, path)).json().get("version") != 3:
        assert time.monotonic() < deadline, public.body
        time.sleep(0.05)
    assert public.status == 200
    assert public.json()["name"] == "Tea cup XL"
    assert "stock_reserved" not in public.json()


def test_customers_and_anonymous_callers_cannot_use_admin_routes(stack, admin, customer):
    product = create(stack, admin)
    path = f"/api/v1/products/{product['id']}"
    assert_error(call(stack.base, "POST", "/api/v1/products", new_product(), customer), 403, "forbidden")
    assert_error(
        call(stack.base, "PATCH", path, {"name": "x"}, customer, {"If-Match": '"1"'}), 403, "forbidden"
    )
    assert_error(
        call(stack.base, "POST", f"{path}/stock", {"delta": 1}, customer, fresh_key()), 403, "forbidden"
    )
    assert_error(call(stack.base, "GET", f"{path}/events", token=customer), 403, "forbidden")
    assert_error(call(stack.base, "POST", "/api/v1/products", new_product()), 401, "unauthorized")


def test_bad_input_and_unknown_products(stack, admin):
    assert_error(
        call(stack.base, "POST", "/api/v1/products", new_product(price_cents=-1), admin),
        422,
        "invalid_product",
    )
    assert_error(
        call(stack.base, "POST", "/api/v1/products", new_product(currency="euro"), admin),
        422,
        "invalid_product",
    )
    assert_error(get(stack, f"/api/v1/products/{uuid.uuid4()}"), 404, "not_found")
    assert_error(get(stack, "/api/v1/products/not-a-uuid"), 404, "not_found")
    assert_error(get(stack, "/api/v1/products?limit=0"), 422, "invalid_limit")
    assert_error(get(stack, "/api/v1/products?cursor=%%%"), 400, "invalid_cursor")


def _walk(stack, limit: int) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(10_000):
        page = get(stack, f"/api/v1/products?limit={limit}" + (f"&cursor={cursor}" if cursor else "")).json()
        assert len(page["items"]) <= limit
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("pagination never ended")


def test_cursor_pagination_walks_every_product_once(stack, admin):
    mine = {create(stack, admin)["id"] for _ in range(3)}
    for _ in range(20):  # anonymous reads come from the replica, which may be a moment behind
        seen = _walk(stack, limit=2)
        assert len(seen) == len(set(seen))
        if mine <= set(seen):
            break
        time.sleep(0.1)
    assert mine <= set(seen)
    assert seen == sorted(seen, key=lambda i: uuid.UUID(i).bytes)


@pytest.mark.skipif(os.geteuid() != 0, reason="pausing the local replica needs root (to act as postgres)")
def test_the_admin_reads_their_own_write_while_the_replica_lags(stack, admin):
    with replica_paused():
        product = create(stack, admin)
        path = f"/api/v1/products/{product['id']}"
        assert get(stack, path, admin).status == 200  # from the primary: the replica is behind
        assert_error(get(stack, path), 404, "not_found")  # anonymous: the (lagging) replica
    deadline = time.monotonic() + 5
    while get(stack, path).status != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_created_product_is_on_kafka_and_replay_finds_no_difference(stack, settings, admin):
    product = create(stack, admin)
    messages = consume(settings.kafka_bootstrap, "product.created", 100_000, timeout=10)
    mine = [json.loads(value_of(m)) for m in messages if m.key() == product["id"].encode()]
    assert len(mine) >= 1
    assert {m["event_id"] for m in mine} == {mine[0]["event_id"]}
    assert mine[0]["data"]["sku"] == product["sku"]
    replay = subprocess.run(
        [sys.executable, "-m", "shop", "replay", "products"], capture_output=True, text=True
    )
    assert replay.returncode == 0, replay.stdout
    assert "no difference" in replay.stdout


def test_admin_writes_are_done_once_per_idempotency_key(stack, admin, settings):
    product = create(stack, admin, stock=10)
    path = f"/api/v1/products/{product['id']}"
    # A stock adjustment without a key could be applied twice by a retry: refused.
    assert_error(
        call(stack.base, "POST", f"{path}/stock", {"delta": 5}, admin), 400, "invalid_idempotency_key"
    )
    key = fresh_key()
    first = call(stack.base, "POST", f"{path}/stock", {"delta": 5}, admin, key)
    again = call(stack.base, "POST", f"{path}/stock", {"delta": 5}, admin, key)  # the client's retry
    assert first.status == again.status == 200
    assert again.json() == first.json()
    assert first.json()["stock_available"] == 15
    history = call(stack.base, "GET", f"{path}/events", token=admin).json()["items"]
    assert [e["data"] for e in history if e["type"] == "StockAdjusted"] == [{"delta": 5}]  # applied once
    assert_error(
        call(stack.base, "POST", f"{path}/stock", {"delta": 6}, admin, key), 422, "idempotency_key_reused"
    )
    # The same key on another route is another request too.
    other = create(stack, admin)
    assert_error(
        call(stack.base, "POST", f"/api/v1/products/{other['id']}/stock", {"delta": 5}, admin, key),
        422,
        "idempotency_key_reused",
    )

    # Creating: the retry answers the product the first request made, not 409 duplicate_sku.
    fields, key = new_product(), fresh_key()
    made = call(stack.base, "POST", "/api/v1/products", fields, admin, key)
    remade = call(stack.base, "POST", "/api/v1/products", fields, admin, key)
    assert made.status == remade.status == 201
    assert remade.json()["id"] == made.json()["id"]
    assert_error(call(stack.base, "POST", "/api/v1/products", fields, admin), 409, "duplicate_sku")  # no key

    # Patching: the retry answers the new version, not 412 for the version it replaced.
    key, version = fresh_key(), {"If-Match": '"1"'}
    patched = call(
        stack.base, "PATCH", f"/api/v1/products/{made.json()['id']}", {"name": "Once"}, admin, key | version
    )
    repatched = call(
        stack.base, "PATCH", f"/api/v1/products/{made.json()['id']}", {"name": "Once"}, admin, key | version
    )
    assert patched.status == repatched.status == 200
    assert repatched.json()["version"] == patched.json()["version"] == 2

    assert_error(
        call(stack.base, "POST", f"{path}/stock", {"delta": 1}, admin, {"Idempotency-Key": "has space"}),
        400,
        "invalid_idempotency_key",
    )


def test_a_key_in_flight_is_409(stack, admin):
    """While one request with a key is being processed, the same key again waits its turn (409)."""
    import base64

    import redis

    from shop.domain.idempotency import key_digest

    product = create(stack, admin)
    key = f"e2e-{uuid.uuid4()}"
    admin_id = json.loads(base64.urlsafe_b64decode(admin.split(".")[1] + "=="))["sub"]
    lock = f"catalog:in-flight:{admin_id}:{key_digest(key)}"
    client = redis.Redis.from_url(os.environ.get("SHOP_REDIS_URL", "redis://127.0.0.1:6379/0"))
    client.set(lock, "another request", px=10_000)  # as the first request's lock would be
    try:
        response = call(
            stack.base,
            "POST",
            f"/api/v1/products/{product['id']}/stock",
            {"delta": 1},
            admin,
            {"Idempotency-Key": key},
        )
        assert_error(response, 409, "idempotency_key_in_flight")
    finally:
        client.delete(lock)
        client.close()
