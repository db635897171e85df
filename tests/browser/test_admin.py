"""The admin pages at `#/admin` in Debian's chromium: a product created, edited with its ETag (a stale
one refused in words), its stock adjusted once however the answer is lost, its event history; a
customer refused by the page and by the API; an order's journey drawn from the stack's trace store."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pytest
from playwright.sync_api import Page, Request, Route, expect

from harness.http import call
from tests.browser.conftest import customer, log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]


def events_shown(page: Page) -> list[str]:
    return page.get_by_test_id("admin-event-type").all_text_contents()


def test_an_admin_creates_edits_and_restocks_a_product_and_reads_its_history(page, stack, admin_account):
    email, token = admin_account
    log_in(page, email)
    page.get_by_test_id("nav-admin").click()
    form = page.get_by_test_id("admin-product-form")
    sku = f"ADM-{uuid.uuid4().hex[:8]}"
    form.get_by_test_id("admin-sku").fill(sku)
    form.get_by_test_id("admin-name").fill("Walnut board")
    form.get_by_test_id("admin-description").fill("A cutting board.")
    form.get_by_test_id("admin-price").fill("24.90")
    form.get_by_test_id("admin-stock").fill("5")
    screenshot(page, "admin")
    form.get_by_test_id("admin-create-submit").click()
    page.wait_for_url(re.compile(r".*#/admin/products/[0-9a-f-]{36}$"))
    product_id = page.url.rsplit("/", 1)[1]
    expect(page.get_by_test_id("admin-product-name")).to_have_text("Walnut board")
    expect(page.get_by_test_id("admin-product-event")).to_have_count(1)

    # An edit goes with the version it was made from (If-Match: its ETag).
    patches: list[Request] = []
    page.on("request", lambda r: patches.append(r) if r.method == "PATCH" else None)
    page.get_by_test_id("admin-edit-name").fill("Walnut board, oiled")
    page.get_by_test_id("admin-edit-price").fill("26.50")
    page.get_by_test_id("admin-edit-submit").click()
    expect(page.get_by_test_id("admin-edit-message")).to_have_text("Saved: version 2.")
    expect(page.get_by_test_id("admin-product-name")).to_have_text("Walnut board, oiled")
    assert patches[-1].headers["if-match"] == '"1"'

    # Someone else changes it meanwhile: this page's edit is refused, in words, and nothing is lost.
    elsewhere = call(
        stack.base,
        "PATCH",
        f"/api/v1/products/{product_id}",
        {"price_cents": 2700},
        token,
        {"If-Match": '"2"'},
    )
    assert elsewhere.status == 200, elsewhere.body
    page.get_by_test_id("admin-edit-description").fill("A cutting board, oiled twice.")
    page.get_by_test_id("admin-edit-submit").click()
    expect(page.get_by_test_id("admin-edit-message")).to_contain_text("Someone changed this product")
    expect(page.get_by_test_id("admin-edit-message")).to_contain_text("version_conflict")
    screenshot(page, "admin-stale-edit")
    page.get_by_test_id("admin-reload").click()
    expect(page.get_by_test_id("admin-edit-price")).to_have_value("27.00")
    expect(page.get_by_test_id("admin-edit-description")).to_have_value("A cutting board.")
    page.get_by_test_id("admin-edit-description").fill("A cutting board, oiled twice.")
    page.get_by_test_id("admin-edit-submit").click()
    expect(page.get_by_test_id("admin-edit-message")).to_have_text("Saved: version 4.")

    # A restock whose answer is lost after it reached the shop is sent again with its key: once.
    posts: list[Request] = []
    reached: list[int] = []

    def lose_the_first_answer(route: Route) -> None:
        posts.append(route.request)
        if not reached:
            reached.append(route.fetch().status)  # the stock is adjusted on the server...
            route.abort("connectionreset")  # ...and the page never hears of it
        else:
            route.continue_()

    page.route("**/api/v1/products/*/stock", lose_the_first_answer)
    page.get_by_test_id("admin-stock-delta").fill("10")
    page.get_by_test_id("admin-stock-submit").click()
    expect(page.get_by_test_id("admin-stock-message")).to_have_text("Restocked: 15 available now.")
    assert reached == [200]
    assert len(posts) == 2
    assert len({r.headers["idempotency-key"] for r in posts}) == 1
    page.unroute("**/api/v1/products/*/stock")
    # The next adjustment is another change, with another key.
    page.get_by_test_id("admin-stock-delta").fill("-3")
    page.get_by_test_id("admin-stock-submit").click()
    expect(page.get_by_test_id("admin-stock-message")).to_have_text("Written off: 12 available now.")
    expect(page.get_by_test_id("admin-product-event")).to_have_count(6)
    assert events_shown(page) == [
        "ProductCreated",
        "ProductUpdated",
        "ProductUpdated",
        "ProductUpdated",
        "StockAdjusted",
        "StockAdjusted",
    ]
    shown = call(stack.base, "GET", f"/api/v1/products/{product_id}").json()
    assert (shown["name"], shown["stock_available"], shown["version"]) == ("Walnut board, oiled", 12, 6)
    screenshot(page, "admin-product")


def test_a_customer_is_refused_by_the_page_and_by_the_api(page, stack, product):
    email, token = customer(stack)
    log_in(page, email)
    expect(page.get_by_test_id("nav-admin")).to_have_count(0)
    page.goto("/#/admin")
    expect(page.get_by_test_id("admin-refusal")).to_contain_text("is not one")
    expect(page.get_by_test_id("admin-product-form")).to_have_count(0)
    screenshot(page, "admin-refused")
    made = product()
    refused = {"sku": "NO-1", "name": "x", "price_cents": 1, "currency": "EUR"}
    answers = [
        call(stack.base, "POST", "/api/v1/products", refused, token),
        call(stack.base, "GET", f"/api/v1/products/{made['id']}/events", None, token),
        call(stack.base, "GET", f"/api/v1/admin/orders/{uuid.uuid4()}/journey", None, token),
    ]
    assert [(a.status, a.json()["error"]["code"]) for a in answers] == [(403, "forbidden")] * 3


def _placed_and_reserved(stack, product: dict[str, Any]) -> str:
    _, token = customer(stack)
    body = {"items": [{"product_id": product["id"], "quantity": 2}]}
    placed = call(stack.base, "POST", "/api/v1/orders", body, token, {"Idempotency-Key": str(uuid.uuid4())})
    assert placed.status == 201, placed.body
    order_id = str(placed.json()["id"])
    deadline = time.monotonic() + 30
    while call(stack.base, "GET", f"/api/v1/orders/{order_id}", None, token).json()["stock"] != "reserved":
        assert time.monotonic() < deadline, "the order's stock was never reserved"
        time.sleep(0.2)
    return order_id


def test_the_journey_of_a_placed_order_shows_its_spans_from_four_services(
    page, stack, admin_account, product
):
    order_id = _placed_and_reserved(stack, product(name="Journey mug"))
    log_in(page, admin_account[0])
    page.goto("/#/admin")
    page.get_by_test_id("admin-journey-order").fill(order_id)
    page.get_by_test_id("journey-submit").click()
    expect(page.get_by_test_id("journey-order")).to_have_text(order_id)
    wanted = {"shop-gateway", "shop-workers", "shop-relay", "shop-streams"}
    deadline = time.monotonic() + 45
    while not wanted <= services_drawn(page):
        said = [page.get_by_test_id(t).text_content() for t in ("trace-state", "trace-reason")]
        assert time.monotonic() < deadline, f"spans of {services_drawn(page)} only: {said}"
        page.get_by_test_id("trace-refresh").click()
        time.sleep(1)
    waterfall = page.get_by_test_id("trace-waterfall")
    first = waterfall.get_by_test_id("trace-span").first
    expect(first.get_by_test_id("span-service")).to_have_text("shop-gateway")
    expect(first.get_by_test_id("span-name")).to_have_text("POST /api/v1/orders")
    expect(first.get_by_test_id("span-start")).to_have_text("0.00 ms")
    # Bars are placed through the CSSOM: a width in percent, and no style attribute in any markup.
    assert re.fullmatch(r"[0-9.]+%", first.locator(".span-bar").evaluate("bar => bar.style.width"))
    names = waterfall.get_by_test_id("span-name").all_text_contents()
    assert {"place_order process", "order.created publish", "order.created process"} <= set(names)
    expect(page.get_by_test_id("trace-state")).to_contain_text("Recorded")
    expect(page.get_by_test_id("order-event").first).to_contain_text("order.created")
    expect(page.get_by_test_id("order-events")).to_contain_text("stock.reserved")
    screenshot(page, "journey")


def services_drawn(page: Page) -> set[str]:
    spans = page.get_by_test_id("trace-waterfall").get_by_test_id("span-service")
    return set(spans.all_text_contents())
