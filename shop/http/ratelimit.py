"""Per-client rate limits, kept in Redis with GCRA (the generic cell rate algorithm) in one Lua script.

A policy allows `quota` requests per `window` seconds with bursts up to the whole quota: each request
moves the client's "theoretical arrival time" (TAT) forward by window/quota, and a request is refused
while the TAT would run more than a window ahead of now. One key per (policy, client) holding one
number, updated atomically with Redis's own clock, so every gateway replica shares the same budget.

Answers carry the IETF draft headers (`RateLimit-Policy: "orders";q=60;w=60` and
`RateLimit: "orders";r=41;t=17`); a refusal is `429` with `Retry-After`. Clients are the user id when
the request carries a valid token, else the client as `shop.http.clients` counts it (`X-Forwarded-For`
believed only from a trusted proxy; an IPv6 client by its /64), as the failed-login counter does.
When Redis does not answer, queries are let through (fail open: reads are cheap and the catalog
should stay up) and auth routes are refused with `503` (fail closed: the limit is what stands
between a password and a brute-force attempt).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import redis.exceptions
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import Counter

from shop.http.auth import optional_principal
from shop.http.clients import client_of
from shop.http.errors import ApiError
from shop.http.routing import spec_of
from shop.redis_clients import AsyncRedis

log = logging.getLogger("shop.http.ratelimit")

REJECTED = Counter("shop_rate_limit_rejections_total", "Requests refused with 429", ["group"])
LIMITER_DOWN = Counter(
    "shop_rate_limiter_unavailable_total",
    "Requests decided without the rate limiter (Redis did not answer)",
    ["group", "outcome"],
)

# Returns {allowed (1/0), remaining, retry_after_ms, reset_ms}.
_GCRA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > window then
    return {0, 0, new_tat - window - now, tat - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return {1, math.floor((window - (new_tat - now)) / interval), 0, new_tat - now}
"""


@dataclass(frozen=True)
class Policy:
    name: str
    quota: int
    window: float  # seconds

    @property
    def interval_ms(self) -> int:
        return max(1, round(self.window * 1000 / self.quota))

    @property
    def window_ms(self) -> int:
        # A whole number of intervals, so that a fresh client has exactly `quota` requests.
        return self.interval_ms * self.quota

    def header(self) -> str:
        return f'"{self.name}";q={self.quota};w={math.ceil(self.window)}'


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after: float  # seconds, when refused
    reset: float  # seconds until the whole quota is back


class RedisRateLimiter:
    def __init__(self, client: AsyncRedis, prefix: str = "ratelimit") -> None:
        self._client = client
        self._script = client.register_script(_GCRA)
        self._prefix = prefix

    async def hit(self, policy: Policy, client_id: str) -> Decision:
        key = f"{self._prefix}:{policy.name}:{client_id}"
        allowed, remaining, retry_ms, reset_ms = await self._script(
            keys=[key], args=[policy.interval_ms, policy.window_ms]
        )
        return Decision(bool(allowed), int(remaining), int(retry_ms) / 1000, int(reset_ms) / 1000)


def rate_limit_middleware(limiter: RedisRateLimiter, policies: Mapping[str, Policy]) -> Middleware:
    """Place it inside the error middleware (its 429 and 503 get the envelope) and after the client
    and identity middlewares (it keys authenticated callers by user id, the others by `client_of`)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        spec = spec_of(request)
        policy = policies.get(spec.limit) if spec is not None and spec.limit else None
        if policy is None:
            return await handler(request)
        try:
            principal = optional_principal(request)
        except ApiError:
            principal = None  # a bad token: limited by address; the handler answers 401
        client = f"user:{principal.user_id}" if principal else f"addr:{client_of(request)}"
        try:
            decision = await limiter.hit(policy, client)
        except (redis.exceptions.RedisError, OSError) as exc:
            if spec is not None and spec.context == "auth":
                LIMITER_DOWN.labels(policy.name, "refused").inc()
                log.error("rate limiter unavailable (%s): refusing auth request %s", exc, request.path)
                raise ApiError(
                    503,
                    "rate_limiter_unavailable",
                    "the rate limiter is unavailable; auth requests are refused until it is back",
                    headers={"Retry-After": "5"},
                ) from None
            LIMITER_DOWN.labels(policy.name, "allowed").inc()
            log.warning("rate limiter unavailable (%s): letting %s through", exc, request.path)
            return await handler(request)
        # Every answer of a limited route carries them, error envelopes included (see `add_headers`).
        request[_HEADERS_KEY] = {
            "RateLimit-Policy": policy.header(),
            "RateLimit": f'"{policy.name}";r={decision.remaining};t={math.ceil(decision.reset)}',
        }
        if not decision.allowed:
            REJECTED.labels(policy.name).inc()
            retry_after = max(1, math.ceil(decision.retry_after))
            raise ApiError(
                429,
                "rate_limited",
                f"too many requests for {policy.name!r}; retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )
        return await handler(request)

    return middleware


_HEADERS_KEY = web.RequestKey("ratelimit_headers", dict)


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: the rate-limit headers on whatever answer goes out."""
    headers = request.get(_HEADERS_KEY)
    if headers:
        response.headers.update(headers)
