"""Who the caller is, as the gateway's limits count callers: one notion, worked out once per request,
for the rate limiter's anonymous buckets and the failed-login counter per client.

The caller's address is the peer's or, when the peer is one of our trusted proxies, the first address
of `X-Forwarded-For` that is not one of ours. Behind HAProxy the peer is HAProxy: counting it would put
every client in one bucket, and one client's wrong passwords would lock everyone out of login.

An IPv6 caller is counted by its /64 network: a subscriber is usually given a whole /64 and could
otherwise rotate through its addresses, each with a budget of its own. An IPv4 caller (or an IPv4
address mapped into IPv6, as a dual-stack socket reports it) is counted by its address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

CLIENT_KEY = web.RequestKey("client", str)
IPV6_CLIENT_PREFIX = 64


class ClientAddress:
    """The caller's address: the peer, or, when the peer is a trusted proxy, the first address in
    `X-Forwarded-For` that is not one of ours (read from the right, where our proxies appended)."""

    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self._trusted = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in network for network in self._trusted)

    def of(self, request: web.BaseRequest) -> str:
        peer = request.remote or "unknown"
        if not self._trusted or not self._is_trusted(peer):
            return peer
        forwarded = ",".join(request.headers.getall("X-Forwarded-For", []))
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return peer  # garbage where an address should be: fall back to what we know
        return peer


def client_id(address: str) -> str:
    """The bucket an address is counted in: an IPv4 address itself, an IPv6 address's /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an IP (a Unix socket's peer): counted as it is named
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        # From the integer: a zone index ("fe80::1%eth0") names an interface, not another client.
        return str(ipaddress.IPv6Network((int(ip), IPV6_CLIENT_PREFIX), strict=False))
    return str(ip)


def client_middleware(addresses: ClientAddress) -> Middleware:
    """The outermost of the gateway's own middlewares: what comes after reads `client_of`."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[CLIENT_KEY] = client_id(addresses.of(request))
        return await handler(request)

    return middleware


def client_of(request: web.Request) -> str:
    """The caller as the limits count it (see the module's docstring)."""
    return request[CLIENT_KEY]
