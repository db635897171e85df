"""docs/contract.md, the HTTP contract the gateway serves, written from its OpenAPI document.

`python -m shop.http.contract_doc` writes the file again; `--check` only says whether it is in step
(tests/unit/http/test_contract_doc.py runs the same comparison). Everything in the file comes from
`openapi.DOCUMENT`, except who may call a route and its rate-limit group (the routing table the
document is built from) and the order status machine (`shop/domain/orders.py`, which the document
only names the states of). The reasons behind the contract are hand-written, in docs/api.md.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from shop.domain.orders import ALLOWED, Status, Stock
from shop.http import schemas
from shop.http.openapi import DOCUMENT
from shop.http.routing import ROUTES, Access, RouteSpec

CONTRACT_MD = Path(__file__).resolve().parents[2] / "docs" / "contract.md"
REGENERATE = ".venv/bin/python -m shop.http.contract_doc"

# The answers' shapes by the names schemas.py gives them, so each is written out once.
_SHAPES: dict[str, dict[str, Any]] = {
    "Order": schemas.ORDER,
    "Product": schemas.PRODUCT,
    "ProductEvents": schemas.PRODUCT_EVENTS,
    "Account": schemas.ACCOUNT,
    "Tokens": schemas.TOKENS,
}
# Patterns too long to read, by what they stand for.
_PATTERNS = {
    schemas.NOT_BLANK: "not blank: a character `str.strip()` keeps",
    schemas.EMAIL["pattern"]: "an email address by the domain's rule (`shop/domain/auth.py`)",
}
# Headers the document names only in prose; the index says where. A name no description holds
# any more stops the generator, so the list cannot go stale.
_NAMED_HEADERS = (
    "X-Request-Id",
    "Location",
    "ETag",
    "Retry-After",
    "Cache-Control",
    "WWW-Authenticate",
    "Preference-Applied",
)
# What moves an order from one status to the next; every transition of ALLOWED has one.
_TRIGGERS = {
    (Status.PENDING, Status.PAID): "`POST /api/v1/orders/{order_id}/pay`, once `stock` is `reserved`",
    (Status.PENDING, Status.CANCELLED): "`POST /api/v1/orders/{order_id}/cancel` (`customer_request`);"
    " the stock rejected (`out_of_stock`); unpaid at `expires_at` (`payment_timeout`)",
    (Status.PAID, Status.COMPLETED): "`expires_at` reached",
}
_ACCESS = {
    Access.ANYONE: "anyone",
    Access.CUSTOMER: "a customer (bearer token)",
    Access.OWNER: "its owner (bearer token; anyone else: 404)",
    Access.ADMIN: "an admin (bearer token; anyone else: 403)",
}


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _route(method: str, path: str) -> str:
    heading = f"{method.upper()} {path}"
    return f"[`{heading}`](#{slug(heading)})"


def _code(text: str) -> str:
    shown = "".join(c if " " <= c <= "~" else f"\\u{ord(c):04x}" for c in text)
    return f"`{shown}`".replace("|", "\\|")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _pattern(pattern: str) -> str:
    if pattern in _PATTERNS:
        return _PATTERNS[pattern]
    if len(pattern) > 60:
        return f"a pattern of {len(pattern)} characters (in the document)"
    return f"pattern {_code(pattern)}"


def _bounds(low: Any, high: Any, unit: str) -> str | None:
    if low is not None and high is not None:
        return f"{low}–{high}{unit}"
    if low is not None:
        return f"≥ {low}{unit}"
    if high is not None:
        return f"≤ {high}{unit}"
    return None


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        reference: str = schema["$ref"]
        return reference.removeprefix("#/components/schemas/").replace("/properties/", ".")
    if "const" in schema:
        return _code(json.dumps(schema["const"]))
    if "enum" in schema:
        return " or ".join(_code(json.dumps(value)) for value in schema["enum"])
    kinds = schema.get("type", "any")
    kind = " or ".join(kinds) if isinstance(kinds, list) else kinds
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    return str(kind)


def _rules(schema: dict[str, Any]) -> str:
    """The schema's type and every rule on it, NUL aside (the conventions state that once)."""
    rules = [_type(schema)]
    rules.append(_bounds(schema.get("minimum"), schema.get("maximum"), "") or "")
    rules.append(_bounds(schema.get("minLength"), schema.get("maxLength"), " characters") or "")
    rules.append(_bounds(schema.get("minItems"), schema.get("maxItems"), " items") or "")
    if schema.get("minProperties"):
        rules.append(f"at least {schema['minProperties']} field")
    if "not" in schema and "const" in schema["not"]:
        rules.append(f"not {json.dumps(schema['not']['const'])}")
    if schema.get("pattern", schemas.NO_NUL) != schemas.NO_NUL:
        rules.append(_pattern(schema["pattern"]))
    if "default" in schema:
        rules.append(f"default {json.dumps(schema['default'])}")
    return ", ".join(rule for rule in rules if rule)


