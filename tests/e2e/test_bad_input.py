"""Bad input on every route of the routing table, the way a careless or hostile client sends it.

Every refusal is a 4xx in the error envelope (never a 5xx), and the refused requests write nothing
to any database. Text that is merely odd — injection strings, odd Unicode — is either refused as a
4xx or stored and read back exactly as it was sent, never interpreted.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import psycopg
import pytest

from harness import mailpit
from harness.http import Response, call, request
from shop.http.openapi import build_document
from shop.http.routing import ROUTES, Access, RouteSpec
from tests.e2e.test_auth import (
    ODD_PASSWORD,
    PASSWORD,
    customer_token,
    login,
    new_address,
    register_and_verify,
)
from tests.e2e.test_orders import body_for, place, product  # noqa: F401  # the fixture
from tests.e2e.test_products import admin, create  # noqa: F401  # the fixture

# Strings that must never be interpreted: SQL, Jinja and other templates, markup, paths, odd Unicode.
HOSTILE_TEXT = [
    "'; DROP TABLE users; --",
    '" OR 1=1 --',
    "Robert'); DELETE FROM orders WHERE ('1'='1",
    "{{ 7*7 }}",
    "{% for x in range(10**9) %}x{% endfor %}",
    "${7*7} #{7*7} <%= 7*7 %>",
    "<script>alert(1)</script>",
    "../../../../etc/passwd",
    "\u202eevil\u202c",  # right-to-left override
    "zero\u200bwidth\u2060joiners",
    "e\u0301\u0301\u0301 combining",
    "😀👩‍👩‍👧‍👦🏳️‍🌈",
    "\ufeffBOM and \ufffd replacement",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝔪𝔞𝔱𝔥",
]

MALFORMED_BODIES: dict[str, bytes] = {
    "empty": b"",
    "half an object": b'{"email": ',
    "unclosed array": b"[1, 2",
    "single quotes": b"{'a': 1}",
    "missing colon": b'{"a" 1}',
    "two documents": b'{"a": 1}{"b": 2}',
    "bare word": b"nul",
    "NaN": b'{"n": NaN}',
    "Infinity": b'{"n": Infinity}',
    "invalid UTF-8": b'{"email": "\xc3\x28@x.test"}',
    "UTF-16 bytes": '{"a": 1}'.encode("utf-16"),
    "lone surrogate": b'{"email": "\\ud800@example.test"}',
    "NUL escape": b'{"email": "a\\u0000b@example.test"}',
    "deep arrays": b"[" * 100_000 + b"]" * 100_000,
    "deep objects": b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
    "huge exponent": b'{"n": 1e999999}',
}
# Put, raw, inside the value of every string field: none of them is text that can be stored.
ODD_BYTES_IN_A_STRING: dict[str, bytes] = {
    "invalid UTF-8": b"ok\xc3\x28\xff",
    "overlong UTF-8": b"ok\xc0\xaf",
    "UTF-8 encoded surrogate": b"ok\xed\xa0\x80",
    "lone surrogate escape": b"ok\\udc00",
    "NUL escape": b"ok\\u0000",
}
TOP_LEVEL_NOT_OBJECT = ["[]", "null", '"text"', "1", "true", "[{}]"]
WRONG_TYPES: list[Any] = [None, True, 0, -1, 1.5, "text", "", [], {}, 10**400, -(10**400), 2**63]


@pytest.fixture(scope="module")
def ids(stack, admin, product) -> dict[str, str]:  # noqa: F811
    """Real ids of a product and of an order of the customer, so that body checks are reached."""
    token = customer_token(stack)
    placed = place(stack, token, f"bad-input-{uuid.uuid4()}", body_for(product, 1))
    assert placed.status == 201, placed.body
    return {"product_id": product["id"], "order_id": placed.json()["id"], "customer": token}


def _valid_body(spec: RouteSpec, ids: dict[str, str]) -> dict[str, Any] | None:
    """A body that would pass the route's checks; None for routes that take none."""
    email = new_address()
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/api/v1/auth/register"): {"email": email, "password": PASSWORD},
        ("POST", "/api/v1/auth/verify"): {"email": email, "code": "123456"},
        ("POST", "/api/v1/auth/resend"): {"email": email},
        ("POST", "/api/v1/auth/login"): {"email": email, "password": PASSWORD},
        ("POST", "/api/v1/auth/refresh"): {"refresh_token": "r" * 40},
        ("POST", "/api/v1/auth/logout"): {"refresh_token": "r" * 40},
        ("POST", "/api/v1/products"): {
            "sku": f"BAD-{uuid.uuid4().hex[:8]}",
            "name": "n",
            "description": "d",
            "price_cents": 100,
            "currency": "EUR",
            "stock": 1,
        },
        ("PATCH", "/api/v1/products/{product_id}"): {"name": "renamed"},
        ("POST", "/api/v1/products/{product_id}/stock"): {"delta": 1},
        ("POST", "/api/v1/orders"): {"items": [{"product_id": ids["product_id"], "quantity": 1}]},
        ("POST", "/api/v1/orders/{order_id}/pay"): {"payment_reference": "psp-1"},
    }
    return bodies.get((spec.method, spec.path))


