"""The storefront's page and files as the gateway serves them (shop/http/storefront.py, shop/web/)."""

from __future__ import annotations

import re
from pathlib import Path

from shop.http.app import create_gateway_app
from shop.http.storefront import CONTENT_SECURITY_POLICY, StorefrontConfig
from shop.observability.readiness import Readiness
from shop.settings import Settings
from tests.unit.http.test_gateway_app import KEYRING, LIMIT, VERIFIER, _up, gateway

WEB = Path(__file__).resolve().parents[3] / "shop" / "web"
MODULES = sorted(WEB.glob("*.js"))


def _readiness() -> Readiness:
    return Readiness({"redis": _up}, timeout=1, cache_seconds=0)


async def test_the_page_and_its_files_carry_a_policy_that_allows_only_this_origin(aiohttp_client):
    client = await aiohttp_client(gateway(_readiness()))
    page = await client.get("/")
    assert page.status == 200
    assert page.content_type == "text/html"
    policy = page.headers["Content-Security-Policy"]
    assert policy == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    html = await page.text()
    assert '<script type="module" src="/assets/main.js"></script>' in html
    for module in MODULES:
        asset = await client.get(f"/assets/{module.name}")
        assert asset.status == 200, module.name
        assert asset.content_type == "text/javascript"  # modules are refused under nosniff otherwise
        assert asset.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    style = await client.get("/assets/style.css")
    assert (style.status, style.content_type) == (200, "text/css")


async def test_only_the_storefronts_own_files_are_served(aiohttp_client):
    client = await aiohttp_client(gateway(_readiness()))
    for name in ("index.html", "..%2Fstorefront.py", "nope.js", "__init__.py", "..%2F..%2Fsettings.py"):
        path = f"/assets/{name}"
        missing = await client.get(path)
        assert missing.status == 404, path
        assert (await missing.json())["error"]["code"] == "not_found"


async def test_the_api_keeps_its_own_headers(aiohttp_client):
    client = await aiohttp_client(gateway(_readiness()))
    answer = await client.get("/api/v1/openapi.json")
    assert answer.status == 200
    assert "Content-Security-Policy" not in answer.headers


async def test_the_config_names_mailpit_only_when_it_is_set(aiohttp_client):
    bare = await aiohttp_client(gateway(_readiness()))
    assert await (await bare.get("/storefront.json")).json() == {"mailpit_url": None, "reminders_s": []}
    env = {"SHOP_MAILPIT_URL": "http://127.0.0.1:8025", "SHOP_ORDER_REMINDERS": "4h,12h"}
    settings = Settings.from_env(env)
    told = StorefrontConfig(settings.mailpit_url, settings.orders.reminders)
    app = create_gateway_app(_readiness(), LIMIT, KEYRING, VERIFIER, None, storefront=told)
    client = await aiohttp_client(app)
    assert await (await client.get("/storefront.json")).json() == {
        "mailpit_url": "http://127.0.0.1:8025",
        "reminders_s": [14400.0, 43200.0],
    }
    assert Settings.from_env({}).mailpit_url is None


def test_no_inline_script_style_or_handler_and_nothing_from_elsewhere():
    html = (WEB / "index.html").read_text()
    assert re.findall(r"<script[^>]*>", html) == ['<script type="module" src="/assets/main.js">']
    assert "<style" not in html
    assert not re.search(r"\son[a-z]+=", html)
    assert not re.search(r"\sstyle=", html)
    for path in [WEB / "index.html", WEB / "style.css", *MODULES]:
        text = path.read_text()
        # No CDN, nothing fetched from elsewhere (the SVG's namespace is a name, not a fetch).
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), path.name
        assert "@import" not in text, path.name


def test_data_is_only_ever_written_as_text():
    """textContent and text nodes only: no module turns a string into markup."""
    for module in MODULES:
        code = module.read_text()
        sinks = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function")
        for sink in sinks:
            assert sink not in code, f"{module.name} uses {sink}"
        # Styles only through the CSSOM (element.style.width = ...), which the policy allows.
        assert not re.search(r"""setAttribute\(\s*["']style|\bstyle:\s*[`"'][a-z-]+\s*:""", code), module.name


def test_tokens_are_never_put_in_local_storage():
    for module in MODULES:
        code = module.read_text()
        for line in code.splitlines():
            if "localStorage" in line and not line.lstrip().startswith("//"):
                assert module.name == "cart.js", f"{module.name}: {line.strip()}"
    assert "token" not in (WEB / "cart.js").read_text().replace("never a token", "")