def _sketch(schema: dict[str, Any]) -> str:
    """An answer's body in a few words: a named shape, or its fields."""
    for name, shape in _SHAPES.items():
        if schema == shape:
            return f"[{name}](#{slug(name)})"
        if schema == schemas.page_of(shape):
            return f"page of [{name}](#{slug(name)}): `{{items, next_cursor}}`"
    if "$ref" in schema:
        name = _type(schema)  # only Error, or a part of it, is referred to
        return "[Error](#the-error-envelope)" + (f" {_code(name)}" if "." in name else "")
    if schema.get("properties"):
        fields = ", ".join(f"{name}: {_sketch(value)}" for name, value in schema["properties"].items())
        return f"{{{fields}}}"
    if isinstance(schema.get("additionalProperties"), dict):
        return f"{{name: {_sketch(schema['additionalProperties'])}}}"
    return _type(schema)


def _fields(schema: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, bool, dict[str, Any]]]:
    """(dotted name, required, schema) of each field, nested objects and arrays of objects flattened."""
    required = set(schema.get("required", []))
    for name, field in schema.get("properties", {}).items():
        dotted = f"{prefix}{name}"
        yield dotted, name in required, field
        item = field.get("items", {}) if field.get("type") == "array" else field
        if item.get("properties"):
            yield from _fields(item, f"{dotted}[]." if item is not field else f"{dotted}.")


def _shape_table(schema: dict[str, Any]) -> list[str]:
    lines = ["| field | required | value | notes |", "|---|---|---|---|"]
    for name, required, field in _fields(schema):
        notes = _cell(field.get("description", ""))
        lines.append(f"| `{name}` | {'yes' if required else 'no'} | {_rules(field)} | {notes} |")
    return lines


def _body_table(schema: dict[str, Any]) -> list[str]:
    """The request body's fields, each with what a value of the right type that breaks its rule gets
    (schemas.py: the nearest x-error-code / x-error-status; wrong type and missing are the same for all)."""
    lines = ["| field | required | value | notes | breaking the rule |", "|---|---|---|---|---|"]
    for name, required, field in _fields(schema):
        code = field.get(schemas.ERROR_CODE, schema.get(schemas.ERROR_CODE, "invalid_field"))
        status = field.get(schemas.ERROR_STATUS, schema.get(schemas.ERROR_STATUS, 422))
        rules = _rules(field)
        answer = f"{status} `{code}`" if rules != _type(field) or "format" in field else "—"
        notes = _cell(field.get("description", ""))
        lines.append(f"| `{name}` | {'yes' if required else 'no'} | {rules} | {notes} | {answer} |")
    closed = schema.get("additionalProperties") is False
    code = schema.get(schemas.ERROR_CODE, "invalid_field")
    lines += [
        "",
        f"Other fields: refused (`422 {code}`)." if closed else "Other fields: allowed and ignored.",
    ]
    return lines


def _parameters(operation: dict[str, Any]) -> list[str]:
    lines = ["| parameter | in | required | value | notes | a bad value |", "|---|---|---|---|---|---|"]
    for parameter in operation.get("parameters", []):
        schema = parameter["schema"]
        if parameter["in"] == "header":
            answer = "see notes (the handler checks it)"
        else:
            code = schema.get(schemas.ERROR_CODE, "invalid_parameter")
            answer = f"{schema.get(schemas.ERROR_STATUS, 400)} `{code}`"
        required = "yes" if parameter.get("required") else "no"
        notes = _cell(parameter.get("description", ""))
        name, where = parameter["name"], parameter["in"]
        lines.append(f"| `{name}` | {where} | {required} | {_rules(schema)} | {notes} | {answer} |")
    return lines


