"""How every connection introduces itself, so a pool in front of PostgreSQL can route it.

Behind pgpool-II with load balancing, a connection to the "primary" URL could still have its reads
answered by a lagging standby: an order read back right after its commit would be missing. Every
connection meant for the primary says so in its `application_name` (`shop-primary`), which the
deployment's pgpool routes to the primary (`app_name_redirect_preference_list`); replica
connections say `shop-replica`. Server-side prepared statements are off everywhere: a statement
prepared on one backend of a pool does not exist on the next (pgpool, PgBouncer in transaction mode).
"""

from __future__ import annotations

from typing import Any

PRIMARY_APPLICATION = "shop-primary"
REPLICA_APPLICATION = "shop-replica"


def primary_options() -> dict[str, Any]:
    return {"prepare_threshold": None, "application_name": PRIMARY_APPLICATION}


def replica_options() -> dict[str, Any]:
    return {"prepare_threshold": None, "application_name": REPLICA_APPLICATION}
