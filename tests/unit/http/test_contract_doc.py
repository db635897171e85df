"""docs/contract.md is the OpenAPI document the gateway builds, written out: in step, whole, and
with every link inside it landing on a heading."""

from __future__ import annotations

import re

from shop.domain.orders import ALLOWED
from shop.http.contract_doc import CONTRACT_MD, REGENERATE, render, slug
from shop.http.openapi import DOCUMENT

TEXT = render(DOCUMENT)


def test_the_committed_contract_is_in_step_with_the_document():
    committed = CONTRACT_MD.read_text(encoding="utf-8") if CONTRACT_MD.exists() else ""
    assert committed == TEXT, (
        f"docs/contract.md is out of step with the OpenAPI document: run `{REGENERATE}` and commit it"
    )


def test_every_operation_has_a_row_and_a_section():
    for path, methods in DOCUMENT["paths"].items():
        for method in methods:
            heading = f"{method.upper()} {path}"
            assert f"\n### {heading}\n" in TEXT
            assert f"| [`{heading}`](#{slug(heading)}) |" in TEXT


def test_every_link_inside_the_contract_lands_on_a_heading():
    anchors = {slug(heading) for heading in re.findall(r"^#+ (.+)$", TEXT, flags=re.MULTILINE)}
    targets = set(re.findall(r"\]\(#([^)]+)\)", TEXT))
    assert targets, "the contract links to its own sections"
    assert targets <= anchors, sorted(targets - anchors)


def test_every_transition_of_the_domain_is_drawn():
    for old, targets in ALLOWED.items():
        for new in targets:
            assert f"  {old} --> {new}\n" in TEXT


def test_slugs_are_githubs():
    assert slug("GET /api/v1/orders/{order_id}") == "get-apiv1ordersorder_id"
    assert slug("The error envelope") == "the-error-envelope"
    assert slug("GET /.well-known/jwks.json") == "get-well-knownjwksjson"
