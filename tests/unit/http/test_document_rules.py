"""The OpenAPI document states the rules the gateway enforces, so that a request its schemas accept
is refused only by a rule it names: each pattern against the domain rule or handler check it
stands for, read by the gateway's own validator (jsonschema-rs, ECMA-262 patterns)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shop.domain import text
from shop.domain.auth import EMAIL_MAX, normalize_email
from shop.domain.products import InvalidProduct, create_product
from shop.http import schemas
from shop.http.openapi import DOCUMENT
from shop.http.pagination import CURSOR_PATTERN, decode_cursor, encode_cursor
from shop.http.routes.products import _IF_MATCH
from shop.http.routing import ROUTES, Access
from shop.http.validation import CONTRACTS, _body_error, params, valid_body
from tests.unit.domain.test_auth import email_accepted
from tests.unit.http.stand_in import stand_in_gateway
from tests.unit.http.test_contract import ADMIN, CUSTOMER

# Every character but the surrogates (no JSON text carries one: the body reader refuses them).
EVERY_CHARACTER = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)


def _validator(schema: dict[str, Any]) -> Any:
    return jsonschema_rs.validator_for(schema)


@pytest.mark.parametrize("name", ["CONTROL", "SPACE", "FORMAT", "NUL"])
def test_the_gateways_validator_reads_each_character_class_as_python_does(name):
    character_class = getattr(text, name)
    inside = "".join(re.findall(f"[{character_class}]", EVERY_CHARACTER))
    outside = re.sub(f"[{character_class}]", "", EVERY_CHARACTER)
    assert _validator({"pattern": f"^[{character_class}]*$"}).is_valid(inside)
    assert _validator({"pattern": f"^[^{character_class}]*$"}).is_valid(outside)


# --- email: the schema is the domain's rule -------------------------------------------------------

EMAIL_SCHEMAS = {
    "register": schemas.REGISTER["properties"]["email"],
    "resend": schemas.RESEND["properties"]["email"],
    "verify": schemas.VERIFY["properties"]["email"],
}


def _odd_addresses() -> list[str]:
    samples = ["", "a", "a@b", "a@b.c", " a@b.c\t", "a@b.c ", "a@@b.c", "a@b..c", "a@b.c.", "@b.c", "a@.c"]
    samples += ["a" * (EMAIL_MAX - 6) + "@b.com", "a" * (EMAIL_MAX - 5) + "@b.com", " " * 250 + "a@b.co"]
    samples += [
        "0" * 1000,
        "ü@bücher.de",
        "İ@b.co",
        "a+b.c-d_e@x-y.z",
        "a@b.c\n",
        "a@b.c\u2028",
        "a\u2028@b.c",
    ]
    odd = [chr(c) for c in range(0x100)] + ["\u200b", "\u202e", "\ufeff", "\U000e0041", "\u2065", "\u3000"]
    for c in odd:
        samples += [f"a{c}b@ex.com", f"ab@e{c}x.com", f"ab@ex.c{c}om", f"{c}ab@ex.com", f"ab@ex.com{c}"]
    return samples


@pytest.mark.parametrize("route", sorted(EMAIL_SCHEMAS))
def test_an_email_schema_accepts_exactly_what_the_domain_accepts(route):
    validator = _validator(EMAIL_SCHEMAS[route])
    disagree = [s for s in _odd_addresses() if validator.is_valid(s) != email_accepted(s)]
    assert disagree == []


@given(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=300)
    | st.from_regex(re.compile(r"\S+@\S+\.\S+"))
)
@settings(max_examples=500, deadline=None, derandomize=True)
def test_email_schema_and_domain_agree_on_any_text(raw):
    assert _validator(EMAIL_SCHEMAS["register"]).is_valid(raw) == email_accepted(raw)


# --- cursor, If-Match, not blank ----------------------------------------------------------------------


def test_every_cursor_the_api_writes_has_the_documented_shape_and_every_such_text_reads():
    validator = _validator(schemas.PAGE_PARAMETERS[1]["schema"])
    for _ in range(200):
        assert validator.is_valid(encode_cursor(uuid.uuid4()))
    for raw in ("A" * 22, "_" * 22, "-" * 22, "z9" * 11, encode_cursor(uuid.UUID(int=0))):
        assert re.fullmatch(CURSOR_PATTERN, raw)
        assert validator.is_valid(raw)
        assert isinstance(decode_cursor(raw), uuid.UUID)
    for raw in ("", "0", "A" * 21, "A" * 23, "A" * 21 + "=", "A" * 21 + "+", "A" * 21 + "/", "A" * 21 + "\n"):
        assert not validator.is_valid(raw)


def test_an_if_match_the_document_allows_is_one_the_handler_reads():
    validator = _validator(schemas.IF_MATCH["schema"])
    for raw in ('"3"', "3", 'W/"12"', "  7 ", '"123456789"', '"1234567890"', '"x"', "", '"٣"', "3\n"):
        if validator.is_valid(raw):
            assert _IF_MATCH.match(raw), raw


def test_not_blank_is_the_catalogs_rule_for_a_name():
    validator = _validator({"pattern": schemas.NOT_BLANK})
    for c in [chr(c) for c in range(0x3100)] + ["\U000e0041"]:
        for name in (c, f" {c} ", c * 3):
            try:
                create_product({"sku": "S1", "name": name, "price_cents": 1, "currency": "EUR"})
                domain = True
            except InvalidProduct:
                domain = False
            assert validator.is_valid(name) == (domain and "\x00" not in name), repr(name)


# --- NUL nowhere, unknown fields otherwise free -------------------------------------------------------


BODIES_WITH_EXTRAS = [key for key, contract in CONTRACTS.items() if contract.body is not None]


@pytest.mark.parametrize("key", BODIES_WITH_EXTRAS, ids=[" ".join(key) for key in BODIES_WITH_EXTRAS])
def test_no_body_schema_accepts_a_nul_anywhere(key):
    contract = CONTRACTS[key]
    assert contract.body is not None
    schema = contract.body.schema
    for extra in ({"\x00": 1}, {"x": "a\x00"}, {"x": {"y": ["ok", {"z\x00": 1}]}}, {"x": [["\x00"]]}):
        error = contract.body.first_error(extra)
        assert error is not None, extra
        assert 400 <= _body_error(schema, error).status < 500  # mapped, even inside a component
    for name, field in schema["properties"].items():
        if field.get("type") == "string" and "format" not in field:
            assert not _validator({"pattern": field["pattern"]}).is_valid(f"a\x00{name}")


def test_unknown_fields_without_nul_stay_allowed_where_they_were():
    register = CONTRACTS[("POST", "/api/v1/auth/register")].body
    assert register is not None
    body = {"email": "a@b.co", "password": "long enough password"}
    assert register.first_error({**body, "extra": {"deep": ["text", 1, None, {"k": True}]}}) is None
    create = CONTRACTS[("POST", "/api/v1/products")].body
    assert create is not None
    product = {"sku": "S1", "name": "n", "price_cents": 1, "currency": "EUR"}
    assert create.first_error({**product, "extra": 1}) is not None  # the catalog's bodies take none


# --- what a fuzzer calls valid, the gateway's contract accepts ---------------------------------------


async def _echo(request: web.Request) -> web.Response:
    spec_key = (request.method, request.match_info.route.resource.canonical)  # type: ignore[union-attr]
    has_body = CONTRACTS[spec_key].body is not None
    return web.json_response(
        {"params": params(request), "body": await valid_body(request) if has_body else None}
    )


@pytest.fixture
async def echo_gateway(aiohttp_client: Any) -> TestClient:
    return await aiohttp_client(stand_in_gateway(_echo))


FUZZED = schemathesis.openapi.from_dict(DOCUMENT)
BODY_OPERATIONS = [(m, p) for (m, p), contract in CONTRACTS.items() if contract.body is not None]
QUERY_OPERATIONS = [
    (m, p)
    for (m, p), contract in CONTRACTS.items()
    if any(q.location == "query" for q in contract.parameters)
]
ACCESS = {(route.method, route.path): route.access for route in ROUTES}


def _examples(method: str, path: str, count: int) -> list[Any]:
    found: list[Any] = []

    @given(FUZZED[path][method].as_strategy())
    @settings(
        max_examples=count,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def collect(case: Any) -> None:
        found.append(case)

    collect()
    return found


@pytest.mark.parametrize(
    ("method", "path"),
    BODY_OPERATIONS + QUERY_OPERATIONS,
    ids=[f"{m} {p}" for m, p in BODY_OPERATIONS + QUERY_OPERATIONS],
)
async def test_requests_the_document_calls_valid_pass_the_gateways_contract(echo_gateway, method, path):
    checked = 0
    for case in _examples(method, path, 25):
        caller = ADMIN if ACCESS[(method, path)] is Access.ADMIN else CUSTOMER
        headers = {**(case.headers or {}), **caller}
        url = path.format(**(case.path_parameters or {}))
        kwargs: dict[str, Any] = {"params": case.query, "headers": headers}
        if isinstance(case.body, dict):
            kwargs["json"] = case.body
        answer = await echo_gateway.request(method, url, **kwargs)
        assert answer.status == 200, (case.body, case.query, await answer.text())
        checked += 1
        # The domain's own checks after the schema's: the email rule is the same one.
        if isinstance(case.body, dict) and "email" in case.body and path.endswith(("register", "resend")):
            normalize_email(case.body["email"])
        if isinstance(case.query, dict) and "cursor" in case.query:
            decode_cursor(case.query["cursor"])
    assert checked > 0
