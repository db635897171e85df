"""`shop health PROCESS`, the containers' HEALTHCHECK: real HTTP servers on free loopback ports."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shop.cli import PROCESSES, build_parser, health, main


class _Handler(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Callable[[int], int]]:
    """`serve(status)` starts a server whose /healthz answers `status`; returns its port."""
    servers: list[ThreadingHTTPServer] = []

    def start(status: int = 200) -> int:
        handler = type("Handler", (_Handler,), {"status": status})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_gateway_port_comes_from_the_settings(serve, capsys):
    port = serve(200)
    env = {"SHOP_GATEWAY_PORT": str(port)}
    assert health(env, "gateway") == 0
    assert capsys.readouterr().out == "shop health: gateway healthy\n"


@pytest.mark.parametrize("option", [["--port", "{port}"], ["--port={port}"], ["--po", "{port}"]])
def test_a_port_given_to_run_and_repeated_to_health_wins_over_the_setting(serve, monkeypatch, option):
    port = serve(200)
    monkeypatch.setenv("SHOP_WORKERS_PORT", str(free_port()))
    assert main(["health", "workers", *(o.format(port=port) for o in option)]) == 0


def test_health_knows_the_processes_run_runs():
    for process in (*PROCESSES, "all"):
        assert build_parser().parse_args(["health", process]).process == process
        assert build_parser().parse_args(["run", process]).process == process


def test_another_answer_than_200_is_unhealthy(serve, capsys):
    port = serve(503)
    assert health({"SHOP_STREAMS_PORT": str(port)}, "streams") == 1
    err = capsys.readouterr().err
    assert err == f"shop health: streams: http://127.0.0.1:{port}/healthz answered 503\n"


def test_nothing_listening_is_unhealthy(capsys):
    port = free_port()
    assert health({"SHOP_GATEWAY_PORT": str(port)}, "gateway") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"shop health: gateway: http://127.0.0.1:{port}/healthz: ")
    assert err.count("\n") == 1


def test_a_silent_process_is_unhealthy_within_the_timeout(capsys):
    # Accepted by the kernel's backlog, never answered: a hung event loop.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        env = {"SHOP_GATEWAY_PORT": str(sock.getsockname()[1])}
        assert health(env, "gateway", timeout=0.3) == 1
    assert "timed out" in capsys.readouterr().err


def test_all_checks_every_process(serve, capsys):
    env = {
        "SHOP_GATEWAY_PORT": str(serve(200)),
        "SHOP_WORKERS_PORT": str(serve(200)),
        "SHOP_STREAMS_PORT": str(serve(200)),
        "SHOP_RELAY_PORT": str(serve(200)),
    }
    assert health(env, "all") == 0
    assert capsys.readouterr().out == "shop health: gateway, workers, streams, relay healthy\n"
    env["SHOP_RELAY_PORT"] = str(free_port())
    assert health(env, "all") == 1
    assert capsys.readouterr().err.startswith("shop health: relay: ")


def test_a_port_for_all_is_refused(serve, capsys):
    assert health({}, "all", serve(200)) == 1
    assert "--port" in capsys.readouterr().err


def test_a_wildcard_bind_is_reached_on_the_loopback(serve):
    port = serve(200)
    env = {"SHOP_HOST": "0.0.0.0", "SHOP_GATEWAY_PORT": str(port)}
    assert health(env, "gateway") == 0


def test_a_proxy_in_the_environment_is_not_used(serve, monkeypatch):
    port = serve(200)
    for name in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert health({"SHOP_GATEWAY_PORT": str(port)}, "gateway") == 0


def test_bad_settings_exit_1_not_docker_s_reserved_2(monkeypatch, capsys):
    monkeypatch.setenv("SHOP_GATEWAY_PORT", "eighty")
    assert main(["health", "gateway"]) == 1
    assert "SHOP_GATEWAY_PORT" in capsys.readouterr().err
