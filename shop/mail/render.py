"""Render a named email (subject, plain text and HTML) from its Jinja2 templates.

Every template exists twice, `NAME.txt` and `NAME.html`, both rendered from the same context.
`StrictUndefined` makes a missing context field an error instead of a silently blank email.

Templates and the context each one needs:
  verification_code   code, expires_minutes
  already_registered  (nothing: no code; it points to sign-in and password reset)
  payment_reminder    order_id, total, currency, expires_at, time_left, reminder (1 for the first,
                      2, ...), lines [{name, quantity, unit_price, line_total}]
  order_cancelled     order_id, reason
  order_completed     order_id, total, currency
Values are shown as given: amounts and times arrive formatted (the message is JSON).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, Template, select_autoescape

_templates = Environment(
    loader=PackageLoader("shop.mail", "templates"),
    # Only the .html files are escaped: a plain-text email must show `<` as `<`, not `&lt;`.
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)

# Subjects are headers, not HTML: never escaped, and newlines are folded away after rendering.
_subjects = Environment(autoescape=False, undefined=StrictUndefined)

SUBJECTS: Mapping[str, str] = {
    "verification_code": "Your shop verification code",
    "already_registered": "Someone tried to register with your email",
    "payment_reminder": "Reminder: order {{ order_id }} is waiting for payment",
    "order_cancelled": "Order {{ order_id }} was cancelled",
    "order_completed": "Order {{ order_id }} is complete",
}

_compiled_subjects: dict[str, Template] = {name: _subjects.from_string(s) for name, s in SUBJECTS.items()}


class UnknownTemplate(LookupError):
    """No email template has this name."""

    def __init__(self, template: str) -> None:
        super().__init__(f"unknown email template {template!r}; known: {', '.join(sorted(SUBJECTS))}")
        self.template = template


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render(template: str, context: Mapping[str, Any]) -> RenderedEmail:
    """Render `template` with `context`.

    Raises `UnknownTemplate` for a name that is not in `SUBJECTS`, and jinja2's `UndefinedError`
    when the context lacks a field the template uses.
    """
    subject = _compiled_subjects.get(template)
    if subject is None:
        raise UnknownTemplate(template)
    return RenderedEmail(
        subject=" ".join(subject.render(context).split()),
        text=_templates.get_template(f"{template}.txt").render(context),
        html=_templates.get_template(f"{template}.html").render(context),
    )
