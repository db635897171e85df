"""The storefront in a real browser: Debian's chromium (installed the stack's way when missing),
driven by Playwright for Python through its `executable_path` (Playwright's own browser download is
never used), against a private stack started by the harness the e2e tests use."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, Playwright, sync_playwright

from harness.http import call
from harness.stack import ShopStack
from tests.e2e.stack import e2e_stack
from tests.e2e.test_auth import PASSWORD, login, new_address, register_and_verify
from tests.unit.ops.tools import ROOT, ensure_deb

SCREENSHOTS = ROOT / "var" / "screenshots"


# Package-scoped, not session: the stack stops after the last browser test, before the chaos run
# (which runs last, and whose relays must get the outbox leases this stack's relay would hold).
@pytest.fixture(scope="package")
def stack() -> Iterator[ShopStack]:
    # SHOP_MAILPIT_URL and SHOP_TRACE_QUERY_URL come from var/stack.env: the sign-up page links to
    # Mailpit, and the journey view reads the dev Jaeger, to which every trace is exported here.
    # A RabbitMQ vhost of its own: its actor messages (the placements whose trace the journey view
    # reads) go to its own workers, never to another stack's sharing the servers.
    running = e2e_stack({"OTEL_TRACES_SAMPLER": "parentbased_always_on"}, vhost=f"shop-browser-{os.getpid()}")
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="package")
def chromium() -> str:
    return ensure_deb("chromium", "chromium")


# Per module, not per session: Playwright's sync API runs an event loop while it is started, and the
# asyncio tests that run after this module need none running.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright, chromium: str) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=chromium, headless=True)
    yield launched
    launched.close()


class Watched:
    """A page, and what it said that a person should never see: dialogs, CSP refusals, script errors."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(message.text)


@pytest.fixture
def watched(browser: Browser, stack: ShopStack) -> Iterator[Watched]:
    context = browser.new_context(base_url=stack.base, viewport={"width": 1200, "height": 800})
    context.set_default_timeout(20_000)
    watching = Watched(context.new_page())
    yield watching
    context.close()
    assert watching.dialogs == [], f"a dialog opened: {watching.dialogs}"
    assert watching.errors == [], f"the page reported errors: {watching.errors}"


@pytest.fixture
def page(watched: Watched) -> Page:
    return watched.page


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="package")
def admin_account(stack: ShopStack) -> tuple[str, str]:
    """A verified account granted the admin role: (its address, an access token)."""
    email = new_address()
    register_and_verify(stack, email)
    subprocess.run([sys.executable, "-m", "shop", "admin", "grant", email], check=True, capture_output=True)
    return email, str(login(stack, email)["access_token"])


@pytest.fixture(scope="package")
def admin(admin_account: tuple[str, str]) -> str:
    return admin_account[1]


def customer(stack: ShopStack) -> tuple[str, str]:
    """A verified account: (its address, an access token)."""
    email = new_address()
    register_and_verify(stack, email)
    return email, str(login(stack, email)["access_token"])


@pytest.fixture(scope="package")
def prober(stack: ShopStack) -> str:
    return customer(stack)[1]


def orders_of(stack: ShopStack, token: str) -> list[dict[str, Any]]:
    response = call(stack.base, "GET", "/api/v1/orders?limit=100", token=token)
    assert response.status == 200, response.body
    return list(response.json()["items"])


@pytest.fixture
def product(stack: ShopStack, admin: str, prober: str) -> Callable[..., dict[str, Any]]:
    """product(name=..., stock=...): a new product the order side already prices (the price feed
    has delivered it: a probe order of one unit is placed, then cancelled)."""

    def make(**fields: Any) -> dict[str, Any]:
        body = {
            "sku": f"WEB-{uuid.uuid4().hex[:10]}",
            "name": "Enamel mug",
            "description": "A mug for the browser tests.",
            "price_cents": 1250,
            "currency": "EUR",
            "stock": 50,
            **fields,
        }
        created = call(stack.base, "POST", "/api/v1/products", body, admin)
        assert created.status == 201, created.body
        made = dict(created.json())
        probe = {"items": [{"product_id": made["id"], "quantity": 1}]}
        deadline = time.monotonic() + 30
        while True:
            placed = call(
                stack.base, "POST", "/api/v1/orders", probe, prober, {"Idempotency-Key": str(uuid.uuid4())}
            )
            if placed.status == 201:
                cancelled = call(
                    stack.base, "POST", f"/api/v1/orders/{placed.json()['id']}/cancel", {}, prober
                )
                assert cancelled.status == 200, cancelled.body
                return made
            assert placed.json()["error"]["code"] == "unknown_product", placed.body
            assert time.monotonic() < deadline, "the price feed never delivered the product"
            time.sleep(0.2)

    return make


def log_in(page: Page, email: str, password: str = PASSWORD) -> None:
    page.goto("/#/login")
    page.get_by_test_id("login-email").fill(email)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("account-email").wait_for()
