"""Rate limits on a real `shop run gateway` with small limits: a burst, the 429, the recovery."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from harness.http import request
from harness.processes import free_port


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "SHOP_GATEWAY_PORT": str(port),
        "SHOP_RATE_LIMITS": "products=5/2s,auth=3/2s",
        "SHOP_TRUSTED_PROXIES": "127.0.0.1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "shop", "run", "gateway"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if request("GET", base + "/readyz").status == 200:
                break
        except OSError:
            pass
        assert process.poll() is None, "the gateway exited"
        assert time.monotonic() < deadline, "the gateway never became ready"
        time.sleep(0.2)
    yield base
    process.terminate()
    process.wait(15)


def test_a_burst_is_cut_at_the_quota_and_recovers_after_the_window(gateway):
    client = {"X-Forwarded-For": "198.51.100.20"}  # its own budget, through the trusted loopback proxy
    answers = [request("GET", gateway + "/api/v1/products?limit=1", headers=client) for _ in range(6)]
    assert [a.status for a in answers] == [200] * 5 + [429]
    assert [a.headers["RateLimit"].split(";")[1] for a in answers] == [
        "r=4",
        "r=3",
        "r=2",
        "r=1",
        "r=0",
        "r=0",
    ]
    assert all(a.headers["RateLimit-Policy"] == '"products";q=5;w=2' for a in answers)
    retry_after = int(answers[5].headers["Retry-After"])
    assert 1 <= retry_after <= 2
    assert answers[5].json()["error"]["code"] == "rate_limited"
    # Another client is unaffected; after Retry-After the first one is served again.
    assert (
        request(
            "GET", gateway + "/api/v1/products?limit=1", headers={"X-Forwarded-For": "198.51.100.21"}
        ).status
        == 200
    )
    time.sleep(retry_after)
    assert request("GET", gateway + "/api/v1/products?limit=1", headers=client).status == 200


def test_auth_routes_are_limited_and_never_cached(gateway):
    client = {"X-Forwarded-For": "198.51.100.30", "Content-Type": "application/json"}
    answers = [request("POST", gateway + "/api/v1/auth/login", b"{}", client) for _ in range(4)]
    assert [a.status for a in answers] == [422, 422, 422, 429]
    assert all(a.headers["Cache-Control"] == "no-store" for a in answers)
    assert all(
        a.headers["Server"] == "shop" and a.headers["X-Content-Type-Options"] == "nosniff" for a in answers
    )
