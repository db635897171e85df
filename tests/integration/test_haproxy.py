"""The Swarm stack's HAProxy (ops/swarm/config/haproxy/haproxy.cfg), run for real on loopback in front
of a stand-in gateway that answers every path: the public routes reach it, the gateway's /metrics and
/readyz (whose answer names each dependency and its error) never do, however they are spelled.

The configuration is the stack's file with three lines moved to loopback: the two binds and the
gateways' server-template (Docker's DNS is not here). Debian's haproxy, installed when missing."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from harness.processes import free_port
from shop.http.routing import ROUTES
from tests.unit.ops.tools import ensure_deb

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CFG = ROOT / "ops" / "swarm" / "config" / "haproxy" / "haproxy.cfg"

# Each would reach the gateway's /metrics or /readyz if HAProxy passed it (aiohttp decodes the
# percent-escapes, ignores the query and takes the path of an absolute-form request).
PRIVATE = [
    ("GET", "/metrics"),
    ("GET", "/readyz"),
    ("HEAD", "/metrics"),
    ("GET", "/metrics?format=text"),
    ("GET", "/%6Detrics"),
    ("GET", "/%6detrics"),
    ("GET", "/re%61dyz"),
    ("GET", "/metric%73"),
    ("GET", "http://gateway/metrics"),
    ("GET", "http://gateway/readyz?x=1"),
    ("GET", "/metrics/"),
    ("GET", "//metrics"),
    ("GET", "/api/../metrics"),
    ("GET", "/api/v1/%2e%2E/../readyz"),
    ("GET", "/docs/static/../../metrics"),
    ("GET", "/api/v1/./.."),
    ("GET", "/stats"),
    ("GET", "/assets/../metrics"),
]


class _Gateway(BaseHTTPRequestHandler):
    """Answers 200 to anything, and remembers what reached it."""

    seen: ClassVar[list[tuple[str, str]]] = []

    def _answer(self) -> None:
        if self.path != "/healthz" or self.headers.get("Host") != "gateway":  # not HAProxy's checks
            self.seen.append((self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = json.dumps({"gateway": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Proxy:
    public: int
    stats: int
    gateway: type[_Gateway]

    def ask(self, method: str, path: str, port: int | None = None) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", port or self.public, timeout=10)
        try:
            connection.request(method, path, body=b"{}" if method in ("POST", "PATCH") else None)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


def local_config(text: str, public: int, stats: int, gateway: int) -> str:
    """The stack's configuration, listening on loopback, with one gateway at a fixed address."""
    replacements = [
        (r"^(\s*)bind :8080$", rf"\1bind 127.0.0.1:{public}"),
        (r"^(\s*)bind :8405$", rf"\1bind 127.0.0.1:{stats}"),
        (r"^(\s*)server-template gateway- .*$", rf"\1server gateway-1 127.0.0.1:{gateway} check"),
    ]
    for pattern, replacement in replacements:
        text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        assert count == 1, f"{pattern!r} is not in {HAPROXY_CFG}: update this test with the file"
    return text


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    haproxy = ensure_deb("haproxy", "haproxy")
    gateway = type("Gateway", (_Gateway,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    public, stats = free_port(), free_port()
    config = tmp_path_factory.mktemp("haproxy") / "haproxy.cfg"
    config.write_text(local_config(HAPROXY_CFG.read_text(), public, stats, server.server_address[1]))
    process = subprocess.Popen(
        [haproxy, "-db", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    running = Proxy(public, stats, gateway)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if running.ask("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            error = process.stderr.read() if process.poll() is not None and process.stderr else b""
            assert process.poll() is None, f"haproxy exited: {error!r}"
            assert time.monotonic() < deadline, "haproxy did not pass requests to the gateway in 15 s"
            time.sleep(0.2)
        yield running
    finally:
        process.terminate()
        process.wait(10)
        server.shutdown()


def _sample(path: str) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_every_public_route_reaches_the_gateway(proxy, route):
    path = _sample(route.path)
    status, body = proxy.ask(route.method, path)
    assert status == 200, body
    assert (route.method, path) in proxy.gateway.seen


def test_health_reaches_the_gateway(proxy):
    assert proxy.ask("GET", "/healthz") == (200, b'{"gateway": "/healthz"}')


@pytest.mark.parametrize(("method", "path"), PRIVATE)
def test_metrics_and_readiness_are_not_public(proxy, method, path):
    before = len(proxy.gateway.seen)
    status, body = proxy.ask(method, path)
    assert status == 404, (status, body)
    if method != "HEAD":
        assert json.loads(body)["error"]["code"] == "not_found"
    assert proxy.gateway.seen[before:] == [], "the request reached the gateway"


def test_operators_still_have_haproxys_own_port(proxy):
    status, body = proxy.ask("GET", "/metrics", port=proxy.stats)
    assert status == 200
    assert b"haproxy_" in body
    assert proxy.ask("GET", "/healthz", port=proxy.stats)[0] == 200
