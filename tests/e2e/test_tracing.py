"""One trace per order across HTTP, RabbitMQ and Kafka, read back from the local trace store.

The stack exports its spans over OTLP to the stack's Jaeger (`make up` starts it; var/stack.env
names it). An order for a product with no stock takes every hop there is: the gateway, the
place-order actor (RabbitMQ), the relay, `order.created` on Kafka, the inventory agent, the relay,
`stock.rejected` on Kafka, the order side's agent, the relay, the mail actor (RabbitMQ).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

from harness import mailpit
from harness.http import request
from harness.stack import ShopStack
from tests.e2e.test_auth import admin_token, get, new_customer
from tests.e2e.test_orders import body_for, place
from tests.e2e.test_products import create

TRACE_STORE = os.environ.get("SHOP_TRACE_QUERY_URL", "http://127.0.0.1:16686")


@dataclass(frozen=True)
class Span:
    span_id: str
    parent_id: str | None
    service: str
    name: str
    kind: str


def _fetch(trace_id: str) -> list[Span]:
    try:
        with urllib.request.urlopen(f"{TRACE_STORE}/api/traces/{trace_id}", timeout=5) as answer:
            document = json.load(answer)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # not (yet) in the store
            return []
        raise
    spans = []
    for found in document.get("data", []):
        services = {key: process["serviceName"] for key, process in found["processes"].items()}
        for span in found["spans"]:
            parents = [r["spanID"] for r in span.get("references", []) if r["refType"] == "CHILD_OF"]
            tags = {tag["key"]: tag["value"] for tag in span.get("tags", [])}
            spans.append(
                Span(
                    span["spanID"],
                    parents[0] if parents else None,
                    services[span["processID"]],
                    span["operationName"],
                    str(tags.get("span.kind", "")),
                )
            )
    return spans


def wait_for_trace(trace_id: str, last_hop: str, timeout: float = 45) -> list[Span]:
    """The trace once its last hop (an operation name) is in the store, plus a moment for stragglers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        spans = _fetch(trace_id)
        if any(s.name == last_hop for s in spans):
            time.sleep(1.5)  # the other processes' batches may be a moment behind
            return _fetch(trace_id)
        time.sleep(0.5)
    raise AssertionError(f"no {last_hop!r} in trace {trace_id}: {sorted({s.name for s in _fetch(trace_id)})}")


def one(spans: list[Span], service: str, name: str) -> Span:
    matching = [s for s in spans if s.service == service and s.name == name]
    assert len(matching) == 1, (
        f"{service} {name}: {matching} among {sorted((s.service, s.name) for s in spans)}"
    )
    return matching[0]


def assert_chain(spans: list[Span], *hops: tuple[str, str, str]) -> list[Span]:
    """Each (service, operation, kind) is a span whose parent is the previous hop's span."""
    chain: list[Span] = []
    for service, name, kind in hops:
        span = one(spans, service, name)
        assert span.kind == kind, f"{name}: kind {span.kind}, wanted {kind}"
        if chain:
            assert span.parent_id == chain[-1].span_id, f"{name} is not a child of {chain[-1].name}"
        chain.append(span)
    return chain


def _priced_product(stack: ShopStack, stock: int) -> dict[str, Any]:
    """A product the order side knows the price of (the price feed is a Kafka hop behind), probed
    by a customer of its own so the test's customer gets no mail but its own."""
    product = create(stack, admin_token(stack), price_cents=250, stock=stock)
    _, prober = new_customer(stack)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if place(stack, prober, f"probe-{uuid.uuid4()}", body_for(product, 1)).status == 201:
            return product
        time.sleep(0.2)
    raise AssertionError("the price feed never delivered the product")


