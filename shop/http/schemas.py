"""The JSON Schemas of the public API: request bodies, parameters and answers.

Each schema serves twice: `openapi.py` puts it in the document, and `validation.py` compiles the
very same object into the validator that checks each request. Limits come from the domain's
constants, so a rule changes in one place and the document cannot drift from what is enforced.

Two extension keywords say how the gateway answers a value that breaks a rule; the nearest one on
the failing keyword's schema path wins:
- `x-error-code`, the error's code. In a body, a field of the wrong type is always `invalid_field`
  and a missing one `missing_field`, so the code names a value of the right type that breaks the
  field's rule (default `invalid_field`). For a parameter it covers every violation (default
  `invalid_parameter`).
- `x-error-status`, the HTTP status (default 422; 400 for a parameter).
"""

from __future__ import annotations

from typing import Any

from shop.domain import auth as auth_rules
from shop.domain import orders as order_rules
from shop.domain import products as catalog_rules
from shop.domain import text as text_rules
from shop.domain.idempotency import IDEMPOTENCY_KEY_MAX
from shop.http.pagination import CURSOR_PATTERN, DEFAULT_LIMIT, MAX_LIMIT

ERROR_CODE = "x-error-code"
ERROR_STATUS = "x-error-status"

Schema = dict[str, Any]

UUID: Schema = {"type": "string", "format": "uuid"}
TIMESTAMP: Schema = {"type": "string", "format": "date-time"}
# Plain text fields of bodies are bounded even where the domain has no rule of its own.
TEXT_MAX = 1024
# No string of a body and no key may hold NUL (U+0000): no PostgreSQL text column takes it, and the
# body reader refuses one anywhere (422 invalid_field) before the schema is looked at. `body` puts
# this on every string field that has no pattern of its own, on every key, and on whatever an
# unknown field holds (components/schemas/JsonWithoutNul).
NO_NUL = f"^[^{text_rules.NUL}]*$"
# Not blank, as the domain reads it: a character that str.strip() keeps (and no NUL).
NOT_BLANK = f"^[^{text_rules.NUL}]*[^{text_rules.SPACE}{text_rules.NUL}][^{text_rules.NUL}]*$"
JSON_WITHOUT_NUL_REF = "#/components/schemas/JsonWithoutNul"
JSON_WITHOUT_NUL: Schema = {
    "description": "any JSON value in which no string and no key holds NUL (U+0000)",
    "pattern": NO_NUL,
    "propertyNames": {"pattern": NO_NUL},
    "items": {"$ref": JSON_WITHOUT_NUL_REF},
    "additionalProperties": {"$ref": JSON_WITHOUT_NUL_REF},
}


def answer(properties: Schema) -> Schema:
    """An object the API answers with: every property is always there (null where it has no value)."""
    return {"type": "object", "required": list(properties), "properties": properties}


ERROR = answer(
    {
        "error": answer(
            {
                "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                "message": {"type": "string"},
                "request_id": {"type": "string"},
            }
        )
    }
)

# --- parameters ----------------------------------------------------------------------------------


def path_id(name: str, what: str) -> dict[str, Any]:
    """An id in the path: one that is not a UUID names nothing, so it is as absent as an unknown one."""
    schema = {**UUID, ERROR_CODE: "not_found", ERROR_STATUS: 404}
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": f"the {what}'s id"}


PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "product_id": path_id("product_id", "product"),
    "order_id": path_id("order_id", "order"),
    "placement_id": path_id("placement_id", "placement (from a 202's Location)"),
}

PAGE_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "limit",
        "in": "query",
        "description": "items per page",
        "schema": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_LIMIT,
            "default": DEFAULT_LIMIT,
            ERROR_CODE: "invalid_limit",
            ERROR_STATUS: 422,
        },
    },
    {
        "name": "cursor",
        "in": "query",
        "description": "the `next_cursor` of the previous page",
        "schema": {"type": "string", "pattern": f"^{CURSOR_PATTERN}$", ERROR_CODE: "invalid_cursor"},
    },
]

IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "checked by the handler after authentication: missing or invalid is a 400",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": IDEMPOTENCY_KEY_MAX,
        "pattern": "^[!-~]+$",
    },
}

# Admin writes: the same header, optional, with the same semantics (required on stock adjustments).
OPTIONAL_IDEMPOTENCY_KEY: dict[str, Any] = {
    **IDEMPOTENCY_KEY,
    "required": False,
    "description": "optional: the same key and request again answers what the first did, once;"
    " the same key with another request is 422 idempotency_key_reused; invalid is a 400",
}

PREFER_WAIT: dict[str, Any] = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    "description": "`wait=N` (RFC 7240): answer once the order's stock is no longer `reserving`, or"
    " after N seconds (at most 10), instead of polling for it; the answer then carries"
    " `Preference-Applied: wait=N`",
    "schema": {"type": "string"},
}

IF_MATCH: dict[str, Any] = {
    "name": "If-Match",
    "in": "header",
    "required": True,
    "description": 'the version being changed, e.g. "3"; missing: 428, malformed: 400',
    # What the handler reads: an entity tag (weak or strong, quotes optional) of 1 to 9 digits.
    "schema": {"type": "string", "pattern": '^[ \\t]*(W/)?"?[0-9]{1,9}"?[ \\t]*$'},
}

# --- request bodies ------------------------------------------------------------------------------


def body(properties: Schema, required: list[str], **rules: Any) -> Schema:
    """A request body's schema. Unknown fields are allowed (and ignored) unless `rules` say
    otherwise, NUL nowhere (see NO_NUL)."""
    return {
        "type": "object",
        "required": required,
        "properties": {name: _without_nul(schema) for name, schema in properties.items()},
        "propertyNames": {"pattern": NO_NUL},
        "additionalProperties": {"$ref": JSON_WITHOUT_NUL_REF},
        **rules,
    }


def _without_nul(schema: Schema) -> Schema:
    if schema.get("type") == "string" and "pattern" not in schema and "format" not in schema:
        return {**schema, "pattern": NO_NUL}
    return schema


_LOOSE_EMAIL: Schema = {
    "type": "string",
    "maxLength": TEXT_MAX,
    "description": "an email address; trimmed and lower-cased before it is checked",
}
# The domain's rule itself (shop/domain/auth.py), whitespace around the address allowed (trimmed).
_EMAIL_RULE: Schema = {
    "type": "string",
    "maxLength": auth_rules.EMAIL_MAX,
    "pattern": f"^{auth_rules.EMAIL_PATTERN}$",
}
_EMAIL: Schema = {
    **_EMAIL_RULE,
    ERROR_CODE: "invalid_email",
    "description": "an email address, trimmed and lower-cased (422 invalid_email when it is not one)",
}
_TEXT: Schema = {"type": "string", "maxLength": TEXT_MAX}

REGISTER = body(
    {
        "email": _EMAIL,
        "password": {
            "type": "string",
            "minLength": auth_rules.PASSWORD_MIN,
            "maxLength": auth_rules.PASSWORD_MAX,
            ERROR_CODE: "invalid_password",
        },
    },
    ["email", "password"],
)
VERIFY = body(
    {
        # A malformed address is as wrong as a wrong code: 400 invalid_code (docs/api.md, request checks).
        "email": {**_EMAIL_RULE, ERROR_CODE: "invalid_code", ERROR_STATUS: 400},
        "code": {
            "type": "string",
            "pattern": f"^[0-9]{{{auth_rules.CODE_DIGITS}}}$",
            # A code of the wrong shape is as wrong as a wrong code: 400 invalid_code (docs/api.md).
            ERROR_CODE: "invalid_code",
            ERROR_STATUS: 400,
        },
        "password": {
            "type": "string",
            "minLength": auth_rules.PASSWORD_MIN,
            "maxLength": auth_rules.PASSWORD_MAX,
            ERROR_CODE: "invalid_password",
            "description": "optional: the password the account is to have (required when the address"
            " was registered more than once with different passwords before it was verified)",
        },
    },
    ["email", "code"],
)
RESEND = body({"email": _EMAIL}, ["email"])
# A malformed address on login simply matches no account: 401, like any wrong email.
LOGIN = body({"email": _LOOSE_EMAIL, "password": _TEXT}, ["email", "password"])
REFRESH = body({"refresh_token": _TEXT}, ["refresh_token"])

