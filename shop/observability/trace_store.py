"""An order's trace read back from the trace store (Jaeger's query API, `GET /api/traces/{id}`), and
shaped for a waterfall: each span's service, name, kind, status, start (offset from the trace's first
span) and duration in microseconds, parents before their children.

The gateway's admin view of an order's journey (shop/http/routes/journey.py) is its one reader. The
store is asked with a short timeout: a store that is away costs the page its spans, not its answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import aiohttp

# Long enough for the local Jaeger to answer a trace of a few hundred spans, short enough that an
# admin whose trace store hangs hears about it in time.
QUERY_TIMEOUT_S = 2.0
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


class TraceStoreUnavailable(RuntimeError):
    """The trace store did not answer, or answered with something other than a trace."""


class TraceStore(Protocol):
    async def trace(self, trace_id: str) -> Mapping[str, Any] | None:
        """The store's document of the trace; None when the store holds no such trace."""


@dataclass
class JaegerQuery:
    """Jaeger's query HTTP API at `base_url` (SHOP_TRACE_QUERY_URL). The session is made at the
    first question, on the event loop that asks, unless one is handed in; `close` ends it."""

    base_url: str
    timeout: float = QUERY_TIMEOUT_S
    session: aiohttp.ClientSession | None = None

    async def trace(self, trace_id: str) -> Mapping[str, Any] | None:
        if not _TRACE_ID.match(trace_id):
            raise ValueError(f"not a trace id: {trace_id!r}")
        if self.session is None:
            self.session = aiohttp.ClientSession()
        url = f"{self.base_url.rstrip('/')}/api/traces/{trace_id}"
        try:
            async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=self.timeout)) as answer:
                if answer.status == 404:  # not sampled, not exported yet, or evicted
                    return None
                if answer.status != 200:
                    raise TraceStoreUnavailable(f"it answered {answer.status}")
                document = await answer.json(content_type=None)
        except TimeoutError as exc:
            raise TraceStoreUnavailable(f"it did not answer within {self.timeout:g} s") from exc
        except (aiohttp.ClientError, ValueError) as exc:
            raise TraceStoreUnavailable(f"it could not be read ({exc.__class__.__name__})") from exc
        if not isinstance(document, Mapping):
            raise TraceStoreUnavailable("it answered something other than a trace")
        return document

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


@dataclass(frozen=True)
class JourneySpan:
    span_id: str
    parent: str | None  # None: a root (or a parent the trace does not hold, e.g. a caller's)
    service: str
    name: str
    kind: str  # server, client, producer, consumer, internal
    status: str  # ok, error, unset
    start_us: int  # after the trace's first span started (since the epoch in `_spans_of`)
    duration_us: int
    depth: int  # 0 for a root: how far to indent its bar

    def view(self) -> dict[str, Any]:
        return asdict(self)


def journey_spans(document: Mapping[str, Any]) -> list[JourneySpan]:
    """Jaeger's trace document as a waterfall's rows: depth first, siblings by start time."""
    found = [span for trace in document.get("data") or [] for span in _spans_of(trace)]
    if not found:
        return []
    first = min(span.start_us for span in found)
    known = {span.span_id for span in found}
    children: dict[str | None, list[JourneySpan]] = {}
    for span in found:
        children.setdefault(span.parent if span.parent in known else None, []).append(span)
    rows: list[JourneySpan] = []
    seen: set[str] = set()

    def walk(parent: str | None, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: (s.start_us, s.span_id)):
            if span.span_id in seen:  # a store's duplicate, or a cycle no real trace has
                continue
            seen.add(span.span_id)
            rows.append(replace(span, parent=parent, start_us=span.start_us - first, depth=depth))
            walk(span.span_id, depth + 1)

    walk(None, 0)
    return rows


def _spans_of(found: Mapping[str, Any]) -> list[JourneySpan]:
    """The spans of one trace of the document, as they are: start times since the epoch, no depth."""
    services = {key: str(p.get("serviceName", "?")) for key, p in (found.get("processes") or {}).items()}
    spans = []
    for span in found.get("spans") or []:
        parents = [r["spanID"] for r in span.get("references") or [] if r.get("refType") == "CHILD_OF"]
        tags = {tag.get("key"): tag.get("value") for tag in span.get("tags") or []}
        spans.append(
            JourneySpan(
                str(span["spanID"]),
                str(parents[0]) if parents else None,
                services.get(span.get("processID"), "?"),
                str(span.get("operationName", "")),
                str(tags.get("span.kind") or "internal"),
                _status(tags),
                int(span.get("startTime", 0)),
                int(span.get("duration", 0)),
                0,
            )
        )
    return spans


def _status(tags: Mapping[str, Any]) -> str:
    code = str(tags.get("otel.status_code", "")).upper()
    if code == "ERROR" or tags.get("error") in (True, "true"):
        return "error"
    return "ok" if code == "OK" else "unset"


@dataclass(frozen=True)
class TraceReading:
    """What the store said of an order's trace: `state` recorded, not_traced, not_recorded or
    unavailable, and for all but the first the reason in words."""

    state: str
    reason: str | None
    spans: list[JourneySpan]


async def read_trace(store: TraceStore, trace_id: str | None) -> TraceReading:
    if trace_id is None:
        return TraceReading(
            "not_traced", "The order was placed while tracing was off, so it has no trace.", []
        )
    try:
        document = await store.trace(trace_id)
    except TraceStoreUnavailable as exc:
        return TraceReading("unavailable", f"The trace store could not be asked: {exc}.", [])
    spans = journey_spans(document) if document is not None else []
    if not spans:
        return TraceReading(
            "not_recorded",
            f"The trace store holds no trace {trace_id}: it was not sampled (OTEL_TRACES_SAMPLER),"
            " its spans have not been exported yet, or the store has let it go (it keeps the latest"
            " traces only).",
            [],
        )
    return TraceReading("recorded", None, spans)
