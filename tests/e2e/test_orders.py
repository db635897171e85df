"""Placing orders through the gateway: idempotency, ownership, listing."""

from __future__ import annotations

import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

from harness import mailpit
from harness.http import call, request
from tests.e2e.test_auth import assert_error, customer_token, get, new_customer
from tests.e2e.test_products import admin, create  # noqa: F401  # the admin fixture


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
    return call(stack.base, "POST", "/api/v1/orders", body, token, headers)


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
    # The answer is the order as written (the actor builds it without reading it back): the same
    # order a read finds, but for what the inventory's answer changed since.
    changing = ("stock", "updated_at")
    assert {k: v for k, v in read.json().items() if k not in changing} == {
        k: v for k, v in order.items() if k not in changing
    }
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


def wait_for_stock(stack, token: str, order_id: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        order = get(stack, f"/api/v1/orders/{order_id}", token).json()
        if order["stock"] != "reserving":
            return dict(order)
        assert time.monotonic() < deadline, f"order {order_id} still reserving"
        time.sleep(0.1)


def catalog_stock(settings, product_id: str) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(settings.databases["catalog"].primary_url) as conn:
        row = conn.execute(
            "SELECT stock_available, stock_reserved FROM products WHERE id = %s", (product_id,)
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def wait_for_catalog(settings, product_id: str, expected: tuple[int, int], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while catalog_stock(settings, product_id) != expected:
        assert time.monotonic() < deadline, f"{catalog_stock(settings, product_id)} != {expected}"
        time.sleep(0.1)


def test_place_reserved_pay_and_the_reservation_becomes_a_sale(stack, settings, admin):  # noqa: F811
    token = customer_token(stack)
    product = create(stack, admin, stock=10)
    order = _place_when_priced(stack, token, product, 4)
    assert wait_for_stock(stack, token, order["id"])["stock"] == "reserved"
    wait_for_catalog(settings, product["id"], (6, 4))
    paid = call(
        stack.base, "POST", f"/api/v1/orders/{order['id']}/pay", {"payment_reference": "psp-123"}, token
    )
    assert paid.status == 200, paid.body
    assert paid.json()["status"] == "PAID"
    assert paid.json()["paid_at"]
    again = call(
        stack.base, "POST", f"/api/v1/orders/{order['id']}/pay", {"payment_reference": "psp-123"}, token
    )
    assert again.status == 200
    assert again.json()["paid_at"] == paid.json()["paid_at"]
    assert_error(
        call(stack.base, "POST", f"/api/v1/orders/{order['id']}/pay", {"payment_reference": "other"}, token),
        409,
        "invalid_transition",
    )
    assert_error(
        call(stack.base, "POST", f"/api/v1/orders/{order['id']}/cancel", None, token),
        409,
        "invalid_transition",
    )
    wait_for_catalog(settings, product["id"], (6, 0))  # sold: out of the stock for good
    history = [
        e["type"]
        for e in call(stack.base, "GET", f"/api/v1/products/{product['id']}/events", token=admin).json()[
            "items"
        ]
    ]
    assert history == ["ProductCreated", "StockReserved", "StockSold"]


def test_cancel_gives_the_stock_back(stack, settings, admin):  # noqa: F811
    token = customer_token(stack)
    product = create(stack, admin, stock=10)
    order = _place_when_priced(stack, token, product, 5)
    assert wait_for_stock(stack, token, order["id"])["stock"] == "reserved"
    cancelled = call(stack.base, "POST", f"/api/v1/orders/{order['id']}/cancel", None, token)
    assert cancelled.status == 200
    assert (cancelled.json()["status"], cancelled.json()["cancel_reason"]) == (
        "CANCELLED",
        "customer_request",
    )
    wait_for_catalog(settings, product["id"], (10, 0))
    assert_error(
        call(stack.base, "POST", f"/api/v1/orders/{order['id']}/pay", {"payment_reference": "late"}, token),
        409,
        "invalid_transition",
    )


def test_a_flash_sale_never_oversells(stack, settings, admin):  # noqa: F811
    product = create(stack, admin, stock=50)
    buyers = [customer_token(stack) for _ in range(10)]
    opening = _place_when_priced(
        stack, buyers[0], product, 1
    )  # the first of 200 orders, once prices are known
    with ThreadPoolExecutor(20) as pool:
        responses = list(
            pool.map(
                lambda n: place(stack, buyers[n % 10], str(uuid.uuid4()), body_for(product, 1)), range(1, 200)
            )
        )
    assert {r.status for r in responses} == {201}
    orders = [r.json() for r in responses]
    token_of = {o["id"]: buyers[n % 10] for n, o in zip(range(1, 200), orders, strict=True)}
    settled = [wait_for_stock(stack, token_of[o["id"]], o["id"], timeout=60) for o in orders]
    settled.append(wait_for_stock(stack, buyers[0], opening["id"]))
    reserved = [o for o in settled if o["stock"] == "reserved"]
    rejected = [o for o in settled if o["stock"] == "rejected"]
    assert len(reserved) + len(rejected) == 200
    assert len(reserved) == 50
    assert all((o["status"], o["cancel_reason"]) == ("CANCELLED", "out_of_stock") for o in rejected)
    wait_for_catalog(settings, product["id"], (0, 50))


def test_an_order_rejected_for_stock_is_cancelled_and_the_customer_is_told(stack, settings, admin):  # noqa: F811
    email, token = new_customer(stack)
    product = create(stack, admin, stock=1)
    order = _place_when_priced(stack, token, product, 1)
    assert wait_for_stock(stack, token, order["id"])["stock"] == "reserved"
    late = place(stack, token, str(uuid.uuid4()), body_for(product, 1)).json()
    settled = wait_for_stock(stack, token, late["id"])
    assert (settled["status"], settled["stock"], settled["cancel_reason"]) == (
        "CANCELLED",
        "rejected",
        "out_of_stock",
    )
    deadline = time.monotonic() + 20
    while not (mails := [m for m in mailpit.messages_to(email) if late["id"] in m["Subject"] + m["Snippet"]]):
        assert time.monotonic() < deadline, "no cancellation email"
        time.sleep(0.2)
    assert len(mails) == 1


def _place_when_priced(stack, token: str, product: dict, quantity: int) -> dict:
    deadline = time.monotonic() + 20
    while True:
        response = place(stack, token, str(uuid.uuid4()), body_for(product, quantity))
        if response.status == 201:
            return dict(response.json())
        assert response.json()["error"]["code"] == "unknown_product", response.body
        assert time.monotonic() < deadline
        time.sleep(0.2)


@contextmanager
def workers_paused(stack):
    """The workers stopped (SIGSTOP): commands wait in RabbitMQ, the gateway's wait runs out."""
    pid = stack.pids()["workers"]
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def follow(stack, token: str, location: str, timeout: float = 20):
    """GETs a placement's Location until it has an outcome (urllib follows the 303 to the order)."""
    deadline = time.monotonic() + timeout
    while True:
        response = get(stack, location, token)
        if response.status != 200 or response.json().get("status") != "processing":
            return response
        assert time.monotonic() < deadline, f"{location} never had an outcome"
        time.sleep(0.2)


def test_a_late_placement_leads_to_its_order_and_a_late_refusal_to_the_refusal(stack, alice, product):
    key, unknown_key = str(uuid.uuid4()), str(uuid.uuid4())
    unknown = {"items": [{"product_id": str(uuid.uuid4()), "quantity": 1}]}
    with workers_paused(stack):
        late = place(stack, alice, key, body_for(product))  # waits out SHOP_COMMAND_TIMEOUT
        late_refusal = place(stack, alice, unknown_key, unknown)
    assert late.status == late_refusal.status == 202, (late.body, late_refusal.body)
    location = late.headers["Location"]
    assert location.startswith("/api/v1/orders/placements/")
    assert late.json() == {"status": "processing", "placement_id": location.rsplit("/", 1)[-1]}

    order = follow(stack, alice, location)
    assert order.status == 200, order.body  # the 303 led to the order itself
    assert order.json()["items"][0]["product_id"] == product["id"]
    # The client's retry with the key answers the same order (or, while the late request's lock
    # stands, 409 in flight): never a second order.
    again = place(stack, alice, key, body_for(product))
    assert again.status in (201, 409), again.body
    if again.status == 201:
        assert again.json()["id"] == order.json()["id"]

    assert_error(follow(stack, alice, late_refusal.headers["Location"]), 422, "unknown_product")
    # Someone else's placement tells nothing: no outcome recorded for that customer.
    assert get(stack, location, customer_token(stack)).json()["status"] == "processing"


def test_a_customer_cannot_hold_unpaid_more_than_the_limit(stack, admin):  # noqa: F811
    """SHOP_ORDER_MAX_UNPAID_ORDERS (50 by default): the next order waits until one is paid or cancelled."""
    stocked = create(stack, admin, price_cents=1, stock=1_000_000)
    buyer = customer_token(stack)
    deadline = time.monotonic() + 20
    while (first := place(stack, buyer, str(uuid.uuid4()), body_for(stocked, 1))).status != 201:
        assert time.monotonic() < deadline, first.body  # the price feed has not delivered it yet
        time.sleep(0.2)
    with ThreadPoolExecutor(4) as pool:
        placed = list(
            pool.map(lambda _: place(stack, buyer, str(uuid.uuid4()), body_for(stocked, 1)), range(49))
        )
    assert [p.status for p in placed] == [201] * 49
    refused = place(stack, buyer, str(uuid.uuid4()), body_for(stocked, 1))
    assert_error(refused, 409, "too_many_unpaid_orders")
    cancelled = call(stack.base, "POST", f"/api/v1/orders/{first.json()['id']}/cancel", None, buyer)
    assert cancelled.status == 200
    assert place(stack, buyer, str(uuid.uuid4()), body_for(stocked, 1)).status == 201


def test_a_client_that_prefers_to_wait_gets_the_order_with_its_stock_settled(stack, alice, product, admin):  # noqa: F811
    """`Prefer: wait=N`: the answer comes once the inventory answered (announced by the order side
    on commit), so a client need not poll for the stock outcome."""
    prefer = {"Idempotency-Key": str(uuid.uuid4()), "Prefer": "wait=5"}
    placed = call(stack.base, "POST", "/api/v1/orders", body_for(product, 1), alice, prefer)
    assert placed.status == 201, placed.body
    assert placed.headers["Preference-Applied"] == "wait=5"
    assert placed.json()["stock"] == "reserved"
    read = request(
        "GET",
        stack.url("gateway", f"/api/v1/orders/{placed.json()['id']}"),
        headers={"Authorization": f"Bearer {alice}", "Prefer": "wait=5"},
    )
    assert read.status == 200
    assert read.json()["stock"] == "reserved"
    # An order of a product nobody stocks: rejected, and the wait ends with it too.
    empty = create(stack, admin, stock=0)
    deadline = time.monotonic() + 20
    while (
        rejected := call(
            stack.base,
            "POST",
            "/api/v1/orders",
            body_for(empty, 1),
            alice,
            {"Idempotency-Key": str(uuid.uuid4()), "Prefer": "wait=5"},
        )
    ).status != 201:
        assert time.monotonic() < deadline, rejected.body  # the price feed has not delivered it yet
        time.sleep(0.2)
    assert (rejected.json()["stock"], rejected.json()["status"]) == ("rejected", "CANCELLED")