_PRODUCT_FIELDS: Schema = {
    "name": {"type": "string", "minLength": 1, "maxLength": catalog_rules.NAME_MAX, "pattern": NOT_BLANK},
    "description": {"type": "string", "maxLength": catalog_rules.DESCRIPTION_MAX},
    "price_cents": {"type": "integer", "minimum": 0, "maximum": catalog_rules.MAX_PRICE_CENTS},
    "currency": {
        "type": "string",
        "pattern": f"^{catalog_rules.CURRENCY_PATTERN}$",
        "description": "ISO 4217, e.g. EUR",
    },
}
_SKU: Schema = {"type": "string", "pattern": f"^{catalog_rules.SKU_PATTERN}$"}

CREATE_PRODUCT = body(
    {
        "sku": _SKU,
        **_PRODUCT_FIELDS,
        "stock": {"type": "integer", "minimum": 0, "maximum": catalog_rules.MAX_STOCK, "default": 0},
    },
    ["sku", "name", "price_cents", "currency"],
    additionalProperties=False,
    **{ERROR_CODE: "invalid_product"},
)
PATCH_PRODUCT = body(
    _PRODUCT_FIELDS, [], minProperties=1, additionalProperties=False, **{ERROR_CODE: "invalid_product"}
)
ADJUST_STOCK = body(
    {
        "delta": {
            "type": "integer",
            "minimum": -catalog_rules.MAX_STOCK,
            "maximum": catalog_rules.MAX_STOCK,
            "not": {"const": 0},
            "description": "positive: restock; negative: write-off (never below what is reserved)",
        }
    },
    ["delta"],
    **{ERROR_CODE: "invalid_product"},
)

PLACE_ORDER = body(
    {
        "items": {
            "type": "array",
            "minItems": 1,
            "maxItems": order_rules.MAX_LINES,
            "items": {
                "type": "object",
                "required": ["product_id", "quantity"],
                "additionalProperties": False,
                "properties": {
                    "product_id": UUID,
                    "quantity": {"type": "integer", "minimum": 1, "maximum": order_rules.MAX_QUANTITY},
                },
            },
        }
    },
    ["items"],
    **{ERROR_CODE: "invalid_order"},
)
PAY_ORDER = body(
    {
        "payment_reference": {
            "type": "string",
            "minLength": 1,
            "maxLength": 255,
            "pattern": NOT_BLANK,
            "description": "the payment provider's reference; not blank",
        }
    },
    ["payment_reference"],
)

# --- answers ---------------------------------------------------------------------------------------

EMAIL: Schema = {"type": "string", "pattern": f"^{auth_rules.EMAIL_PATTERN}$"}

TOKENS = answer(
    {
        "access_token": {"type": "string", "description": "JWT (EdDSA), typ at+jwt"},
        "refresh_token": {"type": "string"},
        "token_type": {"const": "Bearer"},
        "expires_in": {"type": "integer"},
    }
)

STOREFRONT_CONFIG = answer(
    {
        "mailpit_url": {
            "type": ["string", "null"],
            "description": "Mailpit's web page in development (SHOP_MAILPIT_URL); null when not set",
        },
        "reminders_s": {
            "type": "array",
            "items": {"type": "number", "exclusiveMinimum": 0},
            "description": "the payment reminders' delays after placement, in seconds (SHOP_ORDER_REMINDERS)",
        },
    }
)

