"""What actors and stream agents are handed: one object per process, built by the composition root.

Actors and agents are declared against a `Dependencies` (`shop.actors.registry.declare_actors`,
`shop.streams.agents.stream_agents`) instead of reaching for globals, so a test hands in its own
pools and clock, and a module imports without a server or a setting. Declaring opens nothing: a
primary pool, the Redis client and the mail sender are made the first time a message needs them,
which is why the gateway (it declares the actors only to send to them) never opens a worker's pools.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from psycopg_pool import ConnectionPool

from shop.db.unit_of_work import UnitOfWork
from shop.domain.clock import Clock
from shop.domain.orders import UnpaidLimits
from shop.domain.timers import TimerPolicy
from shop.handlers.auth import AuthPolicy
from shop.handlers.mail import MailDependencies
from shop.redis_clients import SyncRedis
from shop.security.throttle import AddressCooldowns
from shop.settings import MailSettings


@dataclass(frozen=True)
class Dependencies:
    clock: Clock
    # A context's primary ("auth", "catalog", "orders"), opened on first use and kept.
    primary_pool: Callable[[str], ConnectionPool]
    redis: Callable[[], SyncRedis]
    # The mail actor's sender, ledger and code resolver, made on its first message.
    mail: Callable[[], MailDependencies]
    mail_settings: MailSettings  # the mail actor's retry options, fixed when it is declared
    auth_policy: AuthPolicy
    timer_policy: TimerPolicy
    unpaid_limits: UnpaidLimits

    def unit_of_work(self, context: str, *, track_lsn: bool = False) -> UnitOfWork:
        return UnitOfWork(self.primary_pool(context), track_lsn=track_lsn)

    def address_cooldowns(self) -> AddressCooldowns:
        return AddressCooldowns(self.redis())
