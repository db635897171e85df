"""Every email template renders in both forms; HTML is escaped; a bad name or context fails loudly."""

from __future__ import annotations

from typing import Any

import pytest
from jinja2 import UndefinedError

from shop.mail.render import SUBJECTS, UnknownTemplate, render

SAMPLES: dict[str, dict[str, Any]] = {
    "verification_code": {"code": "428913", "expires_minutes": 15},
    "already_registered": {},
    "payment_reminder": {
        "order_id": "ord_7Q2",
        "total": "59.90",
        "currency": "EUR",
        "expires_at": "2026-11-26 10:00 UTC",
        "time_left": "7 hours 59 minutes",
        "reminder": 2,
        "lines": [
            {"name": "Blue mug", "quantity": 2, "unit_price": "12.50", "line_total": "25.00"},
            {"name": "Tea <loose>", "quantity": 1, "unit_price": "34.90", "line_total": "34.90"},
        ],
    },
    "order_cancelled": {"order_id": "ord_7Q2", "reason": "payment not received in time"},
    "order_completed": {"order_id": "ord_7Q2", "total": "59.90", "currency": "EUR"},
}


def test_every_template_has_a_sample():
    assert set(SAMPLES) == set(SUBJECTS)


@pytest.mark.parametrize("template", sorted(SAMPLES))
def test_a_template_renders_subject_text_and_html(template):
    email = render(template, SAMPLES[template])
    assert email.subject
    assert "\n" not in email.subject
    assert email.text.strip()
    assert "<html" in email.html
    assert "{{" not in email.text + email.html
    for value in SAMPLES[template].values():
        if isinstance(value, (str, int)):
            assert str(value) in email.text
            assert str(value) in email.html


def test_a_payment_reminder_lists_every_line_and_the_time_left():
    email = render("payment_reminder", SAMPLES["payment_reminder"])
    assert "2 x Blue mug at 12.50 = 25.00 EUR" in email.text
    assert "1 x Tea <loose> at 34.90 = 34.90 EUR" in email.text
    assert "Tea &lt;loose&gt;" in email.html
    assert "(7 hours 59 minutes left)" in email.text
    assert "This is reminder 2" in email.text


def test_the_verification_code_is_in_both_parts_and_the_subject_names_no_code():
    email = render("verification_code", SAMPLES["verification_code"])
    assert email.subject == "Your shop verification code"
    assert "428913" in email.text
    assert "428913" in email.html
    assert "15 minutes" in email.text


def test_subjects_use_the_context():
    assert render("order_cancelled", SAMPLES["order_cancelled"]).subject == "Order ord_7Q2 was cancelled"


def test_html_escapes_context_values_and_text_keeps_them_as_they_are():
    email = render("order_cancelled", {"order_id": "ord_1", "reason": "<script>alert(1)</script>"})
    assert "<script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html
    assert "<script>alert(1)</script>" in email.text


def test_a_subject_cannot_break_into_other_headers():
    email = render("order_completed", {"order_id": "ord_1\r\nBcc: x@y", "total": "1", "currency": "EUR"})
    assert "\r" not in email.subject
    assert "\n" not in email.subject


def test_a_missing_context_field_raises():
    with pytest.raises(UndefinedError, match="code"):
        render("verification_code", {"expires_minutes": 15})


def test_a_missing_field_used_only_in_the_body_raises_too():
    with pytest.raises(UndefinedError, match="reason"):
        render("order_cancelled", {"order_id": "ord_1"})


def test_an_unknown_template_raises_a_typed_error():
    with pytest.raises(UnknownTemplate, match="no_such_template") as raised:
        render("no_such_template", {})
    assert raised.value.template == "no_such_template"


def test_the_base_layout_is_not_an_email():
    with pytest.raises(UnknownTemplate):
        render("base", {})
