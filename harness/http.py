"""Plain HTTP calls to a stack's processes, the way a client makes them (urllib: no session, no retry)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

TIMEOUT = 30.0


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> Response:
    """The answer, whatever its status (an HTTP error is an answer too); OSError when none came."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Response(r.status, dict(r.headers), r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, dict(e.headers), e.read())


def api_headers(token: str | None = None, headers: dict[str, str] | None = None) -> dict[str, str]:
    """`headers` with `token` as the bearer, if there is one."""
    found = dict(headers or {})
    if token:
        found["Authorization"] = f"Bearer {token}"
    return found


def call(
    base: str,
    method: str,
    path: str,
    body: object = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """`method base+path` with `body` as JSON and `token` as the bearer."""
    data = json.dumps(body).encode() if body is not None else None
    return request(
        method, base + path, data, api_headers(token, {"Content-Type": "application/json", **(headers or {})})
    )
