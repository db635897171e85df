"""Schemathesis against the running gateway: every documented operation with generated requests
(valid ones and deliberately broken ones), valid tokens supplied from the routing table's access
rules; no 5xx, no undocumented status, no answer that breaks the OpenAPI document."""

from __future__ import annotations

import subprocess
import sys

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    missing_required_header,
    negative_data_rejection,
    positive_data_acceptance,
)

from shop.http.openapi import DOCUMENT
from shop.http.routing import ROUTES, Access
from tests.e2e.test_auth import login, new_address, register_and_verify

schema = schemathesis.openapi.from_dict(DOCUMENT)
ACCESS = {(r.method, r.path): r.access for r in ROUTES}
_tokens: dict[bool, str] = {}


def _token(stack, admin: bool) -> str:
    """One customer and one admin for the whole run (signing up per example would dominate it)."""
    if admin not in _tokens:
        email = new_address()
        register_and_verify(stack, email)
        if admin:
            grant = [sys.executable, "-m", "shop", "admin", "grant", email]
            subprocess.run(grant, check=True, capture_output=True)
        _tokens[admin] = str(login(stack, email)["access_token"])
    return _tokens[admin]


@schema.parametrize()
# Derandomized: the same examples every run, so CI is repeatable; drop derandomize locally to explore.
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_within_its_document(case, stack):
    admin = ACCESS.get((case.method.upper(), case.path)) is Access.ADMIN
    headers = {"Authorization": f"Bearer {_token(stack, admin)}"}
    # Not `positive_data_acceptance`: a schema-valid body can still break a business rule (a wrong
    # verification code, an unknown product), and API.md answers those with documented 4xx codes.
    # Not `missing_required_header`: it expects 400/406/422 where RFC 6585 (and test_products) has a
    # missing If-Match answered with 428 Precondition Required.
    # Not `negative_data_rejection`: every case here carries a valid token, including the ones
    # schemathesis meant to send without credentials, which are then rightly served (missing and
    # broken tokens on every route are test_token_attacks' job; unknown query parameters have a
    # unit test).
    case.call_and_validate(
        base_url=stack.url("gateway", ""),
        headers=headers,
        excluded_checks=[positive_data_acceptance, missing_required_header, negative_data_rejection],
    )
