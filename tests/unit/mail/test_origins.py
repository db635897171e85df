"""Which database keeps an email's ledger: its template's context, or the origin the message names."""

from __future__ import annotations

import pytest

from shop.mail.origins import LEDGER_DATABASES, ORIGINS, UnknownOrigin, origin_of
from shop.mail.render import SUBJECTS


def test_every_template_has_an_origin_with_a_ledger():
    assert set(ORIGINS) == set(SUBJECTS)
    assert set(ORIGINS.values()) <= set(LEDGER_DATABASES)


@pytest.mark.parametrize(
    ("template", "origin"),
    [
        ("verification_code", "auth"),
        ("already_registered", "auth"),
        ("payment_reminder", "orders"),
        ("order_cancelled", "orders"),
        ("order_completed", "orders"),
    ],
)
def test_the_origin_follows_the_template(template, origin):
    assert origin_of(template) == origin
    assert origin_of(template, origin) == origin


def test_a_named_origin_serves_a_template_the_mapping_does_not_know():
    assert origin_of("order_shipped", "orders") == "orders"


@pytest.mark.parametrize(
    ("template", "origin"),
    [("order_shipped", None), ("order_shipped", "catalog"), ("payment_reminder", "auth")],
)
def test_an_unknown_or_contradicting_origin_is_refused(template, origin):
    with pytest.raises(UnknownOrigin):
        origin_of(template, origin)