def _answers(operation: dict[str, Any]) -> list[str]:
    responses: dict[str, Any] = operation["responses"]
    with_headers = [set(answer["headers"]) for answer in responses.values() if "headers" in answer]
    common = set.intersection(*with_headers) if with_headers else set()
    lines = ["| status | meaning | body | headers |", "|---|---|---|---|"]
    for status, answer in responses.items():
        media = answer.get("content", {})
        if "application/json" in media:
            body = _sketch(media["application/json"]["schema"])
        else:
            body = ", ".join(_code(kind) for kind in media) or "—"
        headers = ", ".join(f"`{name}`" for name in answer.get("headers", {}) if name not in common)
        lines.append(f"| {status} | {_cell(answer['description'])} | {body} | {headers} |")
    if common:
        named = " and ".join(f"`{name}`" for name in sorted(common))
        without = [status for status, answer in responses.items() if "headers" not in answer]
        but = f" but {' and '.join(without)}" if without else ""
        lines += ["", f"Every answer{but} carries {named} ([response headers](#response-headers))."]
    return lines


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def _route_section(method: str, path: str, operation: dict[str, Any], spec: RouteSpec | None) -> list[str]:
    lines = [f"### {method.upper()} {path}", "", f"{operation['summary']} (`{operation['operationId']}`)."]
    if spec is None:
        lines.append("Served by every process on its own port; anyone may call it.")
    else:
        limit = f"the `{spec.limit}` quota" if spec.limit else "none"
        lines.append(f"Who may call it: {_ACCESS[spec.access]}. Rate limit: {limit}.")
    if operation.get("parameters"):
        lines += ["", *_parameters(operation)]
    if "requestBody" in operation:
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        lines += ["", "Body (`application/json`):", "", *_body_table(schema)]
    return [*lines, "", *_answers(operation), ""]


def _header_index(document: dict[str, Any]) -> list[str]:
    request: dict[tuple[str, bool, str], list[str]] = {}
    response: dict[tuple[str, str], set[str]] = {}
    # {header: {(status, the answer's error code if it leads the description): routes}}
    named: dict[str, dict[tuple[str, str], list[str]]] = {name: {} for name in _NAMED_HEADERS}
    with_status: dict[str, int] = {}
    mentions = re.compile(r"\b(" + "|".join(map(re.escape, _NAMED_HEADERS)) + r")\b")
    for method, path, operation in _operations(document):
        route = _route(method, path)
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "header":
                continue
            key = (parameter["name"], bool(parameter.get("required")), parameter.get("description", ""))
            request.setdefault(key, []).append(route)
            for name in mentions.findall(parameter.get("description", "")):
                named[name].setdefault(("", f"when asked for with `{parameter['name']}`"), []).append(route)
        for status, answer in operation["responses"].items():
            with_status[status] = with_status.get(status, 0) + 1
            for name, header in answer.get("headers", {}).items():
                response.setdefault((name, header["description"]), set()).add(status)
            code = re.match(r"([a-z][a-z0-9_]*):", answer["description"])
            gist = f"`{code[1]}`" if code else ""
            for name in sorted(set(mentions.findall(answer["description"]))):
                named[name].setdefault((status, gist), []).append(route)
    everywhere = set(mentions.findall(document["info"]["description"]))
    silent = [name for name, places in named.items() if not places and name not in everywhere]
    if silent:
        raise RuntimeError(f"the document no longer names {silent}: update _NAMED_HEADERS")
    scheme = document["components"]["securitySchemes"]["bearer"]
    lines = [
        "### Request headers",
        "",
        "| header | required | notes | routes |",
        "|---|---|---|---|",
        f"| `Authorization` | on routes with a bearer requirement | `{scheme['scheme'].title()} <token>`,"
        f" a {scheme['bearerFormat']} access token | [every route not open to anyone](#routes) |",
    ]
    for (name, required, notes), routes in request.items():
        lines.append(f"| `{name}` | {'yes' if required else 'no'} | {_cell(notes)} | {', '.join(routes)} |")
    lines += ["", "### Response headers", "", "| header | answers | notes |", "|---|---|---|"]
    for (name, notes), statuses in response.items():
        on = "every answer of a route with a rate limit" if len(statuses) > 1 else f"{min(statuses)}"
        lines.append(f"| `{name}` | {on} | {_cell(notes)} |")
    lines += [
        "",
        "Named in the answers' descriptions (the route's own table says what each means there):",
        "",
    ]
    for name, places in named.items():
        where = ["every response (the document's description)"] if name in everywhere else []
        for (status, gist), routes in places.items():
            what = " ".join(part for part in (status, gist) if part)
            if status and len(routes) == with_status[status]:
                where.append(f"every {what}")
            elif len(routes) > 3:
                where.append(f"{what} ({len(routes)} routes)")
            else:
                where.append(f"{what} on {', '.join(routes)}")
        lines.append(f"- `{name}`: {'; '.join(where)}")
    return lines


def _conventions(document: dict[str, Any]) -> list[str]:
    components = document["components"]["schemas"]
    return [
        "## Conventions",
        "",
        "### The error envelope",
        "",
        "Every error answer, whatever its status, is `Error`:",
        "",
        *_shape_table(components["Error"]),
        "",
        "A request body's strings and keys may hold no NUL (U+0000), nor may any unknown field"
        f" (`JsonWithoutNul`: {components['JsonWithoutNul']['description']}); one is `422 invalid_field`.",
        "",
        *_header_index(document),
        "",
    ]


