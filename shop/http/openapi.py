"""The OpenAPI 3.1 document served at `GET /api/v1/openapi.json`.

It lists the routes this build really serves, no more: each context adds its paths here when its
routes land, and a test checks that every documented path answers and every served route is
documented.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

import shop

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_CHECKS = {
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

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "shop",
        "version": shop.__version__,
        "description": "Event-driven e-commerce backend. Every error has the shape of `Error`; every "
        "response carries `X-Request-Id`.",
    },
    "servers": [{"url": "http://127.0.0.1:8080"}],
    "paths": {
        "/healthz": {
            "get": {
                "summary": "Liveness: the process answers",
                "operationId": "healthz",
                "responses": {
                    "200": _json({"type": "object", "properties": {"status": {"const": "ok"}}}, "alive")
                },
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: every dependency answers",
                "operationId": "readyz",
                "responses": {
                    "200": _json(
                        {"type": "object", "properties": {"status": {"const": "ready"}, "checks": _CHECKS}},
                        "every dependency is up",
                    ),
                    "503": _json(
                        {
                            "type": "object",
                            "properties": {
                                "status": {"const": "not_ready"},
                                "checks": _CHECKS,
                                "error": {"$ref": "#/components/schemas/Error/properties/error"},
                            },
                        },
                        "at least one dependency is down; `error.message` names them",
                    ),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "operationId": "metrics",
                "responses": {
                    "200": {"description": "Prometheus text format", "content": {"text/plain": {}}}
                },
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "responses": {"200": _json({"type": "object"}, "the OpenAPI document")},
            }
        },
    },
    "components": {
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message", "request_id"],
                        "properties": {
                            "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                            "message": {"type": "string"},
                            "request_id": {"type": "string"},
                        },
                    }
                },
            }
        },
        "responses": {"Error": _json(_ERROR, "an error")},
    },
}


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT)
