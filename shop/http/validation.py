"""Requests checked against the OpenAPI document itself: one source of truth for the contract.

The validators are compiled (jsonschema-rs, JSON Schema 2020-12) from the schemas of `openapi.DOCUMENT`,
so a route cannot accept what its documentation refuses, or the other way round. For each route of
the routing table, `contract_middleware`:

1. enforces the route's access level (401 without a valid token, 403 for a non-admin on an admin
   route), before anything else is looked at, so an anonymous caller learns nothing about shapes;
2. checks the path and query parameters (an unknown query parameter is a 400; a value is coerced to
   the schema's type first, since a query string only carries text) and leaves them, with their
   defaults, for the handler (`params`).

Handlers read their body with `valid_body`, which parses it (415/400/413) and checks it against the
operation's schema (422 and friends, see `schemas.py` for the error codes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema_rs
from aiohttp import web
from aiohttp.typedefs import Handler

from shop.http.auth import require_admin, require_principal
from shop.http.errors import ApiError
from shop.http.json_body import json_object
from shop.http.openapi import DOCUMENT
from shop.http.routing import ROUTES, Access, spec_of
from shop.http.schemas import ERROR_CODE, ERROR_STATUS

PARAMS_KEY = web.RequestKey("params", dict)
_MESSAGE_MAX = 300
# What a query string's integer looks like: ASCII digits, an optional minus; not "+5", " 5", "1_0"
# or "٣", which int() would take but no documented parameter means.
_INTEGER = re.compile(r"-?[0-9]+")
_MAX_DIGITS = 18  # any longer (leading zeros aside) is beyond every int64, so every range we document


@dataclass(frozen=True)
class _Schema:
    """A schema and its compiled validator."""

    schema: dict[str, Any]
    validator: Any  # jsonschema_rs.Validator (no public type)

    @classmethod
    def of(cls, schema: dict[str, Any], components: Mapping[str, Any] | None = None) -> _Schema:
        # The document's components beside the schema, where its "#/components/..." refs find them
        # (as they do in the document); `schema` stays the very object the document holds.
        compiled = {**schema, "components": components} if components else schema
        return cls(schema, jsonschema_rs.validator_for(compiled, validate_formats=True))

    def first_error(self, instance: Any) -> Any | None:
        if self.validator.is_valid(instance):  # the fast path: no error objects built
            return None
        return next(iter(self.validator.iter_errors(instance)))


@dataclass(frozen=True)
class _Parameter:
    name: str
    location: str  # path or query
    schema: _Schema

    def value(self, raw: str) -> Any:
        """The text of a path or query value, as the type its schema names. Text that is not an
        integer stays text, for the schema's type check to refuse."""
        schema = self.schema.schema
        if schema.get("type") != "integer" or not _INTEGER.fullmatch(raw):
            return raw
        if len(raw.lstrip("-").lstrip("0")) > _MAX_DIGITS:
            # Out of every documented range; int() would spend quadratic time on it, and past
            # 4,300 digits it raises.
            negative = raw.startswith("-")
            bound = "minimum" if negative else "maximum"
            code, status = _error_of(schema, [bound], "invalid_parameter", 400)
            if bound in schema:
                limit = f"at least {schema[bound]}" if negative else f"at most {schema[bound]}"
                raise ApiError(status, code, f"{self.name} must be {limit}")
            raise ApiError(status, code, f"{self.name} is out of range")
        return int(raw)


@dataclass(frozen=True)
class _Contract:
    parameters: tuple[_Parameter, ...]
    body: _Schema | None

    def check_parameters(self, request: web.Request) -> dict[str, Any]:
        query = request.query
        known = {p.name for p in self.parameters if p.location == "query"}
        unknown = sorted(set(query) - known)
        if unknown:
            raise ApiError(
                400, "unknown_parameter", _short(f"unknown query parameter(s): {', '.join(unknown)}")
            )
        repeated = sorted(name for name in set(query) if len(query.getall(name)) > 1)
        if repeated:
            # `limit=1&limit=2`: which one did the client mean? Proxies and frameworks disagree.
            raise ApiError(
                400, "duplicate_parameter", _short(f"query parameter(s) given twice: {', '.join(repeated)}")
            )
        values: dict[str, Any] = {}
        for parameter in self.parameters:
            source = request.match_info if parameter.location == "path" else query
            raw = source.get(parameter.name)
            if raw is None:
                if "default" in parameter.schema.schema:
                    values[parameter.name] = parameter.schema.schema["default"]
                continue
            value = parameter.value(raw)
            error = parameter.schema.first_error(value)
            if error is not None:
                raise _parameter_error(parameter, error)
            values[parameter.name] = value
        return values


def _compile(document: Mapping[str, Any]) -> dict[tuple[str, str], _Contract]:
    contracts: dict[tuple[str, str], _Contract] = {}
    for spec in ROUTES:
        operation = document["paths"][spec.path][spec.method.lower()]
        parameters = tuple(
            _Parameter(p["name"], p["in"], _Schema.of(p["schema"]))
            for p in operation.get("parameters", [])
            if p["in"] in ("path", "query")  # headers with meaning of their own are the handler's
        )
        request_body = operation.get("requestBody")
        schema = request_body["content"]["application/json"]["schema"] if request_body else None
        body = _Schema.of(schema, document.get("components")) if schema is not None else None
        contracts[(spec.method, spec.path)] = _Contract(parameters, body)
    return contracts


