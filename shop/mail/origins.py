"""Where an email comes from: the context, and so the database, whose change caused it.

The mail ledger of an email (shop.mail.ledger) lives in that database, beside the change: the record
that it was sent then shares that database's durability and backups, and a payment reminder can be
checked against its order in the same transaction. Messages carry no origin today, so it is decided
here, once, from the template; a producer may name it (the `origin` kwarg of `send_email`), and must
then name the same one.
"""

from __future__ import annotations

from collections.abc import Mapping

AUTH, ORDERS = "auth", "orders"

# The databases with a `mail_deliveries` table (migrations auth/0005 and orders/0009).
LEDGER_DATABASES: tuple[str, ...] = (AUTH, ORDERS)

ORIGINS: Mapping[str, str] = {
    "verification_code": AUTH,
    "already_registered": AUTH,
    "payment_reminder": ORDERS,
    "order_cancelled": ORDERS,
    "order_completed": ORDERS,
}


class UnknownOrigin(LookupError):
    """The email's origin is not a database with a mail ledger, or contradicts its template's."""


def origin_of(template: str, origin: str | None = None) -> str:
    """The database that keeps the ledger of a `template` email, `origin` if the message named it.

    A template's origin is fixed: two copies of one email must be deduplicated in one place, and a
    payment reminder is checked against the orders database.
    """
    known = ORIGINS.get(template)
    if origin is None:
        if known is None:
            raise UnknownOrigin(f"email template {template!r} has no known origin; name one")
        return known
    if origin not in LEDGER_DATABASES:
        raise UnknownOrigin(f"origin {origin!r} has no mail ledger; known: {', '.join(LEDGER_DATABASES)}")
    if known is not None and origin != known:
        raise UnknownOrigin(f"email template {template!r} comes from {known!r}, not {origin!r}")
    return origin
