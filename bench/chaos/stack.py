"""The stack under chaos: `shop run all` from the harness with three worker pools, its processes found
by name, on a RabbitMQ vhost of its own, order timers in seconds."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from harness.rabbitmq import management
from harness.stack import LIMITS_LIFTED, ShopStack
from shop.actors.broker import delay_queue_name

VHOST = "shop-chaos"
# As the Swarm stack runs them (ops/swarm/stack.yml): commands, mail and timers apart.
POOLS = (("commands", "auth,orders,products"), ("mail", "mail"), ("timers", "timers"))
PROCESSES = ("gateway", *(f"workers-{name}" for name, _ in POOLS), "streams", "relay")
# Order timers in seconds, so that every order placed during the run reaches its end before the
# checks: reminders at 6 s and 12 s, cancelled or completed at 18 s, overdue timers swept after 4 s.
TIMERS = {
    "SHOP_ORDER_REMINDERS": "6s,12s",
    "SHOP_ORDER_TTL": "18s",
    "SHOP_TIMER_GRACE": "4s",
    "SHOP_TIMER_SWEEP_INTERVAL": "2s",
}
ORDER_TTL_SECONDS = 18.0
TIMER_GRACE_SECONDS = 4.0
# The delay queues this run's orders use: the first reminder's and the gap to the next (6 s), the
# expiry's (18 s). Shared with shop/actors/broker.py's naming.
OWN_DELAY_QUEUES = frozenset(delay_queue_name("timers", ms) for ms in (6_000, 18_000))


def chaos_stack(log: Path) -> ShopStack:
    """Not started."""
    env = {
        **LIMITS_LIFTED,
        "SHOP_ACCESS_TOKEN_TTL": "2h",
        "SHOP_MAIL_MIN_BACKOFF": "1s",
        "SHOP_MAIL_MAX_BACKOFF": "8s",
        "OTEL_SDK_DISABLED": "true",
        **TIMERS,
    }
    return ShopStack(log, env, VHOST, POOLS)


def queue_depths() -> dict[str, int]:
    """Messages ready or unacked in each of the vhost's queues (RabbitMQ's management API)."""
    queues = management("GET", f"/api/queues/{urllib.parse.quote(VHOST, safe='')}") or []
    return {q["name"]: q.get("messages", 0) for q in queues}