DOCUMENT = build_document()


def _required(spec: RouteSpec) -> set[str]:
    """The body fields the OpenAPI document marks required for this route."""
    operation = DOCUMENT["paths"][spec.path][spec.method.lower()]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    while "$ref" in schema:
        schema = DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return set(schema.get("required", []))


BODY_ROUTES = [
    s for s in ROUTES if s.method in ("POST", "PATCH") and s.path != "/api/v1/orders/{order_id}/cancel"
]


def _path(spec: RouteSpec, ids: dict[str, str]) -> str:
    return (
        spec.path.replace("{product_id}", ids["product_id"])
        .replace("{order_id}", ids["order_id"])
        .replace("{placement_id}", ids["order_id"])
    )


def _headers(spec: RouteSpec, ids: dict[str, str], admin_token: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if spec.access is Access.ADMIN:
        headers["Authorization"] = f"Bearer {admin_token}"
    elif spec.access is not Access.ANYONE:
        headers["Authorization"] = f"Bearer {ids['customer']}"
    if spec.path in ("/api/v1/orders", "/api/v1/products/{product_id}/stock"):
        headers["Idempotency-Key"] = f"bad-{uuid.uuid4()}"
    if spec.method == "PATCH":
        headers["If-Match"] = "1"
    return headers


def assert_refused(response: Response, case: str) -> None:
    assert 400 <= response.status < 500, (case, response.status, response.body[:300])
    try:
        body = json.loads(response.body)
    except ValueError:
        pytest.fail(f"{case}: {response.status} without the JSON envelope: {response.body[:200]!r}")
    assert set(body) == {"error"}, (case, body)
    assert body["error"]["code"], (case, body)
    assert body["error"]["message"], (case, body)
    assert body["error"]["request_id"] == response.headers.get("X-Request-Id"), (case, body)


# Tables only a client's request writes (directly or through its actor): a refused request must leave
# their row counts alone.
WRITTEN_BY_REQUESTS = {
    "auth": ("users", "verification_codes", "refresh_tokens", "outbox"),
    "catalog": ("products", "product_events", "outbox"),
    "orders": ("orders", "order_lines", "idempotency_records", "order_timers", "outbox"),
}


def _counts(settings) -> dict[str, int]:
    counts = {}
    for context, tables in WRITTEN_BY_REQUESTS.items():
        with psycopg.connect(settings.databases[context].primary_url) as conn:
            for table in tables:
                row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # names from the dict above
                counts[f"{context}.{table}"] = row[0] if row else 0
    return counts


def _quiet_counts(settings) -> dict[str, int]:
    """Row counts once earlier tests' asynchronous work (actors, agents) has come to rest."""
    previous = _counts(settings)
    for _ in range(30):
        time.sleep(0.5)
        current = _counts(settings)
        if current == previous:
            return current
        previous = current
    return previous


def test_every_route_refuses_every_malformed_body_with_a_4xx_envelope_and_writes_nothing(
    stack,
    settings,
    admin,  # noqa: F811
    ids,
):
    before = _quiet_counts(settings)
    sent = 0
    for spec in BODY_ROUTES:
        valid = _valid_body(spec, ids)
        assert valid is not None, f"no valid body for {spec.method} {spec.path}: add one"
        url = stack.url("gateway", _path(spec, ids))
        cases: dict[str, bytes] = dict(MALFORMED_BODIES)
        text = json.dumps(valid)
        cases["truncated"] = text[: len(text) // 2].encode()
        cases.update({f"top level {t}": t.encode() for t in TOP_LEVEL_NOT_OBJECT})
        for field in valid:
            if isinstance(valid[field], str):
                for name, raw_value in ODD_BYTES_IN_A_STRING.items():
                    marked = json.dumps({**valid, field: "\u2603MARK\u2603"}, ensure_ascii=False).encode()
                    cases[f"{field} {name}"] = marked.replace("\u2603MARK\u2603".encode(), raw_value)
            for wrong in WRONG_TYPES:
                if type(wrong) is type(valid[field]) and not (isinstance(wrong, int) and abs(wrong) > 2**62):
                    continue  # the right type: whether the value is allowed is the domain's rule
                cases[f"{field}={wrong!r:.30}"] = json.dumps({**valid, field: wrong}).encode()
            if field in _required(spec):
                cases[f"without {field}"] = json.dumps(
                    {k: v for k, v in valid.items() if k != field}
                ).encode()
        for case, raw in cases.items():
            response = request(spec.method, url, raw, _headers(spec, ids, admin))
            assert_refused(response, f"{spec.method} {spec.path} {case}")
            sent += 1
    assert sent > 400
    assert _quiet_counts(settings) == before


def test_ids_that_are_not_uuids_are_404_on_every_route_with_an_id(stack, admin, ids):  # noqa: F811
    for spec in ROUTES:
        if not any(f"{{{name}}}" in spec.path for name in ("product_id", "order_id", "placement_id")):
            continue
        for bad in (
            "1",
            "not-a-uuid",
            "%27%20OR%201%3D1%20--",  # ' OR 1=1 --
            "%00",
            "00000000-0000-0000-0000-00000000000g",
            "..%2F..%2Fetc",
        ):
            path = (
                spec.path.replace("{product_id}", bad)
                .replace("{order_id}", bad)
                .replace("{placement_id}", bad)
            )
            body = json.dumps(_valid_body(spec, ids) or {}).encode() if spec.method != "GET" else None
            response = request(spec.method, stack.url("gateway", path), body, _headers(spec, ids, admin))
            assert_refused(response, f"{spec.method} {path}")
            assert response.status in (400, 404), (spec.path, bad, response.status)


# Not 1.0: JSON Schema, so the document, calls it the integer 1, and so does the gateway (test_contract).
@pytest.mark.parametrize("quantity", [0, -1, -(2**31), 1001, 2**63, 1.5, "1"])
def test_zero_negative_huge_and_mistyped_quantities_are_refused(stack, ids, quantity):
    body = {"items": [{"product_id": ids["product_id"], "quantity": quantity}]}
    response = place(stack, ids["customer"], f"q-{uuid.uuid4()}", body)
    assert_refused(response, f"quantity {quantity!r}")
    assert response.status == 422


def test_query_parameters_refuse_injection_and_odd_values(stack, ids):
    for query in (
        "limit=0",
        "limit=-1",
        "limit=101",
        "limit=1e3",
        "limit=--5",  # once a 500: it passed an isdigit() test and failed int()
        "limit=" + "9" * 5000,  # once a 500: past int()'s 4,300 digits
        "limit=%D9%A3",  # an Arabic-Indic 3: int() reads it, the API does not
        "limit=%27%3B--",
        "cursor=%27%20OR%201%3D1",
        "cursor=",
        "limit=1&limit=2",
        "nope=1",
    ):
        for path in ("/api/v1/products", "/api/v1/orders"):
            response = request(
                "GET",
                stack.url("gateway", f"{path}?{query}"),
                headers={"Authorization": f"Bearer {ids['customer']}"},
            )
            assert_refused(response, f"{path}?{query}")


def test_a_body_over_the_limit_is_413_and_huge_headers_are_refused(stack, ids):
    big = json.dumps({"email": "a" * (2 * 1024 * 1024)}).encode()
    response = request(
        "POST", stack.url("gateway", "/api/v1/auth/register"), big, {"Content-Type": "application/json"}
    )
    assert_refused(response, "2 MiB body")
    assert response.status == 413
    huge = {"Content-Type": "application/json", "X-Padding": "a" * 20_000}
    response = request("GET", stack.url("gateway", "/api/v1/products"), headers=huge)
    assert_refused(response, "a 20 kB header")
    assert response.status == 431
    document = request("GET", stack.url("gateway", "/api/v1/openapi.json")).json()
    for spec in ROUTES:  # every route of the API documents it
        assert "431" in document["paths"][spec.path][spec.method.lower()]["responses"], spec
    many = {f"X-H{n}": "v" for n in range(200)}
    response = request("GET", stack.url("gateway", "/api/v1/products"), headers=many)
    assert 200 <= response.status < 500, response.status  # many small headers are fine; no 5xx


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_hostile_text_in_a_product_is_stored_and_read_back_untouched(stack, admin, text):  # noqa: F811
    made = create(stack, admin, name=text[:200], description=f"{text} | {text}")
    read = call(stack.base, "GET", f"/api/v1/products/{made['id']}").json()
    assert read["name"] == text[:200]
    assert read["description"] == f"{text} | {text}"
    history = call(stack.base, "GET", f"/api/v1/products/{made['id']}/events", token=admin).json()
    assert history["items"][0]["data"]["name"] == text[:200]


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_hostile_text_in_every_string_field_is_never_a_5xx(stack, admin, ids, text):  # noqa: F811
    for spec in BODY_ROUTES:
        valid = _valid_body(spec, ids)
        assert valid is not None
        for field, value in valid.items():
            if not isinstance(value, str):
                continue
            body = json.dumps({**valid, field: text}).encode()
            response = request(
                spec.method, stack.url("gateway", _path(spec, ids)), body, _headers(spec, ids, admin)
            )
            assert response.status < 500, (spec.path, field, text, response.status, response.body[:200])
            if response.status >= 400:
                assert_refused(response, f"{spec.path} {field}={text!r}")


def test_a_password_of_odd_unicode_works_and_odd_addresses_are_refused_or_mailed_as_they_are(stack):
    email = new_address()
    password = ODD_PASSWORD
    register_and_verify(stack, email, password)
    assert login(stack, email, password)["token_type"] == "Bearer"
    for bad in (
        "'; DROP TABLE users; --@x.test",
        "a@b",
        "<script>@x.test",
        "a\u202e@x.test",
        "a@x.test\r\nBcc: b@x.test",
    ):
        response = call(stack.base, "POST", "/api/v1/auth/register", {"email": bad, "password": PASSWORD})
        assert_refused(response, f"email {bad!r}")
    # RFC 5322 allows braces and stars in an address: it is no template, and the mail goes to it as written.
    braces = f"{{{{7*7}}}}-{uuid.uuid4().hex[:6]}@example.test"
    assert (
        call(stack.base, "POST", "/api/v1/auth/register", {"email": braces, "password": PASSWORD}).status
        == 202
    )
    (sent,) = mailpit.wait_for_messages(braces)
    assert [to["Address"] for to in sent["To"]] == [braces]
    assert "49" not in mailpit.message(sent["ID"])["Text"].split("verify")[0]
