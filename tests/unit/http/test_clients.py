"""The client as the gateway's limits count it: one notion for the rate limiter and the failed-login
counter, X-Forwarded-For believed only from trusted proxies, IPv6 callers counted by their /64."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request

from shop.http.app import create_gateway_app
from shop.http.clients import ClientAddress, client_id
from shop.http.ratelimit import Decision, Policy, rate_limit_middleware
from shop.http.routes.auth import AuthRoutes
from shop.observability.readiness import Readiness
from tests.unit.http.test_gateway_app import KEYRING, VERIFIER, _unconnected_auth_routes, _up


@pytest.mark.parametrize(
    ("address", "bucket"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:fffe", "2001:db8:1:2::/64"),  # the same subscriber's /64
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),  # the next /64: another client
        ("2001:DB8:1:2:0:0:0:9", "2001:db8:1:2::/64"),  # however it is spelled
        ("::ffff:198.51.100.7", "198.51.100.7"),  # IPv4 as a dual-stack socket reports it
        ("fe80::1%eth0", "fe80::/64"),
        ("::1", "::/64"),
        ("unknown", "unknown"),
    ],
)
def test_ipv4_clients_are_counted_by_address_and_ipv6_ones_by_their_64(address, bucket):
    assert client_id(address) == bucket


def _request(peer: str, forwarded: str | None = None) -> web.Request:
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    request = make_mocked_request("GET", "/", headers=headers)
    request._transport_peername = (peer, 1234)
    return request


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "client"),
    [
        ([], "203.0.113.9", "198.51.100.1", "203.0.113.9"),  # nobody trusted: the header is ignored
        (["10.0.0.0/8"], "203.0.113.9", "198.51.100.1", "203.0.113.9"),  # untrusted peer
        (["10.0.0.0/8"], "10.0.0.5", "198.51.100.1", "198.51.100.1"),
        (["10.0.0.0/8"], "10.0.0.5", "6.6.6.6, 198.51.100.1, 10.0.0.7", "198.51.100.1"),  # spoofed left part
        (["10.0.0.0/8"], "10.0.0.5", "10.0.0.9", "10.0.0.5"),  # only our own proxies
        (["10.0.0.0/8"], "10.0.0.5", "not-an-address", "10.0.0.5"),
        (["10.0.0.0/8"], "10.0.0.5", None, "10.0.0.5"),
        (["::1"], "::1", "2001:db8::7", "2001:db8::7"),
    ],
)
def test_the_client_address_believes_forwarded_for_only_from_trusted_proxies(
    trusted, peer, forwarded, client
):
    assert ClientAddress(trusted).of(_request(peer, forwarded)) == client


# --- one notion: the rate limiter and login count the same client ---------------------------------


class _RecordingLimiter:
    """Allows everything and remembers whom it counted."""

    def __init__(self) -> None:
        self.clients: list[str] = []

    async def hit(self, policy: Policy, client: str) -> Decision:
        self.clients.append(client)
        return Decision(True, policy.quota, 0, 0)


class _LockedThrottle:
    """Every client is over its limit: login answers 429 before it looks at the database."""

    def __init__(self) -> None:
        self.clients: list[str] = []

    def retry_after(self, email: str, client: str) -> int:
        self.clients.append(client)
        return 60

    def record_failure(self, email: str, client: str) -> None:
        raise AssertionError("a locked client's login is never tried")


class _Stand:
    def __getattr__(self, name: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            return web.json_response({"ok": name})

        return handler


def _auth_routes(throttle: _LockedThrottle) -> AuthRoutes:
    return _unconnected_auth_routes(throttle)


@pytest.fixture
async def counted(aiohttp_client: Any) -> tuple[TestClient, _RecordingLimiter, _LockedThrottle]:
    limiter, throttle = _RecordingLimiter(), _LockedThrottle()
    policies = {name: Policy(name, 1000, 60) for name in ("auth", "products", "orders")}
    stand: Any = _Stand()
    app = create_gateway_app(
        Readiness({"redis": _up}, timeout=1, cache_seconds=0),
        1 << 20,
        KEYRING,
        VERIFIER,
        _auth_routes(throttle),
        stand,
        stand,
        rate_limit_middleware(limiter, policies),  # type: ignore[arg-type]
        clients=ClientAddress(["127.0.0.1"]),  # the test client's address: a trusted proxy
    )
    return await aiohttp_client(app), limiter, throttle


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [
        (None, "127.0.0.1"),
        ("198.51.100.7", "198.51.100.7"),
        ("198.51.100.7, 127.0.0.1", "198.51.100.7"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
    ],
)
async def test_login_counts_failures_for_the_client_the_rate_limiter_counts(counted, forwarded, client):
    http, limiter, throttle = counted
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    login = {"email": "a@example.com", "password": "whatever it is"}
    answer = await http.post("/api/v1/auth/login", json=login, headers=headers)
    assert answer.status == 429
    assert (await answer.json())["error"]["code"] == "too_many_attempts"
    assert limiter.clients == [f"addr:{client}"]
    assert throttle.clients == [client]  # not the proxy's address (request.remote)


async def test_addresses_of_one_ipv6_64_share_one_bucket(counted):
    http, limiter, _ = counted
    for forwarded in ("2001:db8:5:6::1", "2001:db8:5:6::2", "2001:db8:5:6:a:b:c:d", "2001:db8:5:7::1"):
        await http.get("/api/v1/products", headers={"X-Forwarded-For": forwarded})
    assert limiter.clients == ["addr:2001:db8:5:6::/64"] * 3 + ["addr:2001:db8:5:7::/64"]
