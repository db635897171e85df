"""A person shopping at `/`, in Debian's chromium: sign-up with the emailed code, browsing, the cart,
checkout once however it is retried, the order live, paying, cancelling, and pages that show
hostile text as text. Elements are found by their data-testid only."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import Page, Request, Route, expect

from harness import mailpit
from harness.http import call
from tests.browser.conftest import customer, log_in, orders_of, screenshot
from tests.e2e.test_auth import PASSWORD, new_address

# The first test's setup may install Debian's chromium (a minute or two on a fresh machine).
pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

HOSTILE = "<img src=x onerror=alert(1)>"


def add_from_product_page(page: Page, product: dict[str, Any], times: int = 1) -> None:
    page.goto(f"/#/products/{product['id']}")
    expect(page.get_by_test_id("product-name")).to_have_text(product["name"])
    for _ in range(times):
        page.get_by_test_id("add-to-cart").click()


def checked_out(page: Page) -> str:
    """The order id of the order page the checkout led to."""
    page.wait_for_url(re.compile(r".*#/orders/[0-9a-f-]{36}$"))
    return page.url.rsplit("/", 1)[1]


def test_a_new_customer_signs_up_browses_orders_two_products_and_pays(page, stack, product):
    mug, pot = product(name="Enamel mug", price_cents=1250), product(name="Tea pot", price_cents=3400)
    for _ in range(13 - len(call(stack.base, "GET", "/api/v1/products?limit=13").json()["items"])):
        product(name="Filler")  # more than one page of 12, on a fresh database too
    page.goto("/")
    cards = page.get_by_test_id("product-card")
    expect(cards).to_have_count(12)
    first = cards.first.get_attribute("data-product-id")
    expect(cards.first.get_by_test_id("product-name")).not_to_be_empty()
    expect(cards.first.get_by_test_id("product-price")).to_have_text(re.compile(r"\d"))
    screenshot(page, "storefront")
    page.get_by_test_id("next-page").click()  # the API's cursor
    expect(cards.first).not_to_have_attribute("data-product-id", first or "")
    page.go_back()
    expect(cards.first).to_have_attribute("data-product-id", first or "")

    email = new_address()
    page.goto("/#/signup")
    page.get_by_test_id("signup-email").fill(email)
    page.get_by_test_id("signup-password").fill(PASSWORD)
    screenshot(page, "signup")
    page.get_by_test_id("signup-submit").click()
    expect(page.get_by_test_id("mailpit-link")).to_have_attribute("href", re.compile(r"^http://"))
    page.get_by_test_id("verify-code").fill(mailpit.latest_code(email))
    screenshot(page, "verify")
    page.get_by_test_id("verify-submit").click()
    expect(page.get_by_test_id("account-email")).to_have_text(email)

    add_from_product_page(page, mug)
    screenshot(page, "product")
    add_from_product_page(page, pot)
    expect(page.get_by_test_id("cart-count")).to_have_text("2")
    page.reload()  # the cart is kept in the browser
    expect(page.get_by_test_id("cart-count")).to_have_text("2")
    page.goto("/#/cart")
    expect(page.get_by_test_id("cart-total")).to_contain_text("46")
    screenshot(page, "cart")
    page.get_by_test_id("checkout").click()
    order_id = checked_out(page)
    expect(page.get_by_test_id("order-stock")).to_have_text("reserved")
    expect(page.get_by_test_id("order-status")).to_have_text("PENDING")
    expect(page.get_by_test_id("order-expires")).to_contain_text("pay within 23 h")
    expect(page.get_by_test_id("order-reminder")).to_have_count(3)
    expect(page.get_by_test_id("cart-count")).to_have_text("0")
    screenshot(page, "order-pending")
    page.get_by_test_id("pay-reference").fill("bank-transfer-0042")
    page.get_by_test_id("pay-submit").click()
    expect(page.get_by_test_id("order-status")).to_have_text("PAID")
    expect(page.get_by_test_id("pay-submit")).to_be_hidden()
    expect(page.get_by_test_id("order-reminder").first).to_contain_text("not sent: the order was paid")
    screenshot(page, "order-paid")

    page.goto("/#/orders")
    history = page.get_by_test_id("order-history")
    expect(history.locator(f"[data-order-id='{order_id}']")).to_contain_text("PAID")
    screenshot(page, "order-history")


def _one_checkout(page: Page, stack, product) -> tuple[str, list[Request]]:
    """A logged-in customer with one product in the cart, on the cart page; the POSTs of orders
    the page makes are recorded."""
    email, _ = customer(stack)
    log_in(page, email)
    add_from_product_page(page, product())
    page.goto("/#/cart")
    posts: list[Request] = []
    page.on(
        "request",
        lambda r: posts.append(r) if r.method == "POST" and r.url.endswith("/api/v1/orders") else None,
    )
    return email, posts


def test_a_double_clicked_checkout_makes_one_order(page, stack, product):
    email, posts = _one_checkout(page, stack, product)
    page.get_by_test_id("checkout").dblclick()
    order_id = checked_out(page)
    expect(page.get_by_test_id("order-status")).to_have_text("PENDING")
    token = _token(stack, email)
    assert [o["id"] for o in orders_of(stack, token)] == [order_id]
    assert len({r.headers["idempotency-key"] for r in posts}) == 1


def test_a_checkout_whose_answer_was_lost_is_retried_with_its_key_and_makes_one_order(page, stack, product):
    email, posts = _one_checkout(page, stack, product)
    reached: list[dict[str, Any]] = []

    def lose_the_first_answer(route: Route) -> None:
        if route.request.method == "POST" and not reached:
            answer = route.fetch()  # the order is placed on the server...
            reached.append({"status": answer.status, "order": answer.json()})
            route.abort("connectionreset")  # ...and the page never hears of it
        else:
            route.continue_()

    page.route("**/api/v1/orders", lose_the_first_answer)
    page.get_by_test_id("checkout").click()
    order_id = checked_out(page)
    assert reached[0]["status"] == 201
    assert reached[0]["order"]["id"] == order_id
    assert len(posts) >= 2
    assert len({r.headers["idempotency-key"] for r in posts}) == 1
    assert [o["id"] for o in orders_of(stack, _token(stack, email))] == [order_id]


def test_a_checkout_interrupted_by_a_reload_is_finished_with_the_same_key(page, stack, product):
    email, posts = _one_checkout(page, stack, product)
    page.route("**/api/v1/orders", lambda route: route.abort("connectionreset"))  # no answer at all
    page.get_by_test_id("checkout").click()
    expect(page.get_by_test_id("checkout-message")).to_contain_text("Trying again with the same checkout")
    page.unroute("**/api/v1/orders")
    page.reload()  # the pending checkout is in sessionStorage, with its key
    order_id = checked_out(page)
    expect(page.get_by_test_id("order-stock")).to_have_text("reserved")
    assert len({r.headers["idempotency-key"] for r in posts}) == 1
    assert [o["id"] for o in orders_of(stack, _token(stack, email))] == [order_id]


def test_an_order_the_stock_cannot_cover_shows_as_cancelled_with_the_reason(page, stack, product):
    scarce = product(name="Last few bowls", stock=2)
    email, _ = customer(stack)
    log_in(page, email)
    add_from_product_page(page, scarce, times=3)
    page.goto("/#/cart")
    page.get_by_test_id("checkout").click()
    checked_out(page)
    expect(page.get_by_test_id("order-stock")).to_have_text("rejected")
    expect(page.get_by_test_id("order-status")).to_have_text("CANCELLED")
    expect(page.get_by_test_id("order-reason")).to_contain_text("out of stock")
    expect(page.get_by_test_id("pay-submit")).to_be_hidden()
    expect(page.get_by_test_id("cancel-order")).to_be_hidden()
    expect(page.locator("main")).to_contain_text("Last few bowls")  # the line's product, by name
    screenshot(page, "order-out-of-stock")


def test_a_customer_cancels_a_pending_order(page, stack, product):
    email, _ = customer(stack)
    log_in(page, email)
    add_from_product_page(page, product())
    page.goto("/#/cart")
    page.get_by_test_id("checkout").click()
    checked_out(page)
    expect(page.get_by_test_id("order-stock")).to_have_text("reserved")
    page.get_by_test_id("cancel-order").click()
    expect(page.get_by_test_id("order-status")).to_have_text("CANCELLED")
    expect(page.get_by_test_id("order-reason")).to_contain_text("you cancelled it")


def test_a_hostile_product_name_is_shown_as_the_characters_it_is(watched, stack, product):
    page = watched.page
    hostile = product(name=HOSTILE, description=f"{HOSTILE}<script>alert(2)</script>")
    email, _ = customer(stack)
    log_in(page, email)
    add_from_product_page(page, hostile)
    name = page.get_by_test_id("product-name")
    expect(name).to_have_text(HOSTILE)
    assert name.locator("img").count() == 0
    assert page.locator("main img, main script").count() == 0
    page.goto("/#/cart")
    expect(page.get_by_test_id("cart-line")).to_contain_text(HOSTILE)
    page.get_by_test_id("checkout").click()
    checked_out(page)
    expect(page.get_by_test_id("order-status")).to_have_text("PENDING")
    expect(page.locator("main")).to_contain_text(HOSTILE)
    assert page.locator("main img").count() == 0
    time.sleep(0.5)
    assert watched.dialogs == []  # and the fixture checks again at the end


def test_errors_are_told_in_words_and_the_session_is_refreshed_before_it_runs_out(page, stack):
    email, _ = customer(stack)
    page.clock.install()
    page.goto("/#/login")
    page.get_by_test_id("login-email").fill(email)
    page.get_by_test_id("login-password").fill("not the password at all")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login-message")).to_contain_text(
        "That email and password do not match an account."
    )
    screenshot(page, "login-error")
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("account-email")).to_have_text(email)
    # The access token lives 15 minutes: its refresh is due a minute before it runs out.
    with page.expect_request(lambda r: r.url.endswith("/api/v1/auth/refresh")) as refreshed:
        page.clock.fast_forward("14:05")
    assert refreshed.value.response().status == 200
    assert page.evaluate("Object.keys(localStorage)") in ([], ["shop.cart"])
    stored = page.evaluate("JSON.stringify(Object.assign({}, localStorage))")
    assert "eyJ" not in stored  # no token (a JWT starts so) in localStorage
    page.goto("/#/orders")
    expect(page.get_by_test_id("order-history")).to_contain_text("No orders yet.")


def _token(stack, email: str) -> str:
    answer = call(stack.base, "POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD})
    assert answer.status == 200, answer.body
    return str(answer.json()["access_token"])
