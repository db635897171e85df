"""RabbitMQ's management API and vhost URLs, for the stacks, tests and benchmarks that use a vhost of
their own."""

from __future__ import annotations

import base64
import json
import os
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any


def management(
    method: str, path: str, body: object | None = None, env: Mapping[str, str] | None = None
) -> Any:
    """One call of the management API (SHOP_RABBITMQ_MANAGEMENT_URL, with its credentials); the
    decoded JSON answer, or None for an empty one."""
    url = urllib.parse.urlsplit(
        (env or os.environ).get("SHOP_RABBITMQ_MANAGEMENT_URL", "http://shop:shop@127.0.0.1:15672")
    )
    request = urllib.request.Request(
        f"{url.scheme}://{url.hostname}:{url.port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={
            "content-type": "application/json",
            "authorization": "Basic " + base64.b64encode(f"{url.username}:{url.password}".encode()).decode(),
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def vhost_url(rabbitmq_url: str, vhost: str) -> str:
    """`rabbitmq_url` (every node of a comma-separated list) on `vhost` instead of its own."""
    quoted = urllib.parse.quote(vhost, safe="")
    return ",".join(url.strip().rsplit("/", 1)[0] + "/" + quoted for url in rabbitmq_url.split(","))


def create_vhost(vhost: str, env: Mapping[str, str] | None = None) -> None:
    """`vhost`, with every permission for the shop's user."""
    quoted = urllib.parse.quote(vhost, safe="")
    management("PUT", f"/api/vhosts/{quoted}", {}, env)
    management(
        "PUT", f"/api/permissions/{quoted}/shop", {"configure": ".*", "write": ".*", "read": ".*"}, env
    )


def delete_vhost(vhost: str, env: Mapping[str, str] | None = None) -> None:
    management("DELETE", f"/api/vhosts/{urllib.parse.quote(vhost, safe='')}", None, env)