ACCOUNT = answer(
    {
        "id": UUID,
        "email": EMAIL,
        "roles": {"type": "array", "items": {"type": "string"}},
        "verified": {"type": "boolean"},
        "created_at": TIMESTAMP,
    }
)

PRODUCT = answer(
    {
        "id": UUID,
        "sku": _SKU,
        **_PRODUCT_FIELDS,
        "stock_available": {"type": "integer", "minimum": 0},
        "version": {"type": "integer", "minimum": 1},
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    }
)

PRODUCT_EVENTS: Schema = {
    "type": "object",
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["seq", "type", "data", "occurred_at"],
                "properties": {
                    "seq": {"type": "integer"},
                    "event_id": UUID,
                    "version": {"type": "integer"},
                    "type": {
                        "enum": [catalog_rules.CREATED, catalog_rules.UPDATED, catalog_rules.STOCK_ADJUSTED]
                    },
                    "data": {"type": "object"},
                    "occurred_at": TIMESTAMP,
                },
            },
        }
    },
}

ORDER = answer(
    {
        "id": UUID,
        "status": {"enum": ["PENDING", "PAID", "COMPLETED", "CANCELLED"]},
        "stock": {"enum": [stock.value for stock in order_rules.Stock]},
        "cancel_reason": {"enum": ["customer_request", "out_of_stock", "payment_timeout", None]},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "product_id": UUID,
                    "quantity": {"type": "integer", "minimum": 1, "maximum": order_rules.MAX_QUANTITY},
                    "unit_price_cents": {"type": "integer", "minimum": 0},
                },
            },
        },
        "total_cents": {"type": "integer", "minimum": 0},
        "currency": _PRODUCT_FIELDS["currency"],
        "created_at": TIMESTAMP,
        "paid_at": {"type": ["string", "null"], "format": "date-time"},
        "expires_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    }
)

ORDER_JOURNEY = answer(
    {
        "order_id": UUID,
        "placed_at": TIMESTAMP,
        "trace_id": {
            "type": ["string", "null"],
            "pattern": "^[0-9a-f]{32}$",
            "description": "the trace the order was placed in; null when tracing was off",
        },
        "trace": {
            "enum": ["recorded", "not_traced", "not_recorded", "unavailable"],
            "description": "not_recorded: the trace store holds no such trace (not sampled, not"
            " exported yet, or evicted); unavailable: the trace store did not answer in time",
        },
        "reason": {"type": ["string", "null"], "description": "why there are no spans, in words"},
        "spans": {
            "type": "array",
            "description": "the trace as a waterfall's rows: depth first, siblings by start",
            "items": answer(
                {
                    "span_id": {"type": "string"},
                    "parent": {"type": ["string", "null"]},
                    "service": {"type": "string"},
                    "name": {"type": "string"},
                    "kind": {"type": "string"},
                    "status": {"enum": ["ok", "error", "unset"]},
                    "start_us": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "after the first span's start",
                    },
                    "duration_us": {"type": "integer", "minimum": 0},
                    "depth": {"type": "integer", "minimum": 0},
                }
            ),
        },
        "events": {
            "type": "array",
            "description": "the order's Kafka events in the orders' and the catalog's outboxes, oldest"
            " first (sent rows are deleted after SHOP_OUTBOX_RETENTION)",
            "items": answer(
                {
                    "database": {"enum": ["orders", "catalog"]},
                    "topic": {"type": "string"},
                    "created_at": TIMESTAMP,
                    "published_at": {"type": ["string", "null"], "format": "date-time"},
                }
            ),
        },
    }
)


def page_of(item: Schema) -> Schema:
    return answer({"items": {"type": "array", "items": item}, "next_cursor": {"type": ["string", "null"]}})


CHECKS: Schema = {
    "type": "object",
    "additionalProperties": {
        "type": "object",
        "required": ["status", "latency_ms"],
        "properties": {
            "status": {"enum": ["up", "down"]},
            "latency_ms": {"type": "number"},
            "error": {"type": "string"},
        },
    },
}
