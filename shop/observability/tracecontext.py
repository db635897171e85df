"""W3C trace context (`traceparent`) carried from HTTP into messages and Kafka records.

Full OpenTelemetry spans come with the observability work; until then every command carries the
caller's trace id, or a fresh one, so a change can already be followed across the buses.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping

_TRACEPARENT = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")


def traceparent_from(headers: Mapping[str, str]) -> str:
    """The caller's valid `traceparent`, or a new sampled one."""
    offered = headers.get("traceparent", "").strip()
    if _TRACEPARENT.fullmatch(offered):
        return offered
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
