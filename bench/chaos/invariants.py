"""What must hold after a chaos run, checked against the databases and Mailpit, as a user would."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from bench.chaos.workload import Operation
from shop.db.products import reservations_of_ended_orders, stock_that_does_not_add_up
from shop.settings import Settings


@dataclass
class Check:
    name: str
    passed: bool
    detail: str
    problems: list[str] = field(default_factory=list)  # the first few offending rows, for a person


def _connect(settings: Settings, context: str) -> psycopg.Connection[Any]:
    return psycopg.connect(settings.databases[context].primary_url, autocommit=True)


def orders_exactly_once(settings: Settings, operations: list[Operation], users: list[str]) -> Check:
    """Every placement answered 2xx is one order, the one the client was told; no order exists
    without its idempotency record, and no (user, key) has two."""
    answered = [op for op in operations if op.kind == "order" and op.answered_2xx]
    with _connect(settings, "orders") as conn:
        rows = conn.execute(
            """
            SELECT r.user_id::text, r.key, r.order_id::text,
                   (SELECT count(*) FROM orders o WHERE o.id = r.order_id)
              FROM idempotency_records r WHERE r.user_id = ANY(%s::uuid[])
            """,
            (users,),
        ).fetchall()
        orphans = conn.execute(
            """
            SELECT o.id::text FROM orders o
             WHERE o.user_id = ANY(%s::uuid[])
               AND NOT EXISTS (SELECT 1 FROM idempotency_records r WHERE r.order_id = o.id)
            """,
            (users,),
        ).fetchall()
    by_key = {(user, key): (order_id, count) for user, key, order_id, count in rows}
    problems = []
    for op in answered:
        found = by_key.get((op.user_id or "", op.key or ""))
        if found is None:
            problems.append(f"lost: key {op.key} answered {op.order_id}, no record")
        elif found[0] != op.order_id or found[1] != 1:
            problems.append(f"key {op.key}: answered {op.order_id}, stored {found[0]} x{found[1]}")
    problems += [f"order {o} has no idempotency record" for (o,) in orphans]
    keys_used = {op.key for op in operations if op.kind == "order"}
    by_key = {(u, k): found for (u, k), found in by_key.items() if not k.startswith("probe-")}  # set-up's
    stray = [k for (_, k) in by_key if k not in keys_used]
    problems += [f"an order for key {k} that no client sent" for k in stray]
    return Check(
        "every order answered 2xx exists exactly once",
        not problems,
        f"{len(answered)} answered, {len(by_key)} in the database"
        f" ({len(by_key) - len(answered)} placed for clients that gave up or never heard)",
        problems[:10],
    )


def nothing_stuck(settings: Settings, users: list[str], grace_seconds: float) -> Check:
    with _connect(settings, "orders") as conn:
        reserving = conn.execute(
            "SELECT id::text FROM orders WHERE user_id = ANY(%s::uuid[]) AND stock = 'reserving'", (users,)
        ).fetchall()
        overdue = conn.execute(
            """
            SELECT id::text FROM orders WHERE user_id = ANY(%s::uuid[]) AND status = 'PENDING'
               AND expires_at < now() - make_interval(secs => %s)
            """,
            (users, grace_seconds),
        ).fetchall()
        statuses = dict(
            conn.execute(
                "SELECT status, count(*) FROM orders WHERE user_id = ANY(%s::uuid[]) GROUP BY status",
                (users,),
            ).fetchall()
        )
    problems = [f"{o} still reserving" for (o,) in reserving] + [
        f"{o} PENDING past its expiry" for (o,) in overdue
    ]
    return Check(
        "no order left reserving, none PENDING past its expiry",
        not problems,
        ", ".join(f"{s} {n}" for s, n in sorted(statuses.items())),
        problems[:10],
    )


def stock_adds_up(settings: Settings) -> Check:
    with _connect(settings, "catalog") as conn:
        broken = stock_that_does_not_add_up(conn)
    return Check(
        "per product: initial + restocks = available + reserved + sold, nothing negative",
        not broken,
        "every product balances" if not broken else f"{len(broken)} product(s) do not",
        [f"(sku, supplied, available, reserved, sold, held) {row}" for row in broken[:10]],
    )


def nothing_held_for_ended_orders(settings: Settings, users: list[str]) -> Check:
    """No reservation is still held for an order that was cancelled or completed: the order side's
    word (its status) against the inventory's (its reservations), and the inventory's own record of
    cancellations. Stock held so is stock nobody can ever buy."""
    with _connect(settings, "orders") as conn:
        ended = {
            str(order_id): status
            for order_id, status in conn.execute(
                "SELECT id, status FROM orders WHERE user_id = ANY(%s::uuid[])"
                " AND status IN ('CANCELLED', 'COMPLETED')",
                (users,),
            ).fetchall()
        }
    with _connect(settings, "catalog") as conn:
        held = conn.execute(
            "SELECT order_id::text, product_id::text, quantity FROM stock_reservations"
            " WHERE state = 'reserved'"
        ).fetchall()
        known_cancelled = reservations_of_ended_orders(conn)
    problems = [f"{o} ({ended[o]}) still holds {q} of {p}" for o, p, q in held if o in ended]
    problems += [
        f"{o} (cancelled, as the inventory knows) still holds {q} of {p}" for o, p, q in known_cancelled
    ]
    return Check(
        "no reservation held by a cancelled or completed order",
        not problems,
        f"{len(ended)} ended orders, {len(held)} reservations held in all",
        problems[:10],
    )


def outbox_published(settings: Settings, since: datetime) -> Check:
    unsent = {}
    for context in ("auth", "catalog", "orders"):
        with _connect(settings, context) as conn:
            row = conn.execute(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL AND created_at >= %s", (since,)
            ).fetchone()
            unsent[context] = int(row[0]) if row else 0
    return Check(
        "every outbox row of the run published",
        not any(unsent.values()),
        ", ".join(f"{c}: {n} unsent" for c, n in unsent.items()),
    )


def timers_fired(settings: Settings, users: list[str], grace_seconds: float) -> Check:
    with _connect(settings, "orders") as conn:
        late = conn.execute(
            """
            SELECT t.order_id::text, t.kind FROM order_timers t JOIN orders o ON o.id = t.order_id
             WHERE o.user_id = ANY(%s::uuid[]) AND t.fired_at IS NULL
               AND t.due_at < now() - make_interval(secs => %s)
            """,
            (users, grace_seconds),
        ).fetchall()
        fired = dict(
            conn.execute(
                """
                SELECT t.fired_by, count(*) FROM order_timers t JOIN orders o ON o.id = t.order_id
                 WHERE o.user_id = ANY(%s::uuid[]) AND t.fired_at IS NOT NULL GROUP BY t.fired_by
                """,
                (users,),
            ).fetchall()
        )
    return Check(
        "every timer that fell due fired",
        not late,
        f"fired: {', '.join(f'by {k} {v}' for k, v in sorted(fired.items())) or 'none'};"
        f" due and unfired: {len(late)}",
        [f"{o} {k}" for o, k in late[:10]],
    )


def expected_emails(settings: Settings, domain: str, users: list[str]) -> Counter[str]:
    """The dedupe key of every email the final state calls for (each once)."""
    keys: Counter[str] = Counter()
    with _connect(settings, "auth") as conn:
        for (code_id,) in conn.execute(
            "SELECT c.id::text FROM verification_codes c JOIN users u ON u.id = c.user_id"
            " WHERE u.email LIKE %s",
            (f"%@{domain}",),
        ):
            keys[f"verification-code:{code_id}"] += 1
    with _connect(settings, "orders") as conn:
        # A reminder the mail worker found obsolete (the order was paid or cancelled before it went
        # out) is recorded so in the mail ledger, and rightly never arrives.
        for order_id, kind, outcome in conn.execute(
            """
            SELECT t.order_id::text, t.kind, t.outcome FROM order_timers t JOIN orders o ON o.id = t.order_id
             WHERE o.user_id = ANY(%s::uuid[]) AND t.outcome IN ('reminded', 'completed')
               AND NOT EXISTS (SELECT FROM mail_deliveries m WHERE m.obsolete_at IS NOT NULL
                                  AND m.dedupe_key = 'order-reminder:' || t.order_id || ':' || t.kind)
            """,
            (users,),
        ):
            keys[
                f"order-reminder:{order_id}:{kind}"
                if outcome == "reminded"
                else f"order-completed:{order_id}"
            ] += 1
        for (order_id,) in conn.execute(
            """
            SELECT id::text FROM orders WHERE user_id = ANY(%s::uuid[]) AND status = 'CANCELLED'
               AND cancel_reason IN ('payment_timeout', 'out_of_stock')
            """,
            (users,),
        ):
            keys[f"order-cancelled:{order_id}"] += 1
    return keys


def _mailpit(mailpit: str, path: str) -> Any:
    with urllib.request.urlopen(mailpit + path, timeout=10) as response:
        return json.load(response)


def delivered_emails(mailpit: str, domain: str) -> Counter[str]:
    """The dedupe key of every email Mailpit holds for the run's addresses, with how often."""
    ids: list[str] = []
    query = urllib.parse.quote(f'to:"@{domain}"')
    while True:
        page = _mailpit(mailpit, f"/api/v1/search?query={query}&limit=500&start={len(ids)}")
        ids += [m["ID"] for m in page["messages"]]
        if not page["messages"] or len(ids) >= page["messages_count"]:
            break
    keys: Counter[str] = Counter()
    for message_id in ids:
        headers = _mailpit(mailpit, f"/api/v1/message/{message_id}/headers")
        for key in headers.get("X-Shop-Dedupe-Key", ["(none)"]):
            keys[key] += 1
    return keys


def emails_delivered_once(
    settings: Settings, mailpit: str, domain: str, users: list[str]
) -> tuple[Check, Check]:
    expected = expected_emails(settings, domain, users)
    delivered = delivered_emails(mailpit, domain)
    missing = sorted(set(expected) - set(delivered))
    unexpected = sorted(set(delivered) - set(expected))
    duplicates = {key: n for key, n in delivered.items() if n > 1}
    every = Check(
        "every expected email is in Mailpit",
        not missing and not unexpected,
        f"{len(expected)} expected, {len(set(delivered))} delivered; {len(missing)} missing,"
        f" {len(unexpected)} unexpected",
        [f"missing {k}" for k in missing[:5]] + [f"unexpected {k}" for k in unexpected[:5]],
    )
    once = Check(
        "no email delivered twice (target 0)",
        not duplicates,
        f"{sum(n - 1 for n in duplicates.values())} duplicate(s)",
        [f"{k} x{n}" for k, n in list(duplicates.items())[:10]],
    )
    return every, once
