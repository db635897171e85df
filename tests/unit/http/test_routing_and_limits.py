"""The routing table, rate-limit policies and settings, security headers (client addresses behind
proxies: test_clients.py)."""

from __future__ import annotations

import pytest

from shop.http.ratelimit import Policy
from shop.http.routing import LIMIT_GROUPS, ROUTES, Access
from shop.observability.readiness import Readiness
from shop.settings import Settings, SettingsError
from tests.unit.http.test_gateway_app import _up, gateway


def test_every_route_is_in_the_table_once_with_a_known_context_and_group():
    keys = [(r.method, r.path) for r in ROUTES]
    assert len(keys) == len(set(keys))
    assert {r.context for r in ROUTES} == {"gateway", "auth", "products", "orders", "admin"}
    assert set(LIMIT_GROUPS) == {"auth", "products", "orders"}
    assert all(r.limit is None for r in ROUTES if r.context == "gateway")
    assert {r.access for r in ROUTES if r.context == "orders"} <= {Access.CUSTOMER, Access.OWNER}
    assert {r.access for r in ROUTES if r.context == "admin"} == {Access.ADMIN}


def test_a_policy_gives_exactly_its_quota_and_prints_the_draft_header():
    policy = Policy("orders", 60, 60)
    assert policy.header() == '"orders";q=60;w=60'
    assert policy.window_ms // policy.interval_ms == 60
    odd = Policy("products", 3, 5)
    assert odd.window_ms // odd.interval_ms == 3


def test_rate_limits_come_from_the_environment_with_defaults_for_the_rest():
    limits = Settings.from_env({"SHOP_RATE_LIMITS": "orders=10/1m"}).rate_limits
    assert limits["orders"] == (10, 60.0)
    assert set(limits) == set(LIMIT_GROUPS)
    assert Settings.from_env({}).rate_limits == {  # docs/api.md; orders: the upstream example policy
        "auth": (600, 60.0),
        "products": (1200, 60.0),
        "orders": (60, 60.0),
    }


def test_the_settings_know_the_groups_without_importing_aiohttp():
    # `shop health` reads the settings at every check; aiohttp would add a third of a second of CPU.
    import subprocess
    import sys

    code = "import sys, shop.settings; assert 'aiohttp' not in sys.modules, 'aiohttp imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    "value", ["orders", "orders=10", "orders=ten/60s", "orders=0/60s", "orders=10/never", "basket=1/1s"]
)
def test_bad_rate_limits_name_the_variable(value):
    with pytest.raises(SettingsError, match="SHOP_RATE_LIMITS"):
        Settings.from_env({"SHOP_RATE_LIMITS": value})


def test_trusted_proxies_must_be_addresses_or_networks():
    assert Settings.from_env({"SHOP_TRUSTED_PROXIES": "10.0.0.0/8,::1"}).trusted_proxies == (
        "10.0.0.0/8",
        "::1/128",
    )
    with pytest.raises(SettingsError, match="SHOP_TRUSTED_PROXIES"):
        Settings.from_env({"SHOP_TRUSTED_PROXIES": "haproxy"})


async def test_every_answer_hides_the_server_version_and_forbids_sniffing(aiohttp_client):
    client = await aiohttp_client(gateway(Readiness({"redis": _up}, timeout=1, cache_seconds=0)))
    for response in (await client.get("/healthz"), await client.get("/nope"), await client.post("/healthz")):
        assert response.headers["Server"] == "shop"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_docs_page_and_its_files_come_from_the_pinned_package_not_a_cdn(aiohttp_client):
    client = await aiohttp_client(gateway(Readiness({"redis": _up}, timeout=1, cache_seconds=0)))
    page = await client.get("/docs")
    assert page.status == 200
    assert page.content_type == "text/html"
    html = await page.text()
    assert "/api/v1/openapi.json" in html
    assert "http://" not in html
    assert "https://" not in html
    for name, content_type in (
        ("swagger-ui-bundle.js", "application/javascript"),
        ("swagger-ui-standalone-preset.js", "application/javascript"),
        ("swagger-ui.css", "text/css"),
    ):
        asset = await client.get(f"/docs/static/{name}")
        assert asset.status == 200
        assert asset.content_type in (content_type, "text/javascript")
        assert len(await asset.read()) > 1000
    missing = await client.get("/docs/static/..%2Fcore.py")
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"


async def test_a_query_parameter_the_route_does_not_take_is_a_400(aiohttp_client):
    client = await aiohttp_client(gateway(Readiness({"redis": _up}, timeout=1, cache_seconds=0)))
    response = await client.get("/api/v1/openapi.json?limt=5")
    assert response.status == 400
    body = await response.json()
    assert body["error"]["code"] == "unknown_parameter"
    assert "limt" in body["error"]["message"]
    assert (await client.get("/api/v1/openapi.json")).status == 200


async def test_a_lone_surrogate_anywhere_in_a_body_is_a_400_not_a_500(aiohttp_client):
    from aiohttp import web

    from shop.http.json_body import json_object
    from shop.http.middlewares import error_middleware

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(await json_object(request))

    app = web.Application(middlewares=[error_middleware])
    app.router.add_post("/echo", echo)
    client = await aiohttp_client(app)
    headers = {"Content-Type": "application/json"}
    for raw in (
        '{"email": "\\ud8fd"}',
        '{"a": ["x", "\\udc00"]}',
        '{"\\ud800": 1}',
        '{"a": {"b": "\\ud800"}}',
    ):
        response = await client.post("/echo", data=raw, headers=headers)
        assert response.status == 400, raw
        assert (await response.json())["error"]["code"] == "malformed_json"
    ok = await client.post("/echo", data='{"name": "caf\\u00e9"}', headers=headers)
    assert await ok.json() == {"name": "café"}
