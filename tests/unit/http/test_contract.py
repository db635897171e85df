"""The request contract, enforced from the OpenAPI document: access levels from the routing table,
path and query parameters, request bodies and their error codes, and the headers handlers see.

Every route of the table is served by one stand-in handler that echoes what it was given (checked
parameters and body, the headers it sees), so these tests exercise the real middlewares and the
real document without any database."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from shop.http.auth import optional_principal
from shop.http.openapi import DOCUMENT
from shop.http.pagination import encode_cursor
from shop.http.routing import ROUTES, Access
from shop.http.validation import CONTRACTS, params, valid_body
from shop.security.tokens import TokenIssuer
from tests.unit.http.stand_in import stand_in_gateway
from tests.unit.http.test_gateway_app import KEYRING

ISSUER = TokenIssuer(KEYRING, "shop", "shop-api", 900)
CUSTOMER = {"Authorization": f"Bearer {ISSUER.issue(uuid.uuid4(), ['customer'])[0]}"}
ADMIN = {"Authorization": f"Bearer {ISSUER.issue(uuid.uuid4(), ['customer', 'admin'])[0]}"}
PRODUCT = "/api/v1/products/0193b8e2-6a2c-7c4e-9a5e-1f2a3b4c5d6e"
ORDER = "/api/v1/orders/0193b8e2-6a2c-7c4e-9a5e-1f2a3b4c5d6e"
GOOD_ITEM = {"product_id": "0193b8e2-6a2c-7c4e-9a5e-1f2a3b4c5d6e", "quantity": 2}


async def _echo(request: web.Request) -> web.Response:
    spec_key = (request.method, request.match_info.route.resource.canonical)  # type: ignore[union-attr]
    has_body = CONTRACTS[spec_key].body is not None
    principal = optional_principal(request)
    return web.json_response(
        {
            "params": params(request),
            "body": await valid_body(request) if has_body else None,
            "caller": str(principal.user_id) if principal else None,
            "headers": sorted(name.lower() for name in request.headers),
        }
    )


@pytest.fixture
async def client(aiohttp_client: Any) -> TestClient:
    return await aiohttp_client(stand_in_gateway(_echo))


async def _error(response: Any) -> tuple[int, str, str]:
    body = await response.json()
    return response.status, body["error"]["code"], body["error"]["message"]


# --- the document and the validators are one ------------------------------------------------------


def test_every_route_of_the_table_has_a_compiled_contract_from_the_document():
    assert set(CONTRACTS) == {(spec.method, spec.path) for spec in ROUTES}
    for spec in ROUTES:
        operation = DOCUMENT["paths"][spec.path][spec.method.lower()]
        contract = CONTRACTS[(spec.method, spec.path)]
        documented = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        assert (contract.body.schema if contract.body else None) is documented.get("schema")
        assert ("security" in operation) == (spec.access is not Access.ANYONE)
        if spec.access is Access.ADMIN:
            assert "403" in operation["responses"]


# --- access, before anything else --------------------------------------------------------------


async def test_protected_routes_refuse_an_anonymous_caller_before_looking_at_the_request(client):
    # A malformed id, a bad body and an unknown parameter: still a 401, the shapes are nobody's business.
    response = await client.post("/api/v1/orders/not-a-uuid/pay?x=1", json={"nope": 1})
    assert (await _error(response))[:2] == (401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    response = await client.post("/api/v1/products", json={}, headers=CUSTOMER)
    assert (await _error(response))[:2] == (403, "forbidden")


async def test_the_verified_caller_is_injected_for_the_handler(client):
    response = await client.get(ORDER, headers=CUSTOMER)
    assert response.status == 200
    assert (await response.json())["caller"] is not None


# --- parameters -----------------------------------------------------------------------------------


async def test_query_parameters_are_coerced_defaulted_and_checked(client):
    assert (await (await client.get("/api/v1/products")).json())["params"] == {"limit": 20}
    cursor = encode_cursor(uuid.uuid4())
    page = await (await client.get(f"/api/v1/products?limit=7&cursor={cursor}")).json()
    assert page["params"] == {"limit": 7, "cursor": cursor}
    for raw in ("0", "101", "-1", "abc", "1.5", "99999999999999999999999", ""):
        status, code, _ = await _error(await client.get(f"/api/v1/products?limit={raw}"))
        assert (status, code) == (422, "invalid_limit"), raw
    for raw in ("", "abc", "0", cursor + "A", cursor[:-1] + "=", cursor[:-1] + "+"):
        status, code, _ = await _error(await client.get("/api/v1/products", params={"cursor": raw}))
        assert (status, code) == (400, "invalid_cursor"), raw
    status, code, message = await _error(await client.get("/api/v1/products?limt=5"))
    assert (status, code) == (400, "unknown_parameter")
    assert "limt" in message


NOT_A_LIMIT = ["--5", "-", "--", "+5", "-+5", " 5", "5 ", "1_0", "0x10", "٣", "²", "9" * 5000]
NOT_A_LIMIT += ["-" + "9" * 5000, "0" * 30 + "9" * 20]


@pytest.mark.parametrize("path", ["/api/v1/products", "/api/v1/orders"])
async def test_any_limit_that_is_not_an_integer_in_range_is_the_schemas_own_error(client, path):
    # Text that only looks numeric, and numbers too long for int(), were once a 500.
    for raw in NOT_A_LIMIT:
        response = await client.get(path, params={"limit": raw}, headers=CUSTOMER)
        status, code, message = await _error(response)
        assert (status, code) == (422, "invalid_limit"), raw
        assert len(message) < 200
        assert "99999" not in message


async def test_an_id_that_is_not_a_uuid_is_a_404_like_an_unknown_one(client):
    assert (await _error(await client.get("/api/v1/products/42")))[:2] == (404, "not_found")
    assert (await _error(await client.get("/api/v1/orders/42", headers=CUSTOMER)))[:2] == (404, "not_found")
    echoed = await (await client.get(PRODUCT)).json()
    assert echoed["params"] == {"product_id": PRODUCT.rsplit("/", 1)[1]}


# --- bodies -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "in_message"),
    [
        # A missing field and a wrong type name the field, whatever the route.
        ("/api/v1/auth/register", {"email": "a@b.test"}, 422, "missing_field", "password is required"),
        (
            "/api/v1/auth/register",
            {"email": 42, "password": "x" * 12},
            422,
            "invalid_field",
            "email must be a string",
        ),
        (
            "/api/v1/auth/register",
            {"email": "a@b.test", "password": "short"},
            422,
            "invalid_password",
            "at least 10",
        ),
        (
            "/api/v1/auth/register",
            {"email": "a@b.test", "password": "x" * 129},
            422,
            "invalid_password",
            "at most 128",
        ),
        # docs/api.md: a wrong code is a 400 invalid_code, and a code of the wrong shape is a wrong code.
        ("/api/v1/auth/verify", {"email": "a@b.test", "code": "12345"}, 400, "invalid_code", "code"),
        (
            "/api/v1/auth/verify",
            {"email": "a@b.test", "code": 123456},
            422,
            "invalid_field",
            "code must be a string",
        ),
        ("/api/v1/orders", {}, 422, "missing_field", "items is required"),
        ("/api/v1/orders", {"items": []}, 422, "invalid_order", "at least 1"),
        ("/api/v1/orders", {"items": [GOOD_ITEM] * 51}, 422, "invalid_order", "at most 50"),
        (
            "/api/v1/orders",
            {"items": [{**GOOD_ITEM, "quantity": 1001}]},
            422,
            "invalid_order",
            "items[0].quantity",
        ),
        ("/api/v1/orders", {"items": [{**GOOD_ITEM, "quantity": 0}]}, 422, "invalid_order", "at least 1"),
        (
            "/api/v1/orders",
            {"items": [{**GOOD_ITEM, "quantity": 10**30}]},
            422,
            "invalid_order",
            "at most 1000",
        ),
        ("/api/v1/orders", {"items": [{**GOOD_ITEM, "product_id": "x"}]}, 422, "invalid_order", "uuid"),
        ("/api/v1/orders", {"items": [{**GOOD_ITEM, "extra": 1}]}, 422, "invalid_order", "extra"),
        (
            "/api/v1/orders",
            {"items": [{"product_id": GOOD_ITEM["product_id"]}]},
            422,
            "missing_field",
            "items[0].quantity",
        ),
        ("/api/v1/orders", {"items": [{**GOOD_ITEM, "quantity": True}]}, 422, "invalid_field", "an integer"),
        ("/api/v1/orders", {"items": [{**GOOD_ITEM, "quantity": 1.5}]}, 422, "invalid_field", "an integer"),
        (f"{ORDER}/pay", {"payment_reference": "   "}, 422, "invalid_field", "payment_reference"),
        (f"{ORDER}/pay", {"payment_reference": "r" * 256}, 422, "invalid_field", "at most 255"),
        (
            "/api/v1/products",
            {"sku": "S-1", "name": "n", "price_cents": -1, "currency": "EUR"},
            422,
            "invalid_product",
            "price_cents",
        ),
        (
            "/api/v1/products",
            {"sku": "S-1", "name": "n", "price_cents": 1, "currency": "euro"},
            422,
            "invalid_product",
            "currency",
        ),
        (
            "/api/v1/products",
            {"sku": "S-1", "name": "n", "price_cents": 1, "currency": "EUR", "colour": "red"},
            422,
            "invalid_product",
            "colour",
        ),
        (f"{PRODUCT}/stock", {"delta": 0}, 422, "invalid_product", "delta"),
        (f"{PRODUCT}/stock", {}, 422, "missing_field", "delta is required"),
    ],
)
async def test_a_body_that_breaks_its_schema_gets_the_fields_error(
    client, path, body, status, code, in_message
):
    headers = {**ADMIN, "Idempotency-Key": "k1"}
    got_status, got_code, message = await _error(await client.post(path, json=body, headers=headers))
    assert (got_status, got_code) == (status, code), message
    assert in_message in message


async def test_an_error_message_never_echoes_the_value(client):
    secret = "hunter2-is-short"[:9]
    response = await client.post("/api/v1/auth/register", json={"email": "a@b.test", "password": secret})
    body = await response.text()
    assert response.status == 422
    assert secret not in body
    huge = "A" * 100_000
    response = await client.post("/api/v1/auth/register", json={"email": "a@b.test", "password": huge})
    assert response.status == 422
    assert len(await response.text()) < 1000


async def test_a_valid_body_reaches_the_handler_unchanged(client):
    body = {"items": [GOOD_ITEM], "note": "kept: the order body takes other top-level fields"}
    response = await client.post("/api/v1/orders", json=body, headers={**CUSTOMER, "Idempotency-Key": "k"})
    assert response.status == 200
    assert (await response.json())["body"] == body


async def test_a_whole_number_written_with_a_fraction_is_the_integer_the_schema_calls_it(client):
    # JSON has one kind of number, and JSON Schema (so the document) calls 2.0 an integer.
    raw = (
        b'{"items": [{"product_id": "%s", "quantity": 2.0}], "n": 1.0}'
        % str(GOOD_ITEM["product_id"]).encode()
    )
    headers = {**CUSTOMER, "Idempotency-Key": "k", "Content-Type": "application/json"}
    response = await client.post("/api/v1/orders", data=raw, headers=headers)
    assert response.status == 200
    echoed = json.loads(await response.text())["body"]
    assert echoed["items"][0]["quantity"] == 2
    assert isinstance(echoed["items"][0]["quantity"], int)
    assert isinstance(echoed["n"], float)  # not a field of the schema's: left as sent
    raw = raw.replace(b"2.0", b"2.5")
    assert (await client.post("/api/v1/orders", data=raw, headers=headers)).status == 422


async def test_a_nul_character_in_any_string_is_refused_not_a_500(client):
    response = await client.post("/api/v1/auth/login", json={"email": "a\u0000@b.test", "password": "p"})
    assert (await _error(response))[:2] == (422, "invalid_field")
    response = await client.post(
        "/api/v1/auth/login", json={"email": "a@b.test", "password": "p", "x": ["\u0000"]}
    )
    assert response.status == 422


# --- headers the handlers see ------------------------------------------------------------------


async def test_hop_by_hop_internal_and_identity_headers_never_reach_a_handler(client):
    response = await client.get(
        PRODUCT,
        headers={
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "1",
            "Keep-Alive": "timeout=5",
            "Proxy-Authorization": "Basic Zm9vOmJhcg==",
            "TE": "trailers",
            "Upgrade": "websocket",
            "X-Shop-Internal-Route": "admin",
            "X-User-Id": str(uuid.uuid4()),
            "Remote-User": "admin",
            "X-Kept": "yes",
        },
    )
    assert response.status == 200
    seen = set((await response.json())["headers"])
    stripped = {"connection", "x-secret-hop", "keep-alive", "proxy-authorization", "te", "upgrade"}
    assert not seen & (stripped | {"x-shop-internal-route", "x-user-id", "remote-user"})
    assert "x-kept" in seen


async def test_every_answer_carries_the_security_headers_and_no_server_version(client):
    for response in (
        await client.get(PRODUCT),
        await client.get("/nope"),
        await client.post("/api/v1/auth/login"),
    ):
        assert response.headers["Server"] == "shop"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "X-Request-Id" in response.headers


def test_every_field_of_every_body_in_the_document_is_snake_case():
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            names.update(node.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(DOCUMENT["paths"])
    walk(DOCUMENT["components"])
    assert {"price_cents", "next_cursor", "request_id", "payment_reference"} <= names
    assert [name for name in names if not re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", name)] == []
