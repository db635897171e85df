"""Reading mail the way a person would: through Mailpit's API (the local stack's, SHOP_MAILPIT_URL)."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.parse
import urllib.request
from typing import Any

MAILPIT = os.environ.get("SHOP_MAILPIT_URL", "http://127.0.0.1:8025")


def _get(path: str) -> Any:
    with urllib.request.urlopen(MAILPIT + path, timeout=5) as response:
        return json.load(response)


def messages_to(address: str) -> list[dict[str, Any]]:
    query = urllib.parse.quote(f'to:"{address}"')
    return list(_get(f"/api/v1/search?query={query}&limit=50")["messages"])


def wait_for_messages(address: str, count: int = 1, timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = messages_to(address)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def message(message_id: str) -> dict[str, Any]:
    return dict(_get(f"/api/v1/message/{message_id}"))


def headers(message_id: str) -> dict[str, list[str]]:
    return dict(_get(f"/api/v1/message/{message_id}/headers"))


def latest_code(address: str, count: int = 1, timeout: float = 30) -> str:
    """The 6-digit code of the newest of at least `count` emails to `address`."""
    found = wait_for_messages(address, count, timeout)
    assert len(found) >= count, f"expected {count} email(s) to {address}, found {len(found)}"
    text = message(found[0]["ID"])["Text"]
    match = re.search(r"\b(\d{6})\b", text)
    assert match, text
    return match[1]