def test_an_order_that_finds_no_stock_is_one_trace_from_the_gateway_to_the_mail_actor(stack):
    product = _priced_product(stack, stock=0)
    email, token = new_customer(stack)
    placed = place(stack, token, str(uuid.uuid4()), body_for(product, 1))
    assert placed.status == 201
    # The gateway names the request's trace in the answer (W3C Trace Context Level 2).
    version, trace_id, _span_id, flags = placed.headers["traceresponse"].split("-")
    assert (version, len(trace_id)) == ("00", 32)
    assert int(flags, 16) & 1  # sampled
    order_id = placed.json()["id"]
    deadline = time.monotonic() + 30
    while get(stack, f"/api/v1/orders/{order_id}", token).json()["status"] != "CANCELLED":
        assert time.monotonic() < deadline, "the order was never cancelled for want of stock"
        time.sleep(0.2)
    mailpit.wait_for_messages(email, 2)  # the verification code, then the cancellation

    spans = wait_for_trace(trace_id, "send_email process")
    gateway, publish, place_actor = assert_chain(
        spans,
        ("shop-gateway", "POST /api/v1/orders", "server"),
        ("shop-gateway", "orders publish", "producer"),
        ("shop-workers", "place_order process", "consumer"),
    )
    assert gateway.parent_id is None  # the client sent no traceparent: the trace starts here
    assert_chain(
        spans,
        ("shop-workers", "place_order process", "consumer"),
        ("shop-relay", "order.created publish", "producer"),
        ("shop-streams", "order.created process", "consumer"),
        ("shop-relay", "stock.rejected publish", "producer"),
        ("shop-streams", "stock.rejected process", "consumer"),
        ("shop-relay", "mail publish", "producer"),
        ("shop-workers", "send_email process", "consumer"),
    )
    # The database and Redis calls sit under the spans of the code that made them.
    under_actor = {s.name.split()[0] for s in spans if s.parent_id == place_actor.span_id}
    assert {"INSERT", "SELECT"} <= under_actor, under_actor
    under_gateway = {s.name.split()[0] for s in spans if s.parent_id == gateway.span_id} - {
        publish.name.split()[0]
    }
    assert "SET" in under_gateway, under_gateway  # the idempotency lock in Redis


def test_a_callers_traceparent_is_continued_and_every_span_shares_its_trace_id(stack):
    trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    answer = request(
        "GET",
        stack.url("gateway", "/api/v1/products?limit=1"),
        headers={"traceparent": f"00-{trace_id}-{parent}-01"},
    )
    assert answer.headers["traceresponse"].startswith(f"00-{trace_id}-")
    spans = wait_for_trace(trace_id, "GET /api/v1/products")
    server = one(spans, "shop-gateway", "GET /api/v1/products")
    assert server.parent_id == parent


def _samples(stack: ShopStack, process: str) -> dict[str, float]:
    """{'name{labels}': value} of a process's /metrics."""
    text = request("GET", stack.url(process, "/metrics")).body.decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def _value(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    total, found = 0.0, False
    for key, value in samples.items():
        metric, _, rest = key.partition("{")
        if metric == name and all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total, found = total + value, True
    assert found, f"no {name} {labels}"
    return total


def test_each_process_measures_what_it_did_for_an_order(stack):
    # Only the relay holding a database's lease publishes its rows; a stack an earlier test module
    # stopped may have held it a moment ago.
    deadline = time.monotonic() + 15
    while _value(_samples(stack, "relay"), "shop_relay_leader", database="orders") != 1:
        assert time.monotonic() < deadline, "this stack's relay never took the orders lease"
        time.sleep(0.5)
    product = _priced_product(stack, stock=0)
    email, token = new_customer(stack)
    assert place(stack, token, str(uuid.uuid4()), body_for(product, 1)).status == 201
    mailpit.wait_for_messages(email, 2)
    time.sleep(6)  # the consumer lag comes with librdkafka's statistics, every 5 s
    workers, streams, relay, gateway = (
        _samples(stack, p) for p in ("workers", "streams", "relay", "gateway")
    )
    assert _value(workers, "shop_actor_messages_total", actor="place_order", outcome="succeeded") >= 1
    assert _value(workers, "shop_actor_messages_total", actor="send_email", outcome="succeeded") >= 1
    assert _value(workers, "shop_actor_messages_total", actor="place_order", outcome="dead_lettered") == 0
    assert _value(workers, "shop_actor_duration_seconds_count", actor="place_order") >= 1
    assert _value(workers, "shop_mail_deliveries_total", template="order_cancelled", outcome="sent") >= 1
    assert "shop_timers_pending" in {key.partition("{")[0] for key in workers}
    assert _value(streams, "shop_stream_records_total", topic="order.created", outcome="processed") >= 1
    assert _value(streams, "shop_stream_records_total", topic="stock.rejected", outcome="processed") >= 1
    assert _value(streams, "shop_stream_consumer_lag", topic="order.created") >= 0
    assert _value(relay, "shop_relay_published_total", database="orders", topic="order.created") >= 1
    assert (
        _value(relay, "shop_relay_publish_delay_seconds_count", database="orders", destination="kafka") >= 1
    )
    assert _value(relay, "shop_relay_outbox_backlog", database="orders") >= 0
    assert (
        _value(gateway, "shop_http_requests_total", route="/api/v1/orders", status="201", context="orders")
        >= 1
    )