CONTRACTS = _compile(DOCUMENT)


@web.middleware
async def contract_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    spec = spec_of(request)
    if spec is not None:
        if spec.access is Access.ADMIN:
            require_admin(request)
        elif spec.access is not Access.ANYONE:
            require_principal(request)
        request[PARAMS_KEY] = CONTRACTS[(spec.method, spec.path)].check_parameters(request)
    return await handler(request)


def params(request: web.Request) -> dict[str, Any]:
    """The route's checked path and query parameters, with defaults filled in."""
    return request[PARAMS_KEY]


async def valid_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON body, checked against its operation's schema."""
    spec = spec_of(request)
    contract = CONTRACTS[(spec.method, spec.path)] if spec is not None else None
    if contract is None or contract.body is None:
        raise RuntimeError(f"{request.method} {request.path} has no documented request body")
    body = await json_object(request)
    error = contract.body.first_error(body)
    if error is not None:
        raise _body_error(contract.body.schema, error)
    checked: dict[str, Any] = _with_integers(contract.body.schema, body)
    return checked


def _with_integers(schema: dict[str, Any], value: Any) -> Any:
    """JSON has one kind of number, and JSON Schema calls 3.0 an integer: where the schema says
    integer, the handler gets an int (the value is valid, so finite and whole)."""
    if isinstance(value, float) and schema.get("type") == "integer":
        return int(value)
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        fields = schema["properties"]
        return {k: _with_integers(fields[k], v) if k in fields else v for k, v in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_with_integers(schema["items"], item) for item in value]
    return value


# --- from a schema violation to the API's error -------------------------------------------------


def _body_error(schema: dict[str, Any], error: Any) -> ApiError:
    kind = error.kind
    field = _dotted(list(error.instance_path))
    if kind.name == "required":
        name = f"{field}.{kind.property}" if field else kind.property
        return ApiError(422, "missing_field", _short(f"{name} is required"))
    if kind.name == "type":
        return ApiError(422, "invalid_field", _short(f"{field or 'the body'} must be {_types(kind.types)}"))
    code, status = _error_of(schema, list(error.schema_path), "invalid_field", 422)
    return ApiError(status, code, _short(_describe(field or "the body", kind)))


def _parameter_error(parameter: _Parameter, error: Any) -> ApiError:
    code, status = _error_of(parameter.schema.schema, list(error.schema_path), "invalid_parameter", 400)
    return ApiError(status, code, _short(_describe(parameter.name, error.kind)))


def _error_of(schema: dict[str, Any], schema_path: list[Any], code: str, status: int) -> tuple[str, int]:
    """The nearest `x-error-code` / `x-error-status` on the way to the failing keyword."""
    node: Any = schema
    for step in [None, *schema_path[:-1]]:
        if step is not None:
            if not isinstance(node, dict | list) or step == "$ref":
                break  # into a component: the nearest code on the way there stands
            node = node[step]
        if isinstance(node, dict):
            code = node.get(ERROR_CODE, code)
            status = node.get(ERROR_STATUS, status)
    return code, status


def _dotted(path: list[Any]) -> str:
    """["items", 0, "quantity"] -> "items[0].quantity"."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


def _types(types: list[str]) -> str:
    return " or ".join(
        "an integer" if t == "integer" else f"{'an' if t[0] in 'aeiou' else 'a'} {t}" for t in types
    )


def _describe(field: str, kind: Any) -> str:
    """Never the offending value itself: it may be a password, and it may be a megabyte long."""
    name = kind.name
    if name == "minLength":
        return f"{field} must be at least {kind.limit} characters"
    if name == "maxLength":
        return f"{field} must be at most {kind.limit} characters"
    if name == "minimum":
        return f"{field} must be at least {kind.limit}"
    if name == "maximum":
        return f"{field} must be at most {kind.limit}"
    if name == "minItems":
        return f"{field} must have at least {kind.limit} item(s)"
    if name == "maxItems":
        return f"{field} must have at most {kind.limit} item(s)"
    if name == "minProperties":
        return f"{field} must have at least {kind.limit} field(s)"
    if name == "type":
        return f"{field} must be {_types(kind.types)}"
    if name == "pattern":
        return f"{field} must match {kind.pattern}"
    if name == "format":
        return f"{field} must be a {kind.format}"
    if name == "additionalProperties":
        return f"{field} has unknown field(s): {', '.join(sorted(kind.unexpected))}"
    if name == "not":
        return f"{field} has a value it must not have"
    if name in ("enum", "const"):
        return f"{field} is not one of the allowed values"
    return f"{field} is invalid ({name})"


def _short(message: str) -> str:
    return message if len(message) <= _MESSAGE_MAX else message[: _MESSAGE_MAX - 1] + "…"
