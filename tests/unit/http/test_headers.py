"""What handlers see of the client's headers, on the wire: raw requests over a socket to an
in-process gateway, since no HTTP client library sends header bytes that are not UTF-8."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.unit.http.stand_in import stand_in_gateway


async def _echo_headers(request: web.Request) -> web.Response:
    return web.json_response({"headers": {name.lower(): value for name, value in request.headers.items()}})


@pytest.fixture
async def client(aiohttp_client: Any) -> TestClient:
    """Every product route answers with the headers its handler saw."""
    return await aiohttp_client(stand_in_gateway(_echo_headers, ["products"]))


async def _raw(client: TestClient, head: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request written byte for byte; the status, headers and body of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(head + b"\r\n")
        await writer.drain()
        header_block = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        status_line, *lines = header_block.decode("latin-1").strip().split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
    finally:
        writer.close()
    return int(status_line.split()[1]), headers, body


def _request(*headers: bytes) -> bytes:
    lines = [b"GET /api/v1/products/0193b8e2-6a2c-7c4e-9a5e-1f2a3b4c5d6e HTTP/1.1", b"Host: shop"]
    return b"\r\n".join([*lines, *headers, b""])


NOT_UTF8 = [b"\xff\xfe", b"caf\xe9", b"\xc0\xaf", b"\xed\xa0\x80"]  # invalid, Latin-1, overlong, surrogate


@pytest.mark.parametrize("value", NOT_UTF8)
@pytest.mark.parametrize("hop_by_hop", [b"Connection: close", b"Connection: keep-alive, X-Hop\r\nX-Hop: 1"])
async def test_a_header_that_is_not_utf8_is_treated_alike_with_or_without_a_hop_by_hop_header(
    client, value, hop_by_hop
):
    plain = await _raw(client, _request(b"X-Request-Id: id-" + value, b"X-Note: " + value))
    stripped = await _raw(client, _request(b"X-Request-Id: id-" + value, b"X-Note: " + value, hop_by_hop))
    for status, headers, _ in (plain, stripped):
        assert status == 200
        assert len(headers["x-request-id"]) == 32  # replaced: not a sane id
    plain_seen, stripped_seen = (json.loads(body)["headers"] for _, _, body in (plain, stripped))
    assert "connection" not in stripped_seen
    assert "x-hop" not in stripped_seen
    # The handler sees text that is no sane value either way: the undecodable bytes stay undecodable.
    assert plain_seen["x-note"] != value.decode("latin-1")
    assert stripped_seen["x-note"] != value.decode("latin-1")
    assert "\ufffd" in stripped_seen["x-note"]
