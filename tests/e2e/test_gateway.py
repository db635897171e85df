"""The whole stack through the gateway, as a client sees it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from harness.http import request

ROOT = Path(__file__).resolve().parents[2]
DEPENDENCIES = {"postgres_primary", "postgres_replica", "redis", "rabbitmq", "kafka"}


def _assert_error_shape(response, status: int, code: str) -> None:
    assert response.status == status
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["error"]["request_id"] == response.headers["X-Request-Id"]


def test_readyz_answers_200_listing_each_dependency(stack):
    response = request("GET", stack.url("gateway", "/readyz"))
    assert response.status == 200
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == DEPENDENCIES
    assert all(check["status"] == "up" for check in body["checks"].values())


@pytest.mark.parametrize("process", ["workers", "streams", "relay"])
def test_every_process_serves_health_readiness_and_metrics(stack, process):
    assert request("GET", stack.url(process, "/healthz")).json() == {"status": "ok"}
    ready = request("GET", stack.url(process, "/readyz"))
    assert ready.status == 200
    assert ready.json()["checks"]
    metrics = request("GET", stack.url(process, "/metrics"))
    assert metrics.status == 200
    assert b"shop_http_requests_total" in metrics.body


def test_errors_have_one_shape_and_every_answer_a_request_id(stack):
    _assert_error_shape(request("GET", stack.url("gateway", "/api/v1/nothing-here")), 404, "not_found")
    _assert_error_shape(request("DELETE", stack.url("gateway", "/healthz")), 405, "method_not_allowed")
    too_big = request(
        "POST",
        stack.url("gateway", "/api/v1/openapi.json"),
        body=b"{" + b" " * (1024 * 1024) + b"}",
        headers={"Content-Type": "application/json"},
    )
    _assert_error_shape(too_big, 413, "payload_too_large")
    echoed = request("GET", stack.url("gateway", "/healthz"), headers={"X-Request-Id": "client-chosen-1"})
    assert echoed.headers["X-Request-Id"] == "client-chosen-1"


def test_openapi_document_is_served(stack):
    document = request("GET", stack.url("gateway", "/api/v1/openapi.json")).json()
    assert document["openapi"] == "3.1.0"
    assert "/readyz" in document["paths"]


def test_gateway_metrics_count_what_it_answered(stack):
    request("GET", stack.url("gateway", "/healthz"))
    text = request("GET", stack.url("gateway", "/metrics")).body.decode()
    assert 'shop_http_requests_total{context="process",method="GET",route="/healthz",status="200"}' in text


def test_supervisor_restarts_a_process_that_dies(stack):
    before = stack.pids()["relay"]
    subprocess.run(["kill", "-9", str(before)], check=True)
    deadline = time.monotonic() + 30
    while True:
        after = stack.pids().get("relay")
        if after and after != before and _ready(stack.url("relay", "/readyz")):
            break
        assert time.monotonic() < deadline, stack.output()[-3000:]
        time.sleep(0.2)
    assert "relay exited with code -9" in stack.output()


def _ready(url: str) -> bool:
    try:
        return request("GET", url).status == 200
    except OSError:
        return False


def test_readyz_is_503_naming_kafka_while_kafka_is_down(stack):
    url = stack.url("gateway", "/readyz")
    subprocess.run([str(ROOT / "ops/local/stack.sh"), "stop", "kafka"], check=True, capture_output=True)
    try:
        deadline = time.monotonic() + 20
        while (response := request("GET", url)).status != 503:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        body = response.json()
        assert body["checks"]["kafka"]["status"] == "down"
        assert "kafka" in body["error"]["message"]
        assert {name for name, check in body["checks"].items() if check["status"] == "down"} == {"kafka"}
    finally:
        subprocess.run([str(ROOT / "ops/local/stack.sh"), "start", "kafka"], check=True, capture_output=True)
    deadline = time.monotonic() + 60
    while request("GET", url).status != 200:
        assert time.monotonic() < deadline, "the gateway did not see kafka come back"
        time.sleep(0.5)