def _status_machine(document: dict[str, Any]) -> list[str]:
    order = document["paths"]["/api/v1/orders/{order_id}"]["get"]["responses"]["200"]
    fields = order["content"]["application/json"]["schema"]["properties"]
    transitions = [(old, new) for old, targets in ALLOWED.items() for new in Status if new in targets]
    if set(fields["status"]["enum"]) != set(Status) or set(_TRIGGERS) != set(transitions):
        raise RuntimeError("the order statuses of the document, the domain and _TRIGGERS disagree")
    reasons = ", ".join(f"`{reason}`" for reason in fields["cancel_reason"]["enum"] if reason)
    return [
        "## Order status",
        "",
        "An order's `status` moves only along these arrows (`shop/domain/orders.py`; the database"
        " repeats them as a trigger); any other move is `409 invalid_transition`.",
        "",
        "```mermaid",
        "stateDiagram-v2",
        f"  [*] --> {Status.PENDING}",
        *(f"  {old} --> {new}" for old, new in transitions),
        *(f"  {status} --> [*]" for status, targets in ALLOWED.items() if not targets),
        "```",
        "",
        "| from | to | when |",
        "|---|---|---|",
        *(f"| `{old}` | `{new}` | {_TRIGGERS[old, new]} |" for old, new in transitions),
        "",
        f"`stock` starts `{Stock.RESERVING}` and becomes `{Stock.RESERVED}` or `{Stock.REJECTED}`, once;"
        f" `cancel_reason` is {reasons}, or `null` while the order is not `{Status.CANCELLED}`."
        " What each combination means: [api.md](api.md#orders).",
        "",
    ]


def render(document: dict[str, Any]) -> str:
    specs = {(spec.method, spec.path): spec for spec in ROUTES}
    operations = list(_operations(document))
    lines = [
        "# HTTP contract",
        "",
        "Part of the shop documentation: [README](../README.md) ·"
        " [all topics](../README.md#where-to-go-next).",
        "",
        f"<!-- Written by `{REGENERATE}` from the OpenAPI document; edits here are lost. -->",
        "",
        f"What the gateway serves (version {document['info']['version']}), written from the OpenAPI"
        f" {document['openapi']} document it builds (`shop/http/openapi.py`, served at"
        " `GET /api/v1/openapi.json` and shown at `GET /docs`) and the routing table that document is"
        " built from. The gateway compiles its request validators from the same document, so what is"
        f" written here is what it enforces. Regenerate with `{REGENERATE}` (or `make docs`);"
        " `tests/unit/http/test_contract_doc.py` fails while this file is out of step. Why the"
        " contract is what it is, and where it differs from the shared API.md: [api.md](api.md).",
        "",
        _cell(document["info"]["description"]),
        "",
        f"Server: `{document['servers'][0]['url']}`.",
        "",
        "- [Routes](#routes)",
        "- [Conventions](#conventions): [the error envelope](#the-error-envelope),"
        " [request headers](#request-headers), [response headers](#response-headers)",
        "- [Order status](#order-status)",
        "- [Shapes](#shapes): " + ", ".join(f"[{name}](#{slug(name)})" for name in _SHAPES),
        "",
        "## Routes",
        "",
        "| route | what | who | rate limit |",
        "|---|---|---|---|",
    ]
    for method, path, operation in operations:
        spec = specs.get((method.upper(), path))
        who = spec.access.value if spec else "anyone (every process)"
        limit = f"`{spec.limit}`" if spec and spec.limit else "—"
        lines.append(f"| {_route(method, path)} | {_cell(operation['summary'])} | {who} | {limit} |")
    lines += ["", *_conventions(document), *_status_machine(document), "## Shapes", ""]
    for name, shape in _SHAPES.items():
        lines += [f"### {name}", "", *_shape_table(shape), ""]
    lines += ["## Route by route", ""]
    for method, path, operation in operations:
        lines += _route_section(method, path, operation, specs.get((method.upper(), path)))
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: Sequence[str] = ()) -> int:
    """Write docs/contract.md; with `--check`, only say whether it is in step (exit status 1 if not)."""
    text = render(DOCUMENT)
    if "--check" in argv:
        current = CONTRACT_MD.read_text(encoding="utf-8") if CONTRACT_MD.exists() else ""
        if current != text:
            print(f"{CONTRACT_MD} is out of step with the OpenAPI document: run {REGENERATE}")
            return 1
        return 0
    CONTRACT_MD.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
