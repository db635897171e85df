"""An order's trace read from Jaeger's query API and shaped into a waterfall's rows."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from shop.observability.trace_store import (
    JaegerQuery,
    TraceStoreUnavailable,
    journey_spans,
    read_trace,
)

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
T0 = 1_765_000_000_000_000  # microseconds since the epoch
_TAGS = {"span_kind": "span.kind", "status": "otel.status_code"}


def span(span_id: str, parent: str | None, process: str, name: str, start: int, duration: int, **tags: Any):
    return {
        "traceID": TRACE_ID,
        "spanID": span_id,
        "operationName": name,
        "references": [{"refType": "CHILD_OF", "traceID": TRACE_ID, "spanID": parent}] if parent else [],
        "startTime": T0 + start,
        "duration": duration,
        "tags": [{"key": _TAGS[key], "type": "string", "value": value} for key, value in tags.items()],
        "processID": process,
    }


# An order's hops as Jaeger answers them: out of order, over four services.
DOCUMENT = {
    "data": [
        {
            "traceID": TRACE_ID,
            "spans": [
                span("e", "d", "p4", "order.created process", 9_000, 2_000, span_kind="consumer"),
                span("c", "b", "p2", "place_order process", 3_000, 6_000, span_kind="consumer"),
                span("a", None, "p1", "POST /api/v1/orders", 0, 12_700, span_kind="server"),
                span("x", "c", "p2", "INSERT", 4_000, 500, span_kind="client", status="ERROR"),
                span("b", "a", "p1", "orders publish", 1_000, 800, span_kind="producer"),
                span("d", "c", "p3", "order.created publish", 8_000, 700, span_kind="producer"),
                span("w", "c", "p2", "INSERT", 3_500, 300, span_kind="client", status="OK"),
            ],
            "processes": {
                "p1": {"serviceName": "shop-gateway"},
                "p2": {"serviceName": "shop-workers"},
                "p3": {"serviceName": "shop-relay"},
                "p4": {"serviceName": "shop-streams"},
            },
        }
    ]
}


def test_the_spans_come_parents_first_siblings_by_start_with_offsets_from_the_first_span():
    rows = journey_spans(DOCUMENT)
    assert [(r.span_id, r.depth) for r in rows] == [
        ("a", 0),
        ("b", 1),
        ("c", 2),
        ("w", 3),
        ("x", 3),
        ("d", 3),
        ("e", 4),
    ]
    gateway, _publish, actor, *_ = rows
    assert (gateway.service, gateway.name, gateway.kind, gateway.parent) == (
        "shop-gateway",
        "POST /api/v1/orders",
        "server",
        None,
    )
    assert (actor.service, actor.start_us, actor.duration_us, actor.parent) == (
        "shop-workers",
        3_000,
        6_000,
        "b",
    )
    assert {r.service for r in rows} == {"shop-gateway", "shop-workers", "shop-relay", "shop-streams"}
    assert [r.status for r in rows if r.name == "INSERT"] == ["ok", "error"]
    assert gateway.status == "unset"
    assert set(gateway.view()) == {
        "span_id", "parent", "service", "name", "kind", "status", "start_us", "duration_us", "depth"
    }  # fmt: skip


def test_a_span_whose_parent_is_not_in_the_trace_is_a_root_and_a_span_without_a_kind_is_internal():
    document = {
        "data": [
            {
                "spans": [
                    span("b", "gone", "p1", "late", 500, 10),
                    span("a", "callers-span", "p1", "first", 200, 10, span_kind="server"),
                ],
                "processes": {"p1": {"serviceName": "shop-gateway"}},
            }
        ]
    }
    rows = journey_spans(document)
    assert [(r.name, r.parent, r.depth, r.start_us, r.kind) for r in rows] == [
        ("first", None, 0, 0, "server"),
        ("late", None, 0, 300, "internal"),
    ]


def test_an_empty_or_missing_trace_has_no_spans():
    assert journey_spans({"data": []}) == []
    assert journey_spans({"data": None, "errors": [{"code": 404, "msg": "trace not found"}]}) == []


class FakeStore:
    def __init__(self, answer: Any = None, failure: Exception | None = None) -> None:
        self.answer, self.failure = answer, failure
        self.asked: list[str] = []

    async def trace(self, trace_id: str) -> Any:
        self.asked.append(trace_id)
        if self.failure is not None:
            raise self.failure
        return self.answer


async def test_reading_an_orders_trace_says_why_there_are_no_spans():
    recorded = await read_trace(FakeStore(DOCUMENT), TRACE_ID)
    assert (recorded.state, recorded.reason, len(recorded.spans)) == ("recorded", None, 7)

    untraced_store = FakeStore(DOCUMENT)
    untraced = await read_trace(untraced_store, None)
    assert (untraced.state, untraced.spans, untraced_store.asked) == ("not_traced", [], [])
    assert "tracing was off" in (untraced.reason or "")

    missing = await read_trace(FakeStore(None), TRACE_ID)
    assert (missing.state, missing.spans) == ("not_recorded", [])
    assert "not sampled" in (missing.reason or "")
    assert TRACE_ID in (missing.reason or "")

    away = await read_trace(FakeStore(failure=TraceStoreUnavailable("it answered 502")), TRACE_ID)
    assert (away.state, away.reason) == (
        "unavailable",
        "The trace store could not be asked: it answered 502.",
    )


@pytest.fixture
async def jaeger(aiohttp_server):
    """A stand-in of Jaeger's query API: the known trace, 404 for another, 500 or a hang on demand."""
    behaviour: dict[str, Any] = {"status": 200, "delay": 0.0}

    async def traces(request: web.Request) -> web.Response:
        await asyncio.sleep(behaviour["delay"])
        if behaviour["status"] != 200:
            return web.json_response({"errors": ["boom"]}, status=behaviour["status"])
        if request.match_info["trace_id"] != TRACE_ID:
            return web.json_response({"data": None, "errors": [{"code": 404}]}, status=404)
        return web.json_response(DOCUMENT)

    app = web.Application()
    app.router.add_get("/api/traces/{trace_id}", traces)
    server = await aiohttp_server(app)
    return str(server.make_url("/")), behaviour


async def test_the_query_client_reads_a_trace_and_says_none_for_an_unknown_one(jaeger):
    url, _ = jaeger
    store = JaegerQuery(url)
    try:
        assert await store.trace(TRACE_ID) == DOCUMENT
        assert await store.trace("f" * 32) is None
        with pytest.raises(ValueError, match="not a trace id"):
            await store.trace("../../admin")
    finally:
        await store.close()


async def test_the_query_client_turns_an_error_or_a_hang_into_unavailable(jaeger):
    url, behaviour = jaeger
    store = JaegerQuery(url, timeout=0.2)
    try:
        behaviour["status"] = 500
        with pytest.raises(TraceStoreUnavailable, match="answered 500"):
            await store.trace(TRACE_ID)
        behaviour.update(status=200, delay=1.0)
        with pytest.raises(TraceStoreUnavailable, match=r"within 0\.2 s"):
            await store.trace(TRACE_ID)
    finally:
        await store.close()
    nowhere = JaegerQuery("http://127.0.0.1:9")  # the discard port: nothing listens
    try:
        with pytest.raises(TraceStoreUnavailable, match="could not be read"):
            await nowhere.trace(TRACE_ID)
    finally:
        await nowhere.close()
