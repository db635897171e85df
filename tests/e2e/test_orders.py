"""Placing orders through the gateway: idempotency, ownership, listing."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.test_auth import assert_error, get, login, new_address, register_and_verify
from tests.e2e.test_products import admin, call, create  # noqa: F401  # the admin fixture


def customer_token(stack) -> str:
    email = new_address()
    register_and_verify(stack, email)
    return str(login(stack, email)["access_token"])


@pytest.fixture(scope="module")
def alice(stack) -> str:
    return customer_token(stack)


@pytest.fixture(scope="module")
def product(stack, admin) -> dict:  # noqa: F811
    product = create(stack, admin, price_cents=700, stock=100)
    # The order side learns prices from product.created through the price-feed agent.
    deadline = time.monotonic() + 20
    probe = {"items": [{"product_id": product["id"], "quantity": 1}]}
    while True:
        response = place(stack, customer_token(stack), f"probe-{uuid.uuid4()}", probe)
        if response.status == 201:
            return product
        assert response.json()["error"]["code"] == "unknown_product"
        assert time.monotonic() < deadline, "the price feed never delivered the product"
        time.sleep(0.2)


def place(stack, token: str, key: str | None, body: object):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return call(stack, "POST", "/api/v1/orders", body, token, headers)


def body_for(product: dict, quantity: int = 2) -> dict:
    return {"items": [{"product_id": product["id"], "quantity": quantity}]}


def test_place_then_read_it_back(stack, alice, product):
    placed = place(stack, alice, str(uuid.uuid4()), body_for(product, 3))
    assert placed.status == 201
    order = placed.json()
    assert placed.headers["Location"] == f"/api/v1/orders/{order['id']}"
    assert (order["status"], order["total_cents"], order["currency"]) == ("PENDING", 2100, "EUR")
    assert order["items"] == [{"product_id": product["id"], "quantity": 3, "unit_price_cents": 700}]
    assert order["stock"] in ("reserving", "reserved")
    assert order["cancel_reason"] is None
    assert order["paid_at"] is None
    read = get(stack, f"/api/v1/orders/{order['id']}", alice)
    assert read.status == 200
    assert read.json()["id"] == order["id"]
    listed = get(stack, "/api/v1/orders?limit=100", alice).json()["items"]
    assert order["id"] in [o["id"] for o in listed]


def test_the_same_key_and_body_answer_the_same_order(stack, alice, product):
    key = str(uuid.uuid4())
    first = place(stack, alice, key, body_for(product))
    again = place(stack, alice, key, {"items": [{"quantity": 2, "product_id": product["id"]}]})
    assert first.status == again.status == 201
    assert first.json()["id"] == again.json()["id"]
    assert_error(place(stack, alice, key, body_for(product, 5)), 422, "idempotency_key_reused")


def test_twenty_concurrent_identical_requests_make_one_order(stack, product):
    token = customer_token(stack)
    key = str(uuid.uuid4())
    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda _: place(stack, token, key, body_for(product, 1)), range(20)))
    statuses = sorted({r.status for r in responses})
    assert set(statuses) <= {201, 409}
    ids = {r.json()["id"] for r in responses if r.status == 201}
    assert len(ids) == 1
    listed = get(stack, "/api/v1/orders?limit=100", token).json()["items"]
    assert [o["id"] for o in listed] == list(ids)


def test_someone_elses_order_is_not_found(stack, alice, product):
    order = place(stack, alice, str(uuid.uuid4()), body_for(product)).json()
    assert_error(get(stack, f"/api/v1/orders/{order['id']}", customer_token(stack)), 404, "not_found")
    assert_error(get(stack, f"/api/v1/orders/{order['id']}"), 401, "unauthorized")


@pytest.mark.parametrize(
    ("key", "body", "status", "code"),
    [
        (None, {"items": []}, 400, "invalid_idempotency_key"),
        ("has space", {"items": []}, 400, "invalid_idempotency_key"),
        ("k" * 256, {"items": []}, 400, "invalid_idempotency_key"),
        ("ok", {"items": []}, 422, "invalid_order"),
        ("ok", {"items": [{"product_id": "x", "quantity": 1}]}, 422, "invalid_order"),
        ("ok", {"items": [{"product_id": str(uuid.uuid4()), "quantity": 1001}]}, 422, "invalid_order"),
        ("ok2", {"items": [{"product_id": str(uuid.uuid4()), "quantity": 1}]}, 422, "unknown_product"),
    ],
)
def test_bad_requests_are_refused_clearly(stack, alice, key, body, status, code):
    assert_error(place(stack, alice, key, body), status, code)
